// Unit tests of format version 2's size levers (FORMAT.md): times rounded to 2^k ns, the
// column form and the file-wide zstd stream (codecs 3 and 4), with truncation at every chunk
// boundary and inside chunks, and corruption of a continued stream chunk.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "pmt/chunk.hpp"
#include "pmt/column_builder.hpp"
#include "pmt/encoder.hpp"
#include "pmt/reader.hpp"
#include "test_trace_util.hpp"

using namespace pmt;
using namespace pmt::test;

namespace {

// Every record type (8 events), with times that are not multiples of anything.
void every_record(RecordEncoder& e, uint64_t t, uint64_t salt) {
    REQUIRE(e.string(1 + salt * 10, "job.py", 6));
    REQUIRE(e.location(1 + salt * 10, 1 + salt * 10, 1 + salt * 10, 42));
    REQUIRE(e.stack(1 + salt * 10, 0, 1 + salt * 10));
    REQUIRE(e.thread_name(1 + salt * 10));
    REQUIRE(e.alloc(AllocKind::Malloc, t + 1, 0x7f0000001000 + salt * 64, 100 + salt, 1));
    REQUIRE(e.realloc(AllocKind::Realloc, t + 5003, t + 5007, 0x7f0000001000 + salt * 64,
                      0x7f0000200000, 5000, 1 + salt * 10));
    REQUIRE(e.mmap(t + 9001, 0x7e0000000000, 1 << 20, 3, 0x22, -1, 0));
    REQUIRE(e.mremap(t + 12001, t + 12002, 0x7e0000000000, 1 << 20, 0x7d0000000000, 2 << 20, 0));
    REQUIRE(e.munmap(t + 13000, 0x7d0000000000, 4096));
    REQUIRE(e.rss(t + 14000, 123456789));
    REQUIRE(e.free(t + 20011, 0x7f0000200000));
}

std::vector<Event> read_all(const std::vector<uint8_t>& bytes) {
    TempFile f;
    f.write(bytes);
    TraceReader r(f.path);
    Collect c;
    r.read(c);
    return c.events;
}

// Reading bytes must fail with exactly "<path>: <expected_after_path>".
void check_read_error(const std::vector<uint8_t>& bytes, const std::string& expected_after_path) {
    TempFile f;
    f.write(bytes);
    TraceReader r(f.path);
    Collect c;
    try {
        r.read(c);
        FAIL("a damaged trace was read: expected " << expected_after_path);
    } catch (const TraceError& e) {
        CHECK(std::string(e.what()) == f.path + ": " + expected_after_path);
    }
}

bool same(const Event& a, const Event& b) {
    return a.type == b.type && a.kind == b.kind && a.tid == b.tid && a.time_ns == b.time_ns &&
           a.addr == b.addr && a.size == b.size && a.stack_id == b.stack_id &&
           a.old_addr == b.old_addr && a.old_size == b.old_size && a.prot == b.prot &&
           a.flags == b.flags && a.fd == b.fd;
}

// Three threads, several payloads each, epochs between rounds: the shape the writer makes.
TraceBuilder build(Codec codec, unsigned shift, std::vector<size_t>* events_per_chunk = nullptr) {
    TraceBuilder b(codec, {}, shift);
    uint64_t t = 1000;
    for (uint64_t round = 0; round < 6; ++round) {
        for (uint32_t tid = 1; tid <= 3; ++tid) {
            RecordEncoder& e = b.thread(tid, t);
            every_record(e, t, round * 3 + tid);
            for (uint64_t i = 0; i < 200; ++i)
                REQUIRE(e.alloc(AllocKind::Malloc, t + 21000 + i * 37, 0x5000000 + i * 48, 48, 1));
            for (uint64_t i = 0; i < 200; ++i)
                REQUIRE(e.free(t + 30000 + i * 41, 0x5000000 + i * 48));
            b.end_thread();
            if (events_per_chunk) events_per_chunk->push_back(8 + 400);
        }
        t += 50000;
        b.epoch(t);
        if (events_per_chunk) events_per_chunk->push_back(0);
    }
    return b;
}

}  // namespace

TEST_CASE("the stream codec delivers exactly what uncompressed chunks deliver", "[trace]") {
    for (unsigned shift : {0u, 12u}) {
        auto plain = read_all(build(Codec::None, shift).bytes);
        TraceBuilder s = build(Codec::ZstdStream, shift);
        auto streamed = read_all(s.bytes);
        REQUIRE(plain.size() == 6 * 3 * 408);
        REQUIRE(streamed.size() == plain.size());
        for (size_t i = 0; i < plain.size(); ++i) REQUIRE(same(plain[i], streamed[i]));
        // The first thread chunk starts the stream, the others continue it.
        CHECK(parse_chunk_header(s.bytes.data() + s.chunk_offsets[0]).codec ==
              Codec::ZstdStreamStart);
        CHECK(parse_chunk_header(s.bytes.data() + s.chunk_offsets[1]).codec == Codec::ZstdStream);
        CHECK(s.bytes.size() < build(Codec::Zstd, shift).bytes.size());
    }
}

TEST_CASE("times are rounded down to the declared resolution and never decrease", "[trace]") {
    TraceBuilder b(Codec::ZstdStream, {}, 12);
    RecordEncoder& e = b.thread(1, 10000);
    std::vector<uint64_t> in;
    for (uint64_t i = 0; i < 500; ++i) {
        uint64_t t = 10000 + i * 777;
        in.push_back(t);
        REQUIRE(e.alloc(AllocKind::Malloc, t, 0x1000 + i * 16, 16, 0));
    }
    b.end_thread();
    b.epoch(10000 + 500 * 777 + 1);
    TempFile f;
    f.write(b.bytes);
    TraceReader r(f.path);
    CHECK(r.header().time_shift == 12);
    Collect c;
    r.read(c);
    REQUIRE(c.events.size() == in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        uint64_t t = c.events[i].time_ns;
        CHECK(t % 4096 == 0);
        CHECK(t <= in[i]);
        CHECK(in[i] - t < 4096);
        if (i) CHECK(t >= c.events[i - 1].time_ns);
    }
    // The epoch is stored rounded down to the interposer's resolution too (the promise,
    // FORMAT.md "Epoch chunk").
    auto p = epoch_payload(5000);
    CHECK(decode_epoch_payload(p.data(), p.size()) == quantize_time(5000));
    CHECK(quantize_time(5000, 12) == 4096);
}

TEST_CASE("a stream trace cut at any chunk boundary or inside a chunk keeps every complete chunk",
          "[trace]") {
    std::vector<size_t> per_chunk;
    TraceBuilder b = build(Codec::ZstdStream, 12, &per_chunk);
    std::vector<size_t> cuts;
    for (size_t i = 0; i < b.chunk_offsets.size(); ++i) {
        size_t at = b.chunk_offsets[i];
        size_t next = i + 1 < b.chunk_offsets.size() ? b.chunk_offsets[i + 1] : b.bytes.size();
        for (size_t c : {at, at + 1, at + 19, at + 20, at + 21, (at + next) / 2, next - 1})
            if (c < b.bytes.size()) cuts.push_back(c);
    }
    // Delivered events of a cut: those of the thread chunks wholly before it.
    for (size_t cut : cuts) {
        size_t expect = 0;
        for (size_t i = 0; i < b.chunk_offsets.size(); ++i) {
            size_t next = i + 1 < b.chunk_offsets.size() ? b.chunk_offsets[i + 1] : b.bytes.size();
            if (next <= cut) expect += per_chunk[i];
        }
        std::vector<uint8_t> cut_bytes(b.bytes.begin(), b.bytes.begin() + cut);
        TempFile f;
        f.write(cut_bytes);
        TraceReader r(f.path);
        Collect c;
        INFO("cut at byte " << cut);
        REQUIRE_NOTHROW(r.read(c));
        CHECK(r.truncated());
        CHECK(c.events.size() == expect);
    }
}

TEST_CASE("a damaged continued stream chunk is an error naming its offset", "[trace]") {
    TraceBuilder b = build(Codec::ZstdStream, 12);
    size_t at = b.chunk_offsets[1];  // codec 4
    REQUIRE(parse_chunk_header(b.bytes.data() + at).codec == Codec::ZstdStream);
    auto stored_len = parse_chunk_header(b.bytes.data() + at).stored_len;
    auto repair_crc = [&](std::vector<uint8_t>& bytes) {
        uint32_t crc =
            chunk_crc(bytes.data() + at, bytes.data() + at + kChunkHeaderBytes, stored_len);
        std::memcpy(bytes.data() + at + 16, &crc, 4);
    };
    for (size_t k = 0; k < stored_len; k += 7) {
        std::vector<uint8_t> bad = b.bytes;
        bad[at + kChunkHeaderBytes + k] ^= 0x5a;
        repair_crc(bad);  // so the damage reaches the decoder
        TempFile f;
        f.write(bad);
        TraceReader r(f.path);
        Collect c;
        try {
            r.read(c);
            // zstd may decode a flipped literal byte into another valid column form; then the
            // records must still have decoded without a crash.
        } catch (const TraceError& e) {
            std::string msg = e.what();
            INFO(msg);
            CHECK(msg.rfind(f.path + ": ", 0) == 0);
            // The damaged chunk, or a later one whose stream context it spoiled.
            size_t pos = msg.find("chunk at byte offset ");
            REQUIRE(pos != std::string::npos);
            CHECK(std::stoull(msg.substr(pos + 21)) >= at);
        }
    }
    // A declared length one byte over what the block holds names this chunk.
    {
        std::vector<uint8_t> bad = b.bytes;
        uint32_t raw_len;
        std::memcpy(&raw_len, bad.data() + at + 12, 4);
        ++raw_len;
        std::memcpy(bad.data() + at + 12, &raw_len, 4);
        repair_crc(bad);
        check_read_error(bad, "chunk at byte offset " + std::to_string(at) +
                                  ": zstd stream chunk shorter than its declared length");
    }
    // Without the chunk that started its stream, a continued chunk cannot decode.
    std::vector<uint8_t> cut(b.bytes.begin(), b.bytes.begin() + b.chunk_offsets[0]);
    cut.insert(cut.end(), b.bytes.begin() + b.chunk_offsets[1], b.bytes.end());
    check_read_error(cut, "chunk at byte offset " + std::to_string(b.chunk_offsets[0]) +
                              ": zstd stream chunk (codec 4) without the chunks its stream "
                              "began in");
}

TEST_CASE("a version-1 trace is still read", "[trace]") {
    TraceBuilder b = build(Codec::Zstd, 0);
    uint16_t v1 = 1;
    std::memcpy(b.bytes.data() + 8, &v1, 2);
    uint32_t n;
    std::memcpy(&n, b.bytes.data() + 12, 4);
    uint32_t crc = crc32c(b.bytes.data(), kFileHeaderFixedBytes + n);
    std::memcpy(b.bytes.data() + kFileHeaderFixedBytes + n, &crc, 4);
    TempFile f;
    f.write(b.bytes);
    TraceReader r(f.path);
    CHECK(r.header().version == 1);
    Collect c;
    r.read(c);
    CHECK(c.events.size() == 6 * 3 * 408);
}

TEST_CASE("payloads whose times are not multiples of the resolution keep exact times", "[trace]") {
    // A writer at resolution 2^12 handed a nanosecond payload: column form with k = 0.
    TraceBuilder ns(Codec::None, {}, 0);
    RecordEncoder& e = ns.thread(7, 12345);
    every_record(e, 12345, 1);
    std::vector<uint8_t> raw(e.data(), e.data() + e.size());
    ChunkStream stream(1, 12);
    std::vector<uint8_t> out;
    stream.append_thread_chunk(out, raw.data(), raw.size());
    ChunkHeader h = parse_chunk_header(out.data());
    CHECK(h.codec == Codec::ZstdStreamStart);
    ChunkDecoder d;
    std::vector<uint8_t> back;
    d.decode(h, out.data() + kChunkHeaderBytes, back);
    CHECK(back == raw);
    // And a payload that is not well formed goes out as a standalone codec-1 chunk.
    std::vector<uint8_t> junk = {1, 2, 99, 0, 0};
    out.clear();
    stream.append_thread_chunk(out, junk.data(), junk.size());
    CHECK(parse_chunk_header(out.data()).codec != Codec::ZstdStream);
}

TEST_CASE("a column form handed to the stream in pieces reads back exactly, across zstd blocks",
          "[trace]") {
    // Payloads of ~1 MB (the column form spans several 128 KiB zstd blocks), given to
    // ChunkStream::stream_chunk as ColumnBuilder's pieces cut into 1000-byte spans: two chunks
    // in one stream (codec 3, then 4) must decode to the records they were built from.
    ChunkStream stream(1, 0);
    ChunkDecoder d;
    uint64_t t = 1000;
    for (int chunk = 0; chunk < 2; ++chunk) {
        std::vector<uint8_t> buf(1 << 20);
        RecordEncoder e;
        e.reset(buf.data(), buf.size(), 9, t);
        every_record(e, t, 1 + chunk);
        for (uint64_t i = 0; e.remaining() > 64; ++i) {
            t += i % 7 * 1000 + i % 3;
            uint64_t addr = 0x7f0000000000 + (i * 7919 % 100000) * 64;
            REQUIRE(e.alloc(AllocKind::Malloc, t, addr, 16 + i % 5000, 1 + i % 300));
            REQUIRE(e.free(t + 11, addr));
        }
        std::vector<uint8_t> raw(e.data(), e.data() + e.size());
        detail::ByteCursor c{raw.data(), raw.data() + raw.size()};
        uint64_t tid = c.varint(), base = c.varint();
        ColumnBuilder cols;
        std::vector<uint64_t> times(raw.size() + 2);
        cols.begin(raw.size(), times.data());
        decode_records(c.p, c.end, base, 0, cols);
        ByteSpan pieces[ColumnBuilder::kPieces];
        cols.finish_pieces(tid, base, times.data(),
                           static_cast<size_t>(cols.times_end() - times.data()), 0, pieces);
        std::vector<ByteSpan> small;
        for (const ByteSpan& p : pieces)
            for (size_t at = 0; at < p.size; at += 1000)
                small.push_back(ByteSpan{p.data + at, std::min<size_t>(1000, p.size - at)});
        CHECK(small.size() > 256);
        ByteSpan out = stream.stream_chunk(small.data(), small.size());
        REQUIRE(out.size > kChunkHeaderBytes);
        ChunkHeader h = parse_chunk_header(out.data);
        CHECK(h.codec == (chunk == 0 ? Codec::ZstdStreamStart : Codec::ZstdStream));
        REQUIRE(h.stored_len == out.size - kChunkHeaderBytes);
        CHECK(chunk_crc(out.data, out.data + kChunkHeaderBytes, h.stored_len) == h.crc);
        std::vector<uint8_t> back;
        d.decode(h, out.data + kChunkHeaderBytes, back);
        CHECK(back == raw);
    }
}
