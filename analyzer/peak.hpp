// PeakAnalysis: the exact peak of live bytes and when it happened, the RSS peak, and what was
// live at the peak, by call stack and by source line, all in the single replay pass.
// Memory is O(number of distinct stacks), never O(events).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "analysis.hpp"
#include "by_id.hpp"

namespace pmt::analyzer {

// A frame copied out of the reader's tables (the report outlives nothing, but renderers
// should not have to keep the reader around).
struct SiteFrame {
    std::string file;
    std::string function;
    uint32_t line = 0;
};

// Bytes live at the peak attributed to one source line: the innermost frame of the program's
// own code (frames.hpp), or the innermost frame when the whole stack is library code.
// Allocations with no Python frame form one site with function "<native>" and no file.
struct PeakSite {
    std::string file;  // empty: none (<native>)
    uint32_t line = 0;
    std::string function;
    uint64_t bytes = 0;
    uint64_t blocks = 0;
    uint64_t largest_stack = 0;    // the stack that contributed most bytes to this site
    std::vector<SiteFrame> stack;  // that stack's frames, innermost first (top sites only)
    size_t frame = 0;              // index in stack of the frame this site is (file, line)
    bool native() const { return file.empty() && stack.empty(); }
};

struct StackAtPeak {
    uint64_t stack_id = 0;
    uint64_t bytes = 0;
    uint64_t blocks = 0;
};

// What one allocation stack holds, for the advice (advice.hpp; WINDOWS.md, "Advice"). Kept by
// PeakAnalysis in the same per-stack entry as its own sums: one lookup per change serves both.
// The *_peak fields are a lazy snapshot taken at the stack's first change after the current
// peak (so no per-peak copy of every stack); AdviceAnalysis::finish completes them.
struct AdviceSite {
    uint64_t heap = 0, big = 0, arena = 0;  // live bytes: heap blocks, >= 1 MiB, arenas
    uint64_t heap_peak = 0, big_peak = 0, arena_peak = 0;
    uint64_t snap_for = UINT64_MAX;  // peak seq the snapshot belongs to
    uint64_t last_change = 0;        // seq
    uint64_t first_free_after_peak_ns = 0;
    uint64_t last_alloc_seq = 0, peak_after_last_alloc = 0;
};

class PeakAnalysis : public Analysis {
public:
    // top: how many sites get their stacks resolved and are shown (0 = all).
    explicit PeakAnalysis(size_t top = 10) : top_(top) {}

    void on_live(const Block& b) override;
    void on_dead(const Block& b, uint64_t time_ns) override;
    void on_event(const Event& e, const LiveHeap& heap) override;
    void on_step(const Event& e, const LiveHeap& heap, const LiveChanges& changes) override;
    void finish(const TraceReader& reader, const LiveHeap& heap) override;
    void add_json(nlohmann::json& report) const override;
    void add_text(std::string& out) const override;

    uint64_t peak_bytes() const { return peak_bytes_; }
    uint64_t peak_time_ns() const { return peak_time_ns_; }
    uint64_t peak_blocks() const { return peak_blocks_; }
    bool has_rss() const { return rss_samples_ != 0; }
    uint64_t rss_peak_bytes() const { return rss_peak_bytes_; }
    uint64_t rss_peak_time_ns() const { return rss_peak_time_ns_; }
    uint64_t final_live_bytes() const { return live_bytes_; }

    // After finish(): every site, largest first (stacks resolved for the first `top` only).
    const std::vector<PeakSite>& sites() const { return sites_; }
    // After finish(): every stack holding bytes or blocks at the peak, largest first.
    const std::vector<StackAtPeak>& stacks_at_peak() const { return stacks_at_peak_; }

    // The advice's per-stack sums (AdviceSite), kept through on_step (replay) only, not through
    // on_live/on_dead. f(stack id, AdviceSite&) for every stack seen, by increasing id.
    template <class F>
    void for_each_advice_site(F&& f) {
        states_.for_each([&](uint64_t id, StackState& s) { f(id, s.advice); });
    }
    // The event that set the heap's peak (the latest of equal ones: first strictly higher),
    // and its stack.
    uint64_t advice_peak_seq() const { return advice_peak_seq_; }
    uint64_t advice_peak_stack() const { return advice_peak_stack_; }

private:
    // Per stack: live now, and a snapshot of live taken the first time the stack changed after
    // the latest peak (snap_epoch == epoch_). At the end, a stack's bytes at the peak are its
    // snapshot if it changed after the peak, else its live bytes: one pass, O(1) per event.
    struct StackState {
        uint64_t live_bytes = 0;
        uint64_t live_blocks = 0;
        uint64_t snap_bytes = 0;
        uint64_t snap_blocks = 0;
        uint64_t snap_epoch = 0;
        AdviceSite advice;
    };
    StackState& state(uint64_t stack_id) { return states_[stack_id]; }
    void touch(StackState& s) {
        if (s.snap_epoch != epoch_) {
            s.snap_bytes = s.live_bytes;
            s.snap_blocks = s.live_blocks;
            s.snap_epoch = epoch_;
        }
    }
    // The bodies of on_live/on_dead, inlined into on_step (no call per change); s is b's stack.
    // Counts b live in s and in the totals (s touched already).
    [[gnu::always_inline]] void add_live(StackState& s, const Block& b) {
        s.live_bytes += b.size;
        s.live_blocks += 1;
        live_bytes_ += b.size;
        live_blocks_ += 1;
        if (live_bytes_ > peak_bytes_) {
            // A new strict peak: the current state of every stack is now "the state at the
            // peak". Bumping the epoch invalidates all snapshots at once; stacks re-snapshot
            // lazily.
            peak_bytes_ = live_bytes_;
            peak_blocks_ = live_blocks_;
            peak_time_ns_ = b.time_ns;
            ++epoch_;
        }
    }
    void live(StackState& s, const Block& b);
    void dead(StackState& s, const Block& b);
    // How many blocks a dead piece of a mapping takes away: -1, plus one for each part of the
    // mapping left on either side of it (a hole in the middle makes two blocks of one).
    int64_t mapping_blocks_delta(const Block& dead);
    // The advice's part of a change (AdviceSite), at event granularity.
    void advice_touch(AdviceSite& s, uint64_t seq);
    void advice_dead(AdviceSite& s, const Block& b, const Event& e, bool release);
    void advice_live(AdviceSite& s, const Block& b, const Event& e, uint64_t heap_peak);
    // on_step for an event that is not one heap block of a stack in the dense table made live
    // or dead (on_step's leaf path).
    void step_other(const Event& e, const LiveHeap& heap, const LiveChanges& changes);
    // on_step for an event with several changes (mremap, an address handed out again).
    void step_several(const Event& e, uint64_t heap_peak, const LiveChanges& changes);
    // The event that set the heap's peak (the latest of equal ones: first strictly higher).
    void note_advice_peak(const Event& e, uint64_t heap_peak) {
        if (heap_peak > advice_peak_seen_) {
            advice_peak_seen_ = heap_peak;
            advice_peak_seq_ = e.seq;
            advice_peak_stack_ = e.stack_id;
        }
    }

    size_t top_;
    std::map<uint64_t, uint64_t> mappings_;  // start -> end of each live mapping (they are few)
    ById<StackState> states_;
    uint64_t epoch_ = 0;
    uint64_t live_bytes_ = 0;
    uint64_t live_blocks_ = 0;
    uint64_t peak_bytes_ = 0;
    uint64_t peak_blocks_ = 0;
    uint64_t peak_time_ns_ = 0;
    uint64_t rss_samples_ = 0;
    uint64_t rss_peak_bytes_ = 0;
    uint64_t rss_peak_time_ns_ = 0;
    uint64_t advice_peak_seq_ = 0, advice_peak_seen_ = 0, advice_peak_stack_ = 0;

    std::vector<PeakSite> sites_;
    std::vector<StackAtPeak> stacks_at_peak_;
};

}  // namespace pmt::analyzer
