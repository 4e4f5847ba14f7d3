// Unit tests of StreamEncoder (pmt/stream_encoder.hpp): the exact bytes of hand-worked
// version-4 streams (FORMAT.md, "Version 4") and version-3 ones ("Version 3"): PAIR, version
// 4's free references from the last free and the last allocation, version 3's FREE ranks from
// either end, FREE_OTHER and the realloc kinds, FREE_UNKNOWN address deltas, the mapping
// records, TICK, THREAD; pending_bytes() and finish(); and header key 14. Round trips through
// the decoder are tested with the reader.
#include <zstd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "pmt/chunk.hpp"
#include "pmt/stream_encoder.hpp"

using namespace pmt;

namespace {

using Bytes = std::vector<uint8_t>;

// One finished payload split back into its seven columns (the header parsed by hand).
struct Payload {
    Bytes whole;
    Bytes cols[7];  // ops, sizes, stacks, refs, addrs, times, other
    const Bytes& ops() const { return cols[0]; }
    const Bytes& sizes() const { return cols[1]; }
    const Bytes& stacks() const { return cols[2]; }
    const Bytes& refs() const { return cols[3]; }
    const Bytes& addrs() const { return cols[4]; }
    const Bytes& times() const { return cols[5]; }
    const Bytes& other() const { return cols[6]; }
};

uint64_t get_varint(const Bytes& b, size_t& i) {
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        REQUIRE(i < b.size());
        uint8_t c = b[i++];
        v |= uint64_t(c & 0x7f) << shift;
        if (c < 0x80) return v;
    }
}

Payload finish(StreamEncoder& e) {
    ByteSpan pieces[StreamEncoder::kPieces];
    const size_t expect = e.pending_bytes();
    const size_t n = e.finish(pieces);
    REQUIRE(n == StreamEncoder::kPieces);
    Payload p;
    for (size_t i = 0; i < n; ++i)
        p.whole.insert(p.whole.end(), pieces[i].data, pieces[i].data + pieces[i].size);
    CHECK(p.whole.size() == expect);
    size_t i = 0;
    uint64_t lens[7];
    for (uint64_t& l : lens) l = get_varint(p.whole, i);
    // The header is the first piece, each column one piece after it.
    CHECK(pieces[0].size == i);
    for (size_t c = 0; c < 7; ++c) {
        REQUIRE(pieces[1 + c].size == lens[c]);
        REQUIRE(i + lens[c] <= p.whole.size());
        p.cols[c].assign(p.whole.begin() + static_cast<std::ptrdiff_t>(i),
                         p.whole.begin() + static_cast<std::ptrdiff_t>(i + lens[c]));
        i += lens[c];
    }
    CHECK(i == p.whole.size());
    CHECK(e.pending_bytes() == 0);
    return p;
}

}  // namespace

TEST_CASE("stream encoder: an alloc freed at once is one PAIR record", "[trace][stream_encoder]") {
    StreamEncoder e(10, 10);
    CHECK(e.thread(1234) == 0);
    e.time(0);
    CHECK(e.alloc(AllocKind::Malloc, 100, 7) == 0);
    CHECK(e.free(0, 0));
    const Payload p = finish(e);
    CHECK(p.whole == Bytes{2, 1, 1, 0, 0, 0, 3, 0x41, 0x11, 100, 7, 0, 0xd2, 0x09});
    CHECK(e.live_blocks(0) == 0);
    CHECK(e.next_seq() == 1);
}

TEST_CASE("stream encoder: version 3: alloc kinds, ranks from the oldest and the newest end",
          "[trace][stream_encoder]") {
    StreamEncoder e(10, 10, 3);
    CHECK(e.version() == 3);
    e.thread(5);
    CHECK(e.alloc(AllocKind::Calloc, 16, 1) == 0);
    CHECK(e.alloc(AllocKind::Malloc, 32, 2) == 1);
    CHECK(e.alloc(AllocKind::PosixMemalign, 48, 3) == 2);
    e.rss(4096);  // a record between: the last ALLOC is no pair candidate any more
    CHECK(e.live_blocks(0) == 3);
    CHECK(e.free(0, 2));  // live 0 1 [2]: i = 2, j = 0 -> r = 1
    CHECK(e.free(0, 0));  // live [0] 1: i = 0 -> r = 0
    CHECK(e.alloc(AllocKind::Malloc, 200, 1) == 3);
    CHECK(e.alloc(AllocKind::Malloc, 300, 1) == 4);
    // live 1 3 4 (4 held back): freeing 1 confirms 4 first; i = 0 of 3 -> r = 0
    CHECK(e.free(0, 1));
    CHECK(e.free(0, 4));  // live 3 [4]: i = 1, j = 0 -> r = 1
    CHECK(e.live_blocks(0) == 1);
    const Payload p = finish(e);
    CHECK(p.ops() == Bytes{0x41, 0x02, 0x01, 0x05, 0x33, 0x20, 0x20, 0x01, 0x01, 0x20, 0x20});
    CHECK(p.sizes() == Bytes{16, 32, 48, 0xc8, 0x01, 0xac, 0x02});
    CHECK(p.stacks() == Bytes{1, 2, 3, 1, 1});
    CHECK(p.refs() == Bytes{1, 0, 0, 1});
    CHECK(p.addrs().empty());
    CHECK(p.times().empty());
    CHECK(p.other() == Bytes{0, 5, 0x80, 0x20});
}

TEST_CASE("stream encoder: version 3: a middle block's rank counts from the nearer end",
          "[trace][stream_encoder]") {
    StreamEncoder e(10, 10, 3);
    e.thread(1);
    for (int k = 0; k < 10; ++k) e.alloc(AllocKind::Malloc, 8, 0);
    e.rss(1);
    CHECK(e.free(0, 6));  // i = 6 of 10, j = 3 -> r = 7
    CHECK(e.free(0, 3));  // i = 3 of 9, j = 5 -> r = 6
    CHECK(e.free(0, 5));  // live 0 1 2 4 5 7 8 9: i = 4 of 8, j = 3 -> r = 7
    CHECK(e.free(0, 4));  // live 0 1 2 4 7 8 9: i = 3 of 7, j = 3 -> r = 6
    const Payload p = finish(e);
    CHECK(p.refs() == Bytes{7, 6, 7, 6});
}

TEST_CASE("stream encoder: version 4: a free names its block from the last free or allocation",
          "[trace][stream_encoder]") {
    StreamEncoder e(10, 10);
    CHECK(e.version() == 4);
    e.thread(5);
    for (uint64_t k = 0; k < 10; ++k) CHECK(e.alloc(AllocKind::Malloc, 8, 0) == k);
    e.rss(1);             // no pair
    CHECK(e.free(0, 0));  // f = 0: distance 0 -> 0
    CHECK(e.free(0, 1));  // f = 1 -> 0
    CHECK(e.free(0, 2));  // f = 2 -> 0
    CHECK(e.free(0, 9));  // f = 3: +6 (zigzag 12); a = 10: 0 back -> 2*0+1 = 1
    CHECK(e.free(0, 8));  // f = 10: -2 (zigzag 3) -> 6; 1 back -> 3
    CHECK(e.free(0, 5));  // f = 9: -4 (zigzag 7) -> 14; 4 back -> 9
    CHECK(e.free(0, 6));  // f = 6 -> 0
    CHECK(e.alloc(AllocKind::Malloc, 8, 0) == 10);
    e.rss(2);
    CHECK(e.free(0, 7));           // f = 7 -> 0
    CHECK(e.free(0, 10));          // f = 8: +2 (zigzag 4) -> 8; a = 11: 0 back -> 1
    CHECK(e.live_blocks(0) == 2);  // 3 and 4
    CHECK_FALSE(e.free(0, 10));    // not live any more
    CHECK_FALSE(e.free(0, 11));    // never made
    CHECK_FALSE(e.free(1, 3));     // no thread 1
    CHECK(e.free(0, 3));           // f = 11: -8 (zigzag 15) -> 30; 7 back -> 15
    const Payload p = finish(e);
    CHECK(p.refs() == Bytes{0, 0, 0, 1, 3, 9, 0, 0, 1, 15});
    CHECK(e.live_blocks(0) == 1);
    CHECK(e.next_seq() == 11);
}

TEST_CASE("stream encoder: version 4: predictions are per owner thread",
          "[trace][stream_encoder]") {
    StreamEncoder e(10, 10);
    const uint32_t t1 = e.thread(1);
    e.alloc(AllocKind::Malloc, 8, 0);  // 0
    e.alloc(AllocKind::Malloc, 8, 0);  // 1
    const uint32_t t2 = e.thread(2);
    e.alloc(AllocKind::Malloc, 8, 0);  // 2
    e.alloc(AllocKind::Malloc, 8, 0);  // 3
    e.thread(1);
    e.alloc(AllocKind::Malloc, 8, 0);  // 4
    e.rss(1);
    CHECK(e.free(t2, 2));  // FREE_OTHER: thread 2's f = 0: +2 (4); a = 4: 1 back (3) -> 3
    CHECK(e.free(t1, 0));  // thread 1's f = 0 -> 0
    CHECK(e.free(t2, 3));  // thread 2's f = 3 -> 0
    CHECK(e.free(t1, 4));  // thread 1's f = 1: +3 (6); a = 5: 0 back -> 1
    CHECK(e.free(t1, 1));  // f = 5: -4 (7) -> 14; a = 5: 3 back -> 7
    const Payload p = finish(e);
    CHECK(p.ops() == Bytes{0x41, 0x01, 0x01, 0x41, 0x01, 0x01, 0x41, 0x01, 0x33, 0x21, 0x20, 0x21,
                           0x20, 0x20});
    CHECK(p.refs() == Bytes{1, 3, 0, 1, 0, 1, 7});
    CHECK(e.live_blocks(t1) == 0);
    CHECK(e.live_blocks(t2) == 0);
}

TEST_CASE("stream encoder: threads, FREE_OTHER, realloc kinds and unknown frees",
          "[trace][stream_encoder]") {
    const uint16_t version = GENERATE(uint16_t(3), uint16_t(4));
    StreamEncoder e(10, 10, version);
    CHECK(e.thread(1) == 0);
    CHECK(e.alloc(AllocKind::Malloc, 10, 0) == 0);
    CHECK(e.thread(2) == 1);                  // a THREAD record: the ALLOC is written before it
    CHECK(e.thread(2) == 1);                  // no record
    CHECK(e.free(0, 0, AllocKind::Realloc));  // thread 0's only block: FREE_OTHER, realloc kind
    CHECK(e.alloc(AllocKind::Realloc, 64, 9) == 1);
    CHECK(e.thread(1) == 0);  // known thread: index only
    e.free_unknown(0x1000, AllocKind::ReallocArray);
    e.free_unknown(0x0ff0);  // delta -16
    CHECK(e.free(1, 1));     // thread 1's block from thread 0, plain free
    CHECK(e.thread_count() == 2);
    const Payload p = finish(e);
    CHECK(p.ops() == Bytes{0x41, 0x01, 0x41, 0x24, 0x03, 0x41, 0x28, 0x22, 0x21});
    CHECK(p.sizes() == Bytes{10, 64});
    CHECK(p.stacks() == Bytes{0, 9});
    // Owner 0, its only block (rank 0; version 4: f = 0 predicts it), then owner 1, its block
    // seq 1 (rank 0; version 4: its last allocation, 0 back: code 1).
    CHECK(p.refs() == (version == 3 ? Bytes{0, 0, 1, 0} : Bytes{0, 0, 1, 1}));
    CHECK(p.addrs() == Bytes{0x80, 0x40, 0x1f});
    CHECK(p.other() == Bytes{0, 1, 1, 2, 0});
}

TEST_CASE("stream encoder: a realloc-kind free of the newest block is no PAIR",
          "[trace][stream_encoder]") {
    StreamEncoder e(10, 10);
    e.thread(3);
    e.alloc(AllocKind::Malloc, 24, 2);
    CHECK(e.free(0, 0, AllocKind::ReallocArray));
    e.alloc(AllocKind::Calloc, 24, 2);
    CHECK(e.free(0, 1));  // the pair takes the kind of its alloc
    const Payload p = finish(e);
    CHECK(p.ops() == Bytes{0x41, 0x01, 0x26, 0x12});
    CHECK(p.refs() == Bytes{0});
}

TEST_CASE("stream encoder: ticks, clamped times, and a tick breaking a pair",
          "[trace][stream_encoder]") {
    StreamEncoder e(10, 10);  // units of 1024 ns, a tick at 1024 units or more
    e.thread(1);
    e.time(1023 * 1024 + 1023);  // unit 1023: below the threshold, no tick
    e.alloc(AllocKind::Malloc, 1, 0);
    e.time(1024 * 1024 + 5);  // unit 1024: TICK 1024 (the pending ALLOC is written first)
    CHECK(e.time_units() == 1024);
    CHECK(e.free(0, 0));  // no pair: a record sits between
    e.time(1000);         // backwards: clamped, nothing
    e.time(2047 * 1024);  // 1023 units past: nothing
    e.rss(7);
    e.time(2048 * 1024);                        // TICK 1024
    e.time(2048 * 1024 + (uint64_t(1) << 30));  // TICK 2^20 units
    e.rss(8);
    CHECK(e.time_units() == 1024 + 1024 + (1u << 20));
    const Payload p = finish(e);
    CHECK(p.ops() == Bytes{0x41, 0x01, 0x40, 0x20, 0x33, 0x40, 0x40, 0x33});
    CHECK(p.times() == Bytes{0x80, 0x08, 0x80, 0x08, 0x80, 0x80, 0x40});
    CHECK(p.refs() == Bytes{0});
    CHECK(p.other() == Bytes{0, 1, 7, 8});
}

TEST_CASE("stream encoder: mapping records and their address deltas", "[trace][stream_encoder]") {
    StreamEncoder e(10, 10);
    e.thread(1);
    e.mmap(0x10000, 8192, 3, 0x22, -1, 4);
    e.mremap(0x10000, 8192, 0x20000, 16384, 5);
    e.munmap(0x20000, 16384);
    const Payload p = finish(e);
    CHECK(p.ops() == Bytes{0x41, 0x30, 0x32, 0x31});
    CHECK(p.addrs() == Bytes{0x80, 0x80, 0x08, 0, 0x80, 0x80, 0x08, 0});
    CHECK(p.sizes() == Bytes{0x80, 0x40, 0x80, 0x40, 0x80, 0x80, 0x01, 0x80, 0x80, 0x01});
    CHECK(p.stacks() == Bytes{4, 5});
    CHECK(p.other() == Bytes{0, 1, 3, 0x22, 1});
}

TEST_CASE("stream encoder: definitions go to the other column in order",
          "[trace][stream_encoder]") {
    StreamEncoder e(10, 10);
    e.string(1, "main", 4);  // before any THREAD: allowed
    e.thread(9);
    e.location(2, 1, 1, 300);
    e.stack(3, 0, 2);
    e.thread_name(1);
    const Payload p = finish(e);
    CHECK(p.ops() == Bytes{0x50, 0x41, 0x51, 0x52, 0x53});
    CHECK(p.other() == Bytes{1, 4, 'm', 'a', 'i', 'n', 0, 9, 2, 1, 1, 0xac, 0x02, 3, 0, 2, 1});
}

TEST_CASE("stream encoder: finish, pending_bytes and state carried across payloads",
          "[trace][stream_encoder]") {
    StreamEncoder e(10, 10);
    ByteSpan pieces[StreamEncoder::kPieces];
    CHECK(e.pending_bytes() == 0);
    CHECK(e.finish(pieces) == 0);  // nothing pending
    e.thread(7);
    CHECK(e.pending_bytes() == 7 + 3);  // header (7 one-byte lengths), THREAD, index, tid
    e.alloc(AllocKind::Malloc, 1000, 300);
    // The held-back ALLOC counts: op 1, size 2, stack 2.
    CHECK(e.pending_bytes() == 7 + 3 + 5);
    Payload p1 = finish(e);  // checks pending_bytes against the pieces too
    CHECK(p1.ops() == Bytes{0x41, 0x01});
    CHECK(e.finish(pieces) == 0);
    // Next payload: same thread (no THREAD), the block from the first payload is still live.
    e.alloc(AllocKind::Malloc, 1, 0);
    CHECK(e.free(0, 0));        // live [0] 1: confirms seq 1, then r = 0
    CHECK_FALSE(e.free(0, 0));  // not live any more: nothing written
    CHECK_FALSE(e.free(5, 1));  // no thread 5
    Payload p2 = finish(e);
    CHECK(p2.ops() == Bytes{0x01, 0x20});
    CHECK(p2.refs() == Bytes{0});
    CHECK(p2.whole == Bytes{2, 1, 1, 1, 0, 0, 0, 0x01, 0x20, 1, 0, 0});
    CHECK(e.live_blocks(0) == 1);
}

TEST_CASE("stream encoder: columns grow past their first buffers", "[trace][stream_encoder]") {
    StreamEncoder e(10, 10);
    e.thread(1);
    std::string big(100000, 'x');
    e.string(1, big.data(), big.size());
    for (uint64_t k = 0; k < 50000; ++k) {
        e.alloc(AllocKind::Malloc, 1000 + k, k);
        if (k % 3 == 0) e.free(0, k);
    }
    const size_t expect = e.pending_bytes();
    const Payload p = finish(e);
    CHECK(p.whole.size() == expect);
    CHECK(p.ops().size() == 2 + 50000);  // THREAD, STRING, then one ALLOC or PAIR per block
    // other: THREAD's 0, 1, then the string's id 1 and length 100000 (3 bytes), then its bytes
    REQUIRE(p.other().size() == 6 + big.size());
    CHECK(std::memcmp(p.other().data() + 6, big.data(), big.size()) == 0);
}

TEST_CASE("header key 14: the tick shift, absent = 0", "[trace][stream_encoder]") {
    TraceHeader h;
    h.version = kStreamFormatVersion;
    h.time_shift = kWriterTimeShift;
    h.tick_shift = kTickShift;
    std::vector<uint8_t> bytes = encode_file_header(h);
    CHECK(bytes[8] == 4);
    CHECK(bytes[9] == 0);
    uint32_t n;
    std::memcpy(&n, bytes.data() + 12, 4);
    TraceHeader back = decode_header_payload(bytes.data() + kFileHeaderFixedBytes, n);
    CHECK(back.tick_shift == kTickShift);
    CHECK(back.time_shift == kWriterTimeShift);
    TraceHeader v2;
    bytes = encode_file_header(v2);
    CHECK(bytes[8] == 2);
    std::memcpy(&n, bytes.data() + 12, 4);
    CHECK(decode_header_payload(bytes.data() + kFileHeaderFixedBytes, n).tick_shift == 0);
}

TEST_CASE("chunk stream: version-3 payloads as codec 3 then 4, one zstd stream",
          "[trace][stream_encoder]") {
    StreamEncoder e(10, 10);
    ChunkStream cs(1, 0);
    std::vector<uint8_t> file;
    std::vector<Bytes> payloads;
    for (int round = 0; round < 3; ++round) {
        for (uint32_t tid = 1; tid <= 3; ++tid) {
            e.thread(tid);
            for (uint64_t k = 0; k < 2000; ++k) {
                e.time((round * 6000 + tid * 2000 + k) * 4096);
                uint64_t seq = e.alloc(AllocKind::Malloc, 64 + k % 7, 1 + k % 5);
                if (k % 2) e.free(e.thread(tid), seq);
            }
        }
        ByteSpan pieces[StreamEncoder::kPieces];
        const size_t n = e.finish(pieces);
        REQUIRE(n == StreamEncoder::kPieces);
        Bytes whole;
        for (size_t i = 0; i < n; ++i)
            whole.insert(whole.end(), pieces[i].data, pieces[i].data + pieces[i].size);
        payloads.push_back(whole);
        cs.append_stream_chunk(file, pieces, n);
    }
    // Three chunks: codec 3, 4, 4, valid CRCs, R = the payload's length; decompressed in one
    // zstd stream they give back the payloads exactly.
    ZSTD_DCtx* d = ZSTD_createDCtx();
    size_t off = 0;
    for (size_t c = 0; c < payloads.size(); ++c) {
        REQUIRE(off + kChunkHeaderBytes <= file.size());
        ChunkHeader h = parse_chunk_header(file.data() + off);
        CHECK(h.type == ChunkType::ThreadEvents);
        CHECK(h.codec == (c == 0 ? Codec::ZstdStreamStart : Codec::ZstdStream));
        CHECK(h.raw_len == payloads[c].size());
        const uint8_t* stored = file.data() + off + kChunkHeaderBytes;
        REQUIRE(off + kChunkHeaderBytes + h.stored_len <= file.size());
        CHECK(chunk_crc(file.data() + off, stored, h.stored_len) == h.crc);
        CHECK(h.stored_len < h.raw_len);
        Bytes out(h.raw_len + 16);
        ZSTD_inBuffer ib{stored, h.stored_len, 0};
        ZSTD_outBuffer ob{out.data(), out.size(), 0};
        while (ib.pos < ib.size) {
            size_t r = ZSTD_decompressStream(d, &ob, &ib);
            REQUIRE_FALSE(ZSTD_isError(r));
        }
        out.resize(ob.pos);
        CHECK(out == payloads[c]);
        off += kChunkHeaderBytes + h.stored_len;
    }
    CHECK(off == file.size());
    ZSTD_freeDCtx(d);
}
