// Unit tests of the trace framing: CRC-32C, the file header, chunks with each codec, and the
// record encoder's byte layout and "does not fit" behaviour (FORMAT.md).
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "pmt/chunk.hpp"
#include "pmt/encoder.hpp"
#include "pmt/varint.hpp"

using namespace pmt;

TEST_CASE("crc32c matches the Castagnoli check value and chains across calls", "[trace]") {
    const char* s = "123456789";
    auto p = reinterpret_cast<const uint8_t*>(s);
    CHECK(crc32c(p, 9) == 0xE3069283u);
    CHECK(crc32c(p + 4, 5, crc32c(p, 4)) == 0xE3069283u);
    CHECK(crc32c(p, 0) == 0u);
    // Long, unaligned input: both the 8-byte loop and the byte tail.
    std::vector<uint8_t> big(1000);
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7 + 3);
    uint32_t whole = crc32c(big.data() + 1, 999);
    CHECK(crc32c(big.data() + 500, 500, crc32c(big.data() + 1, 499)) == whole);
}

TEST_CASE("a file header round-trips through encode and decode", "[trace]") {
    TraceHeader h;
    h.pid = 4242;
    h.ppid = 1;
    h.argv = {"python3", "job.py", ""};
    h.start_wall_ns = 1700000000123456789ull;
    h.python_version = "3.11.2";
    h.allocator = "jemalloc";
    h.page_size = 16384;
    h.rss_interval_ms = 7;
    h.flush_interval_ms = 250;
    h.exe = "/usr/bin/python3.11";
    h.forked = true;
    auto bytes = encode_file_header(h);
    REQUIRE(std::memcmp(bytes.data(), "PYMTRACE", 8) == 0);
    uint32_t n;
    std::memcpy(&n, bytes.data() + 12, 4);
    REQUIRE(bytes.size() == 16 + n + 4);
    uint32_t crc;
    std::memcpy(&crc, bytes.data() + 16 + n, 4);
    CHECK(crc == crc32c(bytes.data(), 16 + n));

    TraceHeader d = decode_header_payload(bytes.data() + 16, n);
    CHECK(d.pid == 4242);
    CHECK(d.ppid == 1);
    CHECK(d.argv == h.argv);
    CHECK(d.start_wall_ns == h.start_wall_ns);
    CHECK(d.python_version == "3.11.2");
    CHECK(d.allocator == "jemalloc");
    CHECK(d.page_size == 16384);
    CHECK(d.rss_interval_ms == 7);
    CHECK(d.flush_interval_ms == 250);
    CHECK(d.exe == h.exe);
    CHECK(d.forked);
}

TEST_CASE("a header list whose count exceeds its bytes is rejected without allocating", "[trace]") {
    // key 3, type list, count 2^62: must fail on the count, not try to reserve it.
    std::vector<uint8_t> p = {3, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40};
    CHECK_THROWS_AS(decode_header_payload(p.data(), p.size()), TraceError);
}

TEST_CASE("chunks round-trip with every codec and fall back to none when it does not shrink",
          "[trace]") {
    std::vector<uint8_t> raw(100000);
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>((i / 13) % 7);
    for (Codec codec : {Codec::None, Codec::Zstd, Codec::Lz4}) {
        std::vector<uint8_t> out = {0xAA};  // appends after existing bytes
        append_chunk(out, ChunkType::ThreadEvents, codec, raw.data(), raw.size(), 3);
        ChunkHeader h = parse_chunk_header(out.data() + 1);
        CHECK(h.type == ChunkType::ThreadEvents);
        CHECK(h.codec == codec);
        CHECK(h.raw_len == raw.size());
        REQUIRE(out.size() == 1 + kChunkHeaderBytes + h.stored_len);
        if (codec != Codec::None) CHECK(h.stored_len < raw.size() / 10);
        CHECK(h.crc == chunk_crc(out.data() + 1, out.data() + 1 + kChunkHeaderBytes, h.stored_len));
        std::vector<uint8_t> back;
        decode_chunk_payload(h, out.data() + 1 + kChunkHeaderBytes, back);
        CHECK(back == raw);
    }
    // Three incompressible bytes: stored as none whatever was asked.
    uint8_t tiny[3] = {1, 2, 3};
    std::vector<uint8_t> out;
    append_chunk(out, ChunkType::Epoch, Codec::Zstd, tiny, 3);
    CHECK(parse_chunk_header(out.data()).codec == Codec::None);
    CHECK(out.size() == kChunkHeaderBytes + 3);
}

TEST_CASE("a chunk header with a bad magic, type, codec or length is rejected", "[trace]") {
    auto raw = epoch_payload(12345);
    std::vector<uint8_t> good;
    append_chunk(good, ChunkType::Epoch, Codec::None, raw.data(), raw.size());
    CHECK(decode_epoch_payload(good.data() + kChunkHeaderBytes, raw.size()) ==
          quantize_time(12345));
    auto bad = good;
    bad[0] = 'X';
    CHECK_THROWS_AS(parse_chunk_header(bad.data()), TraceError);
    bad = good;
    bad[4] = 9;
    CHECK_THROWS_AS(parse_chunk_header(bad.data()), TraceError);
    bad = good;
    bad[5] = 5;
    CHECK_THROWS_AS(parse_chunk_header(bad.data()), TraceError);
    bad = good;
    bad[11] = 0x10;  // stored length 256 MiB
    CHECK_THROWS_AS(parse_chunk_header(bad.data()), TraceError);
}

TEST_CASE("a corrupt compressed payload fails with TraceError", "[trace]") {
    std::vector<uint8_t> raw(5000, 'a');
    for (Codec codec : {Codec::Zstd, Codec::Lz4}) {
        std::vector<uint8_t> out;
        append_chunk(out, ChunkType::ThreadEvents, codec, raw.data(), raw.size());
        ChunkHeader h = parse_chunk_header(out.data());
        REQUIRE(h.codec == codec);
        h.raw_len += 10;  // declared longer than what decompresses
        std::vector<uint8_t> back;
        CHECK_THROWS_AS(decode_chunk_payload(h, out.data() + kChunkHeaderBytes, back), TraceError);
    }
}

TEST_CASE("the end summary round-trips", "[trace]") {
    EndSummary s{123456789, 42, 1ull << 40, 99};
    auto p = end_payload(s);
    EndSummary d = decode_end_payload(p.data(), p.size());
    CHECK(d.end_time_ns == s.end_time_ns);
    CHECK(d.events == 42);
    CHECK(d.peak_live_bytes == s.peak_live_bytes);
    CHECK(d.peak_time_ns == 99);
}

TEST_CASE("the encoder writes tid, base time and delta-coded records as FORMAT.md spells them",
          "[trace]") {
    uint8_t buf[256];
    RecordEncoder e;
    e.reset(buf, sizeof buf, 300, 1000, 0);  // exact nanoseconds
    CHECK(e.empty());
    REQUIRE(e.alloc(AllocKind::Calloc, 1005, 0x1000, 64, 3));
    REQUIRE(e.free(1005, 0x0ff0));
    std::vector<uint8_t> got(e.data(), e.data() + e.size());
    std::vector<uint8_t> want = {
        0xAC, 0x02,  // tid 300
        0xE8, 0x07,  // base time 1000
        1,    1,    5,    0x80,
        0x40, 64,   3,     // alloc calloc dt=5 addr=+0x1000 (zigzag 0x2000) size stack
        2,    0,    0x1F,  // free dt=0 addr -16 (zigzag 31)
    };
    CHECK(got == want);
    CHECK_FALSE(e.empty());
}

TEST_CASE("an encoder record that does not fit writes nothing", "[trace]") {
    uint8_t buf[64];
    RecordEncoder e;
    e.reset(buf, 30, 1, 0, 0);  // 2 bytes of header, 28 of room
    size_t before = e.size();
    // Ten-byte fields everywhere: 1 + 1 + 10*4 + 10 > 28.
    CHECK_FALSE(e.realloc(AllocKind::Realloc, ~0ull >> 1, ~0ull >> 1, ~0ull, 1, ~0ull, ~0ull));
    CHECK(e.size() == before);
    CHECK(e.empty());
    CHECK_FALSE(e.string(1, "a string far longer than the room left", 38));
    CHECK(e.size() == before);
    CHECK(e.free(5, 0x10));
    while (e.free(5, 0x10)) {
    }
    CHECK(e.remaining() < 3);
    CHECK(e.size() <= 30);
}

TEST_CASE("varints of every length read back exactly, near the end of a payload or not",
          "[trace]") {
    // Values of every bit length and their neighbours, including non-shortest forms (a
    // reader must accept what FORMAT.md allows, e.g. 0x80 0x00 for 0).
    std::vector<uint64_t> values = {0, 1, 0x7f, 0x80, 0x3fff, 0x4000, ~uint64_t{0}};
    for (unsigned b = 1; b < 64; ++b) {
        const uint64_t v = uint64_t{1} << b;
        values.insert(values.end(), {v - 1, v, v + 1, v | (v >> 1), v ^ 0x5555555555555555ull});
    }
    std::vector<uint8_t> buf;
    for (uint64_t v : values) {
        uint8_t tmp[10];
        buf.insert(buf.end(), tmp, detail::put_varint(tmp, v));
    }
    const std::vector<uint8_t> padded_zero = {0x80, 0x80, 0x00};  // 0 in 3 bytes
    buf.insert(buf.end(), padded_zero.begin(), padded_zero.end());
    // Read from the whole buffer (8 readable bytes after most varints) and from copies that
    // end right after each varint (fewer than 8 readable).
    detail::ByteCursor all{buf.data(), buf.data() + buf.size()};
    for (uint64_t v : values) {
        const uint8_t* before = all.p;
        CHECK(all.varint() == v);
        std::vector<uint8_t> alone(before, all.p);
        detail::ByteCursor tail{alone.data(), alone.data() + alone.size()};
        CHECK(tail.varint() == v);
        CHECK(tail.at_end());
    }
    CHECK(all.varint() == 0);
    CHECK(all.at_end());
    // A varint cut short is an error, however many bytes follow in the buffer's memory.
    std::vector<uint8_t> cut = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    detail::ByteCursor short_view{cut.data(), cut.data() + 3};
    CHECK_THROWS_WITH(short_view.varint(), "record runs past the end of its payload");
}
