// The `timeline`, `html` and `export` subcommands: each takes one trace, several traces or a
// directory of one process tree, analyses every process once (process_tree.hpp) and renders.
#include <fstream>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "export.hpp"
#include "format_util.hpp"
#include "html.hpp"
#include "process_tree.hpp"

namespace pmt::analyzer {

namespace {

struct ViewOptions {
    std::vector<std::string> traces;
    std::string format;
    std::string output;  // "" or "-": standard output
    std::string resolution;
    size_t top_sites = 8;
    size_t max_points = 2000;
    size_t top = 10;
};

void add_traces_option(CLI::App* cmd, ViewOptions& o) {
    cmd->add_option("TRACE", o.traces,
                    "trace files (.pmt), or a directory holding the traces of one process tree")
        ->required();
}

std::vector<ProcessResult> analyze_all(const ViewOptions& o, ProcessOptions po) {
    std::vector<ProcessResult> procs;
    for (const std::string& path : expand_trace_paths(o.traces))
        procs.push_back(analyze_process(path, po));
    return procs;
}

void write_output(const std::string& path, const std::string& text) {
    if (path.empty() || path == "-") {
        std::cout << text;
        std::cout.flush();
        if (!std::cout) throw UsageError("cannot write to standard output");
        return;
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) throw UsageError("cannot write " + path);
}

// Several processes: totals and one live column per process.
std::string merged_csv(const std::vector<ProcessResult>& procs, const MergedTimeline& m) {
    std::string out = "time_s,live_bytes,rss_bytes";
    for (const ProcessResult& p : procs)
        out += ",pid_" + std::to_string(p.header.pid) + "_live_bytes";
    out += '\n';
    char buf[32];
    for (size_t g = 0; g < m.time_s.size(); ++g) {
        std::snprintf(buf, sizeof buf, "%.6f", m.time_s[g]);
        out += std::string(buf) + "," + std::to_string(m.live_bytes[g]) + "," +
               std::to_string(m.rss_bytes[g]);
        for (const auto& series : m.process_live) out += "," + std::to_string(series[g]);
        out += '\n';
    }
    return out;
}

nlohmann::json merged_json(const std::vector<ProcessResult>& procs, const MergedTimeline& m) {
    nlohmann::json j = process_tree_json(procs, m);
    j["schema"] = "pymemtrace-timeline/1";
    j["resolution_s"] = m.resolution_s;
    j["time_s"] = m.time_s;
    j["live_bytes"] = m.live_bytes;
    j["rss_bytes"] = m.rss_bytes;
    j["process_live_bytes"] = m.process_live;
    return j;
}

std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

void add_timeline_command(CLI::App& app) {
    auto o = std::make_shared<ViewOptions>();
    o->format = "csv";
    CLI::App* cmd = app.add_subcommand(
        "timeline",
        "Live heap, RSS and the top allocation sites over time, downsampled; the maximum of "
        "live_bytes is the exact peak. Several traces: totals and one column per process.");
    add_traces_option(cmd, *o);
    cmd->add_option("--format", o->format, "csv or json")
        ->check(CLI::IsMember({"csv", "json"}))
        ->capture_default_str();
    cmd->add_option("--resolution", o->resolution,
                    "bucket width (10ms, 1s, ...); default: automatic, at most --max-points rows");
    cmd->add_option("--max-points", o->max_points,
                    "at most this many buckets; the width doubles when exceeded (0: no bound, "
                    "needs --resolution)")
        ->capture_default_str();
    cmd->add_option("--top", o->top_sites, "sites with their own column")->capture_default_str();
    cmd->add_option("-o,--output", o->output, "write here instead of standard output");
    cmd->callback([o] {
        ProcessOptions po;
        po.report_sections = false;
        po.timeline.top_sites = o->top_sites;
        po.timeline.max_points = o->max_points;
        if (!o->resolution.empty()) po.timeline.resolution_ns = parse_duration_ns(o->resolution);
        if (po.timeline.max_points == 0 && po.timeline.resolution_ns == 0)
            throw UsageError("--max-points 0 needs --resolution");
        std::vector<ProcessResult> procs = analyze_all(*o, po);
        if (procs.size() == 1) {
            const nlohmann::json& t = procs[0].report.at("timeline");
            if (o->format == "json") {
                nlohmann::json j = t;
                j["schema"] = "pymemtrace-timeline/1";
                j["trace"] = procs[0].path;
                write_output(o->output, dump(j));
            } else {
                write_output(o->output, timeline_csv(t));
            }
            return;
        }
        const size_t cells = o->max_points ? o->max_points : 2000;
        MergedTimeline m = merge_timelines(procs, cells);
        write_output(o->output,
                     o->format == "json" ? dump(merged_json(procs, m)) : merged_csv(procs, m));
    });
}

void add_html_command(CLI::App& app) {
    auto o = std::make_shared<ViewOptions>();
    CLI::App* cmd = app.add_subcommand(
        "html",
        "One self-contained HTML page (works offline): timeline with the peak and windows, "
        "flame graph of what was live at the peak, tables of windows, advice and top lines. "
        "Several traces or a directory: the merged process tree.");
    add_traces_option(cmd, *o);
    cmd->add_option("-o,--output", o->output, "the page to write (default: TRACE with .html)");
    cmd->add_option("--top", o->top, "lines at the peak in the table")->capture_default_str();
    cmd->add_option("--points", o->max_points, "at most this many timeline points")
        ->capture_default_str();
    cmd->callback([o] {
        ProcessOptions po;
        po.top = o->top;
        po.timeline.max_points = std::max<size_t>(o->max_points, 16);
        std::vector<ProcessResult> procs = analyze_all(*o, po);
        MergedTimeline m;
        if (procs.size() > 1) m = merge_timelines(procs, po.timeline.max_points);
        std::string page = render_html(page_data(procs, &m));
        std::string out = o->output;
        if (out.empty()) {
            out = procs[0].path;
            if (out.size() > 4 && out.compare(out.size() - 4, 4, ".pmt") == 0)
                out.resize(out.size() - 4);
            out += ".html";
        }
        write_output(out, page);
        if (out != "-")
            std::cerr << "pymemtrace: wrote " << out << " (" << human_bytes(page.size()) << ")\n";
    });
}

void add_export_command(CLI::App& app) {
    auto o = std::make_shared<ViewOptions>();
    CLI::App* cmd = app.add_subcommand(
        "export",
        "perfetto: Chrome trace-event JSON (counter tracks, window slices) for ui.perfetto.dev; "
        "folded: 'frame;frame bytes' lines at the peak for flamegraph.pl or speedscope; json: "
        "the report's data with the timeline and flame tree.");
    add_traces_option(cmd, *o);
    cmd->add_option("--format", o->format, "perfetto, folded or json")
        ->required()
        ->check(CLI::IsMember({"perfetto", "folded", "json"}));
    cmd->add_option("-o,--output", o->output, "write here instead of standard output");
    cmd->add_option("--points", o->max_points, "at most this many timeline points per process")
        ->capture_default_str();
    cmd->callback([o] {
        ProcessOptions po;
        po.want_folded = o->format == "folded";
        po.report_sections = o->format != "folded";
        po.timeline.max_points = std::max<size_t>(o->max_points, 16);
        std::vector<ProcessResult> procs = analyze_all(*o, po);
        MergedTimeline m = merge_timelines(procs, po.timeline.max_points);
        if (o->format == "folded") {
            std::string text;
            for (const ProcessResult& p : procs) {
                if (procs.size() == 1) {
                    text += p.folded;
                    continue;
                }
                // Several processes: the process is the outermost frame.
                const std::string prefix = "pid " + std::to_string(p.header.pid) + ";";
                size_t start = 0;
                while (start < p.folded.size()) {
                    size_t end = p.folded.find('\n', start);
                    text += prefix + p.folded.substr(start, end - start + 1);
                    start = end == std::string::npos ? p.folded.size() : end + 1;
                }
            }
            write_output(o->output, text);
        } else if (o->format == "perfetto") {
            nlohmann::json events = nlohmann::json::array();
            for (size_t k = 0; k < procs.size(); ++k)
                append_perfetto_process(
                    events, procs[k].header.pid, procs[k].name(), procs[k].report.at("timeline"),
                    procs[k].report.value("windows", nlohmann::json()), m.offset_s[k]);
            write_output(o->output, dump(perfetto_document(std::move(events))));
        } else {
            write_output(o->output, dump(page_data(procs, &m)));
        }
    });
}

}  // namespace pmt::analyzer
