// The analyzer's one pass: replay() reads a trace once, keeps the exact live heap (LiveHeap)
// and feeds every event to each Analysis, which later contributes sections to the report.
// New findings (peak attribution, windows, timelines, ...) are new Analysis classes; the
// report command composes them in order.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pmt/live.hpp"
#include "pmt/reader.hpp"

namespace pmt::analyzer {

class Analysis : public LiveListener {
public:
    ~Analysis() override = default;
    virtual void begin(const TraceReader& /*reader*/) {}
    // After the heap applied e, and after the on_live/on_dead calls e caused.
    virtual void on_event(const Event& /*e*/, const LiveHeap& /*heap*/) {}
    // What replay() calls per event: the changes e made to the live set, in order, then e.
    // By default the on_live/on_dead calls, then on_event; an analysis may take them at once.
    virtual void on_step(const Event& e, const LiveHeap& heap, const LiveChanges& changes) {
        for (const LiveChange& c : changes) {
            if (c.live)
                on_live(c.block);
            else
                on_dead(c.block, e.time_ns);
        }
        on_event(e, heap);
    }
    // False for an analysis with nothing to do per event (only begin/finish): replay() then
    // skips on_step for it.
    virtual bool per_event() const { return true; }
    virtual void finish(const TraceReader& /*reader*/, const LiveHeap& /*heap*/) {}
    // Report contributions: keys added to the pymemtrace-report/1 object; lines of text.
    virtual void add_json(nlohmann::json& /*report*/) const {}
    virtual void add_text(std::string& /*out*/) const {}
};

// An analysis that handles the blocks one event made live or dead together, in on_event
// (an mremap or a realloc changes several at once): changes() lists them in order. Through
// replay() they are the heap's own record of the event (no copy); through on_live/on_dead
// calls they are collected here.
class BlockDeltaAnalysis : public Analysis {
public:
    void on_live(const Block& b) override { collect(b, true); }
    void on_dead(const Block& b, uint64_t /*time_ns*/) override { collect(b, false); }
    void on_step(const Event& e, const LiveHeap& heap, const LiveChanges& changes) override {
        given_ = &changes;
        on_event(e, heap);
        given_ = nullptr;
    }

protected:
    // For a subclass's own on_step: its on_event called directly, not through the vtable.
    template <class Self>
    void step_as(Self* self, const Event& e, const LiveHeap& heap, const LiveChanges& changes) {
        given_ = &changes;
        self->Self::on_event(e, heap);
        given_ = nullptr;
    }
    const LiveChanges& changes() const { return given_ ? *given_ : own_; }
    // Call at the end of on_event.
    void clear_deltas() { own_.clear(); }

private:
    void collect(const Block& b, bool live) { own_.push(b, live); }
    LiveChanges own_;                     // collected from on_live/on_dead calls
    const LiveChanges* given_ = nullptr;  // replay()'s record, during on_step
};

// Reads the whole trace once, in time order, driving heap and analyses. Shows progress on
// stderr when it is a terminal and the pass takes more than a second.
void replay(TraceReader& reader, LiveHeap& heap, const std::vector<Analysis*>& analyses);

}  // namespace pmt::analyzer
