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

class TotalsAnalysis : public Analysis {
public:
    void on_live(const Block& b) override {
        ++allocations_;
        allocated_bytes_ += b.size;
    }
    void on_dead(const Block&, uint64_t) override { ++frees_; }
    void on_step(const Event&, const LiveHeap&, const LiveChanges& changes) override {
        for (const LiveChange& c : changes) {
            if (c.live) {
                ++allocations_;
                allocated_bytes_ += c.block.size;
            } else {
                ++frees_;
            }
        }
    }
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
