// One thread's live heap blocks ordered by sequence number (FORMAT.md, "Version 3", rank
// code): the order-statistic structure shared by the version-3 stream encoder (free -> rank)
// and the reader's stream decoder (rank -> block).
//
// Layout: the seqs ever added since the last compaction in one sorted array ("positions"),
// each entry `seq << 1 | live`, and a Fenwick tree counting the live entries over positions.
// A removed block leaves a tombstone; when tombstones are more than half of the positions the
// array is compacted and the tree rebuilt in linear time, so every operation is O(log n)
// amortised and memory stays proportional to the live blocks, not to all blocks ever added.
//
// Runs on the interposer's writer thread: nothing here throws except std::bad_alloc from the
// vectors' growth (the writer catches allocation failure at the cycle level).
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace pmt {

class LiveRank {
public:
    // remove()/remove_at()'s answer for a seq that is not live or an index out of range.
    static constexpr uint64_t kNotLive = ~uint64_t(0);
    // Seqs must stay below this (the top bit is the synthetic address's marker anyway).
    static constexpr uint64_t kMaxSeq = (uint64_t(1) << 63) - 1;

    // Appends a block: seq must be larger than every seq added before (and <= kMaxSeq).
    // Returns false (and changes nothing) otherwise.
    bool add(uint64_t seq) {
        if (seq > kMaxSeq || (has_last_ && seq <= last_seq_)) return false;
        if (n_ + 1 >= pos_.size()) grow();
        pos_[n_] = seq << 1 | 1;
        ++n_;
        // Fenwick append: node n_ covers (n_ - lowbit, n_]; its children are n_-1,
        // n_-1-lowbit(n_-1), ... above n_ - lowbit(n_). Averages O(1) iterations.
        const size_t i = n_;
        const size_t lo = i - (i & (0 - i));
        uint32_t v = 1;
        for (size_t j = i - 1; j > lo; j -= j & (0 - j)) v += tree_[j];
        tree_[i] = v;
        ++live_;
        last_seq_ = seq;
        has_last_ = true;
        return true;
    }

    // Removes a live block; returns its index from the oldest (0-based) before the removal,
    // or kNotLive when seq is not live (nothing changes then).
    uint64_t remove(uint64_t seq) {
        size_t p = find(seq);
        if (p == kNone) return kNotLive;
        uint64_t index = prefix(p);  // live entries before position p
        kill(p);
        return index;
    }

    // Removes the i-th live block from the oldest; returns its seq, or kNotLive when i >= size().
    uint64_t remove_at(uint64_t i) {
        if (i >= live_) return kNotLive;
        size_t p = select(i);
        uint64_t seq = pos_[p] >> 1;
        kill(p);
        return seq;
    }

    // The seq of the i-th live block from the oldest, or kNotLive when i >= size().
    uint64_t at(uint64_t i) const {
        if (i >= live_) return kNotLive;
        return pos_[select(i)] >> 1;
    }

    // Index from the oldest of a live seq, or kNotLive.
    uint64_t index_of(uint64_t seq) const {
        size_t p = find(seq);
        return p == kNone ? kNotLive : prefix(p);
    }

    bool contains(uint64_t seq) const { return find(seq) != kNone; }
    uint64_t size() const { return live_; }
    bool empty() const { return live_ == 0; }

    // For tests: entries held (live + tombstones) and the capacity of the arrays.
    size_t positions() const { return n_; }
    size_t capacity() const { return pos_.capacity() + tree_.capacity(); }

    void clear() {
        n_ = 0;
        live_ = 0;
        has_last_ = false;
        last_seq_ = 0;
        std::vector<uint64_t>().swap(pos_);
        std::vector<uint32_t>().swap(tree_);
    }

private:
    static constexpr size_t kNone = ~size_t(0);
    static constexpr size_t kMinCompact = 16;

    // Position (0-based) of a live seq, or kNone. The newest entry is checked first: most
    // frees in a real program are of recent blocks.
    size_t find(uint64_t seq) const {
        if (n_ == 0 || seq > kMaxSeq) return kNone;
        const uint64_t key = seq << 1;
        size_t p;
        if ((pos_[n_ - 1] >> 1) == seq) {
            p = n_ - 1;
        } else {
            // Branchless lower bound: the first entry >= key.
            const uint64_t* base = pos_.data();
            size_t len = n_;
            while (len > 1) {
                const size_t half = len >> 1;
                base = base[half] < key ? base + half : base;
                len -= half;
            }
            p = static_cast<size_t>(base - pos_.data()) + (*base < key ? 1 : 0);
            if (p >= n_ || (pos_[p] >> 1) != seq) return kNone;
        }
        return (pos_[p] & 1) ? p : kNone;
    }

    // Live entries at positions [0, p).
    uint64_t prefix(size_t p) const {
        uint64_t s = 0;
        for (size_t i = p; i > 0; i -= i & (0 - i)) s += tree_[i];
        return s;
    }

    // Position of the i-th live entry (i < live_): Fenwick descent.
    size_t select(uint64_t i) const {
        size_t pos = 0;
        uint64_t rem = i + 1;
        size_t step = size_t(1) << (63 - __builtin_clzll(static_cast<unsigned long long>(n_)));
        for (; step > 0; step >>= 1) {
            size_t q = pos + step;
            if (q <= n_ && tree_[q] < rem) {
                pos = q;
                rem -= tree_[q];
            }
        }
        return pos;  // 1-based pos + 1 is the entry; 0-based that is pos
    }

    void kill(size_t p) {
        pos_[p] &= ~uint64_t(1);
        for (size_t i = p + 1; i <= n_; i += i & (0 - i)) --tree_[i];
        --live_;
        const size_t dead = n_ - live_;
        if (dead >= kMinCompact && dead * 2 > n_)
            compact();
        else if (live_ == 0)
            n_ = 0;  // nothing live: start over (no tree to fix)
    }

    // Drops the tombstones; the tree of an all-live array is tree[i] = lowbit(i). Shrinks the
    // arrays when they are far larger than the live blocks need.
    void compact() {
        size_t w = 0;
        for (size_t r = 0; r < n_; ++r)
            if (pos_[r] & 1) pos_[w++] = pos_[r];
        n_ = w;
        if (pos_.size() > 4 * (n_ + kMinCompact)) {
            size_t cap = 2 * (n_ + kMinCompact);
            std::vector<uint64_t> p2(pos_.begin(), pos_.begin() + static_cast<ptrdiff_t>(n_));
            p2.resize(cap);
            std::vector<uint32_t> t2(cap + 1);
            pos_.swap(p2);
            tree_.swap(t2);
        }
        for (size_t i = 1; i <= n_; ++i) tree_[i] = static_cast<uint32_t>(i & (0 - i));
    }

    void grow() {
        // The tree counts in 32 bits: 2^31 positions (16 GiB of seqs) is the limit.
        if (pos_.size() >= (size_t(1) << 31)) throw std::bad_alloc();
        size_t cap = pos_.size() < 16 ? 32 : pos_.size() * 2;
        pos_.resize(cap);
        tree_.resize(cap + 1);
    }

    std::vector<uint64_t> pos_;   // [0, n_): seq << 1 | live, sorted by seq
    std::vector<uint32_t> tree_;  // Fenwick tree over positions, 1-based, [1, n_]
    size_t n_ = 0;                // positions in use
    uint64_t live_ = 0;
    uint64_t last_seq_ = 0;  // the largest seq ever added (add's order check)
    bool has_last_ = false;
};

}  // namespace pmt
