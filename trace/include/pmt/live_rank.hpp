// One thread's live heap blocks ordered by sequence number (FORMAT.md, "Version 3", rank
// code): the order-statistic structure shared by the version-3 stream encoder (free -> rank)
// and the reader's stream decoder (rank -> block). Version 4 needs none (pmt/live_seqs.hpp);
// the interposer writes version 4, so this serves reading version-3 files (and the tests).
//
// Layout: the seqs ever added since the last compaction in one sorted array ("positions"),
// each entry `seq << 1 | live`, and a Fenwick tree counting the live entries over positions.
// A removed block leaves a tombstone; when tombstones are more than half of the positions the
// array is compacted and the tree rebuilt in linear time, so every operation is O(log n)
// amortised and memory stays proportional to the live blocks, not to all blocks ever added.
// Two shortcuts keep the common cases cheaper than log n: a finger (the position and live index
// of the last removal) from which a nearby removal is found by a short scan, so a program
// freeing in allocation order behind a fixed set of long-lived blocks pays no tree descent;
// and a removal's tree update above its 64-position block is deferred until a removal lands in
// another block or a query needs the counts.
//
// Nothing here throws except std::bad_alloc from the arrays' growth: when memory runs out, or
// when add() would take the arrays past kMaxPositions (the tree counts in 32 bits). The reader,
// which must not throw for the limit on a hostile file, uses add_bounded(). The encoder's users
// catch allocation failure at the cycle level.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

namespace pmt {

class LiveRank {
public:
    // remove()/remove_at()'s answer for a seq that is not live or an index out of range.
    static constexpr uint64_t kNotLive = ~uint64_t(0);
    // Seqs must stay below this (the top bit is the synthetic address's marker anyway).
    static constexpr uint64_t kMaxSeq = (uint64_t(1) << 63) - 1;
    // The most positions (live blocks plus not yet compacted tombstones, at most 2 * size() +
    // 16) the arrays can hold: add() throws std::bad_alloc rather than grow past it.
    static constexpr size_t kMaxPositions = (size_t(1) << 31) - 1;

    // Appends a block: seq must be larger than every seq added before (and <= kMaxSeq).
    // Returns false (and changes nothing) otherwise.
    bool add(uint64_t seq) {
        if (seq > kMaxSeq || (has_last_ && seq <= last_seq_)) return false;
        if (n_ + 1 >= cap_) grow();
        pos_[n_] = seq << 1 | 1;
        ++n_;
        // Fenwick append: node n_ covers (n_ - lowbit, n_]; its children are n_-1,
        // n_-1-lowbit(n_-1), ... above n_ - lowbit(n_). Averages O(1) iterations.
        const size_t i = n_;
        const size_t lo = i - (i & (0 - i));
        // (A deferred removal needs nothing here: a new node covering the pending node sums a
        // child that overcounts by pend_delta_, so it overcounts the same, as flush() expects.)
        uint32_t v = 1;
        for (size_t j = i - 1; j > lo; j -= j & (0 - j)) v += tree_[j];
        tree_[i] = v;
        ++live_;
        last_seq_ = seq;
        has_last_ = true;
        return true;
    }

    // add() for a caller that bounds the memory: false (nothing changes) when the arrays would
    // have to grow to hold max_positions (<= kMaxPositions) or more; never throws for the limit.
    // Costs add() nothing but its return value: the bound is looked at only when growing.
    bool add_bounded(uint64_t seq, size_t max_positions) {
        if (n_ + 1 >= cap_ && n_ + 1 >= max_positions) return false;
        return add(seq);
    }

    // Removes a live block; returns its index from the oldest (0-based) before the removal,
    // or kNotLive when seq is not live (nothing changes then).
    uint64_t remove(uint64_t seq) {
        if (n_ == 0 || seq > kMaxSeq) return kNotLive;
        const uint64_t key = seq << 1;
        size_t p;
        uint64_t index;
        if (!scan_seq(key, p, index)) {
            p = find(seq);
            if (p == kNone) return kNotLive;
            // The newest entry's index needs no counting.
            index = p == n_ - 1 ? live_ - 1 : prefix(p);
        } else if (p == kNone) {
            return kNotLive;
        }
        set_finger_and_kill(p, index);
        return index;
    }

    // Removes the i-th live block from the oldest; returns its seq, or kNotLive when i >= size().
    uint64_t remove_at(uint64_t i) {
        if (i >= live_) return kNotLive;
        size_t p = scan_index(i);
        if (p == kNone) p = select(i);
        const uint64_t seq = pos_[p] >> 1;
        set_finger_and_kill(p, i);
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
    size_t capacity() const { return cap_ == 0 ? 0 : 2 * cap_ + 1; }

    void clear() {
        n_ = 0;
        live_ = 0;
        has_last_ = false;
        last_seq_ = 0;
        pend_node_ = 0;
        pend_delta_ = 0;
        fpos_ = 0;
        fidx_ = 0;
        pos_.reset();
        tree_.reset();
        cap_ = 0;
    }

private:
    static constexpr size_t kNone = ~size_t(0);
    static constexpr size_t kMinCompact = 16;
    static constexpr size_t kBlockMask = 63;  // kill()'s deferred-update blocks: 64 positions
    // Positions the finger scans (each way) before giving up for the tree.
    static constexpr size_t kScan = 48;

    // The finger: (fpos_, fidx_) with fidx_ = live entries at positions [0, fpos_), exact after
    // every operation (fpos_ <= n_; add() appends after it). Set by the removals; a removal near it
    // (the next one in oldest-first frees behind long-lived blocks, which is most of them in churny
    // programs) scans the entries from there instead of descending the tree.

    // remove(seq)'s finger path: true when the answer was found by scanning forward from the
    // finger (p = kNone then means seq is not live), false when seq is not within kScan
    // positions after the finger.
    bool scan_seq(uint64_t key, size_t& p, uint64_t& index) const {
        size_t q = fpos_;
        if (q >= n_ || pos_[q] > (key | 1)) return false;  // seq before the finger (or none)
        const size_t end = q + kScan < n_ ? q + kScan : n_;
        uint64_t c = fidx_;
        for (; q < end; ++q) {
            const uint64_t e = pos_[q];
            if ((e | 1) >= (key | 1)) {
                p = (e >> 1) == (key >> 1) && (e & 1) ? q : kNone;
                index = c;
                return true;
            }
            c += e & 1;
        }
        return false;
    }

    // remove_at(i)'s finger path: the position of the i-th live entry when it is within kScan
    // positions of the finger, else kNone.
    size_t scan_index(uint64_t i) const {
        size_t q = fpos_;
        if (i >= fidx_) {
            const size_t end = q + kScan < n_ ? q + kScan : n_;
            uint64_t c = fidx_;
            for (; q < end; ++q) {
                const uint64_t live = pos_[q] & 1;
                if (live && c == i) return q;
                c += live;
            }
        } else if (fidx_ - i <= kScan) {
            const size_t stop = q > kScan ? q - kScan : 0;
            uint64_t c = fidx_;  // live entries before q
            while (q > stop) {
                --q;
                c -= pos_[q] & 1;
                if ((pos_[q] & 1) && c == i) return q;
            }
        }
        return kNone;
    }

    // The removed entry becomes the finger: live entries before it = its index (every removal
    // moves the finger, so no removal is ever before it; kill()'s compaction maps it to the
    // entry's new place, the start-over at zero to 0).
    void set_finger_and_kill(size_t p, uint64_t index) {
        fpos_ = p;
        fidx_ = index;
        kill(p);
    }

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
            const uint64_t* base = pos_.get();
            size_t len = n_;
            while (len > 1) {
                const size_t half = len >> 1;
                base = base[half] < key ? base + half : base;
                len -= half;
            }
            p = static_cast<size_t>(base - pos_.get()) + (*base < key ? 1 : 0);
            if (p >= n_ || (pos_[p] >> 1) != seq) return kNone;
        }
        return (pos_[p] & 1) ? p : kNone;
    }

    // Live entries at positions [0, p).
    uint64_t prefix(size_t p) const {
        flush();
        uint64_t s = 0;
        for (size_t i = p; i > 0; i -= i & (0 - i)) s += tree_[i];
        return s;
    }

    // Position of the i-th live entry (i < live_): Fenwick descent.
    __attribute__((noinline)) size_t select(uint64_t i) const {
        flush();
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
        // Fenwick update, the part above p's 64-position block deferred: the path from p + 1
        // passes through the block's top node (p | 63) + 1; when that node exists, the nodes
        // below it are updated now and the top node and its ancestors get the removals of the
        // block in one walk (flush()) when a removal in another block or a query comes.
        // Oldest-first frees kill neighbouring positions: most removals then update 2-3 nodes.
        const size_t top = (p | kBlockMask) + 1;
        if (top <= n_) {
            size_t i = p + 1;
            for (; i < top; i += i & (0 - i)) --tree_[i];
            if (pend_node_ != top) {
                flush();
                pend_node_ = top;
            }
            ++pend_delta_;
        } else {
            for (size_t i = p + 1; i <= n_; i += i & (0 - i)) --tree_[i];
        }
        --live_;
        const size_t dead = n_ - live_;
        if (dead >= kMinCompact && dead * 2 > n_)
            compact();
        else if (live_ == 0)
            n_ = fpos_ = pend_node_ = pend_delta_ = 0;  // nothing live: start over, fidx_ is 0
    }

    // Drops the tombstones; the tree of an all-live array is tree[i] = lowbit(i). Shrinks the
    // arrays when they are far larger than the live blocks need.
    __attribute__((noinline)) void compact() {
        size_t w = 0;
        for (size_t r = 0; r < n_; ++r)
            if (pos_[r] & 1) pos_[w++] = pos_[r];
        n_ = w;
        pend_node_ = pend_delta_ = 0;        // the tree is rebuilt below
        fpos_ = static_cast<size_t>(fidx_);  // all live now: fidx_ live entries precede it
        if (cap_ > 4 * (n_ + kMinCompact)) reallocate(2 * (n_ + kMinCompact));
        for (size_t i = 1; i <= n_; ++i) tree_[i] = static_cast<uint32_t>(i & (0 - i));
    }

    // Applies the deferred removals to the pending block's top node and its ancestors.
    void flush() const {
        if (pend_delta_ != 0) flush_pending();
    }
    __attribute__((noinline)) void flush_pending() const {
        for (size_t i = pend_node_; i <= n_; i += i & (0 - i)) tree_[i] -= pend_delta_;
        pend_node_ = 0;
        pend_delta_ = 0;
    }

    __attribute__((noinline)) void grow() {
        // The tree counts in 32 bits: 2^31 positions (16 GiB of seqs) is the limit. (Growth
        // from below 2^31 is at most to 2^32 positions, whose counts still fit.)
        if (cap_ >= kMaxPositions + 1) throw std::bad_alloc();
        // Small at first: a version-3 reader makes one per thread that allocates (a hostile
        // file may make millions of threads with one block each).
        reallocate(cap_ < 4 ? 4 : cap_ * 2);
    }

    // New arrays of cap (> n_) positions holding positions [0, n_) and tree nodes [1, n_]; the
    // rest is left uninitialised (add() writes a position and its node before using them).
    void reallocate(size_t cap) {
        std::unique_ptr<uint64_t[]> p2(new uint64_t[cap]);
        std::unique_ptr<uint32_t[]> t2(new uint32_t[cap + 1]);
        if (n_ > 0) {
            std::memcpy(p2.get(), pos_.get(), n_ * sizeof(uint64_t));
            std::memcpy(t2.get() + 1, tree_.get() + 1, n_ * sizeof(uint32_t));
        }
        pos_ = std::move(p2);
        tree_ = std::move(t2);
        cap_ = cap;
    }

    std::unique_ptr<uint64_t[]> pos_;  // [0, n_): seq << 1 | live, sorted by seq
    // Fenwick tree over positions, 1-based, [1, n_]; exact but for the pending removals: node
    // pend_node_ (a multiple of 64, <= n_) and its ancestors still count pend_delta_ of them.
    std::unique_ptr<uint32_t[]> tree_;  // cap_ + 1 nodes (its counts change in const flush())
    mutable size_t pend_node_ = 0;
    mutable uint32_t pend_delta_ = 0;
    size_t cap_ = 0;  // positions allocated
    size_t n_ = 0;    // positions in use
    uint64_t live_ = 0;
    uint64_t last_seq_ = 0;  // the largest seq ever added (add's order check)
    bool has_last_ = false;
    size_t fpos_ = 0;    // the finger's position ...
    uint64_t fidx_ = 0;  // ... and the live entries before it
};

}  // namespace pmt
