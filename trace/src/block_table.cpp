// BlockTable (pmt/block_table.hpp): the seq ring's growth and eviction; the hash table's
// linear probing over a power-of-two array kept at most half full, where deletion shifts later
// entries of the probe chain back so no tombstones pile up.
#include "pmt/block_table.hpp"

namespace pmt {

std::pair<Block*, bool> BlockTable::insert_other(const Block& b) {
    const uint64_t seq = b.addr - kSeqBit;
    // A real address, a seq older than the ring's front, or an absurd one: the hash table.
    if (b.addr < kSeqBit || seq >= kRingSeqLimit || seq < base_ - kSeqBit) return hash_insert(b);
    make_room(seq);
    return insert(b);
}

// Makes seq - lo < cap_ (seq >= lo). First lo moves past the dead blocks at the front (erase
// leaves them: in a mostly oldest-first order this one pass covers a long run of them). Then the
// ring doubles if it is at least half full and seq fits; otherwise its oldest blocks move to the
// hash table (long-lived: the blocks around them died) until cap_ / 16 more seqs fit, so the
// ring's size follows the live blocks, not the trace.
void BlockTable::make_room(uint64_t seq) {
    if (cap_ == 0) {
        ring_.assign(1024, Block{});
        cap_ = ring_.size();
        mask_ = cap_ - 1;
        base_ = kSeqBit | seq;
        span_ = 0;
        return;
    }
    skip_dead_front();
    if (seq - (base_ - kSeqBit) < cap_) return;
    if (in_ring_ * 2 >= cap_ && cap_ < kRingMax && seq - (base_ - kSeqBit) < 2 * cap_) {
        grow_ring();
        return;
    }
    const uint64_t room = cap_ - cap_ / 16;
    while (span_ != 0 && seq - (base_ - kSeqBit) >= room) {
        Block& front = ring_[base_ & mask_];  // live (skip_dead_front)
        hash_insert(front);
        front.addr = 0;
        --in_ring_;
        skip_dead_front();  // past the block just moved: the table holds only seqs below lo
    }
    if (span_ == 0) base_ = kSeqBit | seq;  // nothing live in the ring: it moves to seq
}

void BlockTable::grow_ring() {
    std::vector<Block> old(cap_ * 2);
    old.swap(ring_);
    cap_ = ring_.size();
    mask_ = cap_ - 1;
    for (const Block& b : old)
        if (b.addr != 0) ring_[b.addr & mask_] = b;
}

std::pair<Block*, bool> BlockTable::hash_insert(const Block& b) {
    if (__builtin_expect(b.addr == 0, 0)) {
        if (has_zero_) return {&zero_, false};
        has_zero_ = true;
        zero_ = b;
        return {&zero_, true};
    }
    if ((used_ + 1) * 2 > slots_.size()) grow();
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

void BlockTable::hash_erase(Block* b) {
    if (b == &zero_) {
        has_zero_ = false;
        return;
    }
    size_t mask = slots_.size() - 1;
    size_t hole = static_cast<size_t>(b - slots_.data());
    for (size_t j = (hole + 1) & mask; slots_[j].addr != 0; j = (j + 1) & mask) {
        // slots_[j] may fill the hole if its home is not in the cyclic range (hole, j].
        size_t h = home(slots_[j].addr);
        bool home_in_between = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
        if (!home_in_between) {
            slots_[hole] = slots_[j];
            hole = j;
        }
    }
    slots_[hole].addr = 0;
    --used_;
}

void BlockTable::grow() {
    std::vector<Block> old;
    old.swap(slots_);
    size_t n = old.empty() ? 1024 : old.size() * 2;
    slots_.assign(n, Block{});
    shift_ = 64;
    for (size_t s = n; s > 1; s >>= 1) --shift_;
    size_t mask = n - 1;
    for (const Block& b : old) {
        if (b.addr == 0) continue;
        size_t i = home(b.addr);
        while (slots_[i].addr != 0) i = (i + 1) & mask;
        slots_[i] = b;
    }
}

}  // namespace pmt
