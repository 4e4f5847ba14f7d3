// TraceInfoAnalysis and TotalsAnalysis (summary.hpp): the "trace" and "totals" objects of
// pymemtrace-report/1 and their text lines.
#include "summary.hpp"

#include "format_util.hpp"

namespace pmt::analyzer {

void TraceInfoAnalysis::finish(const TraceReader& reader, const LiveHeap& heap) {
    path_ = reader.path();
    header_ = reader.header();
    truncated_ = reader.truncated();
    truncation_reason_ = reader.truncation_reason();
    // A clean trace knows when the process ended; a truncated one ends at its last event.
    duration_ns_ = reader.has_end() ? reader.end().end_time_ns : reader.last_time_ns();
    if (duration_ns_ < reader.last_time_ns()) duration_ns_ = reader.last_time_ns();
    events_ = reader.events();
    lost_events_ = reader.has_end() ? reader.end().lost_events : 0;
    unknown_frees_ = heap.unknown_frees();
}

void TraceInfoAnalysis::add_json(nlohmann::json& report) const {
    nlohmann::json trace = {{"path", path_},
                            {"truncated", truncated_},
                            {"pid", header_.pid},
                            {"ppid", header_.ppid},
                            {"argv", header_.argv},
                            {"allocator", header_.allocator},
                            {"duration_s", seconds(duration_ns_)},
                            {"events", events_},
                            {"lost_events", lost_events_}};
    trace["python"] = header_.python_version.empty() ? nlohmann::json(nullptr)
                                                     : nlohmann::json(header_.python_version);
    // Header flag: objects were recorded through Python's allocator domains (kinds 9-14).
    trace["python_allocators"] = (header_.flags & kFlagPythonAllocators) != 0;
    if (truncated_) trace["truncation_reason"] = truncation_reason_;
    report["trace"] = std::move(trace);
}

namespace {

std::string shell_words(const std::vector<std::string>& argv) {
    std::string out;
    for (const std::string& a : argv) {
        if (!out.empty()) out += ' ';
        const bool plain =
            !a.empty() && a.find_first_of(" \t\n'\"\\$`*?&|;<>()") == std::string::npos;
        if (plain) {
            out += a;
        } else {
            out += '\'';
            for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
            out += '\'';
        }
    }
    return out.size() > 200 ? out.substr(0, 197) + "..." : out;
}

}  // namespace

void TraceInfoAnalysis::add_text(std::string& out) const {
    out += "  trace     " + path_ + " (pid " + std::to_string(header_.pid) + ", parent " +
           std::to_string(header_.ppid) + (header_.forked ? ", forked from it" : "") + ")\n";
    if (!header_.argv.empty()) out += "  command   " + shell_words(header_.argv) + "\n";
    out += "  python    " +
           (header_.python_version.empty() ? std::string("none") : header_.python_version) +
           ", allocator " +
           (header_.allocator.empty() ? std::string("unknown") : header_.allocator) +
           ((header_.flags & kFlagPythonAllocators)
                ? ", Python allocators traced (objects counted, pymalloc arenas not)"
                : "") +
           "\n";
    out += "  duration  " + human_seconds(duration_ns_) + ", " + human_count(events_) + " events\n";
    if (truncated_) {
        // The reader's reason may already say "trace truncated at t=...": say it once.
        const std::string prefix = "trace truncated at t=" + human_seconds(duration_ns_);
        std::string why = truncation_reason_.empty() ? "no end record" : truncation_reason_;
        if (why.rfind("trace truncated", 0) != 0) why = prefix + ": " + why;
        out += "  note: " + why + "; the report covers the trace up to there\n";
    }
    if (unknown_frees_ != 0) {
        out += "  note: " + human_count(unknown_frees_) +
               (unknown_frees_ == 1 ? " free" : " frees") +
               " of blocks made before tracing started ignored\n";
    }
    if (lost_events_ != 0) {
        out += "  note: " + human_count(lost_events_) +
               " allocation calls made by signal handlers could not be recorded\n";
    }
    out += "\n";
}

void TotalsAnalysis::finish(const TraceReader& /*reader*/, const LiveHeap& heap) {
    allocations_ = heap.made_live();
    allocated_bytes_ = heap.made_live_bytes();
    frees_ = heap.made_dead();
    live_at_end_bytes_ = heap.live_bytes();
    live_at_end_blocks_ = heap.live_blocks();
}

void TotalsAnalysis::add_json(nlohmann::json& report) const {
    report["totals"] = {
        {"allocations", allocations_}, {"frees", frees_}, {"allocated_bytes", allocated_bytes_}};
}

void TotalsAnalysis::add_text(std::string& out) const {
    out += "Totals: " + human_count(allocations_) + " allocations (" +
           human_bytes(allocated_bytes_) + "), " + human_count(frees_) + " frees; " +
           human_bytes(live_at_end_bytes_) + " in " + human_count(live_at_end_blocks_) +
           " blocks still live at the end.\n";
}

}  // namespace pmt::analyzer
