// `run` and `compare` without running anything: LD_PRELOAD composition, trace measures from
// synthetic traces whose figures are known by construction, per-backend medians and notes,
// and the renderings (JSON keys of pymemtrace-compare/1, table rows, HTML escaping).
#include <catch2/catch.hpp>

#include "compare.hpp"
#include "trace_builder.hpp"

using namespace pmt;
using namespace pmt::analyzer;
using pmt::testing::MB;
using pmt::testing::ms;
using pmt::testing::TempTrace;
using pmt::testing::TraceBuilder;

TEST_CASE("LD_PRELOAD puts ours first, then the backend, then the user's without duplicates") {
    CHECK(compose_ld_preload("/p/lib/libpymemtrace.so", "", nullptr) == "/p/lib/libpymemtrace.so");
    CHECK(compose_ld_preload("/p/lib/libpymemtrace.so", "/usr/lib/libjemalloc.so.2",
                             "/x/libfoo.so /old/libpymemtrace.so:/usr/lib/libjemalloc.so.2::") ==
          "/p/lib/libpymemtrace.so:/usr/lib/libjemalloc.so.2:/x/libfoo.so");
}

TEST_CASE("backend names round-trip and name their Debian packages") {
    for (Backend b : {Backend::Glibc, Backend::Jemalloc, Backend::Mimalloc})
        CHECK(parse_backend(backend_name(b)) == b);
    CHECK_FALSE(parse_backend("tcmalloc"));
    CHECK(std::string(backend_package(Backend::Jemalloc)) == "libjemalloc2");
    CHECK(std::string(backend_package(Backend::Mimalloc)) == "libmimalloc2.0");
    CHECK(backend_library(Backend::Glibc).empty());
}

TEST_CASE("the expected trace path follows PYMEMTRACE_OUTPUT's rules") {
    CHECK(expected_trace_path("", 12) == "pymemtrace-12.pmt");
    CHECK(expected_trace_path("/tmp/", 12) == "/tmp/pymemtrace-12.pmt");
    CHECK(expected_trace_path("out.pmt", 12) == "out.pmt");
}

TEST_CASE("a trace's measure takes the RSS sample that follows the live peak") {
    TraceBuilder b;
    b.header().allocator = "jemalloc";
    b.thread(1)
        .rss(ms(1), MB(10))
        .alloc(ms(2), 0x1000, MB(40))
        .rss(ms(11), MB(55))
        .alloc(ms(12), 0x9000000, MB(20))  // the peak: 60 MB at 12 ms
        .rss(ms(21), MB(90))               // RSS at the peak
        .free(ms(22), 0x1000)
        .rss(ms(31), MB(95))  // the largest sample, after the peak
        .free(ms(32), 0x9000000)
        .rss(ms(41), MB(30));  // the last sample: RSS at exit
    TempTrace f(b.bytes());
    const TraceMeasure m = measure_trace(f.path(), true);
    REQUIRE(m.ok);
    CHECK_FALSE(m.truncated);
    CHECK(m.allocator == "jemalloc");
    CHECK(m.peak_live_bytes == MB(60));
    CHECK(m.peak_live_time_s == Approx(0.012));
    CHECK(m.rss_at_peak_bytes == MB(90));
    CHECK(m.peak_rss_sampled_bytes == MB(95));
    CHECK(m.exit_rss_bytes == MB(30));
    CHECK(m.alloc_calls == 2);
    REQUIRE(m.timeline.size() == 5);
    CHECK(m.timeline[2].live_bytes == MB(60));  // the peak shows although freed before the next
}

TEST_CASE("RSS at the peak is the largest sample while the peak holds, as pages get written") {
    TraceBuilder b;
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(100))  // the peak; its pages become resident as they are written
        .rss(ms(2), MB(10))
        .alloc(ms(5), 0x2000, 100)  // a new (tiny) peak: the plateau goes on
        .free(ms(6), 0x2000)        // still within 1% of the peak
        .rss(ms(12), MB(60))
        .rss(ms(22), MB(105))
        .free(ms(23), 0x1000)  // the plateau ends
        .rss(ms(32), MB(120))  // after it: not the peak's RSS
        .rss(ms(42), MB(20));
    TempTrace f(b.bytes());
    const TraceMeasure m = measure_trace(f.path(), false);
    REQUIRE(m.ok);
    CHECK(m.peak_live_bytes == MB(100) + 100);
    CHECK(m.rss_at_peak_bytes == MB(105));
    CHECK(m.peak_rss_sampled_bytes == MB(120));
}

TEST_CASE("a file that is not a trace gives a measure with an error, not an exception") {
    const TraceMeasure m = measure_trace("/etc/passwd", false);
    CHECK_FALSE(m.ok);
    CHECK_FALSE(m.error.empty());
}

namespace {

RunRecord record(Backend b, int round, double wall, uint64_t live, uint64_t rss_at_peak,
                 uint64_t output_bytes = 10) {
    RunRecord r;
    r.backend = b;
    r.round = round;
    r.trace = std::string(backend_name(b)) + "-" + std::to_string(round) + ".pmt";
    r.traces = {r.trace};
    r.wall_s = wall;
    r.max_rss_bytes = rss_at_peak + MB(1);
    r.minor_faults = 1000;
    r.output_bytes = output_bytes;
    r.measure.ok = true;
    r.measure.allocator = backend_name(b);
    r.measure.peak_live_bytes = live;
    r.measure.rss_at_peak_bytes = rss_at_peak;
    r.measure.alloc_calls = 500;
    return r;
}

}  // namespace

TEST_CASE("summaries take medians per backend and note agreement of live bytes") {
    std::vector<RunRecord> runs;
    for (int round = 1; round <= 3; ++round) {
        runs.push_back(record(Backend::Glibc, round, 1.0 + round, MB(100), MB(120)));
        runs.push_back(record(Backend::Jemalloc, round, 2.0 * round, MB(100), MB(150)));
    }
    const CompareResult r =
        summarize({"python3", "job.py"}, 3, "/tmp/d", {Backend::Glibc, Backend::Jemalloc}, runs);
    REQUIRE(r.backends.size() == 2);
    CHECK(r.backends[0].wall_s_median == Approx(3.0));
    CHECK(r.backends[1].wall_s_median == Approx(4.0));
    CHECK(r.backends[1].wall_s_min == Approx(2.0));
    CHECK(r.backends[1].wall_s_max == Approx(6.0));
    CHECK(r.backends[0].rss_over_live == Approx(1.2));
    CHECK(r.backends[1].rss_over_live == Approx(1.5));
    CHECK(r.backends[1].same_result);
    CHECK(r.backends[0].traces.size() == 3);
    CHECK(r.live_spread == 0);
    REQUIRE_FALSE(r.notes.empty());
    CHECK(r.notes[0].find("agree") != std::string::npos);

    const std::string table = render_table(r);
    CHECK(table.find("1.20x") != std::string::npos);
    CHECK(table.find("1.50x") != std::string::npos);
}

TEST_CASE("live bytes that differ by more than 1% and different outputs are called out") {
    std::vector<RunRecord> runs = {record(Backend::Glibc, 1, 1, MB(100), MB(120)),
                                   record(Backend::Mimalloc, 1, 1, MB(103), MB(130), 11)};
    const CompareResult r =
        summarize({"job"}, 1, "/tmp/d", {Backend::Glibc, Backend::Mimalloc}, runs);
    CHECK(r.live_spread == Approx(0.03));
    CHECK(r.notes[0].find("DIFFER by 3.00%") != std::string::npos);
    CHECK_FALSE(r.backends[1].same_result);
    CHECK(render_table(r).find("NO") != std::string::npos);
}

TEST_CASE("the JSON has every key of pymemtrace-compare/1") {
    const CompareResult r = summarize({"job", "--x"}, 1, "/tmp/d", {Backend::Glibc},
                                      {record(Backend::Glibc, 1, 1.5, MB(10), MB(12))});
    const nlohmann::json j = render_json(r);
    CHECK(j["schema"] == "pymemtrace-compare/1");
    CHECK(j["command"] == nlohmann::json::array({"job", "--x"}));
    CHECK(j["repeat"] == 1);
    const auto& b = j["backends"][0];
    for (const char* key : {"allocator", "wall_s_median", "wall_s_min", "wall_s_max",
                            "peak_live_bytes", "peak_rss_bytes", "exit_rss_bytes", "rss_over_live",
                            "minor_faults", "alloc_calls", "same_result", "traces"})
        CHECK(b.contains(key));
    CHECK(b["peak_live_bytes"] == MB(10));
    CHECK(b["traces"] == nlohmann::json::array({"glibc-1.pmt"}));
}

TEST_CASE("the HTML page escapes the command and needs nothing from outside") {
    const CompareResult r = summarize({"job", "<script>&\""}, 1, "/tmp/<d>", {Backend::Glibc},
                                      {record(Backend::Glibc, 1, 1.5, MB(10), MB(12))});
    const std::string page = render_html(r);
    CHECK(page.find("<script>") == std::string::npos);
    CHECK(page.find("&lt;script&gt;&amp;&quot;") != std::string::npos);
    CHECK(page.find("/tmp/&lt;d&gt;") != std::string::npos);
    CHECK(page.find("src=") == std::string::npos);
    CHECK(page.find("href=") == std::string::npos);
}

TEST_CASE("commands are shown as a shell would need them typed") {
    CHECK(command_text({"python3", "-c", "print('a b')"}) == "python3 -c 'print('\\''a b'\\'')'");
    CHECK(command_text({"ls", ""}) == "ls ''");
}
