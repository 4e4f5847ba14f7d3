// Unit tests of how TraceReader treats damaged input: files cut at any point, flipped bytes,
// other versions, foreign files, and a randomised mutation loop that must never crash.
#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "pmt/live.hpp"
#include "test_trace_util.hpp"

using namespace pmt;
using namespace pmt::test;

namespace {

// Three flushes of two threads, 10 allocs each, epochs after each flush, then the end.
TraceBuilder three_flushes(Codec codec = Codec::Zstd) {
    TraceBuilder b(codec);
    uint64_t addr = 0x10000;
    for (uint64_t flush = 0; flush < 3; ++flush) {
        for (uint64_t tid : {1, 2}) {
            RecordEncoder& e = b.thread(tid, flush * 1'000'000'000);
            if (flush == 0) REQUIRE(e.string(tid, "s", 1));
            for (uint64_t k = 0; k < 10; ++k)
                REQUIRE(e.alloc(AllocKind::Malloc, flush * 1'000'000'000 + k * 1000 + tid, addr++,
                                32, 0));
            b.end_thread();
        }
        b.epoch((flush + 1) * 1'000'000'000);
    }
    b.end({3'000'000'000, 60, 60 * 32, 0});
    return b;
}

std::string read_error(const std::vector<uint8_t>& bytes, const TempFile& f) {
    f.write(bytes);
    try {
        TraceReader r(f.path);
        Collect c;
        r.read(c);
    } catch (const TraceError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a trace cut inside its file header is an error naming the file", "[trace]") {
    TraceBuilder b = three_flushes();
    TempFile f;
    for (size_t cut :
         {size_t(0), size_t(4), size_t(8), size_t(15), size_t(16), b.header_bytes - 1}) {
        std::vector<uint8_t> part(b.bytes.begin(), b.bytes.begin() + cut);
        std::string err = read_error(part, f);
        INFO("cut at " << cut);
        CHECK(err.rfind(f.path + ": ", 0) == 0);
        CHECK(err.find('\n') == std::string::npos);
    }
}

TEST_CASE("a trace cut inside a chunk still delivers the events of its complete chunks",
          "[trace]") {
    TraceBuilder b = three_flushes();
    TempFile f;
    // offsets[i] = start of chunk i: t1 t2 epoch t1 t2 epoch t1 t2 epoch end
    const auto& off = b.chunk_offsets;
    REQUIRE(off.size() == 10);
    struct Cut {
        size_t at;
        size_t events;
        bool mid_chunk;
    };
    std::vector<Cut> cuts = {
        {off[0] + 3, 0, true},    // inside the first chunk header
        {off[1] + 25, 10, true},  // inside the second thread chunk's payload
        {off[2] + 21, 20, true},  // inside the first epoch
        {off[3], 20, false},      // exactly at a chunk boundary
        {off[8] + 19, 60, true},  // one byte short of the last epoch's header
        {off[9] + 10, 60, true},  // inside the end chunk
    };
    for (const Cut& cut : cuts) {
        INFO("cut at " << cut.at);
        f.write(b.bytes.data(), cut.at);
        TraceReader r(f.path);
        Collect c;
        r.read(c);
        CHECK(c.events.size() == cut.events);
        CHECK(r.truncated());
        CHECK_FALSE(r.has_end());
        if (cut.mid_chunk)
            CHECK_THAT(r.truncation_reason(),
                       Catch::StartsWith("trace truncated at t=") &&
                           Catch::Contains("stopped before its last chunk was complete"));
        else
            CHECK(r.truncation_reason() ==
                  "no end record: the process was killed or is still running");
        for (size_t i = 1; i < c.events.size(); ++i)
            CHECK(c.events[i - 1].time_ns <= c.events[i].time_ns);
    }
    // Cut in the third flush's second chunk: the last event delivered is at t=2.000009 s.
    f.write(b.bytes.data(), off[7] + 30);
    TraceReader r(f.path);
    Collect c;
    r.read(c);
    CHECK(r.truncation_reason().rfind("trace truncated at t=2.000 s", 0) == 0);
}

TEST_CASE("a flipped byte inside a complete chunk is corruption naming the path and offset",
          "[trace]") {
    for (Codec codec : {Codec::None, Codec::Zstd, Codec::Lz4, Codec::ZstdStream}) {
        TraceBuilder b = three_flushes(codec);
        TempFile f;
        size_t chunk = b.chunk_offsets[4];
        std::vector<uint8_t> bytes = b.bytes;
        bytes[chunk + kChunkHeaderBytes + 3] ^= 0x40;
        std::string err = read_error(bytes, f);
        CHECK(err == f.path + ": chunk at byte offset " + std::to_string(chunk) +
                         ": checksum mismatch (corrupt trace)");
        // A flipped chunk magic is corruption too.
        bytes = b.bytes;
        bytes[chunk + 1] ^= 0x01;
        CHECK_THAT(read_error(bytes, f), Catch::Contains("bad chunk magic"));
    }
}

TEST_CASE("a corrupt file header fails with a clear one-line message", "[trace]") {
    TraceBuilder b = three_flushes();
    TempFile f;
    auto bytes = b.bytes;
    bytes[8] = 7;  // version 7
    CHECK(read_error(bytes, f) ==
          f.path + ": unsupported trace format version 7 (this pymemtrace reads versions 1 to 4)");
    bytes = b.bytes;
    bytes[20] ^= 0xff;  // header payload
    CHECK(read_error(bytes, f) == f.path + ": header checksum mismatch (corrupt trace)");
    bytes = b.bytes;
    bytes[15] = 0x7f;  // payload length far over 1 MiB
    CHECK_THAT(read_error(bytes, f), Catch::Contains("over the 1 MiB limit"));
}

TEST_CASE("a file that is not a trace is rejected", "[trace]") {
    TempFile f;
    const char* text = "#!/usr/bin/env python3\nprint('hello')\n";
    CHECK(read_error(std::vector<uint8_t>(text, text + std::strlen(text)), f) ==
          f.path + ": not a pymemtrace trace");
    CHECK(read_error({}, f) == f.path + ": not a pymemtrace trace");
    CHECK_THROWS_WITH(TraceReader("/nonexistent/dir/x.pmt"),
                      Catch::StartsWith("/nonexistent/dir/x.pmt: cannot open: "));
    CHECK_THROWS_WITH(TraceReader("/tmp"), "/tmp: is a directory, not a trace file");
}

TEST_CASE("randomly mutated traces either read or fail with TraceError, never crash",
          "[trace][fuzz]") {
    std::mt19937_64 rng(20261125);
    TempFile f;
    int ok = 0, errors = 0;
    for (int round = 0; round < 2000; ++round) {
        Codec codec = static_cast<Codec>(round % 3);
        TraceBuilder b = three_flushes(codec);
        std::vector<uint8_t> bytes = b.bytes;
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < edits; ++k) {
            size_t pos = rng() % bytes.size();
            switch (rng() % 4) {
                case 0:
                    bytes[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
                    break;
                case 1:
                    bytes[pos] = static_cast<uint8_t>(rng());
                    break;
                case 2:
                    bytes.resize(pos);
                    break;
                case 3:
                    bytes.insert(bytes.begin() + pos, static_cast<uint8_t>(rng()));
                    break;
            }
            if (bytes.empty()) break;
        }
        f.write(bytes);
        try {
            TraceReader r(f.path);
            Collect c;
            r.read(c);
            CHECK(c.events.size() <= 60);
            ++ok;
        } catch (const TraceError& e) {
            CHECK(std::string(e.what()).rfind(f.path + ": ", 0) == 0);
            ++errors;
        }
    }
    CHECK(ok + errors == 2000);
    CHECK(errors > 0);
}

namespace {

// Replays what the reader delivers into a LiveHeap, as the analyzer does.
struct Replay : EventVisitor {
    LiveHeap heap;
    uint64_t n = 0;
    void on_event(const Event& e) override {
        heap.apply(e);
        ++n;
    }
};

}  // namespace

TEST_CASE("mutated records behind valid checksums either read or fail with TraceError",
          "[trace][fuzz]") {
    // The checksum stops random damage before the decoder; this reaches the decoder and the
    // live-set replay with hostile records (huge lengths, ids, sizes, bad opcodes).
    std::mt19937_64 rng(4242);
    std::vector<uint8_t> buf(1 << 16);
    RecordEncoder e;
    e.reset(buf.data(), buf.size(), 7, 1000, 0);
    REQUIRE(e.string(1, "f.py", 4));
    REQUIRE(e.location(1, 1, 1, 3));
    REQUIRE(e.stack(1, 0, 1));
    for (uint64_t k = 0; k < 40; ++k) {
        REQUIRE(e.alloc(AllocKind::Malloc, 1000 + k, 0x1000 + k * 64, 48, 1));
        REQUIRE(e.realloc(AllocKind::Realloc, 1000 + k, 1001 + k, 0x1000 + k * 64, 0x9000 + k * 64,
                          96, 1));
        REQUIRE(e.mmap(1001 + k, 0x7f0000000000 + k * 65536, 65536, 3, 0x22, -1, 1));
        REQUIRE(e.munmap(1001 + k, 0x7f0000000000 + k * 65536 + 4096, 8192));
        REQUIRE(e.mremap(1001 + k, 1002 + k, 0x7f0000000000 + k * 65536, 4096,
                         0x7e0000000000 + k * 65536, 16384, 1));
        REQUIRE(e.rss(1002 + k, 1 << 20));
        REQUIRE(e.free(1002 + k, 0x9000 + k * 64));
    }
    const std::vector<uint8_t> records(e.data(), e.data() + e.size());
    TempFile f;
    int ok = 0, errors = 0;
    for (int round = 0; round < 2000; ++round) {
        std::vector<uint8_t> raw = records;
        int edits = 1 + static_cast<int>(rng() % 6);
        for (int k = 0; k < edits; ++k) {
            size_t pos = rng() % raw.size();
            switch (rng() % 3) {
                case 0:
                    raw[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
                    break;
                case 1:
                    raw[pos] = static_cast<uint8_t>(rng() % 2 ? 0xff : rng());
                    break;
                case 2:
                    raw.erase(raw.begin() + pos);
                    break;
            }
            if (raw.empty()) break;
        }
        TraceBuilder b(static_cast<Codec>(round % 3));
        b.chunk_offsets.push_back(b.bytes.size());
        append_chunk(b.bytes, ChunkType::ThreadEvents, static_cast<Codec>(round % 3), raw.data(),
                     raw.size());
        b.epoch(UINT64_MAX);
        f.write(b.bytes);
        try {
            TraceReader r(f.path);
            Replay rep;
            r.read(rep);
            CHECK(rep.n == r.events());
            (void)r.frames(1);
            ++ok;
        } catch (const TraceError& err) {
            CHECK_THAT(err.what(), Catch::StartsWith(f.path + ": chunk at byte offset "));
            ++errors;
        }
    }
    CHECK(ok > 0);
    CHECK(errors > 0);
}
