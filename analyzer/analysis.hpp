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
    virtual void finish(const TraceReader& /*reader*/, const LiveHeap& /*heap*/) {}
    // Report contributions: keys added to the pymemtrace-report/1 object; lines of text.
    virtual void add_json(nlohmann::json& /*report*/) const {}
    virtual void add_text(std::string& /*out*/) const {}
};

// An analysis that handles the blocks one event made live or dead together, in on_event
// (an mremap or a realloc changes several at once): on_live/on_dead only collect them.
class BlockDeltaAnalysis : public Analysis {
public:
    void on_live(const Block& b) override { live_.push_back(b); }
    void on_dead(const Block& b, uint64_t /*time_ns*/) override { dead_.push_back(b); }

protected:
    // Call at the end of on_event.
    void clear_deltas() {
        live_.clear();
        dead_.clear();
    }
    std::vector<Block> live_, dead_;  // what the current event changed
};

// Reads the whole trace once, in time order, driving heap and analyses. Shows progress on
// stderr when it is a terminal and the pass takes more than a second.
void replay(TraceReader& reader, LiveHeap& heap, const std::vector<Analysis*>& analyses);

}  // namespace pmt::analyzer
