// `pymemtrace compare`: the same command run under several allocator backends, interleaved, and
// the per-backend figures side by side. compare.cpp runs the command, compare_measure.cpp reads
// each run's trace, compare_render.cpp and compare_html.cpp turn a CompareResult into output.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "run.hpp"

namespace pmt::analyzer {

// One RSS sample of a trace with the largest live byte count seen since the previous sample (so
// a short spike between samples still shows on the timeline).
struct CompareSample {
    double time_s = 0;
    uint64_t rss_bytes = 0;
    uint64_t live_bytes = 0;
};

// What one run's trace says.
struct TraceMeasure {
    bool ok = false;         // the trace could be read
    std::string error;       // why not, when !ok
    bool truncated = false;  // no end chunk: the process did not exit cleanly
    std::string allocator;   // detected in the process by the interposer
    uint64_t peak_live_bytes = 0;
    double peak_live_time_s = 0;
    uint64_t peak_rss_sampled_bytes = 0;  // largest RSS sample
    uint64_t rss_at_peak_bytes = 0;       // largest sample while live stays within 1% of peak
    uint64_t exit_rss_bytes = 0;          // last RSS sample
    uint64_t alloc_calls = 0;             // heap allocations (malloc, calloc, realloc, ...)
    uint64_t mmap_calls = 0;              // mappings made by the program
    double duration_s = 0;
    std::vector<CompareSample> timeline;  // only when asked for
};

// Reads the trace at path once. Never throws for a bad trace: ok/error say what happened.
TraceMeasure measure_trace(const std::string& path, bool keep_timeline);

// The traces one run left in its directory (a wrapper such as env or sh -c that execs the job,
// or child processes, leave several): each is measured, and the one with the largest peak live
// bytes stands for the run. `all` lists every trace found, sorted.
struct RunTraces {
    std::vector<std::string> all;
    std::string main;
    TraceMeasure measure;  // of main; ok = false with an error when there is no trace
};
RunTraces measure_run_directory(const std::string& dir, bool keep_timeline);

// One execution of the command under one backend.
struct RunRecord {
    Backend backend = Backend::Glibc;
    int round = 0;                    // 1-based
    std::string directory;            // where this run's traces and stdout.txt are
    std::vector<std::string> traces;  // every trace the run left; traces of child processes too
    std::string trace;                // the one the figures come from (largest peak live)
    std::string stdout_path;
    int exit_code = 0;
    double wall_s = 0;
    uint64_t max_rss_bytes = 0;  // getrusage ru_maxrss: the kernel's high-water mark
    uint64_t minor_faults = 0;   // ru_minflt
    uint64_t output_bytes = 0;   // size of what the command wrote to stdout
    TraceMeasure measure;
};

// Per-backend figures: medians over the backend's runs (wall also min and max).
struct BackendSummary {
    Backend backend = Backend::Glibc;
    double wall_s_median = 0, wall_s_min = 0, wall_s_max = 0;
    uint64_t peak_live_bytes = 0;
    double peak_live_time_s = 0;
    uint64_t peak_rss_bytes = 0;  // kernel high-water mark (ru_maxrss)
    uint64_t exit_rss_bytes = 0;
    uint64_t rss_at_peak_bytes = 0;
    double rss_over_live = 0;  // RSS at the live peak / peak live
    uint64_t minor_faults = 0;
    uint64_t alloc_calls = 0;
    bool same_result = true;  // every run's exit code and output size equal the first backend's
    std::vector<int> exit_codes;
    std::vector<uint64_t> output_bytes;
    std::vector<std::string> traces;
    std::vector<std::string> detected_allocators;  // distinct values from the trace headers
    std::vector<CompareSample> timeline;           // of the backend's first run
};

struct CompareResult {
    std::vector<std::string> command;
    int repeat = 1;
    std::string directory;
    std::vector<BackendSummary> backends;
    std::vector<RunRecord> runs;     // in execution order
    double live_spread = 0;          // (max - min) / min of the backends' peak live bytes
    std::vector<std::string> notes;  // things the reader must know (disagreements, failures)
};

// Groups the runs by backend (in the given order), computes medians, same_result, the live
// spread and the notes.
CompareResult summarize(const std::vector<std::string>& command, int repeat,
                        const std::string& directory, const std::vector<Backend>& order,
                        std::vector<RunRecord> runs);

std::string render_table(const CompareResult& r);
std::string render_markdown(const CompareResult& r);
nlohmann::json render_json(const CompareResult& r);  // schema "pymemtrace-compare/1"
std::string render_html(const CompareResult& r);     // self-contained page, inline SVG

// Shared by the renderers: "1.52 (1.49–1.60)", "1.31×".
std::string wall_text(const BackendSummary& b);
std::string ratio_text(double r);
std::string command_text(const std::vector<std::string>& argv);

}  // namespace pmt::analyzer
