// BlockTable (pmt/block_table.hpp): linear probing over a power-of-two array kept at most
// half full; deletion shifts later entries of the probe chain back so no tombstones pile up.
#include "pmt/block_table.hpp"

namespace pmt {

std::pair<Block*, bool> BlockTable::insert_slow(const Block& b) {
    if (b.addr == 0) {
        if (has_zero_) return {&zero_, false};
        has_zero_ = true;
        zero_ = b;
        return {&zero_, true};
    }
    if ((used_ + 1) * 2 > slots_.size()) grow();
    return insert(b);
}

void BlockTable::erase(Block* b) {
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
