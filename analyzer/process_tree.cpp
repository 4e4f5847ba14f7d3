// Process-tree analysis (process_tree.hpp): one replay per trace with the report's own list of
// sections plus the timeline, then the merge of the per-process timelines on a common grid.
#include "process_tree.hpp"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "commands.hpp"
#include "export.hpp"
#include "format_util.hpp"
#include "peak.hpp"
#include "report.hpp"

namespace pmt::analyzer {

namespace fs = std::filesystem;

std::string ProcessResult::name() const {
    std::string cmd;
    for (const std::string& a : header.argv) cmd += (cmd.empty() ? "" : " ") + a;
    if (cmd.empty()) cmd = header.exe.empty() ? fs::path(path).filename().string() : header.exe;
    return "pid " + std::to_string(header.pid) + ": " + cmd;
}

ProcessResult analyze_process(const std::string& path, const ProcessOptions& options) {
    ReportOptions ro;
    ro.path = path;
    ro.top = options.top;
    std::vector<std::unique_ptr<Analysis>> analyses;
    if (options.report_sections) analyses = make_report_analyses(ro);
    const PeakAnalysis* peak = nullptr;
    for (auto& a : analyses)
        if (auto* p = dynamic_cast<const PeakAnalysis*>(a.get())) peak = p;
    if (peak == nullptr) {
        auto own = std::make_unique<PeakAnalysis>(options.top);
        peak = own.get();
        analyses.push_back(std::move(own));
    }
    auto timeline = std::make_unique<TimelineAnalysis>(options.timeline);
    std::vector<Analysis*> raw;
    for (auto& a : analyses) raw.push_back(a.get());
    raw.push_back(timeline.get());

    ProcessResult r;
    r.path = path;
    try {
        TraceReader reader(path);
        r.header = reader.header();
        LiveHeap heap;
        replay(reader, heap, raw);
        // The flame graph and folded lines resolve frames, so they are made while the reader
        // (which owns the definition tables) is alive.
        FlameNode flame = build_flame(reader, peak->stacks_at_peak(), options.flame_min_fraction);
        r.flame_nodes = flame_size(flame);
        r.flame = flame_json(flame);
        if (options.want_folded) r.folded = folded_lines(reader, peak->stacks_at_peak());
    } catch (const TraceError& e) {
        throw InputError(path, e.what());
    }
    r.report = {{"schema", "pymemtrace-report/1"}};
    for (Analysis* a : raw) a->add_json(r.report);
    r.points = timeline->points();
    r.end_time_ns = timeline->end_time_ns();
    r.peak_bytes = peak->peak_bytes();
    r.peak_time_ns = peak->peak_time_ns();
    return r;
}

std::vector<std::string> expand_trace_paths(const std::vector<std::string>& args) {
    std::vector<std::string> out;
    for (const std::string& a : args) {
        std::error_code ec;
        if (fs::is_directory(a, ec)) {
            std::vector<std::string> found;
            for (const auto& entry : fs::directory_iterator(a, ec))
                if (entry.is_regular_file() && entry.path().extension() == ".pmt")
                    found.push_back(entry.path().string());
            if (found.empty()) throw UsageError(a + ": no trace (*.pmt) in this directory");
            std::sort(found.begin(), found.end());
            out.insert(out.end(), found.begin(), found.end());
        } else if (fs::exists(a, ec)) {
            out.push_back(a);
        } else {
            throw UsageError(a + ": no such file or directory");
        }
    }
    return out;
}

MergedTimeline merge_timelines(const std::vector<ProcessResult>& procs, size_t cells) {
    MergedTimeline m;
    if (procs.empty()) return m;
    cells = std::max<size_t>(cells, 1);
    uint64_t first_start = procs[0].header.start_wall_ns;
    for (const ProcessResult& p : procs)
        first_start = std::min(first_start, p.header.start_wall_ns);
    double span_s = 0;
    for (const ProcessResult& p : procs) {
        double off = static_cast<double>(p.header.start_wall_ns - first_start) / 1e9;
        m.offset_s.push_back(off);
        span_s = std::max(span_s, off + static_cast<double>(p.end_time_ns) / 1e9);
    }
    m.resolution_s = std::max(span_s / static_cast<double>(cells), 1e-6);
    cells = static_cast<size_t>(span_s / m.resolution_s) + 1;
    m.time_s.resize(cells);
    for (size_t g = 0; g < cells; ++g) m.time_s[g] = static_cast<double>(g) * m.resolution_s;
    m.live_bytes.assign(cells, 0);
    m.rss_bytes.assign(cells, 0);
    auto cell_of = [&](double t) {
        return std::min(cells - 1, static_cast<size_t>(std::max(0.0, t) / m.resolution_s));
    };
    for (size_t k = 0; k < procs.size(); ++k) {
        const ProcessResult& p = procs[k];
        std::vector<uint64_t> live(cells, 0), rss(cells, 0);
        std::vector<uint8_t> seen(cells, 0);
        for (const TimelinePoint& pt : p.points) {
            size_t g = cell_of(m.offset_s[k] + static_cast<double>(pt.time_ns) / 1e9);
            live[g] = seen[g] ? std::max(live[g], pt.live_bytes) : pt.live_bytes;
            rss[g] = seen[g] ? std::max(rss[g], pt.rss_bytes) : pt.rss_bytes;
            seen[g] = 1;
        }
        // Between samples the process holds its last value; outside its life it holds nothing.
        size_t first = cell_of(m.offset_s[k]);
        size_t last = cell_of(m.offset_s[k] + static_cast<double>(p.end_time_ns) / 1e9);
        uint64_t held_live = 0, held_rss = 0;
        for (size_t g = first; g <= last && !p.points.empty(); ++g) {
            if (seen[g]) {
                held_live = live[g];
                held_rss = rss[g];
            } else {
                live[g] = held_live;
                rss[g] = held_rss;
            }
        }
        for (size_t g = 0; g < cells; ++g) {
            m.live_bytes[g] += live[g];
            m.rss_bytes[g] += rss[g];
        }
        m.process_live.push_back(std::move(live));
    }
    size_t best = 0;
    for (size_t g = 0; g < cells; ++g)
        if (m.live_bytes[g] > m.live_bytes[best]) best = g;
    m.peak_bytes = m.live_bytes[best];
    m.peak_time_s = m.time_s[best];
    for (const auto& series : m.process_live) m.peak_process_bytes.push_back(series[best]);
    return m;
}

namespace {
nlohmann::json top_lines(const nlohmann::json& report, size_t n) {
    nlohmann::json out = nlohmann::json::array();
    if (!report.contains("at_peak")) return out;
    for (const auto& site : report["at_peak"]) {
        if (out.size() >= n) break;
        out.push_back({{"file", site.value("file", nlohmann::json())},
                       {"line", site.value("line", nlohmann::json())},
                       {"function", site.value("function", "")},
                       {"bytes", site.value("bytes", uint64_t{0})}});
    }
    return out;
}
}  // namespace

nlohmann::json process_tree_json(const std::vector<ProcessResult>& procs,
                                 const MergedTimeline& merged) {
    nlohmann::json list = nlohmann::json::array();
    for (size_t k = 0; k < procs.size(); ++k) {
        const ProcessResult& p = procs[k];
        const nlohmann::json peak = p.report.is_object() && p.report.contains("peak")
                                        ? p.report["peak"]
                                        : nlohmann::json::object();
        list.push_back({{"pid", p.header.pid},
                        {"ppid", p.header.ppid},
                        {"argv", p.header.argv},
                        {"path", p.path},
                        {"forked", p.header.forked},
                        {"start_offset_s", merged.offset_s[k]},
                        {"duration_s", static_cast<double>(p.end_time_ns) / 1e9},
                        {"peak_bytes", p.peak_bytes},
                        {"peak_time_s", static_cast<double>(p.peak_time_ns) / 1e9},
                        {"rss_peak_bytes", peak.value("rss_bytes", uint64_t{0})},
                        {"bytes_at_total_peak", merged.peak_process_bytes[k]},
                        {"top_lines", top_lines(p.report, 5)}});
    }
    return {{"processes", list},
            {"total",
             {{"peak_bytes", merged.peak_bytes},
              {"peak_time_s", merged.peak_time_s},
              {"resolution_s", merged.resolution_s}}}};
}

std::string process_tree_text(const std::vector<ProcessResult>& procs, const MergedTimeline& merged,
                              size_t n_lines) {
    std::string out = "Process tree: " + std::to_string(procs.size()) + " processes. Total live " +
                      "peaked at " + human_bytes(merged.peak_bytes) + " at " +
                      human_seconds(static_cast<uint64_t>(merged.peak_time_s * 1e9)) +
                      " (to within " +
                      human_seconds(static_cast<uint64_t>(merged.resolution_s * 1e9)) + ").\n";
    for (size_t k = 0; k < procs.size(); ++k) {
        const ProcessResult& p = procs[k];
        out += "  " + p.name() + " (parent " + std::to_string(p.header.ppid) + "): peak " +
               human_bytes(p.peak_bytes) + " at " + human_seconds(p.peak_time_ns) + ", " +
               human_bytes(merged.peak_process_bytes[k]) + " at the total's peak\n";
        for (const auto& line : top_lines(p.report, n_lines)) {
            std::string where = line["file"].is_string()
                                    ? line["file"].get<std::string>() + ":" +
                                          std::to_string(line["line"].get<uint32_t>()) + " in " +
                                          line["function"].get<std::string>()
                                    : line["function"].get<std::string>() + " (no Python frame)";
            out += "      " + human_bytes(line["bytes"].get<uint64_t>()) + "  " + where + "\n";
        }
    }
    return out + "\n";
}

void print_process_tree_report(const std::vector<std::string>& paths, bool json, size_t top,
                               std::ostream& out) {
    ProcessOptions po;
    po.top = top;
    std::vector<ProcessResult> procs;
    for (const std::string& path : paths) procs.push_back(analyze_process(path, po));
    const MergedTimeline merged = merge_timelines(procs);
    if (!json) {
        out << process_tree_text(procs, merged, top == 0 ? 3 : std::min<size_t>(top, 5));
        return;
    }
    nlohmann::json reports = nlohmann::json::array();
    for (ProcessResult& p : procs) {
        p.report.erase("timeline");
        reports.push_back(std::move(p.report));
    }
    nlohmann::json doc = {{"schema", "pymemtrace-report/1"},
                          {"process_tree", process_tree_json(procs, merged)},
                          {"processes", std::move(reports)}};
    out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

}  // namespace pmt::analyzer
