// The figures `compare` shows: one pass over each run's trace (exact live heap, RSS samples,
// allocation calls) and the per-backend medians and cross-checks of summarize().
// Reads traces through pmt::TraceReader and pmt::LiveHeap only.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "compare.hpp"
#include "format_util.hpp"
#include "pmt/live.hpp"
#include "pmt/reader.hpp"

namespace pmt::analyzer {
namespace {

class MeasureVisitor : public EventVisitor {
public:
    MeasureVisitor(TraceMeasure& m, bool keep_timeline) : m_(m), keep_timeline_(keep_timeline) {}

    void on_event(const Event& e) override {
        if (e.type == EventType::Rss) {
            on_rss(e);
            return;
        }
        const uint64_t before = heap_.peak_bytes();
        heap_.apply(e);
        if (e.type == EventType::Alloc) ++m_.alloc_calls;
        if (e.type == EventType::Mmap) ++m_.mmap_calls;
        live_since_sample_ = std::max(live_since_sample_, heap_.live_bytes());
        if (heap_.peak_bytes() > before) {
            // A new peak starts a new plateau; what the previous one saw no longer counts.
            m_.rss_at_peak_bytes = 0;
            rss_pending_ = true;
            on_plateau_ = true;
        } else if (on_plateau_ && heap_.live_bytes() * 100 < heap_.peak_bytes() * 99) {
            on_plateau_ = false;
        }
    }

    void finish() {
        m_.peak_live_bytes = heap_.peak_bytes();
        m_.peak_live_time_s = seconds(heap_.peak_time_ns());
        // No sample after the peak (it came in the last moments): the last one before it.
        if (rss_pending_) m_.rss_at_peak_bytes = m_.exit_rss_bytes;
    }

private:
    // The RSS that goes with the live peak: the largest sample while live bytes stay within 1%
    // of the peak (fresh pages become resident only as the program writes them, so the first
    // sample after a large allocation can be far below what the data costs), else the first
    // sample after the plateau when it was too short to be sampled.
    void on_rss(const Event& e) {
        m_.peak_rss_sampled_bytes = std::max(m_.peak_rss_sampled_bytes, e.size);
        m_.exit_rss_bytes = e.size;
        if (on_plateau_ || rss_pending_)
            m_.rss_at_peak_bytes = std::max(m_.rss_at_peak_bytes, e.size);
        rss_pending_ = false;
        if (keep_timeline_) m_.timeline.push_back({seconds(e.time_ns), e.size, live_since_sample_});
        live_since_sample_ = heap_.live_bytes();
    }

    TraceMeasure& m_;
    bool keep_timeline_;
    LiveHeap heap_;
    uint64_t live_since_sample_ = 0;
    bool rss_pending_ = false;  // a peak not yet followed by any sample
    bool on_plateau_ = false;   // live bytes have stayed within 1% of the peak since it
};

template <class T>
T median(std::vector<T> v) {
    if (v.empty()) return T{};
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    if (n % 2 == 1) return v[n / 2];
    return static_cast<T>((v[n / 2 - 1] + v[n / 2]) / 2);
}

std::string percent(double fraction) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f%%", fraction * 100.0);
    return buf;
}

BackendSummary summarize_backend(Backend b, const std::vector<const RunRecord*>& runs,
                                 const RunRecord* reference) {
    BackendSummary s;
    s.backend = b;
    std::vector<double> wall, ratio;
    std::vector<uint64_t> live, rss, exit_rss, at_peak, faults, calls;
    std::set<std::string> allocators;
    for (const RunRecord* r : runs) {
        wall.push_back(r->wall_s);
        // The kernel's high-water mark, unless a sample saw more: its per-thread RSS counters
        // are folded in lazily, so either can lead the other by a few dozen pages.
        rss.push_back(std::max(r->max_rss_bytes, r->measure.peak_rss_sampled_bytes));
        faults.push_back(r->minor_faults);
        s.exit_codes.push_back(r->exit_code);
        s.output_bytes.push_back(r->output_bytes);
        s.traces.insert(s.traces.end(), r->traces.begin(), r->traces.end());
        if (reference != nullptr &&
            (r->exit_code != reference->exit_code || r->output_bytes != reference->output_bytes))
            s.same_result = false;
        const TraceMeasure& m = r->measure;
        if (!m.ok) continue;
        live.push_back(m.peak_live_bytes);
        exit_rss.push_back(m.exit_rss_bytes);
        at_peak.push_back(m.rss_at_peak_bytes);
        calls.push_back(m.alloc_calls);
        if (m.peak_live_bytes > 0)
            ratio.push_back(static_cast<double>(m.rss_at_peak_bytes) /
                            static_cast<double>(m.peak_live_bytes));
        allocators.insert(m.allocator.empty() ? "unknown" : m.allocator);
        if (s.timeline.empty()) {
            s.timeline = m.timeline;
            s.peak_live_time_s = m.peak_live_time_s;
        }
    }
    if (!wall.empty()) {
        s.wall_s_median = median(wall);
        s.wall_s_min = *std::min_element(wall.begin(), wall.end());
        s.wall_s_max = *std::max_element(wall.begin(), wall.end());
    }
    s.peak_live_bytes = median(live);
    s.peak_rss_bytes = median(rss);
    s.exit_rss_bytes = median(exit_rss);
    s.rss_at_peak_bytes = median(at_peak);
    s.rss_over_live = median(ratio);
    s.minor_faults = median(faults);
    s.alloc_calls = median(calls);
    s.detected_allocators.assign(allocators.begin(), allocators.end());
    return s;
}

}  // namespace

TraceMeasure measure_trace(const std::string& path, bool keep_timeline) {
    TraceMeasure m;
    try {
        TraceReader reader(path);
        m.allocator = reader.header().allocator;
        MeasureVisitor v(m, keep_timeline);
        reader.read(v);
        v.finish();
        m.truncated = reader.truncated();
        m.duration_s = seconds(reader.last_time_ns());
        m.ok = true;
    } catch (const std::exception& e) {
        m.error = e.what();
    }
    return m;
}

RunTraces measure_run_directory(const std::string& dir, bool keep_timeline) {
    RunTraces out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
        if (entry.path().extension() == ".pmt") out.all.push_back(entry.path().string());
    std::sort(out.all.begin(), out.all.end());
    if (out.all.empty()) {
        out.measure.error = "the run wrote no trace in " + dir;
        return out;
    }
    bool chosen = false;
    for (const std::string& path : out.all) {
        TraceMeasure m = measure_trace(path, keep_timeline);
        const bool better =
            !chosen || (m.ok && !out.measure.ok) ||
            (m.ok == out.measure.ok && m.peak_live_bytes > out.measure.peak_live_bytes);
        if (better) {
            out.main = path;
            out.measure = std::move(m);
            chosen = true;
        }
    }
    return out;
}

CompareResult summarize(const std::vector<std::string>& command, int repeat,
                        const std::string& directory, const std::vector<Backend>& order,
                        std::vector<RunRecord> runs) {
    CompareResult r;
    r.command = command;
    r.repeat = repeat;
    r.directory = directory;
    r.runs = std::move(runs);

    const RunRecord* reference = nullptr;  // the first backend's first run
    for (const RunRecord& run : r.runs)
        if (run.backend == order.front() && (reference == nullptr || run.round < reference->round))
            reference = &run;
    for (Backend b : order) {
        std::vector<const RunRecord*> mine;
        for (const RunRecord& run : r.runs)
            if (run.backend == b) mine.push_back(&run);
        r.backends.push_back(summarize_backend(b, mine, reference));
    }

    // Run-level notes, one line per backend and kind of note, naming the runs it applies to.
    std::vector<std::pair<std::string, std::vector<int>>> grouped;
    auto note = [&](const RunRecord& run, const std::string& what) {
        const std::string key = std::string(backend_name(run.backend)) + ": " + what;
        for (auto& [text, rounds] : grouped)
            if (text == key) {
                rounds.push_back(run.round);
                return;
            }
        grouped.push_back({key, {run.round}});
    };
    for (const RunRecord& run : r.runs) {
        if (run.exit_code > 128)
            note(run, "the command was killed by signal " + std::to_string(run.exit_code - 128));
        else if (run.exit_code != 0)
            note(run, "the command exited with " + std::to_string(run.exit_code));
        if (!run.measure.ok)
            note(run, "no usable trace (" + run.measure.error + ")");
        else if (run.measure.truncated)
            note(run, "trace truncated (the process did not exit cleanly)");
        if (run.traces.size() > 1)
            note(run, std::to_string(run.traces.size()) +
                          " processes were traced; the figures are those of the one with the "
                          "largest peak live bytes");
    }
    for (const auto& [text, rounds] : grouped) {
        std::string which = rounds.size() == 1 ? " (run " : " (runs ";
        for (size_t i = 0; i < rounds.size(); ++i)
            which += (i ? ", " : "") + std::to_string(rounds[i]);
        r.notes.push_back(text + which + ")");
    }
    uint64_t lo = UINT64_MAX, hi = 0;
    for (const BackendSummary& b : r.backends) {
        const std::string name = backend_name(b.backend);
        for (const std::string& a : b.detected_allocators)
            if (a != name)
                r.notes.push_back(name + ": the trace says '" + a +
                                  "' served the allocations (an LD_PRELOAD of your own?)");
        if (!b.same_result)
            r.notes.push_back(name + ": exit code or output size differs from " +
                              backend_name(r.backends.front().backend) + "'s");
        if (b.peak_live_bytes == 0) continue;
        lo = std::min(lo, b.peak_live_bytes);
        hi = std::max(hi, b.peak_live_bytes);
    }
    if (hi > 0 && r.backends.size() > 1) {
        r.live_spread = static_cast<double>(hi - lo) / static_cast<double>(lo);
        if (r.live_spread > 0.01)
            r.notes.insert(r.notes.begin(),
                           "peak live bytes DIFFER by " + percent(r.live_spread) +
                               " between backends: the program did not allocate the same under "
                               "each (timing, threads, or address-dependent code: a pymalloc "
                               "arena holds 63 or 64 pools depending on its alignment)");
        else
            r.notes.insert(r.notes.begin(), "peak live bytes agree across backends (spread " +
                                                percent(r.live_spread) + ")");
    }
    return r;
}

}  // namespace pmt::analyzer
