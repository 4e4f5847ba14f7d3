// The report's bookends: TraceInfoAnalysis (what was traced: pid, argv, Python, allocator,
// duration, events, truncation) and TotalsAnalysis (how many blocks were made and released).
// Both are Analysis classes so they plug into the one replay pass like every other section.
#pragma once
#include <cstdint>
#include <string>

#include "analysis.hpp"

namespace pmt::analyzer {

class TraceInfoAnalysis : public Analysis {
public:
    bool per_event() const override { return false; }
    void finish(const TraceReader& reader, const LiveHeap& heap) override;
    void add_json(nlohmann::json& report) const override;
    void add_text(std::string& out) const override;

    const TraceHeader& header() const { return header_; }
    bool truncated() const { return truncated_; }
    uint64_t duration_ns() const { return duration_ns_; }
    uint64_t events() const { return events_; }

private:
    std::string path_;
    TraceHeader header_;
    bool truncated_ = false;
    std::string truncation_reason_;
    uint64_t duration_ns_ = 0;
    uint64_t events_ = 0;
    uint64_t unknown_frees_ = 0;
    uint64_t lost_events_ = 0;  // the End chunk's: calls the interposer could not record
};

// The counts come from the heap's own tally of the changes it made (LiveHeap::made_live and
// made_dead: what on_live / on_dead calls would count), read once at the end: no per-event work.
class TotalsAnalysis : public Analysis {
public:
    bool per_event() const override { return false; }
    void finish(const TraceReader& reader, const LiveHeap& heap) override;
    void add_json(nlohmann::json& report) const override;
    void add_text(std::string& out) const override;

    uint64_t allocations() const { return allocations_; }
    uint64_t frees() const { return frees_; }
    uint64_t allocated_bytes() const { return allocated_bytes_; }

private:
    uint64_t allocations_ = 0;
    uint64_t frees_ = 0;
    uint64_t allocated_bytes_ = 0;
    uint64_t live_at_end_bytes_ = 0;
    uint64_t live_at_end_blocks_ = 0;
};

}  // namespace pmt::analyzer
