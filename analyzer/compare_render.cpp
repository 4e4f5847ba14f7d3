// Text renderings of a CompareResult: an aligned table for terminals, a Markdown table for
// issues and notes, and the "pymemtrace-compare/1" JSON object (its keys are a contract; extra
// per-run details live under "runs" and "notes").
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "compare.hpp"
#include "format_util.hpp"

namespace pmt::analyzer {
namespace {

std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

std::string same_text(const CompareResult& r, const BackendSummary& b) {
    if (&b == &r.backends.front()) return "(reference)";
    return b.same_result ? "yes" : "NO";
}

// One row of cells per backend, the header row first.
std::vector<std::vector<std::string>> cells(const CompareResult& r) {
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"allocator", "wall s median (min-max)", "peak live", "peak RSS", "exit RSS",
                    "RSS/live at peak", "minor faults", "alloc calls", "same result"});
    for (const BackendSummary& b : r.backends)
        rows.push_back({backend_name(b.backend), wall_text(b), human_bytes(b.peak_live_bytes),
                        human_bytes(b.peak_rss_bytes), human_bytes(b.exit_rss_bytes),
                        ratio_text(b.rss_over_live), human_count(b.minor_faults),
                        human_count(b.alloc_calls), same_text(r, b)});
    return rows;
}

}  // namespace

std::string wall_text(const BackendSummary& b) {
    return fixed(b.wall_s_median, 2) + " (" + fixed(b.wall_s_min, 2) + "-" +
           fixed(b.wall_s_max, 2) + ")";
}

std::string ratio_text(double r) { return r > 0 ? fixed(r, 2) + "x" : "-"; }

std::string command_text(const std::vector<std::string>& argv) {
    std::string out;
    for (const std::string& a : argv) {
        if (!out.empty()) out += ' ';
        const bool plain =
            !a.empty() && a.find_first_of(" \t\n'\"\\$`*?;&|<>()") == std::string::npos;
        if (plain) {
            out += a;
            continue;
        }
        out += '\'';
        for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
        out += '\'';
    }
    return out;
}

std::string render_table(const CompareResult& r) {
    const auto rows = cells(r);
    std::vector<size_t> width(rows.front().size(), 0);
    for (const auto& row : rows)
        for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    std::ostringstream out;
    out << "command: " << command_text(r.command) << "\n";
    out << "runs: " << r.repeat << " per allocator, interleaved; traces and outputs in "
        << r.directory << "\n\n";
    for (size_t k = 0; k < rows.size(); ++k) {
        std::string line;
        for (size_t i = 0; i < rows[k].size(); ++i) {
            const std::string& c = rows[k][i];
            // Names left-aligned, figures right-aligned so digits line up.
            const std::string pad(width[i] - c.size(), ' ');
            line += i == 0 ? c + pad : pad + c;
            if (i + 1 < rows[k].size()) line += "  ";
        }
        out << line << "\n";
        if (k == 0) {
            size_t total = 0;
            for (size_t w : width) total += w + 2;
            out << std::string(total - 2, '-') << "\n";
        }
    }
    out << "\nwall: traced runs (the interposer's overhead is included, alike for all); peak RSS: "
           "the kernel's high-water mark;\nexit RSS: the last RSS sample; RSS/live: the largest "
           "RSS "
           "sample while live bytes stay within 1% of their peak / peak live bytes.\n";
    for (const std::string& n : r.notes) out << "note: " << n << "\n";
    return out.str();
}

std::string render_markdown(const CompareResult& r) {
    const auto rows = cells(r);
    std::ostringstream out;
    out << "Command: `" << command_text(r.command) << "`, " << r.repeat
        << " run(s) per allocator, interleaved.\n\n";
    for (size_t k = 0; k < rows.size(); ++k) {
        out << "|";
        for (const std::string& c : rows[k]) {
            std::string cell = c;
            // A '|' inside a cell would split it.
            for (size_t p = 0; (p = cell.find('|', p)) != std::string::npos; p += 2)
                cell.replace(p, 1, "\\|");
            out << " " << cell << " |";
        }
        out << "\n";
        if (k == 0) {
            out << "|";
            for (size_t i = 0; i < rows[k].size(); ++i) out << (i == 0 ? "---|" : "---:|");
            out << "\n";
        }
    }
    if (!r.notes.empty()) out << "\n";
    for (const std::string& n : r.notes) out << "- " << n << "\n";
    return out.str();
}

nlohmann::json render_json(const CompareResult& r) {
    using nlohmann::json;
    json backends = json::array();
    for (const BackendSummary& b : r.backends) {
        json runs = json::array();
        for (const RunRecord& run : r.runs) {
            if (run.backend != b.backend) continue;
            const TraceMeasure& m = run.measure;
            runs.push_back({{"round", run.round},
                            {"trace", run.trace},
                            {"all_traces", run.traces},
                            {"stdout", run.stdout_path},
                            {"exit_code", run.exit_code},
                            {"output_bytes", run.output_bytes},
                            {"wall_s", run.wall_s},
                            {"max_rss_bytes", run.max_rss_bytes},
                            {"minor_faults", run.minor_faults},
                            {"trace_ok", m.ok},
                            {"trace_error", m.error},
                            {"truncated", m.truncated},
                            {"detected_allocator", m.allocator},
                            {"peak_live_bytes", m.peak_live_bytes},
                            {"peak_live_time_s", m.peak_live_time_s},
                            {"rss_at_peak_bytes", m.rss_at_peak_bytes},
                            {"peak_rss_sampled_bytes", m.peak_rss_sampled_bytes},
                            {"exit_rss_bytes", m.exit_rss_bytes},
                            {"alloc_calls", m.alloc_calls},
                            {"mmap_calls", m.mmap_calls}});
        }
        backends.push_back({{"allocator", backend_name(b.backend)},
                            {"wall_s_median", b.wall_s_median},
                            {"wall_s_min", b.wall_s_min},
                            {"wall_s_max", b.wall_s_max},
                            {"peak_live_bytes", b.peak_live_bytes},
                            {"peak_rss_bytes", b.peak_rss_bytes},
                            {"exit_rss_bytes", b.exit_rss_bytes},
                            {"rss_over_live", b.rss_over_live},
                            {"minor_faults", b.minor_faults},
                            {"alloc_calls", b.alloc_calls},
                            {"same_result", b.same_result},
                            {"traces", b.traces},
                            {"rss_at_peak_bytes", b.rss_at_peak_bytes},
                            {"detected_allocators", b.detected_allocators},
                            {"runs", runs}});
    }
    return {{"schema", "pymemtrace-compare/1"},
            {"command", r.command},
            {"repeat", r.repeat},
            {"backends", backends},
            {"directory", r.directory},
            {"peak_live_spread", r.live_spread},
            {"notes", r.notes}};
}

}  // namespace pmt::analyzer
