// Transient double-allocation windows (WINDOWS.md is the rule): an old generation of data and
// the new one that replaces it alive together until the old is released. Found in the report's
// single replay; costs are counterfactual peaks computed from the same pass.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "analysis.hpp"
#include "window_support.hpp"

namespace pmt::analyzer {

struct Window {
    uint64_t old_bytes = 0;  // old generation alive when the new one was complete
    uint64_t new_bytes = 0;  // what the statement allocated and kept
    uint64_t old_blocks = 0, old_mappings = 0;
    uint64_t open_ns = 0, open_seq = 0;     // first byte of the new generation
    uint64_t close_ns = 0, close_seq = 0;   // release of the old generation (start / end)
    uint64_t max_before = 0;                // highest live bytes before the window opened
    uint64_t max_in = 0;                    // highest live bytes while it was open
    uint64_t new_stack = 0, old_stack = 0;  // the largest block's stack of each generation
    std::vector<FrameKey> statement;        // outermost first; back() = the rebinding line
    uint64_t count = 1;                     // windows with the same lines (loops)
    // Known after finish():
    uint64_t cost_bytes = 0;
    uint64_t peak_if_fixed = 0;
    std::string remedy;  // "in-place" | "replace-elements" | "other"
};

class WindowAnalysis : public BlockDeltaAnalysis {
public:
    void begin(const TraceReader& reader) override;
    // Through on_live/on_dead calls: the collected changes go to step().
    void on_event(const Event& e, const LiveHeap& heap) override;
    void on_step(const Event& e, const LiveHeap& heap, const LiveChanges& changes) override;
    void finish(const TraceReader& reader, const LiveHeap& heap) override;
    void add_json(nlohmann::json& report) const override;
    void add_text(std::string& out) const override;

    // Ranked by cost, then size; after finish().
    const std::vector<Window>& windows() const { return windows_; }
    uint64_t peak_bytes() const { return peak_bytes_; }
    // Last allocation made under a "<module>" outermost frame: the script's own code ran
    // until then; releases after it belong to interpreter exit.
    uint64_t script_end_ns() const { return script_end_ns_; }
    const LiveHistory& history() const { return history_; }
    StackFrames& frames() const { return frames_; }
    nlohmann::json frame_json(const FrameKey& f) const;
    nlohmann::json stack_json(uint64_t stack_id) const;

private:
    // When and in what state of the heap a block was allocated.
    struct Stamp {
        uint64_t ns = 0, seq = 0;
        uint64_t max_before = 0;  // highest live bytes before it
        uint64_t since = 0;       // highest live bytes since the last detection, before it
        uint64_t detections = 0;  // windows detected before it
    };
    // One live block, keyed by the seq of its latest allocation. Its own Stamp is stored
    // field by field; a grown block's origin (rare) goes to origins_, so the common record is
    // 72 bytes, not two Stamps' 120.
    struct Rec {
        uint64_t addr = 0, size = 0, stack = 0;
        uint64_t seq = 0;  // latest allocation: Stamp::seq
        uint64_t ns = 0, max_before = 0, since = 0, detections = 0;  // the rest of its Stamp
        uint32_t origin = 0;  // 0: the block is its own origin; else origins_[origin - 1]
        bool mapping = false;
        bool dead = false;  // released: a hole in log_ until the next compaction
        Stamp latest() const { return {ns, seq, max_before, since, detections}; }
    };
    struct Burst {  // releases on one thread with no allocation of that thread between them
        bool active = false;
        uint64_t stmt_stack = 0;  // the thread's last allocation before the first release
        uint64_t first_ns = 0, last_ns = 0, last_seq = 0, bytes = 0;
        uint64_t mappings = 0;  // dead entries that are (pieces of) mappings
        struct Dead {
            Dead(uint64_t q, uint64_t st, uint64_t sz, bool m)
                : seq(q), stack(st), size(sz), mapping(m) {}
            uint64_t seq, stack, size;  // seq: of the block's (latest) allocation; 0 unknown
            bool mapping;
        };
        std::vector<Dead> dead;
    };
    struct Thread {
        uint64_t last_alloc_stack = 0;
        bool realloc_pending = false;
        Stamp realloc_origin{};  // of the block the pending realloc released
        Burst burst;
    };

    // The per-event work: e and the changes it made to the live set, in order. The common
    // events (a plain allocation or free of one heap block) stay inline; the rest go to
    // step_other / add_changes.
    void step(const Event& e, const LiveHeap& heap, const LiveChanges& changes);
    [[gnu::noinline]] void step_alloc(const Event& e, const LiveHeap& heap,
                                      const LiveChanges& changes);
    [[gnu::noinline]] void step_free(const Event& e, const LiveHeap& heap,
                                     const LiveChanges& changes);
    [[gnu::noinline]] void step_rest(const Event& e, const LiveHeap& heap,
                                     const LiveChanges& changes);
    void step_other(Thread& th, const Event& e, const LiveHeap& heap, const LiveChanges& changes);
    // An allocation event other than one plain new block: a realloc's second half (the grown
    // block keeps its origin), an mremap (the old range moves to the new), a replaced block.
    void add_changes(Thread& th, bool grown, const Event& e, const LiveHeap& heap,
                     const LiveChanges& changes);
    void allocated(Thread& th, const Event& e);  // the thread's last allocation, script end
    // Highest live bytes so far and since the last detection; the history of live bytes.
    void after(const Event& e, const LiveHeap& heap) {
        const uint64_t live = heap.live_bytes();
        if (e.type != EventType::Rss) history_.push(e.seq, live);
        running_peak_ = heap.peak_bytes();
        if (live > since_) since_ = live;
    }
    // Marks the record of a released block (or piece of a mapping) dead and returns it, valid
    // until the next remove or add; nullptr for a block never seen allocated.
    const Rec* remove(const Block& b);
    const Rec* remove_mapping(const Block& b);  // remove's path for a (piece of a) mapping
    // origin: the age a grown block keeps (nullptr: its own).
    void add(const Block& b, const Stamp* origin, uint64_t seq, const LiveHeap& heap);
    // The first block of r's realloc/mremap chain (r itself when it never grew).
    Stamp origin_of(const Rec& r) const { return r.origin ? origins_[r.origin - 1] : r.latest(); }
    // Index in log_ of the first record with seq > s; the live record with exactly seq s.
    size_t first_after(uint64_t s) const;
    Rec* by_seq(uint64_t s);
    void maybe_compact(const LiveHeap& heap) {
        // Checked once per 256 releases: when to compact changes no result.
        if (__builtin_expect(log_dead_ >= next_check_, 0)) {
            next_check_ = log_dead_ + 256;
            if (log_dead_ >= 4096 && log_dead_ * 2 >= log_size_) compact(heap);
        }
    }
    void compact(const LiveHeap& heap);  // drops the holes (call once they are half of log_)
    Thread& thread(uint32_t tid) {
        if (tid != last_tid_) {  // always at the first call: last_tid_ starts out of range
            last_thread_ = &threads_[tid];  // node-based map: the reference stays valid
            last_tid_ = tid;
        }
        return *last_thread_;
    }
    void release(Thread& th, const Event& e, const LiveHeap& heap, const LiveChanges& changes);
    // The burst ends; only one of at least 1 MiB with a statement goes on to close_burst().
    void end_burst(Thread& th) {
        Burst& bu = th.burst;
        bu.active = false;
        if (__builtin_expect(bu.bytes >= (uint64_t{1} << 20), 0) && bu.stmt_stack != 0)
            close_burst(th, 0);
    }
    void close_burst(Thread& th, uint64_t seq);
    // Windows with the same lines (a loop) share one counterfactual: every repetition's old
    // generation released when that repetition opened (WINDOWS.md, "Cost").
    struct Key {
        Window shown;  // the repetition whose open interval reached highest
        uint64_t first_close_ns = 0;
        uint64_t before = 0;   // highest live bytes before the first repetition opened
        uint64_t between = 0;  // highest live bytes between repetitions
        uint64_t inside = 0;   // highest (live - old generation) inside any repetition
        uint64_t last_close_seq = 0, last_detection = 0, last_post_close = 0;
    };
    void keep(Window w, const Stamp& opener, uint64_t post_close);
    static std::string remedy_for(const Window& w);

    mutable StackFrames frames_;
    // Live blocks' records in seq order, with holes for released ones (compacted once they
    // are half of it). A heap block finds its record through its tag in LiveHeap (index + 1),
    // a mapping through map_seq_: no per-event allocation, no tree.
    std::vector<Rec> log_;
    size_t log_size_ = 0;    // log_.size()
    size_t log_dead_ = 0;    // holes in log_
    size_t next_check_ = 0;  // log_dead_ at which maybe_compact() looks again
    // Origins of grown blocks, in the order of their records in log_ (compacted with it).
    std::vector<Stamp> origins_;
    Rec part_;                              // remove()'s answer for a piece of a mapping
    std::map<uint64_t, uint64_t> map_seq_;  // mapping start -> seq (mappings are few)
    std::unordered_map<uint32_t, Thread> threads_;
    uint64_t last_tid_ = uint64_t{1} << 32;  // no thread yet
    Thread* last_thread_ = nullptr;
    ById<int8_t> module_rooted_{-1};              // per stack: -1 not known yet, else 0 / 1
    std::map<std::vector<uint32_t>, Key> found_;  // by (statement, new line, old line)
    // Per detection, the highest live bytes since the previous one: with Rec::since this
    // gives the highest point between two repetitions of a window.
    std::vector<uint64_t> detection_max_;
    uint64_t since_ = 0;
    LiveHistory history_;
    uint64_t running_peak_ = 0;
    uint64_t script_end_ns_ = 0;
    uint64_t peak_bytes_ = 0, peak_time_ns_ = 0;
    std::vector<Window> windows_;
};

// Report rendering helpers shared with advice.cpp.
std::string frame_text(const StackFrames& f, const FrameKey& k);

}  // namespace pmt::analyzer
