// Unit tests of EventMerger: threads merged by (time, tid, record order) at epochs, sequence
// numbers, definitions applied on arrival, and malformed or hostile payloads rejected.
#include <catch2/catch.hpp>
#include <tuple>

#include "test_trace_util.hpp"

using namespace pmt;
using namespace pmt::test;

namespace {

std::vector<uint8_t> payload(uint64_t tid, uint64_t base,
                             const std::vector<std::pair<uint64_t, uint64_t>>& allocs) {
    std::vector<uint8_t> buf(4096);
    RecordEncoder e;
    e.reset(buf.data(), buf.size(), tid, base, 0);
    for (auto [t, addr] : allocs) REQUIRE(e.alloc(AllocKind::Malloc, t, addr, 8, 0));
    buf.resize(e.size());
    return buf;
}

}  // namespace

TEST_CASE(
    "threads merge in (time, tid, record order) and only events before the epoch are released",
    "[trace]") {
    EventMerger m;
    // tid 9 and tid 3 share times 10 and 20; tid 9 has two events at 20 in record order.
    auto a1 = payload(9, 0, {{5, 0x91}, {10, 0x92}, {20, 0x93}, {20, 0x94}, {35, 0x95}});
    auto b1 = payload(3, 0, {{10, 0x31}, {20, 0x32}, {30, 0x33}});
    m.add_thread_payload(a1.data(), a1.size());
    m.add_thread_payload(b1.data(), b1.size());
    CHECK(m.queued() == 8);

    Collect c;
    m.release_before(30, c);  // 30 itself stays queued
    std::vector<uint64_t> got;
    for (auto& e : c.events) got.push_back(e.addr);
    CHECK(got == std::vector<uint64_t>{0x91, 0x31, 0x92, 0x32, 0x93, 0x94});
    CHECK(m.queued() == 2);
    CHECK(m.delivered() == 6);
    CHECK(m.last_time_ns() == 20);

    // The next flush: thread 3 continues, a new thread 1 appears with an event at 30.
    auto b2 = payload(3, 31, {{31, 0x34}});
    auto n1 = payload(1, 30, {{30, 0x11}, {40, 0x12}});
    m.add_thread_payload(b2.data(), b2.size());
    m.add_thread_payload(n1.data(), n1.size());
    m.release_before(UINT64_MAX, c);
    got.clear();
    for (auto& e : c.events) got.push_back(e.addr);
    CHECK(got ==
          std::vector<uint64_t>{0x91, 0x31, 0x92, 0x32, 0x93, 0x94, 0x11, 0x33, 0x34, 0x95, 0x12});
    for (size_t i = 0; i < c.events.size(); ++i) CHECK(c.events[i].seq == i);
    CHECK(m.queued() == 0);
}

TEST_CASE("a multi-thread trace with epochs is delivered sorted with consecutive seq", "[trace]") {
    TraceBuilder b(Codec::Lz4);
    uint64_t addr = 0x1000;
    // 4 threads, 5 flushes; each thread's times interleave with the others' and repeat.
    for (int flush = 0; flush < 5; ++flush) {
        for (uint64_t tid : {40, 10, 30, 20}) {
            uint64_t base = flush * 1000;
            RecordEncoder& e = b.thread(tid, base);
            for (int k = 0; k < 50; ++k)  // tids 10 and 40 collide on every time
                REQUIRE(e.alloc(AllocKind::Malloc, base + k * 18 + (tid % 3), addr++, 8, 0));
            b.end_thread();
        }
        b.epoch(flush * 1000 + 1000);
    }
    b.end({});
    TempFile f;
    f.write(b.bytes);
    TraceReader r(f.path);
    Collect c;
    r.read(c);
    REQUIRE(c.events.size() == 5 * 4 * 50);
    for (size_t i = 1; i < c.events.size(); ++i) {
        const Event& p = c.events[i - 1];
        const Event& e = c.events[i];
        CHECK(e.seq == i);
        bool ordered = std::tie(p.time_ns, p.tid) < std::tie(e.time_ns, e.tid) ||
                       (p.time_ns == e.time_ns && p.tid == e.tid && p.addr < e.addr);
        CHECK(ordered);
    }
}

TEST_CASE("definitions are applied when the chunk is read, before its events are released",
          "[trace]") {
    EventMerger m;
    std::vector<uint8_t> buf(256);
    RecordEncoder e;
    e.reset(buf.data(), buf.size(), 5, 0, 0);
    REQUIRE(e.string(7, "name", 4));
    REQUIRE(e.thread_name(7));
    REQUIRE(e.alloc(AllocKind::Malloc, 100, 1, 1, 0));
    m.add_thread_payload(buf.data(), e.size());
    CHECK(m.string(7) == "name");
    CHECK(m.thread_name(5) == "name");
    CHECK(m.queued() == 1);

    EventMerger quiet(false);  // the interposer's replay keeps no definitions
    quiet.add_thread_payload(buf.data(), e.size());
    CHECK(quiet.string(7).empty());
    CHECK(quiet.queued() == 1);
}

TEST_CASE("malformed records are rejected with a clear TraceError", "[trace]") {
    auto bad = [](std::vector<uint8_t> p, const char* text) {
        EventMerger m;
        CHECK_THROWS_WITH(m.add_thread_payload(p.data(), p.size()), Catch::Contains(text));
    };
    bad({1, 0, 99}, "unknown record opcode 99");
    bad({1, 0, 2, 0}, "past the end");  // free without addr
    bad({1, 0, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
        "overlong varint");  // 11-byte varint
    bad({1, 0, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, "overlong varint");
    bad({1, 0, 8, 1, 100, 'a', 'b'}, "past the end");  // string longer than payload
    bad({1, 0, 1, 77, 0, 0, 0, 0}, "allocation kind");
    // One past the last kind, PyObject_Realloc (14).
    bad({1, 0, 1, 15, 0, 0, 0, 0}, "allocation kind");
    bad({}, "past the end");                                    // no tid
    bad({0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0}, "thread id");  // tid over 32 bits
}

TEST_CASE("huge ids and lengths in a payload do not cause huge allocations", "[trace]") {
    EventMerger m;
    std::vector<uint8_t> buf(256);
    RecordEncoder e;
    e.reset(buf.data(), buf.size(), 1, 0, 0);
    REQUIRE(e.string(1ull << 60, "far", 3));
    REQUIRE(e.stack(~0ull, 1ull << 62, 1ull << 61));
    REQUIRE(e.location(1ull << 50, 1, 2, 3));
    m.add_thread_payload(buf.data(), e.size());
    CHECK(m.string(1ull << 60) == "far");
    REQUIRE(m.stack(~0ull) != nullptr);
    CHECK(m.stack(~0ull)->parent == 1ull << 62);
    CHECK(m.location(1ull << 50)->line == 3);
    CHECK(m.string(12345).empty());
}

TEST_CASE("many short-lived threads are merged and a returning tid keeps its order", "[trace]") {
    EventMerger m;
    Collect c;
    uint64_t t = 0;
    // 2000 threads, each with one payload and then silent: their queues are retired.
    for (uint64_t tid = 1; tid <= 2000; ++tid) {
        auto p = payload(tid, t, {{t + 1, 0x1000 + tid}});
        m.add_thread_payload(p.data(), p.size());
        t += 10;
        m.release_before(t, c);
    }
    REQUIRE(c.events.size() == 2000);
    for (size_t i = 0; i < c.events.size(); ++i) {
        CHECK(c.events[i].tid == i + 1);
        CHECK(c.events[i].seq == i);
    }
    // tid 5 comes back (its queue long retired) with a payload claiming an earlier base time:
    // its times still do not go below where the thread was.
    auto p = payload(5, 0, {{0, 0x5555}});
    m.add_thread_payload(p.data(), p.size());
    m.release_before(UINT64_MAX, c);
    REQUIRE(c.events.size() == 2001);
    CHECK(c.events.back().addr == 0x5555);
    CHECK(c.events.back().time_ns >= c.events[1999].time_ns);
}
