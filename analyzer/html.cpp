// The HTML report (html.hpp): the data document, its escaping, and the page assembly from the
// embedded assets (analyzer/html/, turned into pmt_html_assets.hpp at build time).
#include "html.hpp"

#include <algorithm>
#include <numeric>

#include "export.hpp"
#include "pmt_html_assets.hpp"

namespace pmt::analyzer {

namespace {

constexpr size_t kMaxStackedProcesses = 10;

// Windows of one process, shifted to the page's clock, as {start_s, end_s, fields}.
void add_windows(nlohmann::json& out, const nlohmann::json& report, double offset_s,
                 const std::string& process) {
    if (!report.contains("windows") || !report["windows"].is_array()) return;
    for (const auto& w : report["windows"]) {
        double start = 0, end = 0;
        if (!window_span(w, start, end)) continue;
        nlohmann::json fields = w;
        if (!process.empty()) fields["process"] = process;
        out.push_back(
            {{"start_s", start + offset_s}, {"end_s", end + offset_s}, {"fields", fields}});
    }
}

nlohmann::json single_timeline(const ProcessResult& p) {
    const nlohmann::json& t = p.report.at("timeline");
    nlohmann::json stacks = nlohmann::json::array();
    for (size_t k = 0; k < t["sites"].size(); ++k)
        stacks.push_back({{"label", t["sites"][k]["label"]}, {"values", t["site_bytes"][k]}});
    nlohmann::json windows = nlohmann::json::array();
    add_windows(windows, p.report, 0, "");
    return {{"time_s", t["time_s"]},
            {"live_bytes", t["live_bytes"]},
            {"rss_bytes", t["rss_bytes"]},
            {"stacks", stacks},
            {"stack_kind", "site"},
            {"peak", {{"time_s", t["peak"]["time_s"]}, {"bytes", t["peak"]["live_bytes"]}}},
            {"end_time_s", t["end_time_s"]},
            {"resolution_s", t["resolution_s"]},
            {"windows", windows}};
}

nlohmann::json merged_timeline(const std::vector<ProcessResult>& procs, const MergedTimeline& m) {
    // The largest processes get their own band; the rest share one.
    std::vector<size_t> order(procs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return procs[a].peak_bytes > procs[b].peak_bytes; });
    nlohmann::json stacks = nlohmann::json::array();
    size_t own = procs.size() <= kMaxStackedProcesses ? procs.size() : kMaxStackedProcesses - 1;
    for (size_t i = 0; i < own; ++i)
        stacks.push_back({{"label", procs[order[i]].name()}, {"values", m.process_live[order[i]]}});
    if (own < procs.size()) {
        std::vector<uint64_t> rest(m.time_s.size(), 0);
        for (size_t i = own; i < procs.size(); ++i)
            for (size_t g = 0; g < rest.size(); ++g) rest[g] += m.process_live[order[i]][g];
        stacks.push_back(
            {{"label", std::to_string(procs.size() - own) + " other processes"}, {"values", rest}});
    }
    nlohmann::json windows = nlohmann::json::array();
    for (size_t k = 0; k < procs.size(); ++k)
        add_windows(windows, procs[k].report, m.offset_s[k], procs[k].name());
    return {{"time_s", m.time_s},
            {"live_bytes", m.live_bytes},
            {"rss_bytes", m.rss_bytes},
            {"stacks", stacks},
            {"stack_kind", "process"},
            {"peak", {{"time_s", m.peak_time_s}, {"bytes", m.peak_bytes}}},
            {"end_time_s", m.time_s.empty() ? 0.0 : m.time_s.back() + m.resolution_s},
            {"resolution_s", m.resolution_s},
            {"windows", windows}};
}

}  // namespace

nlohmann::json page_data(const std::vector<ProcessResult>& procs, const MergedTimeline* merged) {
    nlohmann::json list = nlohmann::json::array();
    for (size_t k = 0; k < procs.size(); ++k) {
        const ProcessResult& p = procs[k];
        nlohmann::json report = p.report;
        report.erase("timeline");  // drawn from the page's own timeline below
        list.push_back({{"name", p.name()},
                        {"pid", p.header.pid},
                        {"offset_s", merged && procs.size() > 1 ? merged->offset_s[k] : 0.0},
                        {"report", std::move(report)},
                        {"flame", p.flame}});
    }
    nlohmann::json data = {{"generator", "pymemtrace"}, {"processes", std::move(list)}};
    if (procs.size() > 1 && merged != nullptr) {
        data["timeline"] = merged_timeline(procs, *merged);
        data["tree"] = process_tree_json(procs, *merged);
    } else if (!procs.empty()) {
        data["timeline"] = single_timeline(procs[0]);
        data["tree"] = nullptr;
    }
    return data;
}

std::string script_safe_json(const nlohmann::json& j) {
    const std::string raw = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string out;
    out.reserve(raw.size() + raw.size() / 16);
    for (size_t i = 0; i < raw.size(); ++i) {
        const char c = raw[i];
        if (c == '<')
            out += "\\u003c";
        else if (c == '>')
            out += "\\u003e";
        else if (c == '&')
            out += "\\u0026";
        // U+2028/2029 (E2 80 A8/A9): line terminators to old JavaScript parsers.
        else if (c == '\xE2' && i + 2 < raw.size() && raw[i + 1] == '\x80' &&
                 (raw[i + 2] == '\xA8' || raw[i + 2] == '\xA9')) {
            out += raw[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
            i += 2;
        } else
            out += c;
    }
    return out;
}

std::string render_html(const nlohmann::json& data) {
    std::string page = assets::kPage;
    auto fill = [&page](const std::string& marker, const std::string& text) {
        size_t at = page.find(marker);
        if (at != std::string::npos) page.replace(at, marker.size(), text);
    };
    // Data last: the trace's strings must never be scanned for the other markers.
    fill("/*PMT_CSS*/", assets::kCss);
    fill("/*PMT_JS*/", assets::kJs);
    fill("/*PMT_DATA*/", script_safe_json(data));
    return page;
}

}  // namespace pmt::analyzer
