// Unit tests of TraceReader: every record type round-trips through the encoder, each codec and
// a real file; the header, end summary and definition tables come back; frames resolve.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <thread>

#include "test_trace_util.hpp"

using namespace pmt;
using namespace pmt::test;

namespace {

TraceHeader sample_header() {
    TraceHeader h;
    h.pid = 777;
    h.ppid = 776;
    h.argv = {"python3", "-c", "x = [0] * 10"};
    h.python_version = "3.11.2";
    h.allocator = "glibc";
    h.exe = "/usr/bin/python3.11";
    return h;
}

// One thread writing one record of every type (definitions first, as FORMAT.md requires).
void write_every_record(TraceBuilder& b) {
    RecordEncoder& e = b.thread(4321, 1000);
    REQUIRE(e.string(1, "job.py", 6));
    REQUIRE(e.string(2, "main", 4));
    REQUIRE(e.string(3, "<module>", 8));
    REQUIRE(e.string(4, "worker-1", 8));
    REQUIRE(e.location(1, 1, 3, 10));
    REQUIRE(e.location(2, 1, 2, 42));
    REQUIRE(e.stack(1, 0, 1));
    REQUIRE(e.stack(2, 1, 2));
    REQUIRE(e.thread_name(4));
    REQUIRE(e.alloc(AllocKind::Calloc, 1010, 0x7f0000001000, 96, 2));
    REQUIRE(e.free(1020, 0x7f0000001000));
    REQUIRE(e.realloc(AllocKind::Realloc, 1030, 1035, 0x5000, 0x9000, 4096, 1));
    REQUIRE(e.realloc(AllocKind::ReallocArray, 1040, 1041, 0, 0xa000, 16, 2));
    REQUIRE(e.realloc(AllocKind::Realloc, 1050, 1052, 0xa000, 0, 0, 2));
    REQUIRE(e.mmap(1060, 0x7f1000000000, 1 << 20, 3, 0x22, -1, 2));
    REQUIRE(e.mmap(1061, 0x7f2000000000, 8192, 1, 0x2, 5, 0));
    REQUIRE(e.munmap(1070, 0x7f1000010000, 65536));
    REQUIRE(e.mremap(1080, 1090, 0x7f1000000000, 65536, 0x7f3000000000, 1 << 21, 1));
    REQUIRE(e.rss(1100, 123456789));
    b.end_thread();
    b.epoch(2000);
    b.end({1200, 11, 1 << 21, 1090});
}

}  // namespace

TEST_CASE("every record type round-trips through each codec and a file", "[trace]") {
    for (Codec codec : {Codec::None, Codec::Zstd, Codec::Lz4, Codec::ZstdStream}) {
        TraceBuilder b(codec, sample_header());
        write_every_record(b);
        TempFile f;
        f.write(b.bytes);
        TraceReader r(f.path);
        CHECK(r.header().pid == 777);
        CHECK(r.header().argv.size() == 3);
        CHECK(r.header().version == kFormatVersion);
        Collect c;
        r.read(c);
        CHECK_FALSE(r.truncated());
        CHECK(r.truncation_reason().empty());
        REQUIRE(r.has_end());
        CHECK(r.end().events == 11);
        CHECK(r.end().peak_live_bytes == (1u << 21));
        CHECK(r.file_bytes() == b.bytes.size());
        CHECK(r.bytes_read() == b.bytes.size());

        const auto& ev = c.events;
        REQUIRE(ev.size() == 11);
        REQUIRE(r.events() == 11);
        for (size_t i = 0; i < ev.size(); ++i) {
            CHECK(ev[i].seq == i);
            CHECK(ev[i].tid == 4321);
        }
        CHECK(ev[0].type == EventType::Alloc);
        CHECK(ev[0].kind == AllocKind::Calloc);
        CHECK(ev[0].time_ns == 1010);
        CHECK(ev[0].addr == 0x7f0000001000);
        CHECK(ev[0].size == 96);
        CHECK(ev[0].stack_id == 2);
        CHECK(ev[1].type == EventType::Free);
        CHECK(ev[1].addr == 0x7f0000001000);
        CHECK(ev[1].time_ns == 1020);
        // realloc moved: free of the old block at t_before, alloc of the new at t_after.
        CHECK(ev[2].type == EventType::Free);
        CHECK(ev[2].kind == AllocKind::Realloc);
        CHECK(ev[2].addr == 0x5000);
        CHECK(ev[2].time_ns == 1030);
        CHECK(ev[3].type == EventType::Alloc);
        CHECK(ev[3].kind == AllocKind::Realloc);
        CHECK(ev[3].addr == 0x9000);
        CHECK(ev[3].size == 4096);
        CHECK(ev[3].time_ns == 1035);
        CHECK(ev[3].stack_id == 1);
        // realloc(NULL, 16): only an alloc.
        CHECK(ev[4].type == EventType::Alloc);
        CHECK(ev[4].kind == AllocKind::ReallocArray);
        CHECK(ev[4].addr == 0xa000);
        CHECK(ev[4].time_ns == 1041);
        // realloc(p, 0) returning NULL: only a free.
        CHECK(ev[5].type == EventType::Free);
        CHECK(ev[5].addr == 0xa000);
        CHECK(ev[5].time_ns == 1050);
        CHECK(ev[6].type == EventType::Mmap);
        CHECK(ev[6].addr == 0x7f1000000000);
        CHECK(ev[6].size == (1u << 20));
        CHECK(ev[6].prot == 3);
        CHECK(ev[6].flags == 0x22);
        CHECK(ev[6].fd == -1);
        CHECK(ev[6].stack_id == 2);
        CHECK(ev[7].fd == 5);
        CHECK(ev[7].stack_id == 0);
        CHECK(ev[8].type == EventType::Munmap);
        CHECK(ev[8].addr == 0x7f1000010000);
        CHECK(ev[8].size == 65536);
        CHECK(ev[9].type == EventType::Mremap);
        CHECK(ev[9].time_ns == 1090);
        CHECK(ev[9].old_addr == 0x7f1000000000);
        CHECK(ev[9].old_size == 65536);
        CHECK(ev[9].addr == 0x7f3000000000);
        CHECK(ev[9].size == (1u << 21));
        CHECK(ev[9].stack_id == 1);
        CHECK(ev[10].type == EventType::Rss);
        CHECK(ev[10].size == 123456789);
        CHECK(ev[10].time_ns == 1100);
        CHECK(r.last_time_ns() == 1100);

        CHECK(r.string(1) == "job.py");
        CHECK(r.string(99).empty());
        CHECK(r.thread_name(4321) == "worker-1");
        CHECK(r.thread_name(1).empty());
        REQUIRE(r.location(2) != nullptr);
        CHECK(r.location(2)->line == 42);
        CHECK(r.stack(0) == nullptr);
        CHECK(r.stack(2)->parent == 1);
        auto fr = r.frames(2);
        REQUIRE(fr.size() == 2);
        CHECK(fr[0].file == "job.py");
        CHECK(fr[0].function == "main");
        CHECK(fr[0].line == 42);
        CHECK(fr[1].function == "<module>");
        CHECK(fr[1].line == 10);
        CHECK(r.frames(0).empty());
        CHECK(r.frames(2, 1).size() == 1);
    }
}

TEST_CASE("a stack whose parent links form a cycle yields at most max_depth frames", "[trace]") {
    TraceBuilder b;
    RecordEncoder& e = b.thread(1, 0);
    REQUIRE(e.stack(1, 2, 0));
    REQUIRE(e.stack(2, 1, 0));
    b.end_thread();
    TempFile f;
    f.write(b.bytes);
    TraceReader r(f.path);
    Collect c;
    r.read(c);
    CHECK(r.frames(1, 50).size() == 50);
}

TEST_CASE("a trace with no chunks reads as empty and truncated without an end record", "[trace]") {
    TraceBuilder b;
    TempFile f;
    f.write(b.bytes);
    TraceReader r(f.path);
    Collect c;
    r.read(c);
    CHECK(c.events.empty());
    CHECK(r.truncated());
    CHECK(r.truncation_reason() == "no end record: the process was killed or is still running");
    CHECK_FALSE(r.has_end());
}

TEST_CASE("read may be called only once", "[trace]") {
    TraceBuilder b;
    TempFile f;
    f.write(b.bytes);
    TraceReader r(f.path);
    Collect c;
    r.read(c);
    CHECK_THROWS_AS(r.read(c), TraceError);
}

TEST_CASE("a trace can be read from a pipe", "[trace]") {
    TraceBuilder b(Codec::Lz4, sample_header());
    write_every_record(b);
    TempFile f;
    std::remove(f.path.c_str());
    REQUIRE(mkfifo(f.path.c_str(), 0600) == 0);
    std::thread writer([&] { f.write(b.bytes); });  // blocks until the reader opens
    TraceReader r(f.path);
    Collect c;
    r.read(c);
    writer.join();
    CHECK(c.events.size() == 11);
    CHECK(r.has_end());
    CHECK(r.file_bytes() == b.bytes.size());
}
