// Unit tests of the version-3 reader (FORMAT.md, "Version 3"; trace/src/stream_decoder.cpp):
// hand-made stream payloads with known events and every corruption the spec names, then
// random event sequences over several threads encoded by StreamEncoder, framed into files and
// read back with TraceReader against the model that made them: every event, block identity,
// live bytes after every event, definitions; the same events whatever the payload boundaries
// and codecs; truncation at every byte; every single-byte change of a payload.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "pmt/chunk.hpp"
#include "pmt/live.hpp"
#include "pmt/reader.hpp"
#include "pmt/stream_encoder.hpp"
#include "pmt/varint.hpp"
#include "test_trace_util.hpp"

using namespace pmt;
using namespace pmt::test;

namespace {

constexpr uint64_t kHeapBit = uint64_t{1} << 63;

// ---------------------------------------------------------------- files and reading

TraceHeader v3_header(unsigned k, unsigned m) {
    TraceHeader h;
    h.version = kStreamFormatVersion;
    h.time_shift = k;
    h.tick_shift = m;
    h.pid = 77;
    return h;
}

struct File {
    std::vector<uint8_t> bytes;
    std::vector<size_t> chunk_end;  // byte offset after each chunk
};

// Header, one thread-events chunk per payload (codec 0, 1 or 2), the end chunk if `end`.
File v3_file(const std::vector<std::vector<uint8_t>>& payloads, Codec codec = Codec::None,
             bool end = true, unsigned k = 10, unsigned m = 10) {
    File f;
    f.bytes = encode_file_header(v3_header(k, m));
    for (const auto& p : payloads) {
        append_chunk(f.bytes, ChunkType::ThreadEvents, codec, p.data(), p.size());
        f.chunk_end.push_back(f.bytes.size());
    }
    if (end) {
        EndSummary s;
        s.events = 1;
        const auto e = end_payload(s);
        append_chunk(f.bytes, ChunkType::End, Codec::None, e.data(), e.size());
        f.chunk_end.push_back(f.bytes.size());
    }
    return f;
}

struct Result {
    std::vector<Event> events;
    bool truncated = false;
    bool has_end = false;
    uint64_t reader_events = 0;
    uint64_t last_time = 0;
    std::string error;  // after "<path>: "; empty when read() returned
};

struct Batches : EventVisitor {
    std::vector<Event>& out;
    size_t calls = 0;
    explicit Batches(std::vector<Event>& o) : out(o) {}
    void on_event(const Event& e) override { out.push_back(e); }
    void on_events(const Event* e, size_t n) override {
        ++calls;
        out.insert(out.end(), e, e + n);
    }
};

Result read_bytes(const std::vector<uint8_t>& bytes, size_t n = SIZE_MAX,
                  const std::function<void(TraceReader&)>& after = {}) {
    TempFile f;
    f.write(bytes.data(), std::min(n, bytes.size()));
    Result r;
    try {
        TraceReader reader(f.path);
        Batches v(r.events);
        reader.read(v);
        r.truncated = reader.truncated();
        r.has_end = reader.has_end();
        r.reader_events = reader.events();
        r.last_time = reader.last_time_ns();
        if (after) after(reader);
    } catch (const TraceError& e) {
        const std::string what = e.what();
        REQUIRE(what.rfind(f.path + ": ", 0) == 0);
        REQUIRE(what.find('\n') == std::string::npos);
        r.error = what.substr(f.path.size() + 2);
    }
    return r;
}

// ---------------------------------------------------------------- hand-made payloads

enum Col { OPS, SIZES, STACKS, REFS, ADDRS, TIMES, OTHER };

void put(std::vector<uint8_t>& v, uint64_t x) {
    uint8_t b[10];
    v.insert(v.end(), b, detail::put_varint(b, x));
}

struct Cols {
    std::vector<uint8_t> c[7];
    Cols& op(uint8_t o) {
        c[OPS].push_back(o);
        return *this;
    }
    Cols& f(Col col, uint64_t x) {
        put(c[col], x);
        return *this;
    }
    Cols& thread(uint64_t index, uint64_t tid = UINT64_MAX) {
        op(uint8_t(Op3::Thread)).f(OTHER, index);
        if (tid != UINT64_MAX) f(OTHER, tid);
        return *this;
    }
    Cols& alloc(AllocKind k, uint64_t size, uint64_t stack) {
        return op(op3_alloc(k)).f(SIZES, size).f(STACKS, stack);
    }
    Cols& free(uint64_t rank) { return op(uint8_t(Op3::Free)).f(REFS, rank); }
    Cols& tick(uint64_t dt) { return op(uint8_t(Op3::Tick)).f(TIMES, dt); }
    std::vector<uint8_t> payload() const {
        std::vector<uint8_t> p;
        for (const auto& col : c) put(p, col.size());
        for (const auto& col : c) p.insert(p.end(), col.begin(), col.end());
        return p;
    }
};

// The error reading a one-payload file gives, after "<path>: chunk at byte offset N: ".
std::string payload_error(const std::vector<uint8_t>& payload) {
    File f = v3_file({payload});
    Result r = read_bytes(f.bytes);
    const std::string prefix = "chunk at byte offset " +
                               std::to_string(encode_file_header(v3_header(10, 10)).size()) + ": ";
    if (r.error.rfind(prefix, 0) != 0) return "(no chunk error) " + r.error;
    return r.error.substr(prefix.size());
}

}  // namespace

TEST_CASE("v3: a hand-made stream decodes to its events", "[trace][v3]") {
    Cols c;
    c.op(uint8_t(Op3::String)).f(OTHER, 1).f(OTHER, 4);
    for (char ch : std::string("main")) c.c[OTHER].push_back(uint8_t(ch));
    c.thread(0, 4000000000u).op(uint8_t(Op3::ThreadName)).f(OTHER, 1);
    c.alloc(AllocKind::Calloc, 100, 7).tick(5).alloc(AllocKind::Malloc, 200, 0);
    c.thread(1, 9).op(uint8_t(Op3::FreeOther)).f(REFS, 0).f(REFS, 1);  // thread 0's newest
    c.op(op3_pair(AllocKind::Memalign)).f(SIZES, 64).f(STACKS, 3);
    c.alloc(AllocKind::Pvalloc, 4096, 0);
    c.op(uint8_t(Op3::ReallocFreeUnknown)).f(ADDRS, detail::zigzag(0x1000));
    c.op(uint8_t(Op3::Mmap)).f(ADDRS, detail::zigzag(0x7000)).f(SIZES, 8192);
    c.f(OTHER, 3).f(OTHER, 0x22).f(OTHER, detail::zigzag(-1)).f(STACKS, 5);
    c.thread(0).op(uint8_t(Op3::Rss)).f(OTHER, 12345);
    c.op(uint8_t(Op3::ReallocArrayFreeOther)).f(REFS, 1).f(REFS, 0);  // thread 1's only block
    c.free(0);
    c.op(uint8_t(Op3::Munmap)).f(ADDRS, detail::zigzag(-0x1000)).f(SIZES, 4096);
    c.op(uint8_t(Op3::Mremap)).f(ADDRS, detail::zigzag(0x1000)).f(SIZES, 4096);
    c.f(ADDRS, detail::zigzag(0x10000)).f(SIZES, 65536).f(STACKS, 9);
    File f = v3_file({c.payload()}, Codec::None, true, 3, 2);
    std::string name;
    Result r = read_bytes(f.bytes, SIZE_MAX,
                          [&](TraceReader& t) { name = std::string(t.thread_name(4000000000u)); });
    REQUIRE(r.error.empty());
    CHECK(name == "main");
    CHECK(!r.truncated);
    CHECK(r.has_end);
    REQUIRE(r.events.size() == 13);
    const auto& e = r.events;
    for (size_t i = 0; i < e.size(); ++i) CHECK(e[i].seq == i);
    CHECK((e[0].type == EventType::Alloc && e[0].kind == AllocKind::Calloc &&
           e[0].tid == 4000000000u && e[0].time_ns == 0 && e[0].addr == (kHeapBit | 0) &&
           e[0].size == 100 && e[0].stack_id == 7));
    CHECK((e[1].type == EventType::Alloc && e[1].time_ns == 5 << 3 && e[1].addr == (kHeapBit | 1) &&
           e[1].size == 200));
    CHECK((e[2].type == EventType::Free && e[2].kind == AllocKind::Malloc && e[2].tid == 9 &&
           e[2].addr == (kHeapBit | 1) && e[2].time_ns == 40));
    CHECK((e[3].type == EventType::Alloc && e[3].kind == AllocKind::Memalign && e[3].tid == 9 &&
           e[3].addr == (kHeapBit | 2) && e[3].size == 64 && e[3].stack_id == 3));
    CHECK((e[4].type == EventType::Free && e[4].kind == AllocKind::Malloc &&
           e[4].addr == (kHeapBit | 2)));
    CHECK((e[5].type == EventType::Alloc && e[5].kind == AllocKind::Pvalloc &&
           e[5].addr == (kHeapBit | 3)));
    CHECK((e[6].type == EventType::Free && e[6].kind == AllocKind::Realloc && e[6].addr == 0x1000));
    CHECK((e[7].type == EventType::Mmap && e[7].addr == 0x8000 && e[7].size == 8192 &&
           e[7].prot == 3 && e[7].flags == 0x22 && e[7].fd == -1 && e[7].stack_id == 5));
    CHECK((e[8].type == EventType::Rss && e[8].size == 12345 && e[8].tid == 4000000000u));
    CHECK((e[9].type == EventType::Free && e[9].kind == AllocKind::ReallocArray &&
           e[9].tid == 4000000000u && e[9].addr == (kHeapBit | 3)));
    CHECK((e[10].type == EventType::Free && e[10].kind == AllocKind::Malloc &&
           e[10].addr == (kHeapBit | 0)));
    CHECK((e[11].type == EventType::Munmap && e[11].addr == 0x7000 && e[11].size == 4096));
    CHECK((e[12].type == EventType::Mremap && e[12].old_addr == 0x8000 && e[12].old_size == 4096 &&
           e[12].addr == 0x18000 && e[12].size == 65536 && e[12].stack_id == 9));
    for (size_t i = 1; i < e.size(); ++i) CHECK(e[i].time_ns == 40);
}

TEST_CASE("v3: hand-made stream round trip across payloads", "[trace][v3]") {
    // Thread 0 allocates two blocks in payload 1; payload 2 switches to thread 1, which frees
    // thread 0's oldest; payload 3 returns to thread 0, which frees its last block; the state
    // (thread table, time, seq, live ranks) carries across payloads.
    Cols p1, p2, p3;
    p1.thread(0, 11).alloc(AllocKind::Malloc, 10, 1).tick(3).alloc(AllocKind::Valloc, 20, 2);
    p2.tick(1).thread(1, 12).op(uint8_t(Op3::FreeOther)).f(REFS, 0).f(REFS, 0);
    p2.alloc(AllocKind::Malloc, 30, 0);
    p3.thread(0).free(0).thread(1).op(uint8_t(Op3::ReallocFree)).f(REFS, 0);
    p3.alloc(AllocKind::Realloc, 40, 0);
    File f = v3_file({p1.payload(), p2.payload(), p3.payload()}, Codec::Zstd, true, 0, 0);
    Result r = read_bytes(f.bytes);
    REQUIRE(r.error.empty());
    REQUIRE(r.events.size() == 7);
    const auto& e = r.events;
    CHECK((e[0].tid == 11 && e[0].addr == (kHeapBit | 0) && e[0].time_ns == 0));
    CHECK((e[1].tid == 11 && e[1].addr == (kHeapBit | 1) && e[1].time_ns == 3 &&
           e[1].kind == AllocKind::Valloc));
    CHECK((e[2].type == EventType::Free && e[2].tid == 12 && e[2].addr == (kHeapBit | 0) &&
           e[2].time_ns == 4));
    CHECK((e[3].type == EventType::Alloc && e[3].tid == 12 && e[3].addr == (kHeapBit | 2)));
    CHECK((e[4].type == EventType::Free && e[4].tid == 11 && e[4].addr == (kHeapBit | 1)));
    CHECK((e[5].type == EventType::Free && e[5].tid == 12 && e[5].addr == (kHeapBit | 2) &&
           e[5].kind == AllocKind::Realloc));
    CHECK((e[6].type == EventType::Alloc && e[6].tid == 12 && e[6].addr == (kHeapBit | 3) &&
           e[6].kind == AllocKind::Realloc && e[6].size == 40));
    CHECK(r.last_time == 4);
    CHECK(r.reader_events == 7);
}

TEST_CASE("v3: every corruption of a stream payload is a one-line error naming the chunk",
          "[trace][v3]") {
    auto base = [] { return Cols().thread(0, 5); };
    CHECK(payload_error(base().op(0x42).payload()) == "stream payload: unknown op 0x42");
    CHECK(payload_error(base().op(0x0a).payload()) == "stream payload: unknown op 0x0a");
    CHECK(payload_error(Cols().alloc(AllocKind::Malloc, 1, 0).payload()) ==
          "stream payload: an event before any THREAD record");
    CHECK(payload_error(Cols().op(uint8_t(Op3::ThreadName)).f(OTHER, 1).payload()) ==
          "stream payload: a thread name before any THREAD record");
    CHECK(payload_error(base().thread(1, 5).payload()) ==
          "stream payload: thread id 5 added twice");
    CHECK(payload_error(base().thread(2, 6).payload()) ==
          "stream payload: thread index 2 with 1 threads known");
    CHECK(payload_error(base().thread(0).payload()) ==
          "stream payload: switch to thread index 0, the current thread");
    CHECK(payload_error(Cols().thread(0, uint64_t{1} << 32).payload()) ==
          "stream payload: thread id out of range");
    CHECK(payload_error(base().free(0).payload()) ==
          "stream payload: free of rank code 0 with 0 live blocks");
    CHECK(payload_error(base().alloc(AllocKind::Malloc, 1, 0).free(2).payload()) ==
          "stream payload: free of rank code 2 with 1 live blocks");
    CHECK(payload_error(base().alloc(AllocKind::Malloc, 1, 0).free(3).payload()) ==
          "stream payload: free of rank code 3 with 1 live blocks");
    CHECK(payload_error(base()
                            .alloc(AllocKind::Malloc, 1, 0)
                            .op(uint8_t(Op3::FreeOther))
                            .f(REFS, 0)
                            .f(REFS, 0)
                            .payload()) ==
          "stream payload: free of thread index 0's block by thread index 0");
    CHECK(payload_error(base().op(uint8_t(Op3::FreeOther)).f(REFS, 1).f(REFS, 0).payload()) ==
          "stream payload: free of thread index 1's block by thread index 0");
    CHECK(payload_error(base().tick(0).payload()) == "stream payload: a tick of 0 units");
    CHECK(payload_error(base().tick(uint64_t{1} << 53).tick(uint64_t{1} << 53).payload()) ==
          "stream payload: time out of range (tick of 9007199254740992 units)");
    CHECK(payload_error(base()
                            .op(uint8_t(Op3::Location))
                            .f(OTHER, 1)
                            .f(OTHER, 2)
                            .f(OTHER, 3)
                            .f(OTHER, uint64_t{1} << 32)
                            .payload()) == "stream payload: location's line out of range");
    CHECK(payload_error(base()
                            .op(uint8_t(Op3::Location))
                            .f(OTHER, 1)
                            .f(OTHER, uint64_t{1} << 32)
                            .f(OTHER, 3)
                            .f(OTHER, 4)
                            .payload()) == "stream payload: location's file id out of range");
    CHECK(payload_error(base().op(uint8_t(Op3::String)).f(OTHER, 1).f(OTHER, 5).payload()) ==
          "stream payload: string of 5 bytes runs past the other column");
    // A column used up early, or with bytes left over.
    CHECK(payload_error(base().op(op3_alloc(AllocKind::Malloc)).f(SIZES, 1).payload()) ==
          "record runs past the end of its payload");
    CHECK(payload_error(base().f(SIZES, 1).payload()) ==
          "stream payload: the sizes column has 1 bytes left over");
    CHECK(payload_error(base().f(TIMES, 300).payload()) ==
          "stream payload: the times column has 2 bytes left over");
    // Overlong varints: 11 bytes, and a 10th byte with more than the top bit.
    {
        Cols c = base();
        c.op(uint8_t(Op3::Rss));
        for (int i = 0; i < 10; ++i) c.c[OTHER].push_back(0x80);
        c.c[OTHER].push_back(0x00);
        CHECK(payload_error(c.payload()) == "overlong varint");
        Cols d = base();
        d.op(uint8_t(Op3::Rss));
        for (int i = 0; i < 9; ++i) d.c[OTHER].push_back(0xff);
        d.c[OTHER].push_back(0x02);
        CHECK(payload_error(d.payload()) == "overlong varint");
    }
    // Column lengths that do not match the payload.
    {
        std::vector<uint8_t> p = base().alloc(AllocKind::Malloc, 1, 0).payload();
        std::vector<uint8_t> longer = p;
        longer.push_back(0);
        CHECK(payload_error(longer) == "stream payload: 1 bytes after the last column");
        std::vector<uint8_t> shorter(p.begin(), p.end() - 1);
        CHECK(payload_error(shorter) ==
              "stream payload: column lengths add up to more than the payload (" +
                  std::to_string(shorter.size()) + " bytes)");
        CHECK(payload_error({}) == "record runs past the end of its payload");
    }
}

TEST_CASE("v3: a stream chunk's error names its own chunk; earlier chunks' events are kept",
          "[trace][v3]") {
    Cols good = Cols().thread(0, 5).alloc(AllocKind::Malloc, 8, 0);
    Cols bad = Cols().free(2);
    File f = v3_file({good.payload(), bad.payload()});
    Result r = read_bytes(f.bytes);
    CHECK(r.error == "chunk at byte offset " + std::to_string(f.chunk_end[0]) +
                         ": stream payload: free of rank code 2 with 1 live blocks");
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].size == 8);
}
