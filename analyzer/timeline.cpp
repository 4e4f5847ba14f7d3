// TimelineAnalysis (timeline.hpp): buckets of time filled as the trace replays, coarsened by
// merging neighbours when there are too many, turned into rows and the top sites at the end.
// Memory is bounded by max_points buckets times the sites that changed in each.
#include "timeline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "commands.hpp"
#include "frames.hpp"

namespace pmt::analyzer {

namespace {
constexpr uint64_t kAutoStartWidthNs = 1'000'000;  // 1 ms: finer than any RSS sampling

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::string TimelineSite::label() const {
    if (location == 0) return "<no Python frame>";
    return function + " (" + file + ":" + std::to_string(line) + ")";
}

TimelineAnalysis::TimelineAnalysis(TimelineOptions options) : opt_(options) {
    if (opt_.resolution_ns == 0 && opt_.max_points == 0) opt_.max_points = 2000;
    if (opt_.max_points != 0 && opt_.max_points < 4) opt_.max_points = 4;
    width_ns_ = opt_.resolution_ns ? opt_.resolution_ns : kAutoStartWidthNs;
}

void TimelineAnalysis::begin(const TraceReader& reader) { reader_ = &reader; }

uint32_t TimelineAnalysis::site_of(uint64_t stack_id) {
    if (stack_id < stack_site_.size() && stack_site_[stack_id] != 0)
        return stack_site_[stack_id] - 1;
    // The site is the frame the report attributes memory to (frames.hpp: the innermost frame
    // of the program's own code), so the timeline's series carry the report's line names.
    uint64_t location = 0;
    if (stack_id != 0 && reader_ != nullptr) {
        size_t skip = attribution_index(reader_->frames(stack_id));
        const StackNode* node = reader_->stack(stack_id);
        for (; node != nullptr && skip > 0; --skip)
            node = node->parent ? reader_->stack(node->parent) : nullptr;
        if (node != nullptr) location = node->location;
    }
    // Sites are few (source lines); a linear search happens once per new stack id only.
    auto it = std::find(site_location_.begin(), site_location_.end(), location);
    uint32_t site = static_cast<uint32_t>(it - site_location_.begin());
    if (it == site_location_.end()) {
        site_location_.push_back(location);
        site_bytes_.push_back(0);
        is_dirty_.push_back(0);
    }
    // Stack ids are dense counters from 1 (FORMAT.md); the cache is a plain vector. It grows
    // only by ids near those seen: a damaged trace's huge id must not allocate gigabytes.
    if (stack_id < (uint64_t{1} << 28) && stack_id <= 2 * stack_site_.size() + 65536) {
        if (stack_id >= stack_site_.size()) stack_site_.resize(stack_id + 1 + stack_id / 2, 0);
        stack_site_[stack_id] = site + 1;
    }
    return site;
}

void TimelineAnalysis::change_site(uint64_t stack_id, int64_t delta) {
    uint32_t s = site_of(stack_id);
    site_bytes_[s] += static_cast<uint64_t>(delta);
    if (!is_dirty_[s]) {
        is_dirty_[s] = 1;
        dirty_.push_back(s);
    }
}

void TimelineAnalysis::on_live(const Block& b) {
    advance(b.time_ns);
    change_site(b.stack_id, static_cast<int64_t>(b.size));
}

void TimelineAnalysis::on_dead(const Block& b, uint64_t time_ns) {
    advance(time_ns);
    change_site(b.stack_id, -static_cast<int64_t>(b.size));
}

void TimelineAnalysis::on_event(const Event& e, const LiveHeap& heap) {
    advance(e.time_ns);
    live_ = heap.live_bytes();
    if (live_ > open_.max_live) {
        open_.max_live = live_;
        open_.max_time = e.time_ns;
    }
    open_.end_time = e.time_ns;
    open_.end_live = live_;
    if (e.type == EventType::Rss) {
        open_.rss_max = open_.has_rss ? std::max(open_.rss_max, e.size) : e.size;
        open_.rss_last = e.size;
        open_.has_rss = true;
    }
}

// Opens the bucket holding time_ns (closing the previous one). Times earlier than the open
// bucket (a block's birth time reported late) stay in the open bucket.
void TimelineAnalysis::advance(uint64_t time_ns) {
    if (has_open_ && time_ns / width_ns_ <= open_.index) return;
    if (has_open_) close_bucket();
    open_ = Bucket{};
    open_.index = time_ns / width_ns_;
    // The first event's on_event sets the maximum: every row is then a value the live curve
    // took after an event (the value before it is the previous bucket's end).
    open_.max_time = open_.end_time = time_ns;
    open_.max_live = 0;
    open_.end_live = live_;
    has_open_ = true;
}

void TimelineAnalysis::close_bucket() {
    open_.site_changes.reserve(dirty_.size());
    for (uint32_t s : dirty_) {
        open_.site_changes.emplace_back(s, site_bytes_[s]);
        is_dirty_[s] = 0;
    }
    dirty_.clear();
    buckets_.push_back(std::move(open_));
    open_ = Bucket{};
    has_open_ = false;
    if (opt_.max_points != 0 && buckets_.size() >= opt_.max_points) coarsen();
}

// Doubles the width and merges buckets that now share an index. Called with no open bucket,
// so the next event opens one at the new width.
void TimelineAnalysis::coarsen() {
    width_ns_ *= 2;
    size_t out = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
        Bucket& b = buckets_[i];
        b.index /= 2;
        if (out > 0 && buckets_[out - 1].index == b.index) {
            merge_into(buckets_[out - 1], b);
        } else {
            if (out != i) buckets_[out] = std::move(b);
            ++out;
        }
    }
    buckets_.resize(out);
}

// a then b (b is later): the earlier of equal maxima is kept, b's state wins at the end.
void TimelineAnalysis::merge_into(Bucket& a, Bucket& b) {
    if (b.max_live > a.max_live) {
        a.max_live = b.max_live;
        a.max_time = b.max_time;
    }
    a.end_time = b.end_time;
    a.end_live = b.end_live;
    if (b.has_rss) {
        a.rss_max = a.has_rss ? std::max(a.rss_max, b.rss_max) : b.rss_max;
        a.rss_last = b.rss_last;
        a.has_rss = true;
    }
    if (pos_.size() < site_location_.size()) pos_.resize(site_location_.size(), -1);
    for (size_t i = 0; i < a.site_changes.size(); ++i)
        pos_[a.site_changes[i].first] = static_cast<int32_t>(i);
    for (const auto& [site, bytes] : b.site_changes) {
        if (pos_[site] >= 0) {
            a.site_changes[static_cast<size_t>(pos_[site])].second = bytes;
        } else {
            a.site_changes.emplace_back(site, bytes);
        }
    }
    for (const auto& change : a.site_changes) pos_[change.first] = -1;
}

void TimelineAnalysis::finish(const TraceReader& reader, const LiveHeap& heap) {
    if (has_open_) close_bucket();
    // Rank sites by the largest bytes they held at a bucket end.
    std::vector<uint64_t> now(site_location_.size(), 0), best(site_location_.size(), 0);
    for (const Bucket& b : buckets_)
        for (const auto& [s, bytes] : b.site_changes) best[s] = std::max(best[s], bytes);
    std::vector<uint32_t> order;
    for (uint32_t s = 0; s < best.size(); ++s)
        if (best[s] > 0) order.push_back(s);
    std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
        return best[x] != best[y] ? best[x] > best[y] : site_location_[x] < site_location_[y];
    });
    if (order.size() > opt_.top_sites) order.resize(opt_.top_sites);
    std::vector<int32_t> top_index(site_location_.size(), -1);
    top_.clear();
    for (uint32_t s : order) {
        top_index[s] = static_cast<int32_t>(top_.size());
        TimelineSite site;
        site.location = site_location_[s];
        site.max_bytes = best[s];
        if (const Location* loc = reader.location(site.location)) {
            site.file = std::string(reader.string(loc->file));
            site.function = std::string(reader.string(loc->function));
            site.line = loc->line;
        }
        top_.push_back(std::move(site));
    }

    points_.clear();
    std::vector<uint64_t> tops(top_.size(), 0);
    uint64_t rss = 0;
    peak_bytes_ = peak_time_ns_ = peak_rss_bytes_ = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
        const Bucket& b = buckets_[i];
        for (const auto& [s, bytes] : b.site_changes)
            if (top_index[s] >= 0) tops[static_cast<size_t>(top_index[s])] = bytes;
        uint64_t rss_row = b.has_rss ? b.rss_max : rss;
        if (b.has_rss) rss = b.rss_last;
        points_.push_back({b.max_time, b.max_live, rss_row, tops});
        if (b.max_live > peak_bytes_) {
            peak_bytes_ = b.max_live;
            peak_time_ns_ = b.max_time;
        }
        peak_rss_bytes_ = std::max(peak_rss_bytes_, rss_row);
        // Into a quiet gap (or the end) the curve holds the bucket's last value: say so.
        bool gap = i + 1 == buckets_.size() || buckets_[i + 1].index > b.index + 1;
        if (gap && (b.end_time != b.max_time || b.end_live != b.max_live))
            points_.push_back({b.end_time, b.end_live, rss, tops});
    }
    end_time_ns_ = buckets_.empty() ? 0 : buckets_.back().end_time;
    // The replay's own peak is the truth; the buckets saw every event, so they agree.
    if (heap.peak_bytes() > peak_bytes_) {
        peak_bytes_ = heap.peak_bytes();
        peak_time_ns_ = heap.peak_time_ns();
    }
}

nlohmann::json TimelineAnalysis::to_json() const {
    nlohmann::json sites = nlohmann::json::array();
    for (const TimelineSite& s : top_)
        sites.push_back({{"label", s.label()},
                         {"file", s.file},
                         {"function", s.function},
                         {"line", s.line},
                         {"max_bytes", s.max_bytes}});
    std::vector<double> time_s;
    std::vector<uint64_t> live, rss;
    std::vector<std::vector<uint64_t>> by_site(top_.size());
    for (const TimelinePoint& p : points_) {
        time_s.push_back(std::round(static_cast<double>(p.time_ns) / 1e3) / 1e6);
        live.push_back(p.live_bytes);
        rss.push_back(p.rss_bytes);
        for (size_t k = 0; k < top_.size(); ++k) by_site[k].push_back(p.site_bytes[k]);
    }
    return {{"resolution_s", static_cast<double>(width_ns_) / 1e9},
            {"peak",
             {{"time_s", static_cast<double>(peak_time_ns_) / 1e9}, {"live_bytes", peak_bytes_}}},
            {"peak_rss_bytes", peak_rss_bytes_},
            {"end_time_s", static_cast<double>(end_time_ns_) / 1e9},
            {"sites", sites},
            {"time_s", time_s},
            {"live_bytes", live},
            {"rss_bytes", rss},
            {"site_bytes", by_site}};
}

void TimelineAnalysis::add_json(nlohmann::json& report) const { report["timeline"] = to_json(); }

std::string TimelineAnalysis::to_csv() const { return timeline_csv(to_json()); }

std::string timeline_csv(const nlohmann::json& t) {
    std::string out = "time_s,live_bytes,rss_bytes";
    for (const auto& s : t.at("sites")) out += "," + csv_field(s.at("label").get<std::string>());
    out += '\n';
    const auto& time_s = t.at("time_s");
    const auto& live = t.at("live_bytes");
    const auto& rss = t.at("rss_bytes");
    const auto& sites = t.at("site_bytes");
    char buf[32];
    for (size_t i = 0; i < time_s.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%.6f", time_s[i].get<double>());
        out += buf;
        out += "," + std::to_string(live[i].get<uint64_t>()) + "," +
               std::to_string(rss[i].get<uint64_t>());
        for (const auto& series : sites) out += "," + std::to_string(series[i].get<uint64_t>());
        out += '\n';
    }
    return out;
}

uint64_t parse_duration_ns(const std::string& text) {
    size_t used = 0;
    double value = 0;
    try {
        value = std::stod(text, &used);
    } catch (const std::exception&) {
        throw UsageError("bad duration '" + text + "' (examples: 10ms, 1s, 250us)");
    }
    std::string unit = text.substr(used);
    double scale = 0;
    if (unit == "ns")
        scale = 1;
    else if (unit == "us")
        scale = 1e3;
    else if (unit == "ms")
        scale = 1e6;
    else if (unit == "s" || unit.empty())
        scale = 1e9;
    if (scale == 0 || !(value > 0) || value * scale < 1 || value * scale > 1e15)
        throw UsageError("bad duration '" + text + "' (examples: 10ms, 1s, 250us)");
    return static_cast<uint64_t>(value * scale);
}

}  // namespace pmt::analyzer
