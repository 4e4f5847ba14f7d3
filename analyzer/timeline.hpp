// The memory timeline of one trace: live heap, RSS and the bytes of the top allocation sites
// over time, downsampled into a bounded number of time buckets while the trace replays. The
// peak survives any downsampling: each bucket keeps the exact maximum and when it happened.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "analysis.hpp"

namespace pmt::analyzer {

struct TimelineOptions {
    // Bucket width. 0 = automatic: starts at 1 ms and doubles whenever the buckets would exceed
    // max_points, so a trace of any length ends with between max_points/2 and max_points.
    uint64_t resolution_ns = 0;
    // Upper bound on buckets; when exceeded the width doubles (also with a given resolution).
    // 0 = no bound (only allowed with a resolution).
    size_t max_points = 2000;
    size_t top_sites = 8;  // sites given their own series, ranked by their largest bytes
};

// An allocation site: the frame of the allocating stack that the report attributes memory to
// (frames.hpp: the innermost frame of the program's own code; location 0 = no Python frame).
struct TimelineSite {
    uint64_t location = 0;
    std::string file;
    std::string function;
    uint32_t line = 0;
    uint64_t max_bytes = 0;     // the largest bytes of this site at a bucket end
    std::string label() const;  // "function (file:line)" or "<no Python frame>"
};

// One row of the series. Each row is an exact sample of the live heap curve: live_bytes is
// what was live at time_ns (the maximum within its bucket, or the value held into a quiet gap).
// rss_bytes is the largest RSS sample in the bucket, else the last one before it (0 = none
// yet). site_bytes are the top sites' bytes at the end of the bucket, in sites() order; they
// never sum to more than live_bytes.
struct TimelinePoint {
    uint64_t time_ns = 0;
    uint64_t live_bytes = 0;
    uint64_t rss_bytes = 0;
    std::vector<uint64_t> site_bytes;
};

class TimelineAnalysis : public Analysis {
public:
    explicit TimelineAnalysis(TimelineOptions options = {});

    void begin(const TraceReader& reader) override;
    void on_live(const Block& b) override;
    void on_dead(const Block& b, uint64_t time_ns) override;
    void on_event(const Event& e, const LiveHeap& heap) override;
    void finish(const TraceReader& reader, const LiveHeap& heap) override;
    // Adds "timeline": {resolution_s, peak, sites, points} (see to_json).
    void add_json(nlohmann::json& report) const override;

    // Valid after finish().
    const std::vector<TimelinePoint>& points() const { return points_; }
    const std::vector<TimelineSite>& sites() const { return top_; }
    uint64_t resolution_ns() const { return width_ns_; }
    uint64_t peak_bytes() const { return peak_bytes_; }
    uint64_t peak_time_ns() const { return peak_time_ns_; }
    uint64_t peak_rss_bytes() const { return peak_rss_bytes_; }
    uint64_t end_time_ns() const { return end_time_ns_; }

    nlohmann::json to_json() const;
    // Header "time_s,live_bytes,rss_bytes,<site labels...>" then one row per point.
    std::string to_csv() const;

private:
    struct Bucket {
        uint64_t index = 0;  // start time / width
        uint64_t max_time = 0, max_live = 0;
        uint64_t end_time = 0, end_live = 0;
        uint64_t rss_max = 0, rss_last = 0;
        bool has_rss = false;
        // Sites whose bytes changed in this bucket, with their bytes at its end.
        std::vector<std::pair<uint32_t, uint64_t>> site_changes;
    };

    void advance(uint64_t time_ns);
    void close_bucket();
    void coarsen();
    uint32_t site_of(uint64_t stack_id);
    void change_site(uint64_t stack_id, int64_t delta);
    void merge_into(Bucket& a, Bucket& b);

    TimelineOptions opt_;
    const TraceReader* reader_ = nullptr;
    uint64_t width_ns_ = 0;

    std::vector<Bucket> buckets_;  // closed buckets, in time order (sparse: quiet ones absent)
    Bucket open_;
    bool has_open_ = false;
    uint64_t live_ = 0;  // live bytes after the last event seen

    std::vector<uint32_t> stack_site_;     // stack id -> site index + 1 (0 = not resolved yet)
    std::vector<uint64_t> site_location_;  // site index -> location id
    std::vector<uint64_t> site_bytes_;     // site index -> live bytes now
    std::vector<uint32_t> dirty_;          // sites changed in the open bucket
    std::vector<uint8_t> is_dirty_;
    std::vector<int32_t> pos_;  // scratch for merge_into: site -> index in a bucket, -1

    std::vector<TimelinePoint> points_;
    std::vector<TimelineSite> top_;
    uint64_t peak_bytes_ = 0, peak_time_ns_ = 0, peak_rss_bytes_ = 0, end_time_ns_ = 0;
};

// CSV of a timeline document (to_json): "time_s,live_bytes,rss_bytes,<site labels...>" then
// one row per point; labels are quoted when they hold a comma, quote or newline.
std::string timeline_csv(const nlohmann::json& timeline);

// Parses "10ms", "1s", "250us", "5000ns", "0.5s" into nanoseconds; throws UsageError.
uint64_t parse_duration_ns(const std::string& text);

}  // namespace pmt::analyzer
