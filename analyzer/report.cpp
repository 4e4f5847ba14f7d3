// `pymemtrace report TRACE [--json] [--top N]`: the list of report sections, the single replay
// that feeds them, and the text / JSON renderers. Sections are Analysis classes (analysis.hpp).
#include "report.hpp"

#include <iostream>

#include "advice.hpp"
#include "commands.hpp"
#include "format_util.hpp"
#include "peak.hpp"
#include "process_tree.hpp"
#include "summary.hpp"

namespace pmt::analyzer {

std::vector<std::unique_ptr<Analysis>> make_report_analyses(const ReportOptions& opts) {
    std::vector<std::unique_ptr<Analysis>> a;
    a.push_back(std::make_unique<TraceInfoAnalysis>());
    auto peak = std::make_unique<PeakAnalysis>(opts.top);
    PeakAnalysis* p = peak.get();
    a.push_back(std::move(peak));
    // Sections that follow "At the peak" (windows, advice, ...) go here, one line each.
    a.push_back(std::make_unique<WindowAnalysis>());
    // The advice reads the per-stack sums the peak analysis keeps for it.
    a.push_back(std::make_unique<AdviceAnalysis>(static_cast<const WindowAnalysis&>(*a.back()), p));
    a.push_back(std::make_unique<TotalsAnalysis>());
    return a;
}

AnalyzedTrace analyze_trace(const ReportOptions& opts) {
    AnalyzedTrace t;
    t.analyses = make_report_analyses(opts);
    std::vector<Analysis*> raw;
    for (auto& a : t.analyses) {
        raw.push_back(a.get());
        if (auto* p = dynamic_cast<const PeakAnalysis*>(a.get())) t.peak = p;
    }
    try {
        t.reader = std::make_unique<TraceReader>(opts.path);
        LiveHeap heap;
        replay(*t.reader, heap, raw);
    } catch (const TraceError& e) {
        throw InputError(opts.path, e.what());
    }
    return t;
}

nlohmann::json render_json(const AnalyzedTrace& t) {
    nlohmann::json report = {{"schema", "pymemtrace-report/1"}};
    for (const auto& a : t.analyses) a->add_json(report);
    return report;
}

std::string peak_headline(const PeakAnalysis& peak) {
    std::string line =
        "Peak " + human_bytes(peak.peak_bytes()) + " at " + human_seconds(peak.peak_time_ns());
    if (peak.has_rss()) {
        line += " (RSS " + human_bytes(peak.rss_peak_bytes()) + " at " +
                human_seconds(peak.rss_peak_time_ns()) + ")";
    } else {
        line += " (RSS not sampled)";
    }
    return line;
}

static bool ends_with_blank_line(const std::string& s) {
    return s.size() >= 2 && s.compare(s.size() - 2, 2, "\n\n") == 0;
}

std::string render_text(const AnalyzedTrace& t) {
    std::string out;
    if (t.peak) out += peak_headline(*t.peak) + "\n";
    for (const auto& a : t.analyses) {
        const size_t before = out.size();
        a->add_text(out);
        // Sections are separated by one blank line, whatever each one ends with.
        if (out.size() != before && !ends_with_blank_line(out)) {
            if (out.back() != '\n') out += '\n';
            out += '\n';
        }
    }
    while (ends_with_blank_line(out)) out.pop_back();
    return out;
}

void add_report_command(CLI::App& app) {
    auto opts = std::make_shared<ReportOptions>();
    CLI::App* cmd = app.add_subcommand(
        "report",
        "Peak live bytes and RSS, the lines holding the most memory at the peak, totals.");
    cmd->footer(
        "A line is the innermost frame of the program's own code: frames in the standard\n"
        "library and installed packages are skipped (the JSON stack keeps every frame).\n"
        "Sizes are decimal (1 MB = 10^6 bytes); times are seconds since the trace started.\n"
        "Exit status: 0 done, 2 unreadable or corrupt trace or bad usage, 1 internal error.");
    auto paths = std::make_shared<std::vector<std::string>>();
    cmd->add_option("TRACE", *paths,
                    "trace file written by libpymemtrace.so (.pmt); several, or a directory, "
                    "give the merged process tree")
        ->required()
        ->expected(1, -1);
    cmd->add_flag("--json", opts->json, "print JSON (schema pymemtrace-report/1) instead of text");
    cmd->add_option("--top", opts->top, "how many lines to show at the peak (0: all)")
        ->capture_default_str();
    cmd->callback([opts, paths] {
        const std::vector<std::string> traces = expand_trace_paths(*paths);
        if (traces.size() > 1) {
            print_process_tree_report(traces, opts->json, opts->top, std::cout);
            std::cout.flush();
            return;
        }
        opts->path = traces.at(0);
        const AnalyzedTrace t = analyze_trace(*opts);
        if (opts->json) {
            std::cout << render_json(t).dump(2, ' ', false,
                                             nlohmann::json::error_handler_t::replace)
                      << '\n';
        } else {
            std::cout << render_text(t);
        }
        std::cout.flush();
        if (!std::cout) throw UsageError("cannot write the report to standard output");
    });
}

}  // namespace pmt::analyzer
