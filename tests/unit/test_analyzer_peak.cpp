// PeakAnalysis: exact peak, what was live at the peak by stack and by innermost line, with
// synthetic traces whose answers are known by construction (tests/unit/trace_builder.hpp).
#include <catch2/catch.hpp>

#include "peak.hpp"
#include "trace_builder.hpp"

using namespace pmt;
using namespace pmt::analyzer;
using namespace pmt::testing;

namespace {

struct Replayed {
    PeakAnalysis peak{0};
    LiveHeap heap;
    explicit Replayed(TraceBuilder& b) { replay_built(b, heap, {&peak}); }
    // The peak's size and time, the same size as the heap's own exact peak.
    void check_peak(uint64_t bytes, uint64_t time_ns) const {
        CHECK(peak.peak_bytes() == bytes);
        CHECK(peak.peak_time_ns() == time_ns);
        CHECK(peak.peak_bytes() == heap.peak_bytes());
    }
};

const PeakSite* find_site(const PeakAnalysis& p, const std::string& function, uint32_t line) {
    for (const PeakSite& s : p.sites())
        if (s.function == function && s.line == line) return &s;
    return nullptr;
}

uint64_t sum_sites(const PeakAnalysis& p) {
    uint64_t n = 0;
    for (const PeakSite& s : p.sites()) n += s.bytes;
    return n;
}

}  // namespace

TEST_CASE("the peak is the exact maximum of live bytes and its time", "[analyzer][peak]") {
    TraceBuilder b;
    const auto a = b.stack({{"job.py", "load", 5}, {"job.py", "<module>", 20}});
    const auto c = b.stack({{"job.py", "step", 9}, {"job.py", "<module>", 21}});
    b.thread(1)
        .alloc(ms(1), 0x10000, MB(10), a)
        .alloc(ms(2), 0x20000, MB(20), c)
        .free(ms(3), 0x10000)
        .alloc(ms(4), 0x30000, MB(5), a)
        .free(ms(5), 0x20000);
    Replayed r(b);
    r.check_peak(MB(30), ms(2));
    CHECK(r.peak.peak_blocks() == 2);
    REQUIRE(r.peak.sites().size() == 2);
    CHECK(r.peak.sites()[0].function == "step");
    CHECK(r.peak.sites()[0].bytes == MB(20));
    CHECK(r.peak.sites()[1].function == "load");
    CHECK(r.peak.sites()[1].bytes == MB(10));
    CHECK(r.peak.final_live_bytes() == MB(5));
}

TEST_CASE("bytes a stack gained or lost after the peak do not change its share at the peak",
          "[analyzer][peak]") {
    TraceBuilder b;
    const auto s = b.line(3, "small"), t = b.line(4, "big");
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(10), s)
        .alloc(ms(2), 0x2000, MB(5), t)  // first peak: 15 MB
        .free(ms(3), 0x1000)
        .alloc(ms(4), 0x3000, MB(3), s)
        .alloc(ms(5), 0x4000, MB(12), t)  // true peak: 5 + 3 + 12 = 20 MB
        .free(ms(6), 0x3000)              // s changes after the peak...
        .alloc(ms(7), 0x5000, MB(2), s)   // ...twice, without a new peak (19 MB)
        .free(ms(8), 0x2000);             // and t loses 5 MB after the peak
    Replayed r(b);
    r.check_peak(MB(20), ms(5));
    const PeakSite* small = find_site(r.peak, "small", 3);
    const PeakSite* big = find_site(r.peak, "big", 4);
    REQUIRE(small);
    REQUIRE(big);
    CHECK(small->bytes == MB(3));
    CHECK(small->blocks == 1);
    CHECK(big->bytes == MB(17));
    CHECK(big->blocks == 2);
    CHECK(sum_sites(r.peak) == r.peak.peak_bytes());
}

TEST_CASE("stacks with the same innermost line are one site with the largest call path",
          "[analyzer][peak]") {
    TraceBuilder b;
    const auto via21 = b.stack({{"job.py", "step", 13}, {"job.py", "main", 21}});
    const auto via25 = b.stack({{"job.py", "step", 13}, {"job.py", "main", 25}});
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(6), via25)
        .alloc(ms(2), 0x2000, MB(10), via21)
        .alloc(ms(3), 0x3000, MB(1), via25);
    Replayed r(b);
    REQUIRE(r.peak.sites().size() == 1);
    const PeakSite& s = r.peak.sites()[0];
    CHECK(s.file == "job.py");
    CHECK(s.line == 13);
    CHECK(s.bytes == MB(17));
    CHECK(s.blocks == 3);
    CHECK(s.largest_stack == via21);
    REQUIRE(s.stack.size() == 2);
    CHECK(s.stack[0].function == "step");
    CHECK(s.stack[1].line == 21);
    REQUIRE(r.peak.stacks_at_peak().size() == 2);
    CHECK(r.peak.stacks_at_peak()[0].stack_id == via21);
}

TEST_CASE("allocations without a Python frame are grouped as <native>", "[analyzer][peak]") {
    TraceBuilder b;
    const auto py = b.line(2, "f");
    b.thread(1)
        .alloc(ms(1), 0x1000, 700, 0)
        .alloc(ms(2), 0x2000, 300, 0)
        .alloc(ms(3), 0x3000, 500, py);
    Replayed r(b);
    REQUIRE(r.peak.sites().size() == 2);
    CHECK(r.peak.sites()[0].function == "<native>");
    CHECK(r.peak.sites()[0].native());
    CHECK(r.peak.sites()[0].bytes == 1000);
    CHECK(r.peak.sites()[0].blocks == 2);
    CHECK(r.peak.sites()[1].bytes == 500);
}

TEST_CASE("realloc moves a block's bytes and anonymous mappings count, file mappings do not",
          "[analyzer][peak]") {
    TraceBuilder b;
    const auto grow = b.line(7, "grow"), arena = b.line(8, "objs");
    b.thread(1)
        .alloc(ms(1), 0x1000, 100, grow)
        .realloc(ms(2), 0x1000, 0x9000, 5000, grow)  // 5000 live, 100 gone
        .mmap(ms(3), 0x7f0000000000, 1 << 20, arena)
        .mmap(ms(4), 0x7f1000000000, 8 << 20, 0, /*anonymous=*/false)
        .munmap(ms(5), 0x7f0000000000, 1 << 20);
    Replayed r(b);
    r.check_peak(5000 + (1 << 20), ms(3));
    CHECK(r.peak.final_live_bytes() == 5000);
    const PeakSite* g = find_site(r.peak, "grow", 7);
    REQUIRE(g);
    CHECK(g->bytes == 5000);
    CHECK(g->blocks == 1);
}

TEST_CASE("threads interleaved in time give the same exact peak", "[analyzer][peak]") {
    TraceBuilder b;
    const auto w = b.line(30, "worker");
    // Each thread holds 4 MB from t=10*i to t=10*i+25 ms: at most three overlap.
    for (uint32_t i = 0; i < 4; ++i)
        b.thread(10 + i).alloc(ms(10 * i), 0x100000 * (i + 1), MB(4), w);
    for (uint32_t i = 0; i < 4; ++i) b.thread(10 + i).free(ms(10 * i + 25), 0x100000 * (i + 1));
    Replayed r(b);
    r.check_peak(MB(12), ms(20));
    CHECK(r.peak.sites().at(0).bytes == MB(12));
    CHECK(r.peak.sites().at(0).blocks == 3);
}

TEST_CASE("the RSS peak is the largest sample and its time", "[analyzer][peak]") {
    TraceBuilder b;
    b.thread(1).rss(ms(10), MB(30)).rss(ms(20), MB(90)).rss(ms(30), MB(40));
    Replayed r(b);
    CHECK(r.peak.has_rss());
    CHECK(r.peak.rss_peak_bytes() == MB(90));
    CHECK(r.peak.rss_peak_time_ns() == ms(20));
    CHECK(r.peak.peak_bytes() == 0);
    CHECK(r.peak.sites().empty());
}

TEST_CASE("many stacks: sites add up to the peak", "[analyzer][peak]") {
    TraceBuilder b;
    std::vector<uint64_t> stacks;
    for (uint32_t i = 0; i < 300; ++i) stacks.push_back(b.stack({{"gen.py", "f", i + 1}}));
    uint64_t t = 0;
    // Grow to a peak, shrink, then grow again to a lower level with other stacks.
    for (uint32_t i = 0; i < 300; ++i) b.alloc(++t, 0x1000 + 16 * i, 1000 + i, stacks[i]);
    for (uint32_t i = 0; i < 300; i += 2) b.free(++t, 0x1000 + 16 * i);
    for (uint32_t i = 0; i < 100; ++i) b.alloc(++t, 0x90000 + 16 * i, 500, stacks[i]);
    Replayed r(b);
    uint64_t expect = 0;
    for (uint32_t i = 0; i < 300; ++i) expect += 1000 + i;
    CHECK(r.peak.peak_bytes() == expect);
    CHECK(r.peak.peak_bytes() == r.heap.peak_bytes());
    CHECK(r.peak.sites().size() == 300);
    CHECK(sum_sites(r.peak) == expect);
    CHECK(r.peak.sites()[0].line == 300);
}

TEST_CASE("a partial munmap after the peak leaves the mapping's share at the peak intact",
          "[analyzer][peak]") {
    TraceBuilder b;
    const auto arena = b.line(8, "objs"), later = b.line(9, "more");
    b.thread(1)
        .mmap(ms(1), 0x7f0000000000, 4 << 20, arena)
        .munmap(ms(2), 0x7f0000100000, 1 << 20)  // a hole in the middle: 3 MiB left
        .alloc(ms(3), 0x1000, 2 << 20, later)    // 5 MiB: the peak
        .munmap(ms(4), 0x7f0000000000, 1 << 20);
    Replayed r(b);
    r.check_peak(5u << 20, ms(3));
    const PeakSite* a = find_site(r.peak, "objs", 8);
    REQUIRE(a);
    CHECK(a->bytes == (3u << 20));
    CHECK(a->blocks == 2);  // the hole split the mapping in two
    CHECK(r.peak.peak_blocks() == 3);
    CHECK(r.peak.final_live_bytes() == (4u << 20));
    CHECK(sum_sites(r.peak) == r.peak.peak_bytes());
}
