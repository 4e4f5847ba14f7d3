// The live heap blocks of a version-4 stream as a set of seqs (FORMAT.md, "Version 4"): shared
// by the stream encoder (a free of a block that is not live is the caller's bug) and the
// reader's stream decoder (a free record naming a block that is not live is corruption).
//
// Layout: one bit per seq in pages of 4096 seqs (512 bytes and a count of live bits), and a
// window of page pointers from the page of the oldest live block to the page of the newest seq
// added. A page whose blocks are all dead is released (kept for reuse) and its slot set to
// null; null slots at the front of the window are dropped. add() and remove() are O(1)
// (amortised over the window's compaction). Memory: 512 bytes per page holding a live block,
// at most one page per live block, plus 8 bytes per 4096 seqs between the oldest live block and
// the newest (1/512 byte per allocation while an early block stays live: 2 MB per 10^9).
//
// Runs on the interposer's writer thread: nothing here throws except std::bad_alloc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace pmt {

class LiveSeqs {
public:
    LiveSeqs() = default;
    ~LiveSeqs() {
        for (size_t i = head_; i < slots_.size(); ++i) delete slots_[i];
        for (Page* p : spare_) delete p;
    }
    LiveSeqs(const LiveSeqs&) = delete;
    LiveSeqs& operator=(const LiveSeqs&) = delete;

    // Makes seq live. seq must be larger than every seq added before (the callers' seqs only
    // grow); anything else is a bug of the caller.
    void add(uint64_t seq) {
        if ((seq >> kPageBits) != top_no_) new_top(seq >> kPageBits);
        top_->words[(seq >> 6) & (kWords - 1)] |= uint64_t(1) << (seq & 63);
        ++top_->live;
        ++live_;
    }

    // Makes seq dead; false (and nothing changes) when it is not live.
    bool remove(uint64_t seq) {
        const uint64_t idx = (seq >> kPageBits) - base_;  // wraps for a page before the window
        if (idx >= win_n_) return false;
        Page* p = win_[idx];
        if (p == nullptr) return false;
        uint64_t& w = p->words[(seq >> 6) & (kWords - 1)];
        const uint64_t m = uint64_t(1) << (seq & 63);
        if ((w & m) == 0) return false;
        w &= ~m;
        --live_;
        if (--p->live == 0 && p != top_) release(idx);
        return true;
    }

    bool contains(uint64_t seq) const {
        const uint64_t idx = (seq >> kPageBits) - base_;
        if (idx >= win_n_) return false;
        const Page* p = win_[idx];
        return p && (p->words[(seq >> 6) & (kWords - 1)] >> (seq & 63) & 1);
    }

    uint64_t size() const { return live_; }
    // Page slots in the window (for the tests of the memory bound).
    size_t window() const { return win_n_; }
    size_t pages() const { return pages_; }

    static constexpr unsigned kPageBits = 12;

private:
    static constexpr size_t kWords = (size_t(1) << kPageBits) / 64;
    struct Page {
        uint64_t words[kWords];
        uint64_t live;
    };

    // Makes page pn (above every page in the window) the top page.
    [[gnu::noinline]] void new_top(uint64_t pn) {
        if (top_ && top_->live == 0) release(top_no_ - base_);
        if (slots_.size() == head_) {  // empty window: it starts at pn
            slots_.clear();
            head_ = 0;
            base_ = pn;
        }
        Page* p;
        if (!spare_.empty()) {
            p = spare_.back();
            spare_.pop_back();
        } else {
            p = new Page;
        }
        std::memset(p, 0, sizeof(Page));
        const uint64_t idx = pn - base_;
        slots_.resize(head_ + idx + 1, nullptr);  // pages skipped (no block made live) stay null
        slots_[head_ + idx] = p;
        ++pages_;
        top_ = p;
        top_no_ = pn;
        set_window();
    }

    // Releases the empty page at window index idx; drops null slots at the window's front.
    [[gnu::noinline]] void release(uint64_t idx) {
        Page*& slot = slots_[head_ + idx];
        if (slot == top_) {
            top_ = nullptr;
            top_no_ = kNoPage;
        }
        spare_.push_back(slot);
        slot = nullptr;
        --pages_;
        if (idx != 0) return;
        while (head_ < slots_.size() && slots_[head_] == nullptr) {
            ++head_;
            ++base_;
        }
        if (head_ == slots_.size()) {
            slots_.clear();
            head_ = 0;
        } else if (head_ >= 64 && head_ * 2 >= slots_.size()) {
            slots_.erase(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
        set_window();
        // Keep at most a few spare pages beyond those in use.
        while (spare_.size() > 16 && spare_.size() > pages_) {
            delete spare_.back();
            spare_.pop_back();
        }
    }

    void set_window() {
        win_ = slots_.data() + head_;
        win_n_ = slots_.size() - head_;
    }

    static constexpr uint64_t kNoPage = uint64_t(1) << 63;  // above every page (seq >> 12)

    std::vector<Page*> slots_;  // window [head_, size): page base_ + (i - head_)
    size_t head_ = 0;
    Page** win_ = nullptr;  // slots_.data() + head_ and the window's length, kept for remove()
    size_t win_n_ = 0;
    uint64_t base_ = 0;  // page number of slots_[head_]
    Page* top_ = nullptr;
    uint64_t top_no_ = kNoPage;  // top_'s page number, kNoPage when there is none
    uint64_t live_ = 0;
    size_t pages_ = 0;
    std::vector<Page*> spare_;
};

}  // namespace pmt
