// The "windows" section of the report: JSON records (pymemtrace-report/1, issue 3's schema)
// and the terminal text, ranked by cost. Detection lives in windows.cpp.
#include <algorithm>

#include "format_util.hpp"
#include "windows.hpp"

namespace pmt::analyzer {
namespace {

constexpr size_t kTextWindows = 10;

std::string percent_drop(uint64_t peak, uint64_t fixed) {
    if (peak == 0 || fixed >= peak) return "";
    const double pct = 100.0 * static_cast<double>(peak - fixed) / static_cast<double>(peak);
    char buf[32];
    std::snprintf(buf, sizeof buf, " (-%.0f%%)", pct);
    return buf;
}

std::string pad(std::string s, size_t width) {
    if (s.size() < width) s.append(width - s.size(), ' ');
    return s;
}

}  // namespace

std::string frame_text(const StackFrames& f, const FrameKey& k) {
    return short_path(f.text(k.file)) + ":" + std::to_string(k.line);
}

nlohmann::json WindowAnalysis::frame_json(const FrameKey& f) const {
    return {{"file", std::string(frames_.text(f.file))},
            {"line", f.line},
            {"function", std::string(frames_.text(f.function))}};
}

nlohmann::json WindowAnalysis::stack_json(uint64_t stack_id) const {
    nlohmann::json j = frame_json(frames_.attributed(stack_id));
    nlohmann::json stack = nlohmann::json::array();
    for (const FrameKey& f : frames_.inner_first(stack_id)) stack.push_back(frame_json(f));
    j["stack"] = std::move(stack);
    return j;
}

void WindowAnalysis::add_json(nlohmann::json& report) const {
    nlohmann::json list = nlohmann::json::array();
    for (const Window& w : windows_) {
        list.push_back({{"bytes", w.old_bytes},
                        {"cost_bytes", w.cost_bytes},
                        {"start_s", seconds(w.open_ns)},
                        {"end_s", seconds(w.close_ns)},
                        {"new", stack_json(w.new_stack)},
                        {"old", stack_json(w.old_stack)},
                        {"statement", frame_json(w.statement.back())},
                        {"new_bytes", w.new_bytes},
                        {"count", w.count},
                        {"remedy", w.remedy},
                        {"peak_if_fixed_bytes", w.peak_if_fixed}});
    }
    report["windows"] = std::move(list);
}

void WindowAnalysis::add_text(std::string& out) const {
    // Windows that cost nothing and are small next to the peak are not worth a line.
    std::vector<const Window*> shown;
    for (const Window& w : windows_)
        if (w.cost_bytes > 0 || w.old_bytes * 100 >= peak_bytes_) shown.push_back(&w);
    if (shown.empty()) {
        out += "Windows (old and new data alive together): none found.\n";
        return;
    }
    out += "Windows (old and new data alive together), by cost to the peak:\n";
    size_t n = 0;
    for (const Window* wp : shown) {
        if (n == kTextWindows) {
            out += "  ... " + std::to_string(shown.size() - n) + " more (see --json)\n";
            break;
        }
        const Window& w = *wp;
        std::string where;
        if (w.cost_bytes * 20 >= w.old_bytes * 19)
            where = "at the peak";
        else if (w.cost_bytes > 0)
            where = "raised the peak by " + human_bytes(w.cost_bytes);
        else
            where = "away from the peak (costs nothing)";
        out += "  #" + std::to_string(++n) + " " + human_bytes(w.old_bytes) + " " + where + ", " +
               human_seconds(w.open_ns) + "-" + human_seconds(w.close_ns);
        if (w.count > 1) out += "  (" + std::to_string(w.count) + " times, the highest shown)";
        out += "\n";

        const FrameKey nf = frames_.attributed(w.new_stack);
        const FrameKey& st = w.statement.back();
        std::string code = source_line(std::string(frames_.text(st.file)), st.line);
        std::string line =
            "     new: " +
            pad(frame_text(frames_, nf) + " in " + std::string(frames_.text(nf.function)), 28);
        if (!code.empty()) line += "  " + code;
        if (nf != st) line += "   (called from " + frame_text(frames_, st) + ")";
        out += line + "\n";

        const FrameKey of = frames_.attributed(w.old_stack);
        const bool same_file = of.file == st.file;
        out += "     old: " +
               pad(frame_text(frames_, of) + " in " + std::string(frames_.text(of.function)), 28) +
               "  freed when " +
               (same_file ? "line " + std::to_string(st.line) : frame_text(frames_, st)) +
               " finished\n";
        if (w.remedy == "replace-elements")
            out +=
                "     fix: replace the elements one by one (`for i, v in enumerate(xs): "
                "xs[i] = g(v)`), or `del` the old data before building the new when the new "
                "does not need it.\n";
        else
            out +=
                "     fix: update in place (`x *= 2`, `np.multiply(x, 2, out=x)`) or `del` "
                "the old data first.\n";
        out += "     peak if fixed: " + human_bytes(w.peak_if_fixed) +
               percent_drop(peak_bytes_, w.peak_if_fixed) + "\n";
    }
}

}  // namespace pmt::analyzer
