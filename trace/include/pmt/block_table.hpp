// The live heap blocks of LiveHeap, keyed by address: an open-addressing hash table with
// linear probing and backward-shift deletion. One flat array, no allocation per block (a
// node-based map was the analyzer's bottleneck at millions of blocks).
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace pmt {

// A piece of live memory. For a partial munmap, on_dead gets the released part only.
struct Block {
    uint64_t addr = 0;
    uint64_t size = 0;
    uint64_t stack_id = 0;
    uint64_t time_ns = 0;  // when it became live
    bool mapping = false;
    // A listener's annotation (LiveHeap::set_tag), kept with the block and its pieces; 0 when
    // unset. Lets an analysis find its own record of a block without a table of its own.
    uint32_t tag = 0;
};

class BlockTable {
public:
    size_t size() const { return used_ + (has_zero_ ? 1 : 0); }
    // The block at addr, or nullptr. Valid until the next insert or erase. Inline: the
    // replay looks up one block per event.
    Block* find(uint64_t addr) {
        if (__builtin_expect(addr == 0, 0)) return has_zero_ ? &zero_ : nullptr;
        if (slots_.empty()) return nullptr;
        const size_t mask = slots_.size() - 1;
        for (size_t i = home(addr);; i = (i + 1) & mask) {
            Block& s = slots_[i];
            if (s.addr == addr) return &s;
            if (s.addr == 0) return nullptr;
        }
    }
    // Inserts b; when addr is taken, returns the existing block (unchanged) and false.
    std::pair<Block*, bool> insert(const Block& b) {
        if (__builtin_expect(b.addr == 0 || (used_ + 1) * 2 > slots_.size(), 0))
            return insert_slow(b);
        const size_t mask = slots_.size() - 1;
        for (size_t i = home(b.addr);; i = (i + 1) & mask) {
            Block& s = slots_[i];
            if (s.addr == b.addr) return {&s, false};
            if (s.addr == 0) {
                s = b;
                ++used_;
                return {&s, true};
            }
        }
    }
    // Removes the block find() returned.
    void erase(Block* b);

    template <class F>
    void for_each(F&& f) const {
        if (has_zero_) f(zero_);
        for (const Block& b : slots_)
            if (b.addr != 0) f(b);
    }

private:
    size_t home(uint64_t addr) const {
        return static_cast<size_t>((addr * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    void grow();
    std::pair<Block*, bool> insert_slow(const Block& b);  // address 0, or growing first

    std::vector<Block> slots_;  // addr 0 marks an empty slot
    size_t used_ = 0;
    unsigned shift_ = 64;
    Block zero_;  // address 0 cannot live in the array; only a corrupt trace uses it
    bool has_zero_ = false;
};

}  // namespace pmt
