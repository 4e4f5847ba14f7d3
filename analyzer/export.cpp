// Flame tree, folded stacks and Perfetto (Chrome trace-event) export (export.hpp). All of
// them read what PeakAnalysis and TimelineAnalysis computed; nothing here replays a trace.
#include "export.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace pmt::analyzer {

namespace {

const char* const kNoPython = "<no Python frame>";

FlameNode& child(FlameNode& parent, std::string_view function, std::string_view file,
                 uint32_t line) {
    // Fan-out is small (the distinct callees of one frame); a linear scan beats a map here.
    for (FlameNode& c : parent.children)
        if (c.line == line && c.function == function && c.file == file) return c;
    FlameNode node;
    node.function = std::string(function);
    node.file = std::string(file);
    node.line = line;
    parent.children.push_back(std::move(node));
    return parent.children.back();
}

void prune(FlameNode& node, uint64_t min_bytes) {
    std::sort(node.children.begin(), node.children.end(),
              [](const FlameNode& a, const FlameNode& b) { return a.bytes > b.bytes; });
    size_t keep = 0;
    while (keep < node.children.size() && node.children[keep].bytes >= min_bytes) ++keep;
    if (keep < node.children.size()) {
        FlameNode rest;
        size_t n = node.children.size() - keep;
        for (size_t i = keep; i < node.children.size(); ++i) rest.bytes += node.children[i].bytes;
        rest.function = "(" + std::to_string(n) + " smaller)";
        node.children.resize(keep);
        node.children.push_back(std::move(rest));
    }
    for (FlameNode& c : node.children) prune(c, min_bytes);
}

std::string clean_frame_text(std::string s) {
    for (char& c : s) {
        if (c == ';')
            c = ',';
        else if (c == '\n' || c == '\r')
            c = ' ';
    }
    return s;
}

}  // namespace

FlameNode build_flame(const TraceReader& reader, const std::vector<StackAtPeak>& stacks,
                      double min_fraction) {
    FlameNode root;
    root.function = "all";
    for (const StackAtPeak& st : stacks) {
        if (st.bytes == 0) continue;
        root.bytes += st.bytes;
        std::vector<Frame> frames = reader.frames(st.stack_id);
        FlameNode* node = &root;
        if (frames.empty()) {
            node = &child(root, kNoPython, "", 0);
            node->bytes += st.bytes;
            continue;
        }
        for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
            node = &child(*node, it->function, it->file, it->line);
            node->bytes += st.bytes;
        }
    }
    uint64_t min_bytes = static_cast<uint64_t>(static_cast<double>(root.bytes) * min_fraction);
    prune(root, std::max<uint64_t>(min_bytes, 1));
    return root;
}

nlohmann::json flame_json(const FlameNode& node) {
    nlohmann::json j = {{"f", node.function}, {"v", node.bytes}};
    if (!node.file.empty()) {
        j["s"] = node.file;
        j["l"] = node.line;
    }
    if (!node.children.empty()) {
        nlohmann::json c = nlohmann::json::array();
        for (const FlameNode& k : node.children) c.push_back(flame_json(k));
        j["c"] = std::move(c);
    }
    return j;
}

size_t flame_size(const FlameNode& root) {
    size_t n = 1;
    for (const FlameNode& c : root.children) n += flame_size(c);
    return n;
}

std::string folded_lines(const TraceReader& reader, const std::vector<StackAtPeak>& stacks,
                         const std::string& prefix) {
    // Distinct stack ids can print the same (several location ids for one line): sum them.
    std::unordered_map<std::string, uint64_t> by_text;
    std::string text;
    for (const StackAtPeak& st : stacks) {
        if (st.bytes == 0) continue;
        text.clear();
        if (!prefix.empty()) text = clean_frame_text(prefix);
        std::vector<Frame> frames = reader.frames(st.stack_id);
        if (frames.empty()) {
            if (!text.empty()) text += ';';
            text += kNoPython;
        }
        for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
            if (!text.empty()) text += ';';
            text += clean_frame_text(std::string(it->function) + " (" + std::string(it->file) +
                                     ":" + std::to_string(it->line) + ")");
        }
        by_text[text] += st.bytes;
    }
    std::vector<std::pair<std::string, uint64_t>> rows(by_text.begin(), by_text.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    std::string out;
    for (const auto& [stack, bytes] : rows) out += stack + " " + std::to_string(bytes) + "\n";
    return out;
}

bool window_span(const nlohmann::json& w, double& start_s, double& end_s) {
    static const char* const kStart[] = {"start_s", "open_s", "opened_s", "begin_s"};
    static const char* const kEnd[] = {"end_s", "close_s", "closed_s", "stop_s"};
    if (!w.is_object()) return false;
    bool has_start = false, has_end = false;
    for (const char* k : kStart)
        if (!has_start && w.contains(k) && w[k].is_number()) {
            start_s = w[k].get<double>();
            has_start = true;
        }
    for (const char* k : kEnd)
        if (!has_end && w.contains(k) && w[k].is_number()) {
            end_s = w[k].get<double>();
            has_end = true;
        }
    return has_start && has_end && end_s >= start_s;
}

void append_perfetto_process(nlohmann::json& events, uint64_t pid, const std::string& name,
                             const nlohmann::json& timeline, const nlohmann::json& windows,
                             double offset_s) {
    auto us = [&](double s) { return (s + offset_s) * 1e6; };
    events.push_back({{"ph", "M"},
                      {"name", "process_name"},
                      {"pid", pid},
                      {"tid", 0},
                      {"args", {{"name", name}}}});
    events.push_back({{"ph", "M"},
                      {"name", "thread_name"},
                      {"pid", pid},
                      {"tid", 1},
                      {"args", {{"name", "windows"}}}});
    const auto& t = timeline.at("time_s");
    const auto& live = timeline.at("live_bytes");
    const auto& rss = timeline.at("rss_bytes");
    const auto& sites = timeline.at("sites");
    const auto& site_bytes = timeline.at("site_bytes");
    for (size_t i = 0; i < t.size(); ++i) {
        double ts = us(t[i].get<double>());
        events.push_back({{"ph", "C"},
                          {"name", "live heap (bytes)"},
                          {"pid", pid},
                          {"tid", 0},
                          {"ts", ts},
                          {"args", {{"bytes", live[i]}}}});
        events.push_back({{"ph", "C"},
                          {"name", "RSS (bytes)"},
                          {"pid", pid},
                          {"tid", 0},
                          {"ts", ts},
                          {"args", {{"bytes", rss[i]}}}});
        for (size_t k = 0; k < sites.size(); ++k)
            events.push_back({{"ph", "C"},
                              {"name", "site: " + sites[k].at("label").get<std::string>()},
                              {"pid", pid},
                              {"tid", 0},
                              {"ts", ts},
                              {"args", {{"bytes", site_bytes[k][i]}}}});
    }
    const auto& peak = timeline.at("peak");
    events.push_back({{"ph", "i"},
                      {"s", "p"},
                      {"name", "peak live heap"},
                      {"pid", pid},
                      {"tid", 0},
                      {"ts", us(peak.at("time_s").get<double>())},
                      {"args", {{"bytes", peak.at("live_bytes")}}}});
    if (!windows.is_array()) return;
    for (const auto& w : windows) {
        double start = 0, end = 0;
        if (!window_span(w, start, end)) continue;
        std::string title = "window";
        for (const char* k : {"title", "kind", "remedy"})
            if (w.contains(k) && w[k].is_string()) {
                title = "window: " + w[k].get<std::string>();
                break;
            }
        events.push_back({{"ph", "X"},
                          {"name", title},
                          {"pid", pid},
                          {"tid", 1},
                          {"ts", us(start)},
                          {"dur", (end - start) * 1e6},
                          {"args", w}});
    }
}

nlohmann::json perfetto_document(nlohmann::json events) {
    return {{"displayTimeUnit", "ms"}, {"traceEvents", std::move(events)}};
}

}  // namespace pmt::analyzer
