// AdviceAnalysis on synthetic traces: `del` for intermediates kept until exit, numpy arrays for
// populations of pymalloc arenas, conditional float32 for big buffers, and the JSON shape of
// the "windows" and "advice" keys (issue 3's schema).
#include <catch2/catch.hpp>

#include "windows_run.hpp"

using namespace pmt;
using namespace pmt::analyzer;
using namespace pmt::testing;

TEST_CASE("intermediates kept until exit get del advice with the peak if freed",
          "[windows][advice]") {
    TraceBuilder b;
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(200), b.line(10))  // d1
        .alloc(ms(2), 0x2000, MB(200), b.line(11))  // d2 = f(d1)
        .alloc(ms(3), 0x3000, MB(200), b.line(12))  // d3 = g(d2)
        .alloc(ms(4), 0x4000, MB(600), b.line(14))  // unrelated work: the peak
        .alloc(ms(5), 0x5000, 1000, b.line(16))     // the script goes on
        .alloc(ms(6), 0x6000, 100)                  // teardown (no Python frame)
        .free(ms(7), 0x1000)
        .free(ms(8), 0x2000)
        .free(ms(9), 0x3000)
        .free(ms(10), 0x4000);
    WindowRun r(b);
    CHECK(r.w.windows().empty());
    const Advice* d = r.find("del");
    REQUIRE(d);
    CHECK(d->line == 10);
    // d1..d3 released once d3 was made: 600 MB then, 600 MB + 1000 B at the end.
    REQUIRE(d->saving_bytes);
    CHECK(*d->saving_bytes == MB(600));
    CHECK(d->text.find("job.py:11") != std::string::npos);
    CHECK(d->text.find("job.py:14") == std::string::npos);  // the newest stays out
}

TEST_CASE("a population of arenas from one line gets numpy advice with an estimated count",
          "[windows][advice]") {
    TraceBuilder b;
    const auto lc = b.listcomp(5);
    uint64_t now = 0;
    b.thread(1).arenas(now, 0x10000000, 40, lc);             // at 1..40 ms
    b.alloc(ms(50), 0x100, MB(10), lc, AllocKind::Realloc);  // the list's pointer array
    b.alloc(ms(60), 0x200, 1000, b.line(6));
    WindowRun r(b);
    const Advice* n = r.find("numpy-array");
    REQUIRE(n);
    CHECK(n->line == 5);
    const uint64_t count = 40 * kArena / 32;
    REQUIRE(n->saving_bytes);
    CHECK(*n->saving_bytes == 40 * kArena + MB(10) - count * 8);
    CHECK(n->text.find("1,310,720") != std::string::npos);
    CHECK(n->text.find("if they are floats") != std::string::npos);
}

TEST_CASE("big buffers dominating the peak get float32 advice conditional on precision",
          "[windows][advice]") {
    TraceBuilder b;
    const auto a = b.line(7), c = b.line(8);
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(100), a)
        .alloc(ms(2), 0x2000, MB(100), c)
        .alloc(ms(3), 0x3000, MB(1) / 2, c);
    WindowRun r(b);
    const Advice* f = r.find("float32");
    REQUIRE(f);
    REQUIRE(f->saving_bytes);
    CHECK(*f->saving_bytes == MB(100));
    CHECK(f->text.find("precision") != std::string::npos);
    CHECK(r.find("numpy-array") == nullptr);
}

TEST_CASE("windows and advice JSON follow the report schema", "[windows][advice]") {
    TraceBuilder b;
    module_rebind(b);
    WindowRun r(b);
    REQUIRE(r.json["windows"].size() == 1);
    const auto& w = r.json["windows"][0];
    for (const char* k :
         {"bytes", "cost_bytes", "start_s", "end_s", "new", "old", "remedy", "peak_if_fixed_bytes"})
        CHECK(w.contains(k));
    CHECK(w["new"]["file"] == "job.py");
    CHECK(w["new"]["line"] == 13);
    CHECK(w["new"]["function"] == "step");
    CHECK(w["new"]["stack"].size() == 2);
    CHECK(w["old"]["line"] == 9);
    CHECK(w["remedy"] == "in-place");
    CHECK(w["start_s"].get<double>() == Approx(0.020));
    CHECK(w["end_s"].get<double>() == Approx(0.030));
    REQUIRE(r.json["advice"].is_array());
    bool window_advice = false;
    for (const auto& a : r.json["advice"]) {
        for (const char* k : {"kind", "file", "line", "saving_bytes", "text"}) CHECK(a.contains(k));
        if (a["kind"] == "window") {
            window_advice = true;
            CHECK(a["line"] == 21);
            CHECK(a["saving_bytes"] == MB(400) - 1000);
        }
    }
    CHECK(window_advice);
}
