// WindowAnalysis on synthetic traces whose windows (or their absence) are known by
// construction: rebinding at module level and inside functions, list rebuilds made of pymalloc
// arenas, loops, and the negative controls of issue 3.
#include <catch2/catch.hpp>

#include "windows_run.hpp"

using namespace pmt;
using namespace pmt::analyzer;
using namespace pmt::testing;

TEST_CASE("data = step(data) at module level is a window that costs the old buffer", "[windows]") {
    TraceBuilder b;
    module_rebind(b);
    WindowRun r(b);
    REQUIRE(r.w.windows().size() == 1);
    const Window& w = r.w.windows()[0];
    CHECK(w.old_bytes == MB(400));
    CHECK(w.new_bytes == MB(400));
    CHECK(r.new_line() == 13);
    CHECK(r.old_line() == 9);
    CHECK(w.statement.back().line == 21);
    CHECK(w.open_ns == ms(20));
    CHECK(w.close_ns == ms(30));
    // Afterwards the new buffer and line 22's 1000 bytes are live: that is the fixed peak.
    CHECK(w.peak_if_fixed == MB(400) + 1000);
    CHECK(w.cost_bytes == MB(400) - 1000);
    CHECK(w.remedy == "in-place");
}

TEST_CASE("inside a function the statement is the caller's line that rebinds", "[windows]") {
    TraceBuilder b;
    const auto load =
        b.stack({{"job.py", "load", 5}, {"job.py", "main", 10}, {"job.py", "<module>", 20}});
    const auto step =
        b.stack({{"job.py", "step", 13}, {"job.py", "main", 11}, {"job.py", "<module>", 20}});
    const auto tail = b.stack({{"job.py", "main", 12}, {"job.py", "<module>", 20}});
    rebind(b, MB(100), load, step, tail);
    WindowRun r(b);
    REQUIRE(r.w.windows().size() == 1);
    CHECK(r.w.windows()[0].statement.back().line == 11);
    CHECK(r.w.windows()[0].statement.size() == 2);
    CHECK(r.w.windows()[0].cost_bytes == MB(100) - 1000);
}

TEST_CASE("a rebuilt list of small objects is a window made of arenas released in a burst",
          "[windows]") {
    ListRebuild t;
    // Old list: 20 arenas and a pointer array grown by realloc.
    t.alloc(t.now, 0x100, 1000, t.old_lc, AllocKind::Realloc);
    t.arenas(t.now, 0x10000000, 20, t.old_lc);
    t.realloc(t.now += ms(1), 0x100, 0x200, MB(5), t.old_lc);
    // New list: 20 more arenas and its own pointer array.
    t.alloc(t.now += ms(1), 0x300, 1000, t.new_lc, AllocKind::Realloc);
    t.arenas(t.now, 0x20000000, 20, t.new_lc);
    t.realloc(t.now += ms(1), 0x300, 0x400, MB(5), t.new_lc);
    const uint64_t open = ms(23);  // the new pointer array's first allocation
    const uint64_t release = t.now + ms(1);
    // Rebinding: the old arenas go in a burst, then the old pointer array.
    for (int i = 19; i >= 0; --i) t.munmap(t.now += ms(1) / 2, 0x10000000 + i * kArena, kArena);
    t.free(t.now += ms(1), 0x200);
    t.alloc(t.now += ms(1), 0x500, 100, t.tail);
    WindowRun r(t);
    REQUIRE(r.w.windows().size() == 1);
    const Window& w = r.w.windows()[0];
    CHECK(w.old_bytes == 20 * kArena + MB(5));
    CHECK(w.new_bytes == 20 * kArena + MB(5));
    CHECK(w.old_mappings == 20);
    CHECK(w.remedy == "replace-elements");
    CHECK(w.statement.back().line == 5);
    CHECK(w.open_ns == open);
    CHECK(w.close_ns == release - ms(1) / 2);
    CHECK(w.cost_bytes == 20 * kArena + MB(5) - 100);
}

TEST_CASE("a loop rebinding a big array is one window entry counted per iteration", "[windows]") {
    TraceBuilder b;
    const auto loop = b.line(5), tail = b.line(7);
    auto& t = b.thread(1);
    t.alloc(ms(1), 0x1000, MB(50), loop);
    for (uint64_t i = 1; i <= 3; ++i) {
        t.alloc(ms(10 * i), 0x1000 + i * 0x1000, MB(50), loop);
        t.free(ms(10 * i + 5), 0x1000 + (i - 1) * 0x1000);
    }
    t.alloc(ms(100), 0x9000, 10, tail);
    WindowRun r(b);
    REQUIRE(r.w.windows().size() == 1);
    CHECK(r.w.windows()[0].count == 3);
    CHECK(r.w.windows()[0].old_bytes == MB(50));
    // Fixing the line fixes every iteration: the peak falls to one buffer (+ the tail).
    CHECK(r.w.windows()[0].cost_bytes == MB(50) - 10);
    CHECK(r.new_line() == 5);
}

TEST_CASE("temporaries that never overlap are not windows", "[windows][negative]") {
    TraceBuilder b;
    const auto make = b.line(5), use = b.line(6);
    auto& t = b.thread(1);
    for (uint64_t i = 0; i < 4; ++i) {
        t.alloc(ms(10 * i + 1), 0x1000, MB(50), make);
        t.alloc(ms(10 * i + 2), 0x2000 + i * 0x100, 64, use);
        t.free(ms(10 * i + 3), 0x1000);
    }
    t.alloc(ms(100), 0x9000, 10, use);
    WindowRun r(b);
    CHECK(r.w.windows().empty());
}

TEST_CASE("two arrays both kept and released at exit are not a window", "[windows][negative]") {
    TraceBuilder b;
    const auto a = b.line(3), c = b.line(4);
    const auto fin = b.stack({{"threading.py", "_shutdown", 1500}});
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(80), a)
        .alloc(ms(2), 0x2000, MB(80), c)
        .alloc(ms(3), 0x3000, 100, fin)
        .free(ms(4), 0x1000)
        .alloc(ms(5), 0x4000, 100)
        .free(ms(6), 0x2000);
    WindowRun r(b);
    CHECK(r.w.windows().empty());
}

TEST_CASE("memory released at exit right after the last line is not a window",
          "[windows][negative]") {
    TraceBuilder b;
    const auto a = b.line(3);
    const auto c = b.stack({{"job.py", "f", 9}, {"job.py", "<module>", 4}});
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(80), a)
        .alloc(ms(2), 0x2000, MB(80), c)
        .free(ms(4), 0x1000)
        .alloc(ms(5), 0x4000, 100)
        .free(ms(6), 0x2000);
    WindowRun r(b);
    CHECK(r.w.windows().empty());
}

TEST_CASE("a window far from the peak costs nothing and ranks after one at the peak", "[windows]") {
    TraceBuilder b;
    const auto s1 = b.line(3), s2 = b.line(4), s3 = b.line(8), s4 = b.line(9), tail = b.line(10);
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(10), s1)
        .alloc(ms(2), 0x2000, MB(10), s2)
        .free(ms(3), 0x1000)
        .alloc(ms(10), 0x3000, MB(100), s3)
        .alloc(ms(11), 0x4000, MB(100), s4)
        .free(ms(12), 0x3000)
        .alloc(ms(13), 0x5000, 10, tail);
    WindowRun r(b);
    REQUIRE(r.w.windows().size() == 2);
    CHECK(r.w.windows()[0].old_bytes == MB(100));
    CHECK(r.w.windows()[0].cost_bytes == MB(100) - 10);
    CHECK(r.w.windows()[0].peak_if_fixed == MB(110) + 10);
    CHECK(r.w.windows()[1].old_bytes == MB(10));
    CHECK(r.w.windows()[1].cost_bytes == 0);
}

TEST_CASE("a deallocation paused for longer than any gap is still one old generation",
          "[windows]") {
    ListRebuild t;
    t.arenas(t.now, 0x10000000, 8, t.old_lc);
    t.arenas(t.now, 0x20000000, 8, t.new_lc);
    for (int i = 0; i < 8; ++i) {
        // The process stalls for 600 ms halfway through (a loaded machine, a slow disk).
        t.now += i == 4 ? ms(600) : ms(1);
        t.munmap(t.now, 0x10000000 + i * kArena, kArena);
    }
    t.alloc(t.now + ms(1), 0x500, 100, t.tail);
    WindowRun r(t);
    REQUIRE(r.w.windows().size() == 1);
    CHECK(r.w.windows()[0].old_bytes == 8 * kArena);
    CHECK(r.w.windows()[0].count == 1);
}
