// The live heap blocks of LiveHeap, keyed by address. Two parts:
// - a ring indexed by seq for the blocks a version-3/4 trace names (1 << 63) | seq (reader.hpp):
//   seqs are dense and blocks die mostly oldest-first, so a block is found, added and removed
//   by indexing, without hashing or probing;
// - an open-addressing hash table (linear probing, backward-shift deletion) for real addresses
//   (versions 1 and 2, and anything else) and for the ring's long-lived blocks: when the ring
//   would have to grow while less than half full, its oldest live blocks move to the table.
// Flat arrays, no allocation per block (a node-based map was the analyzer's bottleneck at
// millions of blocks); both parts grow only with the live blocks, never with the trace.
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
    size_t size() const { return used_ + (has_zero_ ? 1 : 0) + in_ring_; }
    // The block at addr, or nullptr. Valid until the next insert or erase. Inline: the
    // replay looks up one block per event.
    Block* find(uint64_t addr) {
        // Only a seq name in [lo, hi) gives a d below span_ (see base_).
        if (addr - base_ < span_) {
            Block& s = ring_[addr & mask_];
            return s.addr == addr ? &s : nullptr;
        }
        return hash_find(addr);
    }
    // Inserts b; when addr is taken, returns the existing block (unchanged) and false.
    std::pair<Block*, bool> insert(const Block& b) {
        const uint64_t d = b.addr - base_;
        if (__builtin_expect(d < cap_, 1)) {
            // In the ring's window: the slot is b's own, empty or holding b.addr.
            Block& s = ring_[b.addr & mask_];
            if (s.addr == b.addr) return {&s, false};
            s = b;
            ++in_ring_;
            if (d >= span_) span_ = d + 1;
            return {&s, true};
        }
        return insert_other(b);
    }
    // Removes the block find() returned.
    void erase(Block* b) {
        const uintptr_t at =
            reinterpret_cast<uintptr_t>(b) - reinterpret_cast<uintptr_t>(ring_.data());
        if (__builtin_expect(at < cap_ * sizeof(Block), 1)) {
            b->addr = 0;  // lo moves past it in make_room
            --in_ring_;
            return;
        }
        hash_erase(b);
    }

    template <class F>
    void for_each(F&& f) const {
        for (const Block& b : ring_)
            if (b.addr != 0) f(b);
        if (has_zero_) f(zero_);
        for (const Block& b : slots_)
            if (b.addr != 0) f(b);
    }

private:
    static constexpr uint64_t kSeqBit = uint64_t{1} << 63;
    // Seqs the ring takes: below 2^62, so that base_ stays below kSeqBit + 2^62 and a real
    // address (bit 63 clear) minus base_ wraps to 2^62 or more, past any span_ or cap_.
    static constexpr uint64_t kRingSeqLimit = (uint64_t{1} << 62) - (uint64_t{1} << 40);
    static constexpr size_t kRingMax = size_t{1} << 36;

    // The ring: ring_[seq & mask_] holds the block named kSeqBit | seq for seq in [lo, hi),
    // lo = base_ - kSeqBit, hi = lo + span_, span_ <= cap_ = ring_.size(). Slots of seqs
    // outside [lo, hi) are empty (addr 0). Blocks with a seq below lo are in the hash table.
    // lo moves past dead slots only when the window is full (make_room).
    void skip_dead_front() {
        uint64_t base = base_, span = span_;
        while (span != 0 && ring_[base & mask_].addr == 0) {
            ++base;
            --span;
        }
        base_ = base;
        span_ = span;
    }
    std::pair<Block*, bool> insert_other(const Block& b);  // out of the window: grow/evict or hash
    void make_room(uint64_t seq);                          // so that seq fits the window
    void grow_ring();

    // The hash table.
    Block* hash_find(uint64_t addr) {
        if (__builtin_expect(addr == 0, 0)) return has_zero_ ? &zero_ : nullptr;
        if (slots_.empty()) return nullptr;
        const size_t mask = slots_.size() - 1;
        for (size_t i = home(addr);; i = (i + 1) & mask) {
            Block& s = slots_[i];
            if (s.addr == addr) return &s;
            if (s.addr == 0) return nullptr;
        }
    }
    std::pair<Block*, bool> hash_insert(const Block& b);
    void hash_erase(Block* b);
    size_t home(uint64_t addr) const {
        return static_cast<size_t>((addr * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    void grow();

    std::vector<Block> ring_;
    uint64_t base_ = kSeqBit;  // kSeqBit | lo
    uint64_t span_ = 0;        // hi - lo
    uint64_t cap_ = 0;         // ring_.size(), a power of two (or 0)
    uint64_t mask_ = 0;        // cap_ - 1
    size_t in_ring_ = 0;

    std::vector<Block> slots_;  // addr 0 marks an empty slot
    size_t used_ = 0;
    unsigned shift_ = 64;
    Block zero_;  // address 0 cannot live in the array; only a corrupt trace uses it
    bool has_zero_ = false;
};

}  // namespace pmt
