// Several traces of one process tree (fork, exec, multiprocessing) seen as one job: each
// process analysed on its own (the report's sections plus its timeline and flame graph), then
// their timelines summed on a common wall-clock grid: total live and RSS over time, the
// moment the total peaked and what each process held then.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "timeline.hpp"

namespace pmt::analyzer {

struct ProcessOptions {
    TimelineOptions timeline;
    size_t top = 10;                    // lines at the peak (report section)
    double flame_min_fraction = 0.001;  // flame nodes under this share of the peak are merged
    bool want_folded = false;           // also keep folded stack lines (export --format folded)
    // false: only the peak and the timeline (the `timeline` command needs no other section).
    bool report_sections = true;
};

// One trace after its single replay.
struct ProcessResult {
    std::string path;
    TraceHeader header;
    nlohmann::json report;  // pymemtrace-report/1 of this trace, with "timeline" added
    nlohmann::json flame;   // flame_json() of what was live at the peak
    size_t flame_nodes = 0;
    std::string folded;                 // when ProcessOptions::want_folded
    std::vector<TimelinePoint> points;  // the timeline rows (for merging)
    uint64_t end_time_ns = 0;
    uint64_t peak_bytes = 0, peak_time_ns = 0;
    std::string name() const;  // "pid 123: python job.py"
};

// Reads the trace once. Throws InputError (commands.hpp) naming the file when it cannot be
// read or is corrupt; a truncated trace is analysed up to where it stops.
ProcessResult analyze_process(const std::string& path, const ProcessOptions& options);

// Arguments as given: files stay, a directory stands for the *.pmt files in it (sorted).
// Throws UsageError when a directory holds no trace or an argument does not exist.
std::vector<std::string> expand_trace_paths(const std::vector<std::string>& args);

// The processes' live and RSS summed on one grid of wall-clock time (offsets from the
// earliest process start). Each process contributes its largest sample in a cell, else the
// value it held, and nothing outside its own lifetime. The total's peak is therefore exact to
// one cell (resolution_s).
struct MergedTimeline {
    double resolution_s = 0;
    std::vector<double> offset_s;  // per process: its start after the earliest start
    std::vector<double> time_s;
    std::vector<uint64_t> live_bytes, rss_bytes;
    std::vector<std::vector<uint64_t>> process_live;  // [process][cell]
    double peak_time_s = 0;
    uint64_t peak_bytes = 0;
    std::vector<uint64_t> peak_process_bytes;  // each process's share of the total's peak
};

MergedTimeline merge_timelines(const std::vector<ProcessResult>& procs, size_t cells = 2000);

// The "process_tree" report section: processes (pid, ppid, argv, peak, top lines) and the
// total's peak; and its text for the terminal report.
nlohmann::json process_tree_json(const std::vector<ProcessResult>& procs,
                                 const MergedTimeline& merged);
std::string process_tree_text(const std::vector<ProcessResult>& procs, const MergedTimeline& merged,
                              size_t top_lines = 3);

// `report` on several traces (or a directory): the process-tree section and each process's
// report, as text or as one JSON document (schema pymemtrace-report/1). Throws like
// analyze_process.
void print_process_tree_report(const std::vector<std::string>& paths, bool json, size_t top,
                               std::ostream& out);

}  // namespace pmt::analyzer
