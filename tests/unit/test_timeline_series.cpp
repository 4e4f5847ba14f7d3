// TimelineAnalysis: downsampling keeps the exact peak, every row is a sample of the true live
// curve, top sites are ranked and bounded by live, and the CSV/JSON forms have their shape.
// Ground truth comes from the synthetic traces' construction (trace_builder.hpp).
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <sstream>

#include "timeline.hpp"
#include "trace_builder.hpp"

using namespace pmt;
using namespace pmt::analyzer;
using namespace pmt::testing;

namespace {

void run(const std::vector<uint8_t>& bytes, TimelineAnalysis& t, LiveHeap& heap) {
    TempTrace f(bytes);
    TraceReader reader(f.path());
    replay(reader, heap, {&t});
}

uint64_t max_live(const TimelineAnalysis& t) {
    uint64_t m = 0;
    for (const TimelinePoint& p : t.points()) m = std::max(m, p.live_bytes);
    return m;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string part; std::getline(in, part, sep);) out.push_back(part);
    return out;
}

}  // namespace

TEST_CASE("downsampling a long churning trace keeps the exact peak sample", "[timeline]") {
    // 40 000 events over 10 s of random churn, with one narrow 50 MB spike two thirds in that
    // lasts 1 µs: far narrower than any bucket.
    TraceBuilder b;
    const auto s = b.stack({{"job.py", "churn", 7}});
    const auto spike = b.stack({{"job.py", "spike", 9}});
    std::mt19937_64 rng(42);
    std::map<uint64_t, uint64_t> live;  // addr -> size, ground truth
    uint64_t t = 0, addr = 0x100000, truth_peak = 0, truth_peak_t = 0, now = 0;
    b.thread(1);
    for (int i = 0; i < 20000; ++i) {
        t += 500000;  // 0.5 ms
        const uint64_t size = 1000 + rng() % 200000;
        b.alloc(t, addr, size, s);
        live[addr] = size;
        now += size;
        addr += 0x100000;
        if (now > truth_peak) truth_peak = now, truth_peak_t = t;
        if (live.size() > 40) {
            auto victim = live.begin();
            std::advance(victim, rng() % live.size());
            t += 1000;
            b.free(t, victim->first);
            now -= victim->second;
            live.erase(victim);
        }
        if (i == 13000) {
            b.alloc(t + 100, 0xdead0000, MB(50), spike).free(t + 1100, 0xdead0000);
            if (now + MB(50) > truth_peak) truth_peak = now + MB(50), truth_peak_t = t + 100;
            t += 1100;
        }
        if (i % 20 == 0) b.rss(t + 10, now + MB(30));
    }
    TimelineOptions opt;
    opt.max_points = 100;
    TimelineAnalysis tl(opt);
    LiveHeap heap;
    run(b.bytes(), tl, heap);
    CHECK(heap.peak_bytes() == truth_peak);
    CHECK(max_live(tl) == truth_peak);
    CHECK(tl.peak_bytes() == truth_peak);
    CHECK(tl.peak_time_ns() == truth_peak_t);
    // Buckets: at most max_points, plus an end row at most per quiet gap (none here but the last).
    CHECK(tl.points().size() <= 101);
    CHECK(tl.points().size() >= 40);
    // The row holding the peak is at the peak's exact time.
    bool found = false;
    for (const TimelinePoint& p : tl.points())
        if (p.live_bytes == truth_peak) found = p.time_ns == truth_peak_t;
    CHECK(found);
    // Times strictly ordered; RSS present once sampled.
    for (size_t i = 1; i < tl.points().size(); ++i)
        CHECK(tl.points()[i].time_ns >= tl.points()[i - 1].time_ns);
    CHECK(tl.points().back().rss_bytes > MB(30));
}

TEST_CASE("every row is a value the live curve took, and quiet gaps hold the last value",
          "[timeline]") {
    TraceBuilder b;
    const auto a = b.stack({{"job.py", "load", 5}, {"job.py", "<module>", 20}});
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(10), a)   // 10
        .alloc(ms(2), 0x2000, MB(30), a)   // 40
        .free(ms(3), 0x2000)               // 10
        .alloc(ms(900), 0x3000, MB(5), a)  // 15 after a 0.9 s quiet gap
        .free(ms(901), 0x1000);            // 5
    TimelineOptions opt;
    opt.resolution_ns = ms(10);
    TimelineAnalysis tl(opt);
    LiveHeap heap;
    run(b.bytes(), tl, heap);
    // Bucket [0,10 ms): max 40 MB at 2 ms, then it ends at 10 MB (3 ms) before the gap.
    const auto& p = tl.points();
    REQUIRE(p.size() == 4);
    CHECK(p[0].time_ns == ms(2));
    CHECK(p[0].live_bytes == MB(40));
    CHECK(p[1].time_ns == ms(3));
    CHECK(p[1].live_bytes == MB(10));
    CHECK(p[2].time_ns == ms(900));
    CHECK(p[2].live_bytes == MB(15));
    CHECK(p[3].time_ns == ms(901));
    CHECK(p[3].live_bytes == MB(5));
    CHECK(tl.resolution_ns() == ms(10));
}

TEST_CASE("top sites are ranked by their largest bytes and never exceed live", "[timeline]") {
    TraceBuilder b;
    const auto small = b.stack({{"job.py", "small", 3}});
    const auto big = b.stack({{"job.py", "big", 4}});
    const auto mid = b.stack({{"lib.py", "mid", 8}});
    b.thread(1);
    for (uint64_t i = 0; i < 50; ++i) {
        b.alloc(ms(10 * i + 1), 0x10000 + i * 16, 1000, small);
        if (i == 10) b.alloc(ms(10 * i + 2), 0x900000, MB(40), big);
        if (i == 20) b.free(ms(10 * i + 2), 0x900000);
        if (i == 30) b.alloc(ms(10 * i + 2), 0xa00000, MB(8), mid);
    }
    TimelineOptions opt;
    opt.top_sites = 2;
    TimelineAnalysis tl(opt);
    LiveHeap heap;
    run(b.bytes(), tl, heap);
    REQUIRE(tl.sites().size() == 2);
    CHECK(tl.sites()[0].function == "big");
    CHECK(tl.sites()[0].max_bytes == MB(40));
    CHECK(tl.sites()[1].function == "mid");
    CHECK(tl.sites()[1].label() == "mid (lib.py:8)");
    for (const TimelinePoint& p : tl.points()) {
        REQUIRE(p.site_bytes.size() == 2);
        CHECK(p.site_bytes[0] + p.site_bytes[1] <= p.live_bytes);
    }
    // After the free, big holds nothing; at the end mid holds its 8 MB.
    CHECK(tl.points().back().site_bytes[0] == 0);
    CHECK(tl.points().back().site_bytes[1] == MB(8));
}

TEST_CASE("timeline CSV and JSON have one row per point and the documented columns", "[timeline]") {
    TraceBuilder b;
    const auto s = b.stack({{"a,b.py", "f\"x\"", 2}});
    b.thread(1).alloc(ms(1), 0x1000, 4096, s).rss(ms(2), 9000000).alloc(ms(50), 0x2000, 100, s);
    TimelineAnalysis tl;
    LiveHeap heap;
    run(b.bytes(), tl, heap);
    const std::vector<std::string> lines = split(tl.to_csv(), '\n');
    REQUIRE(lines.size() == tl.points().size() + 1);
    CHECK(lines[0] == "time_s,live_bytes,rss_bytes,\"f\"\"x\"\" (a,b.py:2)\"");
    CHECK(lines[1] == "0.001000,4096,0,4096");
    CHECK(lines.back() == "0.050000,4196,9000000,4196");
    const nlohmann::json j = tl.to_json();
    for (const char* key : {"resolution_s", "peak", "sites", "time_s", "live_bytes", "rss_bytes",
                            "site_bytes", "end_time_s"})
        CHECK(j.contains(key));
    CHECK(j["time_s"].size() == tl.points().size());
    CHECK(j["live_bytes"].size() == tl.points().size());
    CHECK(j["site_bytes"][0].size() == tl.points().size());
    CHECK(j["peak"]["live_bytes"] == 4196);
    CHECK(j["peak"]["time_s"].get<double>() == Approx(0.05));
}

TEST_CASE("durations parse with units and bad ones are refused", "[timeline]") {
    CHECK(parse_duration_ns("10ms") == 10000000);
    CHECK(parse_duration_ns("1s") == 1000000000);
    CHECK(parse_duration_ns("250us") == 250000);
    CHECK(parse_duration_ns("0.5s") == 500000000);
    CHECK_THROWS(parse_duration_ns("fast"));
    CHECK_THROWS(parse_duration_ns("10 parsecs"));
    CHECK_THROWS(parse_duration_ns("-1s"));
}

TEST_CASE("a site is the program's own line, not the library frame under it", "[timeline]") {
    TraceBuilder b;
    const auto s = b.stack({{"/usr/lib/python3/dist-packages/numpy/core/numeric.py", "ones", 205},
                            {"/home/u/job.py", "load", 12},
                            {"/home/u/job.py", "<module>", 30}});
    b.thread(1).alloc(ms(1), 0x1000, MB(80), s);
    TimelineAnalysis tl;
    LiveHeap heap;
    run(b.bytes(), tl, heap);
    REQUIRE(tl.sites().size() == 1);
    CHECK(tl.sites()[0].function == "load");
    CHECK(tl.sites()[0].line == 12);
    CHECK(tl.sites()[0].max_bytes == MB(80));
}
