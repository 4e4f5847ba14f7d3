// The renderers around the timeline: folded stacks and the flame tree at the peak, the page's
// script-safe JSON and assembly, the process-tree merge and the Perfetto document. Answers are
// known from the synthetic traces and series built here.
#include <algorithm>
#include <catch2/catch.hpp>

#include "export.hpp"
#include "html.hpp"
#include "process_tree.hpp"
#include "trace_builder.hpp"

using namespace pmt;
using namespace pmt::analyzer;
using namespace pmt::testing;

namespace {

// Three stacks live at the peak: main->load 10 MB, main->step 20 MB, no Python 1 MB.
TraceBuilder three_stacks() {
    TraceBuilder b;
    const auto load = b.stack({{"job.py", "load", 5}, {"job.py", "main", 20}});
    const auto step = b.stack({{"job.py", "step", 9}, {"job.py", "main", 21}});
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(10), load)
        .alloc(ms(2), 0x2000, MB(20), step)
        .alloc(ms(3), 0x3000, MB(1), 0)
        .free(ms(4), 0x2000);
    return b;
}

template <class F>
void with_peak(TraceBuilder& b, F&& f) {
    TempTrace file(b.bytes());
    TraceReader reader(file.path());
    PeakAnalysis peak(0);
    LiveHeap heap;
    replay(reader, heap, {&peak});
    f(reader, peak);
}

}  // namespace

TEST_CASE("folded lines hold every byte live at the peak, outermost frame first", "[timeline]") {
    TraceBuilder b = three_stacks();
    with_peak(b, [](const TraceReader& reader, const PeakAnalysis& peak) {
        CHECK(folded_lines(reader, peak.stacks_at_peak()) ==
              "main (job.py:21);step (job.py:9) 20000000\n"
              "main (job.py:20);load (job.py:5) 10000000\n"
              "<no Python frame> 1000000\n");
        CHECK(folded_lines(reader, peak.stacks_at_peak(), "pid 7").rfind("pid 7;main", 0) == 0);
    });
}

TEST_CASE("the flame tree sums children into parents and prunes tiny stacks into one node",
          "[timeline]") {
    TraceBuilder b = three_stacks();
    const auto tiny = b.stack({{"job.py", "tiny", 30}, {"job.py", "main", 22}});
    b.thread(2);  // another thread: its times may interleave with thread 1's
    for (uint64_t i = 0; i < 300; ++i) b.alloc(ms(3) + 10 + i, 0x100000 + i * 64, 10, tiny);
    with_peak(b, [](const TraceReader& reader, const PeakAnalysis& peak) {
        FlameNode root = build_flame(reader, peak.stacks_at_peak(), 0.001);
        CHECK(root.bytes == peak.peak_bytes());
        // Frames are source lines: main:20, main:21 and main:22 are distinct callers.
        REQUIRE(root.children.size() == 4);
        const FlameNode& main21 = root.children[0];
        CHECK(main21.function == "main");
        CHECK(main21.line == 21);
        CHECK(main21.bytes == MB(20));
        CHECK(main21.children[0].function == "step");
        CHECK(root.children[1].line == 20);
        CHECK(root.children[1].children[0].function == "load");
        CHECK(root.children[2].function == "<no Python frame>");
        // The 3 kB under main:22 is < 0.1% of 31 MB: merged into "(1 smaller)".
        CHECK(root.children[3].function == "(1 smaller)");
        CHECK(root.children[3].bytes == 3000);
        CHECK(root.children[3].children.empty());
        const nlohmann::json j = flame_json(root);
        CHECK(j["v"] == root.bytes);
        CHECK(j["c"][0]["s"] == "job.py");
        CHECK(flame_size(root) == 7);
    });
}

TEST_CASE("page JSON escapes markup, ampersands and line separators from a trace",
          "[timeline][html]") {
    nlohmann::json j = {{"f", "<script>alert(1)</script>"}, {"g", "a&b"}, {"h", "x\u2028y\u2029"}};
    const std::string s = script_safe_json(j);
    CHECK(s.find('<') == std::string::npos);
    CHECK(s.find('>') == std::string::npos);
    CHECK(s.find('&') == std::string::npos);
    CHECK(s.find("\u2028") == std::string::npos);
    CHECK(s.find("\\u003cscript\\u003e") != std::string::npos);
    CHECK(nlohmann::json::parse(s) == j);  // still the same data
    // Invalid UTF-8 from a trace is replaced, not an error.
    CHECK_NOTHROW(script_safe_json(nlohmann::json{{"bad", std::string("\xff\xfe")}}));
}

TEST_CASE("the page has only its own two scripts, the data, and forbids every request",
          "[timeline][html]") {
    const std::string page = render_html({{"processes", {{{"name", "</script><b>x</b>"}}}}});
    size_t scripts = 0;
    for (size_t at = page.find("<script"); at != std::string::npos;
         at = page.find("<script", at + 1))
        ++scripts;
    CHECK(scripts == 2);
    CHECK(page.find("</script><b>") == std::string::npos);
    CHECK(page.find("default-src 'none'") != std::string::npos);
    CHECK(page.find("/*PMT_") == std::string::npos);  // every marker filled
    CHECK(page.find("http://") == std::string::npos);
    CHECK(page.find("https://") == std::string::npos);
}

TEST_CASE("merging process timelines sums them on wall-clock time and finds the total's peak",
          "[timeline][tree]") {
    auto proc = [](uint64_t pid, uint64_t start_ns, std::vector<TimelinePoint> pts, uint64_t end) {
        ProcessResult p;
        p.header.pid = pid;
        p.header.start_wall_ns = start_ns;
        p.points = std::move(pts);
        p.end_time_ns = end;
        for (const auto& pt : p.points) p.peak_bytes = std::max(p.peak_bytes, pt.live_bytes);
        return p;
    };
    // Parent: 10 MB from 0 to 1 s. Child starts 0.5 s later, holds 30 MB from its 0.1 s to
    // 0.3 s (job time 0.6-0.8 s), then 5 MB. Total peak: 40 MB at 0.6 s.
    std::vector<ProcessResult> procs;
    procs.push_back(proc(1, 1'000'000'000,
                         {{0, MB(10), MB(20), {}}, {ms(1000), MB(10), MB(20), {}}}, ms(1000)));
    procs.push_back(proc(2, 1'500'000'000,
                         {{ms(100), MB(30), MB(40), {}}, {ms(300), MB(5), MB(40), {}}}, ms(400)));
    MergedTimeline m = merge_timelines(procs, 100);
    CHECK(m.offset_s[1] == Approx(0.5));
    CHECK(m.resolution_s == Approx(0.01));
    CHECK(m.peak_bytes == MB(40));
    CHECK(m.peak_time_s == Approx(0.6).margin(0.011));
    CHECK(m.peak_process_bytes == std::vector<uint64_t>{MB(10), MB(30)});
    CHECK(*std::max_element(m.live_bytes.begin(), m.live_bytes.end()) == MB(40));
    // The child holds its 5 MB until it ends (0.9 s), then nothing.
    size_t at_085 = static_cast<size_t>(0.85 / m.resolution_s);
    size_t at_095 = static_cast<size_t>(0.95 / m.resolution_s);
    CHECK(m.process_live[1][at_085] == MB(5));
    CHECK(m.process_live[1][at_095] == 0);
    CHECK(m.live_bytes[at_095] == MB(10));
    const nlohmann::json j = process_tree_json(procs, m);
    CHECK(j["total"]["peak_bytes"] == MB(40));
    CHECK(j["processes"][1]["bytes_at_total_peak"] == MB(30));
}

TEST_CASE("the Perfetto document has counter tracks, the peak and window slices",
          "[timeline][export]") {
    TraceBuilder b = three_stacks();
    TempTrace file(b.bytes());
    TraceReader reader(file.path());
    TimelineAnalysis tl;
    LiveHeap heap;
    replay(reader, heap, {&tl});
    nlohmann::json windows = {{{"open_s", 0.001}, {"close_s", 0.004}, {"remedy", "del"}}};
    nlohmann::json events = nlohmann::json::array();
    append_perfetto_process(events, 4242, "pid 4242: job", tl.to_json(), windows, 0.5);
    const nlohmann::json doc = perfetto_document(events);
    uint64_t live_max = 0;
    size_t slices = 0, peaks = 0;
    for (const auto& e : doc["traceEvents"]) {
        if (e["ph"] == "C" && e["name"] == "live heap (bytes)")
            live_max = std::max(live_max, e["args"]["bytes"].get<uint64_t>());
        if (e["ph"] == "X") {
            ++slices;
            CHECK(e["ts"].get<double>() == Approx(501000));
            CHECK(e["dur"].get<double>() == Approx(3000));
            CHECK(e["name"] == "window: del");
        }
        if (e["ph"] == "i") ++peaks;
    }
    CHECK(live_max == MB(31));
    CHECK(slices == 1);
    CHECK(peaks == 1);
}
