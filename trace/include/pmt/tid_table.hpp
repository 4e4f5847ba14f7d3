// Thread ids to the stream's thread indexes, for the encoder and the stream reader: open
// addressing over 64-bit slots (tid << 32 | (index + 1), 0 = empty), at most half full, 16-32
// bytes a thread. The hash is multiply-add-shift with seeds a file cannot know (HashSeeds):
// tids chosen to share a slot under a fixed hash made a reader's linear probing quadratic
// (131,076 such tids in an 860 KB file: 16.2 s of CPU); now they collide only by chance.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pmt::detail {

// Seeds for hash tables that a file cannot know (the clock and where the table lives), drawn
// one after another by splitmix64.
class HashSeeds {
public:
    explicit HashSeeds(const void* where)
        : x_(static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
             reinterpret_cast<uintptr_t>(where)) {}
    uint64_t next() {
        uint64_t z = (x_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

private:
    uint64_t x_;
};

class TidTable {
public:
    static constexpr uint32_t kNone = UINT32_MAX;

    TidTable() {
        HashSeeds seeds(this);
        mult_ = seeds.next();
        salt_ = seeds.next();
    }
    // tid's index, or kNone.
    uint32_t find(uint32_t tid) const {
        if (slots_.empty()) return kNone;
        const size_t mask = slots_.size() - 1;
        for (size_t i = home(tid);; i = (i + 1) & mask) {
            const uint64_t e = slots_[i];
            if (e == 0) return kNone;
            if (static_cast<uint32_t>(e >> 32) == tid) return static_cast<uint32_t>(e) - 1;
        }
    }
    // Adds tid with index (below kNone); false, changing nothing, when tid is there already.
    // Growing may throw std::bad_alloc (then nothing changes either).
    bool insert(uint32_t tid, uint32_t index) {
        if (2 * (used_ + 1) > slots_.size()) rehash(slots_.size() < 8 ? 16 : 2 * slots_.size());
        const size_t mask = slots_.size() - 1;
        for (size_t i = home(tid);; i = (i + 1) & mask) {
            const uint64_t e = slots_[i];
            if (e == 0) {
                slots_[i] = uint64_t{tid} << 32 | (uint64_t{index} + 1);
                ++used_;
                return true;
            }
            if (static_cast<uint32_t>(e >> 32) == tid) return false;
        }
    }

private:
    // Dietzfelbinger's multiply-add-shift, strongly universal over 32-bit keys: the top bits.
    size_t home(uint32_t tid) const { return static_cast<size_t>((mult_ * tid + salt_) >> shift_); }
    void rehash(size_t n) {  // n: a power of two
        std::vector<uint64_t> old(n, 0);
        old.swap(slots_);
        shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(n));
        used_ = 0;
        for (const uint64_t e : old)
            if (e) insert(static_cast<uint32_t>(e >> 32), static_cast<uint32_t>(e) - 1);
    }

    std::vector<uint64_t> slots_;
    size_t used_ = 0;
    unsigned shift_ = 63;  // set with the first slots
    uint64_t mult_, salt_;
};

}  // namespace pmt::detail
