// Unit tests of the version-3 and version-4 readers (FORMAT.md, "Version 3", "Version 4";
// trace/src/stream_decoder.cpp): hand-made stream payloads with known events and every
// corruption the spec names, then random event sequences over several threads encoded by
// StreamEncoder (both versions), framed into files and read back with TraceReader against the
// model that made them: every event, block identity, live bytes after every event,
// definitions; the same events whatever the payload boundaries, codecs and version;
// truncation at every byte; every single-byte change of a payload.
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "../../trace/src/stream_decoder.hpp"  // private: its limits, lowered for the tests
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

TraceHeader stream_header(unsigned k, unsigned m, uint16_t version) {
    TraceHeader h;
    h.version = version;
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
File stream_file(const std::vector<std::vector<uint8_t>>& payloads, Codec codec = Codec::None,
                 bool end = true, unsigned k = 10, unsigned m = 10, uint16_t version = 3) {
    File f;
    f.bytes = encode_file_header(stream_header(k, m, version));
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

// The bytes as a file the reader opens by path: a memfd seen through /proc/self/fd (the
// truncation and mutation tests read thousands of files).
class MemFile {
public:
    MemFile() : fd_(memfd_create("pmt-v3-test", 0)) {
        if (fd_ < 0) throw std::runtime_error("memfd_create failed");
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~MemFile() { ::close(fd_); }
    void set(const uint8_t* p, size_t n) {
        if (ftruncate(fd_, 0) != 0 || pwrite(fd_, p, n, 0) != static_cast<ssize_t>(n))
            throw std::runtime_error("cannot write the memfd");
    }
    const std::string& path() const { return path_; }

private:
    int fd_;
    std::string path_;
};

Result read_bytes(const std::vector<uint8_t>& bytes, size_t n = SIZE_MAX,
                  const std::function<void(TraceReader&)>& after = {}) {
    static MemFile f;
    f.set(bytes.data(), std::min(n, bytes.size()));
    Result r;
    try {
        TraceReader reader(f.path());
        Batches v(r.events);
        reader.read(v);
        r.truncated = reader.truncated();
        r.has_end = reader.has_end();
        r.reader_events = reader.events();
        r.last_time = reader.last_time_ns();
        if (after) after(reader);
    } catch (const TraceError& e) {
        const std::string what = e.what();
        REQUIRE(what.rfind(f.path() + ": ", 0) == 0);
        REQUIRE(what.find('\n') == std::string::npos);
        r.error = what.substr(f.path().size() + 2);
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
std::string payload_error(const std::vector<uint8_t>& payload, uint16_t version = 3) {
    File f = stream_file({payload}, Codec::None, true, 10, 10, version);
    Result r = read_bytes(f.bytes);
    const std::string prefix =
        "chunk at byte offset " +
        std::to_string(encode_file_header(stream_header(10, 10, version)).size()) + ": ";
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
    File f = stream_file({c.payload()}, Codec::None, true, 3, 2);
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
    File f = stream_file({p1.payload(), p2.payload(), p3.payload()}, Codec::Zstd, true, 0, 0);
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

    // Epoch chunks mean nothing in version 3 (file order is event order): one promising a
    // time far past every event changes nothing.
    File g = stream_file({p1.payload()}, Codec::None, false, 0, 0);
    const auto epoch = epoch_payload(uint64_t{1} << 40);
    append_chunk(g.bytes, ChunkType::Epoch, Codec::None, epoch.data(), epoch.size());
    for (const auto& p : {p2.payload(), p3.payload()})
        append_chunk(g.bytes, ChunkType::ThreadEvents, Codec::Lz4, p.data(), p.size());
    Result with_epoch = read_bytes(g.bytes);
    REQUIRE(with_epoch.error.empty());
    CHECK(with_epoch.truncated);
    REQUIRE(with_epoch.events.size() == r.events.size());
    for (size_t i = 0; i < r.events.size(); ++i) {
        CHECK(with_epoch.events[i].addr == r.events[i].addr);
        CHECK(with_epoch.events[i].time_ns == r.events[i].time_ns);
        CHECK(with_epoch.events[i].tid == r.events[i].tid);
    }
}

TEST_CASE("v3: Python's allocator-domain kinds (9-14) decode, their reallocs as reallocs",
          "[trace][v3]") {
    static_assert(op3_alloc(AllocKind::PyObjectRealloc) == 0x0f);
    static_assert(op3_pair(AllocKind::PyMemMalloc) == 0x1a);
    static_assert(op3_free(Op3::Free, AllocKind::PyObjectRealloc) == uint8_t(Op3::ReallocFree));
    static_assert(op3_free(Op3::Free, AllocKind::PyMemRealloc) == uint8_t(Op3::ReallocFree));
    static_assert(op3_free(Op3::Free, AllocKind::PyObjectMalloc) == uint8_t(Op3::Free));
    Cols c;
    c.thread(0, 5).alloc(AllocKind::PyObjectMalloc, 24, 1);
    c.op(op3_pair(AllocKind::PyMemCalloc)).f(SIZES, 16).f(STACKS, 2);
    c.op(op3_free(Op3::Free, AllocKind::PyObjectRealloc)).f(REFS, 0);  // the object's block
    c.alloc(AllocKind::PyObjectRealloc, 48, 1).alloc(AllocKind::PyMemRealloc, 8, 0);
    File f = stream_file({c.payload()}, Codec::None, true, 3, 2);
    Result r = read_bytes(f.bytes);
    REQUIRE(r.error.empty());
    REQUIRE(r.events.size() == 6);
    const auto& e = r.events;
    CHECK((e[0].type == EventType::Alloc && e[0].kind == AllocKind::PyObjectMalloc &&
           e[0].size == 24 && e[0].addr == (kHeapBit | 0)));
    CHECK(
        (e[1].type == EventType::Alloc && e[1].kind == AllocKind::PyMemCalloc && e[1].size == 16));
    CHECK(
        (e[2].type == EventType::Free && e[2].kind == AllocKind::Malloc && e[2].addr == e[1].addr));
    CHECK((e[3].type == EventType::Free && e[3].kind == AllocKind::Realloc &&
           e[3].addr == (kHeapBit | 0)));
    CHECK((e[4].type == EventType::Alloc && e[4].kind == AllocKind::PyObjectRealloc &&
           e[4].size == 48));
    CHECK((e[5].type == EventType::Alloc && e[5].kind == AllocKind::PyMemRealloc));
    CHECK(std::string(alloc_kind_name(AllocKind::PyObjectRealloc)) == "PyObject_Realloc");
    CHECK(is_realloc_kind(AllocKind::PyMemRealloc));
    CHECK(!is_realloc_kind(AllocKind::PyObjectCalloc));
}

TEST_CASE("v3: every corruption of a stream payload is a one-line error naming the chunk",
          "[trace][v3]") {
    auto base = [] { return Cols().thread(0, 5); };
    CHECK(payload_error(base().op(0x42).payload()) == "stream payload: unknown op 0x42");
    // ALLOC and PAIR stop at the last kind (14, PyObject_Realloc): 0x10 is no opcode.
    CHECK(payload_error(base().op(0x10).payload()) == "stream payload: unknown op 0x10");
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
    File f = stream_file({good.payload(), bad.payload()});
    Result r = read_bytes(f.bytes);
    CHECK(r.error == "chunk at byte offset " + std::to_string(f.chunk_end[0]) +
                         ": stream payload: free of rank code 2 with 1 live blocks");
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].size == 8);
}

TEST_CASE("v4: a hand-made stream decodes to its events", "[trace][v4]") {
    // Thread 0 makes blocks 0, 1, 2 and frees 0 (code 0: f = 0), then 2 (code 1: 0 back from
    // its last allocation), then a PAIR (block 3, never live). Thread 1 makes block 4, frees
    // thread 0's block 1 (f = 3: -2, zigzag 3, code 6) and its own 4 (code 1), across payloads.
    Cols p1, p2;
    p1.thread(0, 11).alloc(AllocKind::Malloc, 10, 1).alloc(AllocKind::Calloc, 20, 2);
    p1.alloc(AllocKind::Malloc, 30, 3).free(0).op(uint8_t(Op3::ReallocFree)).f(REFS, 1);
    p1.op(op3_pair(AllocKind::Malloc)).f(SIZES, 40).f(STACKS, 4);
    p2.thread(1, 12).alloc(AllocKind::Malloc, 50, 5);
    p2.op(uint8_t(Op3::FreeOther)).f(REFS, 0).f(REFS, 6).free(1);
    File f = stream_file({p1.payload(), p2.payload()}, Codec::None, true, 0, 0, 4);
    Result r = read_bytes(f.bytes);
    REQUIRE(r.error.empty());
    REQUIRE(r.events.size() == 10);
    const auto& e = r.events;
    const std::pair<EventType, uint64_t> want[] = {
        {EventType::Alloc, 0}, {EventType::Alloc, 1}, {EventType::Alloc, 2}, {EventType::Free, 0},
        {EventType::Free, 2},  {EventType::Alloc, 3}, {EventType::Free, 3},  {EventType::Alloc, 4},
        {EventType::Free, 1},  {EventType::Free, 4}};
    for (size_t i = 0; i < e.size(); ++i) {
        INFO("event " << i);
        CHECK(e[i].seq == i);
        CHECK(e[i].type == want[i].first);
        CHECK(e[i].addr == (kHeapBit | want[i].second));
        CHECK(e[i].tid == (i < 7 ? 11u : 12u));
    }
    CHECK(e[1].kind == AllocKind::Calloc);
    CHECK((e[4].kind == AllocKind::Realloc && e[3].kind == AllocKind::Malloc));
    CHECK((e[5].size == 40 && e[5].stack_id == 4));
    CHECK((e[7].size == 50 && e[7].stack_id == 5));
}

TEST_CASE("v4: a free naming a block that is not live is a one-line error naming the chunk",
          "[trace][v4]") {
    auto base = [] { return Cols().thread(0, 5); };
    auto error = [](const Cols& c) { return payload_error(c.payload(), 4); };
    // No block at all; before any block of this thread.
    CHECK(error(base().free(0)) ==
          "stream payload: free of block 0 (reference code 0), which is "
          "not live");
    CHECK(error(base().free(1)) ==
          "stream payload: free of block 18446744073709551615 "
          "(reference code 1), which is not live");
    // A block not made yet (f + 1: code 4), and one before the first (f - 1: code 2).
    CHECK(error(base().alloc(AllocKind::Malloc, 1, 0).free(4)) ==
          "stream payload: free of block 1 (reference code 4), which is not live");
    CHECK(error(base().alloc(AllocKind::Malloc, 1, 0).free(2)) ==
          "stream payload: free of block 18446744073709551615 (reference code 2), which is not "
          "live");
    // Freed twice: by f, then 0 back from the last allocation.
    CHECK(error(base().alloc(AllocKind::Malloc, 1, 0).free(0).free(1)) ==
          "stream payload: free of block 0 (reference code 1), which is not live");
    // A PAIR's block is never live.
    CHECK(error(base().op(op3_pair(AllocKind::Malloc)).f(SIZES, 1).f(STACKS, 0).free(0)) ==
          "stream payload: free of block 0 (reference code 0), which is not live");
    // FREE_OTHER: the owner's predictions name the block; the owner checks of version 3 stay.
    CHECK(error(base()
                    .alloc(AllocKind::Malloc, 1, 0)
                    .thread(1, 6)
                    .op(uint8_t(Op3::FreeOther))
                    .f(REFS, 0)
                    .f(REFS, 3)) ==
          "stream payload: free of block 18446744073709551615 (reference code 3), which is not "
          "live");
    CHECK(error(base().op(uint8_t(Op3::FreeOther)).f(REFS, 1).f(REFS, 0)) ==
          "stream payload: free of thread index 1's block by thread index 0");
    // The same stream as version 3 reads: rank 0 is the block.
    CHECK(payload_error(base().alloc(AllocKind::Malloc, 1, 0).free(0).payload(), 3) ==
          "(no chunk error) ");
    CHECK(error(base().alloc(AllocKind::Malloc, 1, 0).free(0)) == "(no chunk error) ");
    // Across payloads: the live set carries over, an error names the second chunk.
    Cols good = base().alloc(AllocKind::Malloc, 8, 0);
    File f = stream_file({good.payload(), Cols().free(0).payload(), Cols().free(0).payload()},
                         Codec::None, true, 10, 10, 4);
    Result r = read_bytes(f.bytes);
    CHECK(r.error == "chunk at byte offset " + std::to_string(f.chunk_end[1]) +
                         ": stream payload: free of block 1 (reference code 0), which is not "
                         "live");
    REQUIRE(r.events.size() == 2);
    CHECK((r.events[1].type == EventType::Free && r.events[1].addr == kHeapBit));
}

// ---------------------------------------------------------------- random streams and a model

namespace {

// One event as the program made it: exact time; heap blocks by the model's block id.
struct Truth {
    EventType type = EventType::Alloc;
    AllocKind kind = AllocKind::Malloc;
    uint32_t tid = 0;
    uint64_t t_ns = 0;
    uint64_t size = 0, stack = 0;
    int64_t block = -1;  // heap Alloc/Free: the model's block; -1: an unknown free / no block
    uint64_t addr = 0, old_addr = 0, old_size = 0, prot = 0, flags = 0;
    int64_t fd = -1;
};

// What the writer tells the encoder, in stream order.
struct Action {
    enum K : uint8_t {
        Thread,
        Time,
        Alloc,
        Free,
        FreeUnknown,
        Mmap,
        Munmap,
        Mremap,
        Rss,
        String,
        Location,
        Stack,
        ThreadName
    } k;
    AllocKind kind = AllocKind::Malloc;
    uint64_t x[5] = {};
    int64_t fd = -1;
    std::string s;
};

struct Script {
    unsigned k = 10, m = 10;
    uint16_t version = kStreamFormatVersion;
    std::vector<Action> actions;
    std::vector<Truth> truth;
    size_t blocks = 0;
    std::map<uint64_t, std::string> strings;
    std::map<uint64_t, Location> locations;
    std::map<uint64_t, StackNode> stacks;
    std::map<uint32_t, uint64_t> names;  // tid -> string id
};

// n random actions over up to 5 threads: allocations of every kind, frees from both ends and
// in between, of the thread's own blocks and other threads', pairs, both halves of reallocs,
// unknown frees, mappings, rss samples, definitions, names, and times that jump by anything
// from 0 ns to 2^34 ns.
// The kinds the random scripts draw from: all of them, the C library's 0-8 and Python's domain
// kinds 9-14 (which also have their own test above).
constexpr unsigned kScriptKinds = static_cast<unsigned>(AllocKind::PyObjectRealloc) + 1;

Script make_script(uint64_t seed, size_t n, unsigned k, unsigned m,
                   uint16_t version = kStreamFormatVersion) {
    std::mt19937_64 rng(seed);
    auto rnd = [&](uint64_t lo, uint64_t hi) {
        return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
    };
    Script s;
    s.k = k;
    s.version = version;
    s.m = m;
    const uint32_t all_tids[] = {100, 4294967295u, 7, 31337, 0};
    const size_t nthreads = 1 + rnd(0, 4);
    uint32_t tid = 0;
    bool has_thread = false;
    uint64_t now = rnd(0, 1000000000);
    struct Live {
        uint64_t id;
        uint32_t owner;
    };
    std::vector<Live> live;
    uint64_t next_string = 1, next_location = 1, next_stack = 1;
    std::vector<uint64_t> mappings;

    auto act = [&](Action::K k0) -> Action& {
        s.actions.push_back(Action{});
        s.actions.back().k = k0;
        return s.actions.back();
    };
    auto event = [&](EventType type) -> Truth& {
        switch (rnd(0, 9)) {
            case 0:
            case 1:
            case 2:
                break;
            case 3:
            case 4:
            case 5:
            case 6:
                now += rnd(1, 3000);
                break;
            case 7:
            case 8:
                now += rnd(0, uint64_t{1} << 22);
                break;
            default:
                now += rnd(0, uint64_t{1} << 34);
        }
        act(Action::Time).x[0] = now;
        s.truth.push_back(Truth{});
        Truth& w = s.truth.back();
        w.type = type;
        w.tid = tid;
        w.t_ns = now;
        return w;
    };
    auto some_stack = [&]() -> uint64_t {
        const uint64_t r = rnd(0, 9);
        if (r < 2 || next_stack == 1) return 0;
        if (r < 9) return rnd(1, next_stack - 1);
        return rnd(1, UINT64_MAX);  // never defined
    };
    auto some_size = [&]() -> uint64_t {
        const uint64_t r = rnd(0, 9);
        return r < 5 ? rnd(0, 2000) : r < 9 ? rnd(0, 1 << 20) : rnd(0, uint64_t{1} << 40);
    };
    auto alloc = [&](AllocKind kind) {
        Truth& w = event(EventType::Alloc);
        w.kind = kind;
        w.size = some_size();
        w.stack = some_stack();
        w.block = static_cast<int64_t>(s.blocks);
        Action& a = act(Action::Alloc);
        a.kind = kind;
        a.x[0] = w.size;
        a.x[1] = w.stack;
        a.x[2] = s.blocks;
        live.push_back({s.blocks++, tid});
    };
    // A live block to free: the thread's newest, its oldest, one of its own, or anyone's.
    auto pick = [&]() -> size_t {
        std::vector<size_t> own;
        for (size_t i = 0; i < live.size(); ++i)
            if (live[i].owner == tid) own.push_back(i);
        const uint64_t r = rnd(0, 9);
        if (own.empty() || r >= 8) return rnd(0, live.size() - 1);
        if (r < 4) return own.back();
        if (r < 6) return own.front();
        return own[rnd(0, own.size() - 1)];
    };
    auto free_block = [&](size_t i, AllocKind kind) {
        Truth& w = event(EventType::Free);
        w.kind = kind;
        w.block = static_cast<int64_t>(live[i].id);
        Action& a = act(Action::Free);
        a.kind = kind;
        a.x[0] = live[i].id;
        live.erase(live.begin() + static_cast<ptrdiff_t>(i));
    };
    auto realloc_kind = [&]() { return rnd(0, 1) ? AllocKind::Realloc : AllocKind::ReallocArray; };

    for (size_t step = 0; step < n; ++step) {
        if (!has_thread || rnd(0, 99) < 15) {
            tid = all_tids[rnd(0, nthreads - 1)];
            has_thread = true;
            act(Action::Thread).x[0] = tid;
        }
        const uint64_t r = rnd(0, 99);
        if (r < 25) {
            alloc(static_cast<AllocKind>(rnd(0, kScriptKinds - 1)));
        } else if (r < 45) {
            if (live.empty()) continue;
            free_block(pick(), AllocKind::Malloc);
        } else if (r < 55) {  // a block freed by the next record: a PAIR when nothing between
            const AllocKind kind = static_cast<AllocKind>(rnd(0, kScriptKinds - 1));
            alloc(kind);
            free_block(live.size() - 1, AllocKind::Malloc);
        } else if (r < 63) {  // realloc: both halves, realloc(NULL, n), or realloc(p, 0)
            const AllocKind kind = realloc_kind();
            const uint64_t how = rnd(0, 9);
            if (how < 7 && !live.empty()) {
                free_block(pick(), kind);
                alloc(kind);
            } else if (how < 9) {
                alloc(kind);
            } else if (!live.empty()) {
                free_block(pick(), kind);
            }
        } else if (r < 68) {
            const AllocKind kind = rnd(0, 2) == 0 ? realloc_kind() : AllocKind::Malloc;
            Truth& w = event(EventType::Free);
            w.kind = kind;
            w.addr = 0x550000000000 + rnd(0, uint64_t{1} << 30) * 16;
            Action& a = act(Action::FreeUnknown);
            a.kind = kind;
            a.x[0] = w.addr;
        } else if (r < 72) {
            Truth& w = event(EventType::Mmap);
            w.addr = 0x7e0000000000 + rnd(0, uint64_t{1} << 24) * 4096;
            w.size = rnd(1, 64) * 4096;
            w.prot = rnd(0, 7);
            const bool anon = rnd(0, 3) != 0;
            w.flags = anon ? 0x22 : 0x02;
            w.fd = anon ? -1 : static_cast<int64_t>(rnd(0, 1000));
            w.stack = some_stack();
            mappings.push_back(w.addr);
            Action& a = act(Action::Mmap);
            a.x[0] = w.addr;
            a.x[1] = w.size;
            a.x[2] = w.prot;
            a.x[3] = w.flags;
            a.fd = w.fd;
            a.x[4] = w.stack;
        } else if (r < 75) {
            Truth& w = event(EventType::Munmap);
            w.addr = mappings.empty() || rnd(0, 3) == 0
                         ? 0x7e0000000000 + rnd(0, uint64_t{1} << 24) * 4096
                         : mappings[rnd(0, mappings.size() - 1)] + rnd(0, 8) * 4096;
            w.size = rnd(1, 16) * 4096;
            Action& a = act(Action::Munmap);
            a.x[0] = w.addr;
            a.x[1] = w.size;
        } else if (r < 77) {
            Truth& w = event(EventType::Mremap);
            w.old_addr = mappings.empty() ? 0x7e0000000000 : mappings[rnd(0, mappings.size() - 1)];
            w.old_size = rnd(1, 16) * 4096;
            w.addr = rnd(0, 1) ? w.old_addr : 0x7e0000000000 + rnd(0, uint64_t{1} << 24) * 4096;
            w.size = rnd(1, 64) * 4096;
            w.stack = some_stack();
            mappings.push_back(w.addr);
            Action& a = act(Action::Mremap);
            a.x[0] = w.old_addr;
            a.x[1] = w.old_size;
            a.x[2] = w.addr;
            a.x[3] = w.size;
            a.x[4] = w.stack;
        } else if (r < 80) {
            Truth& w = event(EventType::Rss);
            w.size = rnd(0, uint64_t{1} << 36);
            act(Action::Rss).x[0] = w.size;
        } else if (r < 88) {  // a string, sometimes defining an id again
            Action& a = act(Action::String);
            a.x[0] = next_string > 1 && rnd(0, 9) == 0 ? rnd(1, next_string - 1) : next_string++;
            const size_t len = rnd(0, 9) == 0 ? rnd(0, 300) : rnd(0, 20);
            for (size_t i = 0; i < len; ++i) a.s.push_back(static_cast<char>(rnd(0, 255)));
            s.strings[a.x[0]] = a.s;
        } else if (r < 93) {
            Action& a = act(Action::Location);
            a.x[0] = next_location++;
            a.x[1] = rnd(0, next_string);
            a.x[2] = rnd(0, 9) == 0 ? UINT32_MAX : rnd(0, next_string);
            a.x[3] = rnd(0, 9) == 0 ? UINT32_MAX : rnd(0, 5000);
            s.locations[a.x[0]] =
                Location{static_cast<uint32_t>(a.x[1]), static_cast<uint32_t>(a.x[2]),
                         static_cast<uint32_t>(a.x[3])};
        } else if (r < 98) {
            Action& a = act(Action::Stack);
            a.x[0] = next_stack++;
            a.x[1] = rnd(0, a.x[0] - 1);
            a.x[2] = rnd(0, next_location);
            s.stacks[a.x[0]] = StackNode{a.x[1], a.x[2]};
        } else {
            Action& a = act(Action::ThreadName);
            a.x[0] = rnd(0, next_string);
            s.names[tid] = a.x[0];
        }
    }
    return s;
}

// The script through StreamEncoder, a payload ended wherever cut(action index) says (and at
// the end).
std::vector<std::vector<uint8_t>> encode(const Script& s, const std::function<bool(size_t)>& cut) {
    StreamEncoder enc(s.k, s.m, s.version);
    std::vector<std::vector<uint8_t>> payloads;
    auto finish = [&] {
        ByteSpan pieces[StreamEncoder::kPieces];
        const size_t pending = enc.pending_bytes();
        const size_t n = enc.finish(pieces);
        if (n == 0) return;
        std::vector<uint8_t> p;
        for (size_t i = 0; i < n; ++i)
            p.insert(p.end(), pieces[i].data, pieces[i].data + pieces[i].size);
        REQUIRE(p.size() == pending);
        payloads.push_back(std::move(p));
    };
    std::vector<std::pair<uint32_t, uint64_t>> block(s.blocks);  // owner index, seq
    uint32_t cur = 0;
    for (size_t i = 0; i < s.actions.size(); ++i) {
        const Action& a = s.actions[i];
        switch (a.k) {
            case Action::Thread:
                cur = enc.thread(static_cast<uint32_t>(a.x[0]));
                break;
            case Action::Time:
                enc.time(a.x[0]);
                break;
            case Action::Alloc:
                block[a.x[2]] = {cur, enc.alloc(a.kind, a.x[0], a.x[1])};
                break;
            case Action::Free:
                REQUIRE(enc.free(block[a.x[0]].first, block[a.x[0]].second, a.kind));
                break;
            case Action::FreeUnknown:
                enc.free_unknown(a.x[0], a.kind);
                break;
            case Action::Mmap:
                enc.mmap(a.x[0], a.x[1], a.x[2], a.x[3], a.fd, a.x[4]);
                break;
            case Action::Munmap:
                enc.munmap(a.x[0], a.x[1]);
                break;
            case Action::Mremap:
                enc.mremap(a.x[0], a.x[1], a.x[2], a.x[3], a.x[4]);
                break;
            case Action::Rss:
                enc.rss(a.x[0]);
                break;
            case Action::String:
                enc.string(a.x[0], a.s.data(), a.s.size());
                break;
            case Action::Location:
                enc.location(a.x[0], a.x[1], a.x[2], a.x[3]);
                break;
            case Action::Stack:
                enc.stack(a.x[0], a.x[1], a.x[2]);
                break;
            case Action::ThreadName:
                enc.thread_name(a.x[0]);
                break;
        }
        if (cut(i)) finish();
    }
    finish();
    return payloads;
}

// A version-3 or -4 file of the payloads: codecs 0-2 per chunk, or one zstd stream (codecs 3/4).
File frame(const Script& s, const std::vector<std::vector<uint8_t>>& payloads, Codec codec,
           bool end = true) {
    File f;
    f.bytes = encode_file_header(stream_header(s.k, s.m, s.version));
    ChunkStream stream(1);
    for (const auto& p : payloads) {
        if (codec == Codec::ZstdStreamStart) {
            const ByteSpan piece{p.data(), p.size()};
            stream.append_stream_chunk(f.bytes, &piece, 1);
        } else {
            append_chunk(f.bytes, ChunkType::ThreadEvents, codec, p.data(), p.size());
        }
        f.chunk_end.push_back(f.bytes.size());
    }
    if (end) {
        const auto e = end_payload(EndSummary{});
        append_chunk(f.bytes, ChunkType::End, Codec::None, e.data(), e.size());
        f.chunk_end.push_back(f.bytes.size());
    }
    return f;
}

bool same(const Event& a, const Event& b) {
    return a.type == b.type && a.kind == b.kind && a.tid == b.tid && a.time_ns == b.time_ns &&
           a.addr == b.addr && a.size == b.size && a.stack_id == b.stack_id &&
           a.old_addr == b.old_addr && a.old_size == b.old_size && a.prot == b.prot &&
           a.flags == b.flags && a.fd == b.fd && a.seq == b.seq;
}

bool same(const std::vector<Event>& a, const std::vector<Event>& b, size_t n) {
    if (a.size() != n || b.size() < n) return false;
    for (size_t i = 0; i < n; ++i)
        if (!same(a[i], b[i])) return false;
    return true;
}

// The first difference between what the reader delivered and the model, "" when none: every
// field, the time within 2^(k+m) ns below the truth, heap blocks by identity (a Free carries
// its Alloc's address, every Alloc a fresh one), and the live bytes after every event equal to
// those of the model's events (real, distinct addresses) through a LiveHeap of their own.
std::string mismatch(const Script& s, const std::vector<Event>& got) {
    if (got.size() != s.truth.size())
        return "event count " + std::to_string(got.size()) +
               " != " + std::to_string(s.truth.size());
    LiveHeap model_heap, got_heap;
    std::vector<uint64_t> addr_of(s.blocks, 0);
    std::map<uint64_t, bool> used;
    const uint64_t unit = uint64_t{1} << s.k, window = uint64_t{1} << (s.k + s.m);
    uint64_t prev = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const Truth& w = s.truth[i];
        const Event& e = got[i];
        const std::string at = "event " + std::to_string(i) + ": ";
        if (e.seq != i) return at + "seq";
        if (e.type != w.type || e.tid != w.tid) return at + "type or tid";
        if (e.time_ns > w.t_ns || w.t_ns - e.time_ns >= window || e.time_ns % unit != 0 ||
            e.time_ns < prev)
            return at + "time " + std::to_string(e.time_ns) + " for " + std::to_string(w.t_ns);
        prev = e.time_ns;
        Event m;  // the model's event
        m.type = w.type;
        m.kind = w.kind;
        m.tid = w.tid;
        m.time_ns = w.t_ns;
        m.size = w.size;
        m.stack_id = w.stack;
        m.addr = w.block >= 0 ? 0x10000000 + static_cast<uint64_t>(w.block) * 64 : w.addr;
        m.old_addr = w.old_addr;
        m.old_size = w.old_size;
        m.prot = w.prot;
        m.flags = w.flags;
        m.fd = w.fd;
        m.seq = i;
        if ((w.type == EventType::Alloc || w.type == EventType::Free) &&
            (e.old_addr != 0 || e.old_size != 0 || e.prot != 0 || e.flags != 0 || e.fd != -1 ||
             (w.type == EventType::Free && (e.size != 0 || e.stack_id != 0))))
            return at + "fields a heap event does not have";
        switch (w.type) {
            case EventType::Alloc:
                if (e.kind != w.kind || e.size != w.size || e.stack_id != w.stack)
                    return at + "alloc fields";
                if (!(e.addr & kHeapBit) || used[e.addr]) return at + "alloc address";
                used[e.addr] = true;
                addr_of[static_cast<size_t>(w.block)] = e.addr;
                break;
            case EventType::Free:
                if (e.kind != w.kind) return at + "free kind";
                if (w.block >= 0 ? e.addr != addr_of[static_cast<size_t>(w.block)]
                                 : e.addr != w.addr)
                    return at + "free address";
                break;
            case EventType::Mmap:
            case EventType::Munmap:
            case EventType::Mremap:
            case EventType::Rss: {
                Event x = e;
                x.time_ns = m.time_ns;
                if (!same(x, m)) return at + "fields";
                break;
            }
        }
        model_heap.apply(m);
        got_heap.apply(e);
        if (model_heap.live_bytes() != got_heap.live_bytes())
            return at + "live bytes " + std::to_string(got_heap.live_bytes()) +
                   " != " + std::to_string(model_heap.live_bytes());
    }
    if (model_heap.unknown_frees() != got_heap.unknown_frees()) return "unknown frees";
    return "";
}

// The reader's definition tables against the script's.
std::string definitions_mismatch(const Script& s, TraceReader& r) {
    for (const auto& [id, text] : s.strings)
        if (r.string(id) != text) return "string " + std::to_string(id);
    for (const auto& [id, l] : s.locations) {
        const Location* got = r.location(id);
        if (!got || got->file != l.file || got->function != l.function || got->line != l.line)
            return "location " + std::to_string(id);
    }
    for (const auto& [id, node] : s.stacks) {
        const StackNode* got = r.stack(id);
        if (!got || got->parent != node.parent || got->location != node.location)
            return "stack " + std::to_string(id);
    }
    for (const auto& [tid, id] : s.names)
        if (r.thread_name(tid) != r.string(id)) return "thread name " + std::to_string(tid);
    return "";
}

// Reads a whole file made from script s: no error, not truncated, an End chunk, every event
// and definition as the script made them. The Result for the caller's further checks.
Result read_as_script(const std::vector<uint8_t>& bytes, const Script& s) {
    std::string defs;
    Result r =
        read_bytes(bytes, SIZE_MAX, [&](TraceReader& t) { defs = definitions_mismatch(s, t); });
    REQUIRE(r.error.empty());
    CHECK(!r.truncated);
    CHECK(r.has_end);
    REQUIRE(mismatch(s, r.events) == "");
    CHECK(defs == "");
    return r;
}

}  // namespace

TEST_CASE("v3, v4: random streams read back as the model that made them, however cut and framed",
          "[trace][v3][v4]") {
    const uint16_t version = GENERATE(uint16_t(3), uint16_t(4));
    const std::pair<unsigned, unsigned> shifts[] = {{10, 10}, {0, 0}, {3, 2}, {12, 4}};
    const Codec codecs[] = {Codec::None, Codec::Zstd, Codec::Lz4, Codec::ZstdStreamStart};
    for (uint64_t seed = 1; seed <= 12; ++seed) {
        const auto [k, m] = shifts[seed % 4];
        const Script s = make_script(seed, seed % 3 == 0 ? 20000 : 3000, k, m, version);
        std::mt19937_64 rng(seed * 7919);
        const double p = seed % 2 ? 0.01 : 0.2;
        std::bernoulli_distribution random_cut(p);
        const std::vector<std::vector<std::vector<uint8_t>>> cuts = {
            encode(s, [](size_t) { return false; }),  // one payload
            encode(s, [](size_t) { return true; }),   // a payload per record
            encode(s, [&](size_t) { return random_cut(rng); }),
        };
        std::vector<Event> first;
        for (size_t c = 0; c < cuts.size(); ++c) {
            for (Codec codec : codecs) {
                INFO("version " << version << " seed " << seed << " k " << k << " m " << m
                                << " cut " << c << " codec " << int(codec));
                const File f = frame(s, cuts[c], codec);
                const Result r = read_as_script(f.bytes, s);
                CHECK(r.reader_events == s.truth.size());
                CHECK(r.last_time == (r.events.empty() ? 0 : r.events.back().time_ns));
                if (first.empty())
                    first = r.events;
                else
                    REQUIRE(same(r.events, first, first.size()));
            }
        }
    }
}

TEST_CASE("v3 and v4 encodings of one stream deliver the same events", "[trace][v3][v4]") {
    // The same writer calls as a version-3 and a version-4 stream: every event (block
    // identities included), hence the live bytes after every event and the peak, are equal.
    for (uint64_t seed = 21; seed <= 26; ++seed) {
        INFO("seed " << seed);
        const Script s3 = make_script(seed, 5000, 10, 10, 3);
        const Script s4 = make_script(seed, 5000, 10, 10, 4);
        std::mt19937_64 rng(seed);
        std::bernoulli_distribution cut(0.02);
        std::vector<bool> cuts(s3.actions.size());
        for (size_t i = 0; i < cuts.size(); ++i) cuts[i] = cut(rng);
        const auto at = [&](size_t i) { return bool(cuts[i]); };
        const File f3 = frame(s3, encode(s3, at), Codec::ZstdStreamStart);
        const File f4 = frame(s4, encode(s4, at), Codec::ZstdStreamStart);
        CHECK(f3.bytes[8] == 3);
        CHECK(f4.bytes[8] == 4);
        const Result r3 = read_bytes(f3.bytes), r4 = read_bytes(f4.bytes);
        REQUIRE(r3.error.empty());
        REQUIRE(r4.error.empty());
        REQUIRE(mismatch(s4, r4.events) == "");
        REQUIRE(same(r4.events, r3.events, r3.events.size()));
        LiveHeap h3, h4;
        uint64_t peak3 = 0, peak4 = 0;
        for (size_t i = 0; i < r3.events.size(); ++i) {
            h3.apply(r3.events[i]);
            h4.apply(r4.events[i]);
            REQUIRE(h3.live_bytes() == h4.live_bytes());
            peak3 = std::max(peak3, h3.live_bytes());
            peak4 = std::max(peak4, h4.live_bytes());
        }
        CHECK(peak3 == peak4);
        CHECK(peak3 > 0);
        CHECK(h3.unknown_frees() == h4.unknown_frees());
    }
}

TEST_CASE("v3, v4: a trace cut at any byte delivers every complete chunk's events",
          "[trace][v3][v4]") {
    const uint16_t version = GENERATE(uint16_t(3), uint16_t(4));
    for (const Codec codec : {Codec::None, Codec::ZstdStreamStart}) {
        const Script s = make_script(99, 400, 10, 10, version);
        std::mt19937_64 rng(5);
        std::bernoulli_distribution cut(0.08);
        const File f = frame(s, encode(s, [&](size_t) { return cut(rng); }), codec);
        const Result whole = read_bytes(f.bytes);
        REQUIRE(whole.error.empty());
        REQUIRE(mismatch(s, whole.events) == "");
        const size_t header = encode_file_header(stream_header(10, 10, version)).size();
        // Events delivered when the file ends right after chunk c (c = 0: none complete).
        std::vector<size_t> upto(1, 0);
        for (size_t end : f.chunk_end) upto.push_back(read_bytes(f.bytes, end).events.size());
        size_t complete = 0;
        for (size_t n = header; n < f.bytes.size(); ++n) {
            while (complete < f.chunk_end.size() && f.chunk_end[complete] <= n) ++complete;
            const Result r = read_bytes(f.bytes, n);
            INFO("version " << version << " codec " << int(codec) << " cut at " << n);
            REQUIRE(r.error.empty());
            REQUIRE(r.truncated);
            REQUIRE(same(r.events, whole.events, upto[complete]));
        }
    }
}

TEST_CASE("v3, v4: every single-byte change of a stream payload reads or fails with one line",
          "[trace][v3][v4]") {
    const uint16_t version = GENERATE(uint16_t(3), uint16_t(4));
    const Script s = make_script(1234, 250, 10, 10, version);
    std::mt19937_64 rng(77);
    std::bernoulli_distribution cut(0.1);
    const File f = frame(s, encode(s, [&](size_t) { return cut(rng); }), Codec::None, true);
    size_t start = encode_file_header(stream_header(10, 10, version)).size();
    size_t valid = 0, errors = 0;
    for (size_t c = 0; c + 1 < f.chunk_end.size(); ++c) {  // the thread-events chunks
        const size_t payload = start + kChunkHeaderBytes, end = f.chunk_end[c];
        for (size_t at = payload; at < end; ++at) {
            for (uint8_t x : {uint8_t(0x01), uint8_t(0x02), uint8_t(0x40), uint8_t(0x80),
                              uint8_t(0xff), uint8_t(rng() | 1)}) {
                std::vector<uint8_t> b = f.bytes;
                b[at] ^= x;
                uint32_t crc = chunk_crc(b.data() + start, b.data() + payload, end - payload);
                std::memcpy(b.data() + start + 16, &crc, 4);
                INFO("version " << version << " byte " << at << " ^ " << int(x));
                const Result r = read_bytes(b);  // one line starting with the path, or none
                (r.error.empty() ? valid : errors) += 1;
            }
        }
        start = end;
    }
    CHECK(errors > 0);
    CHECK(valid > 0);
}

// ---------------------------------------------------------------- the writer's stored-raw fallback

TEST_CASE(
    "v3, v4: payloads stored raw between zstd stream chunks (the writer's fallback) read back",
    "[trace][v3][v4]") {
    // When zstd fails on a payload, ChunkStream::stream_chunk stores that payload alone through
    // append_chunk with codec zstd (codec 1, or codec 0 when that does not shrink it) and starts
    // a new stream (codec 3) with the next payload; a new ChunkStream writes what one whose
    // stream restarted writes. The reader must take the raw chunks as the next pieces of the
    // event stream and the codec-3 chunk as a new zstd frame. A stream continued (codec 4) past
    // a raw chunk is valid too: other chunks do not affect the stream (FORMAT.md, "Column form").
    const uint16_t version = GENERATE(uint16_t(3), uint16_t(4));
    const Script s = make_script(4242, 8000, 10, 10, version);
    // The script's events are random, so its payloads are nearly incompressible: zstd shrinks
    // one of a few hundred bytes only by chance (its frame costs about what it saves), one of
    // several kB by some 5%. Payloads 2, 10, 18, ... (stored with codec Zstd below) are made
    // long (1,000 actions) so that the fallback stores them with codec 1; payloads 6, 14, ...
    // are stored with codec 0; the rest are short (1% of the actions end one).
    std::mt19937_64 rng(5);
    std::bernoulli_distribution cut(0.01);
    size_t cuts = 0, since = 0;
    const auto payloads = encode(s, [&](size_t) {
        const bool c = cuts % 8 == 2 ? ++since >= 1000 : cut(rng);
        if (c) {
            ++cuts;
            since = 0;
        }
        return c;
    });
    REQUIRE(payloads.size() >= 12);
    for (size_t i = 2; i < payloads.size(); i += 8) REQUIRE(payloads[i].size() >= 2048);
    for (const bool restart : {true, false}) {
        INFO("version " << version << (restart ? " new stream" : " stream continued"));
        File f;
        f.bytes = encode_file_header(stream_header(s.k, s.m, version));
        auto stream = std::make_unique<ChunkStream>(1);
        std::vector<size_t> chunk_start;
        size_t raw_chunks = 0;
        for (size_t i = 0; i < payloads.size(); ++i) {
            const auto& p = payloads[i];
            chunk_start.push_back(f.bytes.size());
            if (i % 4 == 2) {  // zstd "failed" on this one
                append_chunk(f.bytes, ChunkType::ThreadEvents,
                             i % 8 == 2 ? Codec::Zstd : Codec::None, p.data(), p.size());
                ++raw_chunks;
                if (restart) stream = std::make_unique<ChunkStream>(1);
            } else {
                const ByteSpan piece{p.data(), p.size()};
                stream->append_stream_chunk(f.bytes, &piece, 1);
            }
        }
        const auto e = end_payload(EndSummary{});
        append_chunk(f.bytes, ChunkType::End, Codec::None, e.data(), e.size());
        // The chunks are what they should be: raw ones where zstd "failed", a new stream after
        // each of them when the writer restarts it.
        size_t codec[5] = {};
        for (size_t i = 0; i < chunk_start.size(); ++i) {
            const ChunkHeader h = parse_chunk_header(f.bytes.data() + chunk_start[i]);
            ++codec[static_cast<size_t>(h.codec)];
            if (i % 8 == 2)  // long: zstd shrank it
                CHECK((h.codec == Codec::Zstd && h.stored_len < h.raw_len));
            else if (i % 8 == 6)
                CHECK((h.codec == Codec::None && h.stored_len == h.raw_len));
            else
                CHECK(h.codec == (i == 0 || (restart && i % 4 == 3) ? Codec::ZstdStreamStart
                                                                    : Codec::ZstdStream));
        }
        CHECK(codec[1] > 0);
        CHECK(codec[0] > 0);
        CHECK(codec[0] + codec[1] == raw_chunks);
        const Result r = read_as_script(f.bytes, s);

        // The codec marks matter: the chunk after a raw one relabelled (a new frame read as the
        // old stream's continuation, or the continuation read as a new frame) is one line naming
        // that chunk, and every event before it is delivered.
        std::vector<uint8_t> b = f.bytes;
        const size_t at = chunk_start[3];
        b[at + 5] = uint8_t(restart ? Codec::ZstdStream : Codec::ZstdStreamStart);
        const uint32_t crc = chunk_crc(b.data() + at, b.data() + at + kChunkHeaderBytes,
                                       parse_chunk_header(b.data() + at).stored_len);
        std::memcpy(b.data() + at + 16, &crc, 4);
        const Result bad = read_bytes(b);
        CHECK(bad.error.rfind("chunk at byte offset " + std::to_string(at) + ": zstd", 0) == 0);
        size_t before = 0;  // events of the first three payloads
        {
            File g = stream_file({payloads[0], payloads[1], payloads[2]}, Codec::None, false, s.k,
                                 s.m, version);
            before = read_bytes(g.bytes).events.size();
        }
        CHECK(bad.events.size() == before);
        REQUIRE(before > 0);
        CHECK(same(bad.events, r.events, before));
    }
}

// ---------------------------------------------------------------- hostile streams

namespace {

// A payload that adds `threads` new threads (tids 1000, 1001, ...) and nothing else.
std::vector<uint8_t> thread_flood(uint64_t threads) {
    Cols c;
    for (uint64_t i = 0; i < threads; ++i) c.thread(i, 1000 + i);
    return c.payload();
}

struct Count : EventVisitor {
    uint64_t n = 0;
    void on_event(const Event&) override { ++n; }
    void on_events(const Event*, size_t k) override { n += k; }
};

// What decoding the payloads does with these limits: "" or the TraceError's message.
std::string decode_with(detail::StreamDecoder::Limits limits, uint16_t version,
                        const std::vector<std::vector<uint8_t>>& payloads,
                        uint64_t* events = nullptr) {
    detail::StreamDecoder d(10, version, limits);
    Count v;
    try {
        for (const auto& p : payloads) d.decode(p.data(), p.size(), v);
    } catch (const TraceError& e) {
        if (events) *events = v.n;
        return e.what();
    }
    if (events) *events = v.n;
    return "";
}

}  // namespace

TEST_CASE("v3, v4: a file adds at most the reader's limit of threads, then one line",
          "[trace][v3][v4][hostile]") {
    const uint16_t version = GENERATE(uint16_t(3), uint16_t(4));
    detail::StreamDecoder::Limits limits;
    limits.threads = 1000;
    CHECK(decode_with(limits, version, {thread_flood(1000)}) == "");
    CHECK(decode_with(limits, version, {thread_flood(1001)}) ==
          "stream payload: more than 1000 threads (a Linux process has fewer thread ids)");
    // Across payloads, and switching back to known threads costs nothing.
    Cols more;
    more.thread(3).thread(999).thread(1000, 5000);
    CHECK(decode_with(limits, version,
                      {thread_flood(1000), Cols().thread(3).thread(999).payload()}) == "");
    CHECK(decode_with(limits, version, {thread_flood(1000), more.payload()}) ==
          "stream payload: more than 1000 threads (a Linux process has fewer thread ids)");
    // A thread id added twice is found whatever its value and index, however large the table.
    for (const uint64_t tid : {uint64_t{0}, uint64_t{1}, uint64_t{UINT32_MAX}}) {
        CHECK(decode_with(limits, version, {Cols().thread(0, tid).thread(1, tid).payload()}) ==
              "stream payload: thread id " + std::to_string(tid) + " added twice");
        Cols d;  // the same after the table has grown several times
        d.thread(0, tid);
        for (uint64_t i = 1; i <= 100; ++i) d.thread(i, 5000 + i);
        CHECK(decode_with(limits, version, {d.payload()}) == "");
        d.thread(101, tid);
        CHECK(decode_with(limits, version, {d.payload()}) ==
              "stream payload: thread id " + std::to_string(tid) + " added twice");
    }
    Cols twice;
    twice.thread(20000, 1000 + 12345);
    limits.threads = 1 << 22;
    CHECK(decode_with(limits, version, {thread_flood(20000), twice.payload()}) ==
          "stream payload: thread id 13345 added twice");

    // The default limit (Linux's 2^22 thread ids), through the reader: one line naming the chunk.
    if (version == 4) {
        const File f = stream_file({thread_flood((uint64_t{1} << 22) + 1)}, Codec::None, true, 10,
                                   10, version);
        const Result r = read_bytes(f.bytes);
        CHECK(r.error == "chunk at byte offset " +
                             std::to_string(encode_file_header(stream_header(10, 10, 4)).size()) +
                             ": stream payload: more than 4194304 threads (a Linux process has "
                             "fewer thread ids)");
    }
}

TEST_CASE("v3, v4: a thread costs the reader under 100 bytes", "[trace][v3][v4][hostile]") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    SUCCEED("the sanitizers' allocators do not report heap use through mallinfo2");
#else
    // A thread is a few bytes of a file (op, index, tid): 2^20 of them made the reader hold
    // ~190 MB before it kept them in place (32 bytes each) with an open-addressed tid index.
    const uint16_t version = GENERATE(uint16_t(3), uint16_t(4));
    const uint64_t n = uint64_t{1} << 20;
    const std::vector<uint8_t> p = thread_flood(n);
    const size_t before = mallinfo2().uordblks + mallinfo2().hblkhd;
    size_t after = 0;
    {
        detail::StreamDecoder d(10, version);
        Count v;
        d.decode(p.data(), p.size(), v);
        after = mallinfo2().uordblks + mallinfo2().hblkhd;
    }
    INFO("version " << version << ": " << (after - before) / n << " bytes a thread");
    CHECK(after > before);
    CHECK(after - before < 100 * n);
#endif
}

TEST_CASE("v3: a thread's live blocks stop at the reader's limit with one line",
          "[trace][v3][hostile]") {
    // The limit is looked at when LiveRank's arrays grow (by doubling from 4): with 1000, the
    // 1024th block would need room for 1024 positions and is refused.
    detail::StreamDecoder::Limits limits;
    limits.positions = 1000;
    Cols fill = Cols().thread(0, 5);
    for (int i = 0; i < 1023; ++i) fill.alloc(AllocKind::Malloc, 16, 0);
    uint64_t events = 0;
    CHECK(decode_with(limits, 3, {fill.payload()}, &events) == "");
    CHECK(events == 1023);
    fill.alloc(AllocKind::Malloc, 16, 0);
    CHECK(decode_with(limits, 3, {fill.payload()}, &events) ==
          "stream payload: thread index 0 has 1023 live blocks, more than this reader holds");
    // Another thread has its own room, and blocks freed make room again (tombstones are
    // compacted): 100,000 allocations with at most 400 live never reach the limit.
    Cols other = Cols().thread(1, 6);
    for (int i = 0; i < 500; ++i) other.alloc(AllocKind::Malloc, 16, 0);
    CHECK(decode_with(limits, 3, {fill.payload(), other.payload()}).find("thread index 0 ") !=
          std::string::npos);
    Cols churn = Cols().thread(0, 5);
    std::mt19937_64 rng(9);
    uint64_t live = 0;
    for (int i = 0; i < 100000; ++i) {
        if (live < 400 && (live == 0 || rng() % 2)) {
            churn.alloc(AllocKind::Malloc, 16, 0);
            ++live;
        } else {
            churn.free(rng() % (2 * live));  // any live block, from either end
            --live;
        }
    }
    CHECK(decode_with(limits, 3, {churn.payload()}, &events) == "");
    CHECK(events == 100000);
    // Version 4 keeps no per-thread structure: no such limit.
    Cols v4 = Cols().thread(0, 5);
    for (int i = 0; i < 5000; ++i) v4.alloc(AllocKind::Malloc, 16, 0);
    CHECK(decode_with(limits, 4, {v4.payload()}, &events) == "");
    CHECK(events == 5000);
}

TEST_CASE("readers' id tables spread ids that are multiples of the bucket count",
          "[trace][hostile]") {
    // std::hash<uint64_t> is the identity: such ids, far beyond the dense ids (a hostile file's
    // definitions), all fell into one bucket and reading them was quadratic.
    std::unordered_map<uint64_t, int, detail::SeededIdHash> m(
        0, detail::SeededIdHash{detail::HashSeeds(&m).next()});
    m.reserve(100000);
    const uint64_t p = m.bucket_count();
    for (uint64_t i = 0; i < 100000; ++i) m[(uint64_t{1} << 40) / p * p + i * p] = 0;
    size_t worst = 0;
    for (size_t b = 0; b < m.bucket_count(); ++b) worst = std::max(worst, m.bucket_size(b));
    CHECK(worst <= 16);
}
