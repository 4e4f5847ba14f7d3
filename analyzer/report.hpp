// `pymemtrace report`: composes the report's analyses (make_report_analyses is the one list),
// replays the trace once and renders text or pymemtrace-report/1 JSON.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "analysis.hpp"

namespace pmt::analyzer {

class PeakAnalysis;

struct ReportOptions {
    std::string path;
    bool json = false;
    size_t top = 10;  // lines shown "at the peak" (text and JSON); 0 = all
};

// Every section of the report, in the order its text appears. Add a new section here.
std::vector<std::unique_ptr<Analysis>> make_report_analyses(const ReportOptions& opts);

// The analyses after one replay of the trace. The reader (its definition tables: strings,
// locations, stacks) stays open until the analyses are gone, so add_json/add_text may still
// resolve frames through a reader they kept from begin() or finish().
struct AnalyzedTrace {
    std::unique_ptr<TraceReader> reader;
    std::vector<std::unique_ptr<Analysis>> analyses;
    const PeakAnalysis* peak = nullptr;
};

// Reads opts.path once. Throws InputError (commands.hpp) for a file that cannot be read or is
// corrupt; a truncated trace is analysed up to where it stops.
AnalyzedTrace analyze_trace(const ReportOptions& opts);

nlohmann::json render_json(const AnalyzedTrace& t);
std::string render_text(const AnalyzedTrace& t);

// "Peak 1.31 GB at 2.41 s (RSS 1.35 GB at 2.40 s)"
std::string peak_headline(const PeakAnalysis& peak);

}  // namespace pmt::analyzer
