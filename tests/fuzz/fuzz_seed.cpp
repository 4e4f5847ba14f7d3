// fuzz_seed TRACE OUT [MAX_BYTES]: turns a real trace into a seed for fuzz_trace: the same
// header and chunks with every payload stored uncompressed (codec 0), so that mutations change
// records rather than zstd bytes, prefixed by the harness's mode byte (0 = repair checksums).
// Stops before the first chunk that would pass MAX_BYTES (default 8192); the seed is then a
// truncated trace, which is itself a case the reader must handle. With a fourth argument
// "keep" the chunks are copied as stored (the zstd stream of codecs 3 and 4 gets fuzzed too).
// A version-3 or -4 trace's stream chunks become their stream payloads (codec 0), as they are.
// fuzz_seed --streams DIR: writes version-3 and version-4 seeds made with StreamEncoder into DIR
// (v3-*, v4-*): whole files (codec 0, the zstd stream, cut short) and a bare stream payload;
// and hand-made hostile ones (a flood of threads, a flood of live blocks).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "column_stream_reader.hpp"  // trace/src: the zstd stream of codecs 3 and 4
#include "pmt/chunk.hpp"
#include "pmt/stream_encoder.hpp"

namespace {

void write_file(const std::string& path, const std::vector<uint8_t>& b) {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// A small version-3 or -4 stream over three threads with every record type, cut into payloads
// at a few record boundaries: as codec-0 chunks, as one zstd stream (codecs 3/4), and cut short.
void stream_seeds(const std::string& dir, uint16_t version) {
    using namespace pmt;
    StreamEncoder enc(10, 10, version);
    const std::string v = "/v" + std::to_string(version);
    std::vector<std::vector<uint8_t>> payloads;
    auto finish = [&] {
        ByteSpan pieces[StreamEncoder::kPieces];
        const size_t n = enc.finish(pieces);
        std::vector<uint8_t> p;
        for (size_t i = 0; i < n; ++i)
            p.insert(p.end(), pieces[i].data, pieces[i].data + pieces[i].size);
        if (!p.empty()) payloads.push_back(std::move(p));
    };
    enc.string(1, "job.py", 6);
    enc.string(2, "main", 4);
    enc.location(1, 1, 2, 12);
    enc.stack(1, 0, 1);
    enc.stack(2, 1, 1);
    uint64_t t = 1000000;
    const uint32_t main_thread = enc.thread(4242);
    enc.thread_name(2);
    std::vector<uint64_t> mine;
    for (int i = 0; i < 12; ++i) {
        enc.time(t += 700 * i);
        mine.push_back(enc.alloc(static_cast<AllocKind>(i % 9), 100 + 40 * i, 1 + i % 2));
    }
    enc.time(t += 5000);
    enc.free(main_thread, mine[0]);   // the oldest
    enc.free(main_thread, mine[11]);  // the newest
    enc.free(main_thread, mine[5], AllocKind::Realloc);
    enc.alloc(AllocKind::Realloc, 5000, 2);
    enc.alloc(AllocKind::Malloc, 64, 1);  // freed at once: a PAIR
    enc.free(main_thread, enc.next_seq() - 1);
    enc.mmap(0x7f0000000000, 1 << 20, 3, 0x22, -1, 1);
    finish();
    const uint32_t worker = enc.thread(4243);
    enc.time(t += 2000000);
    const uint64_t w = enc.alloc(AllocKind::Calloc, 4096, 0);
    enc.free(main_thread, mine[3]);  // another thread's block
    enc.free_unknown(0x5500000010, AllocKind::ReallocArray);
    enc.mremap(0x7f0000000000, 1 << 20, 0x7f1000000000, 2 << 20, 2);
    enc.munmap(0x7f1000000000, 4096);
    enc.rss(123456789);
    finish();
    enc.thread(4244);
    enc.time(t += 30);
    enc.free(worker, w);
    enc.thread(4242);
    enc.free(main_thread, mine[6], AllocKind::ReallocArray);
    finish();

    // The first payload alone, for the harness's stream-payload mode (first byte's bit 1; bit 2:
    // version 3).
    std::vector<uint8_t> raw(1, version == 3 ? 6 : 2);
    raw.insert(raw.end(), payloads[0].begin(), payloads[0].end());
    write_file(dir + v + "-payload", raw);

    TraceHeader h;
    h.version = version;
    h.time_shift = 10;
    h.tick_shift = 10;
    h.pid = 4242;
    EndSummary end;
    end.events = 30;
    const auto end_chunk = end_payload(end);
    for (const bool stream : {false, true}) {
        std::vector<uint8_t> out(1, 0);  // mode byte: repair checksums
        const auto head = encode_file_header(h);
        out.insert(out.end(), head.begin(), head.end());
        ChunkStream cs(1);
        for (const auto& p : payloads) {
            if (stream) {
                const ByteSpan piece{p.data(), p.size()};
                cs.append_stream_chunk(out, &piece, 1);
            } else {
                append_chunk(out, ChunkType::ThreadEvents, Codec::None, p.data(), p.size());
            }
        }
        const size_t before_end = out.size();
        append_chunk(out, ChunkType::End, Codec::None, end_chunk.data(), end_chunk.size());
        write_file(dir + v + (stream ? "-stream" : "-plain"), out);
        if (!stream) {
            out.resize(before_end - 7);  // the last thread chunk cut short
            write_file(dir + v + "-cut", out);
        }
    }
}

void put(std::vector<uint8_t>& v, uint64_t x) {
    while (x >= 0x80) {
        v.push_back(static_cast<uint8_t>(x | 0x80));
        x >>= 7;
    }
    v.push_back(static_cast<uint8_t>(x));
}

// Hostile streams near the reader's limits (stream_decoder.hpp, StreamDecoder::Limits): many
// threads that do nothing (v*-thread-flood), and one thread's 20,000 live blocks in a zstd
// stream chunk of a few hundred bytes (v*-alloc-flood), which grows version 3's LiveRank.
void hostile_seeds(const std::string& dir, uint16_t version) {
    using namespace pmt;
    const std::string v = "/v" + std::to_string(version);
    TraceHeader h;
    h.version = version;
    h.time_shift = 10;
    h.tick_shift = 10;
    auto payload = [](const std::vector<uint8_t>(&cols)[7]) {
        std::vector<uint8_t> p;
        for (const auto& c : cols) put(p, c.size());
        for (const auto& c : cols) p.insert(p.end(), c.begin(), c.end());
        return p;
    };
    std::vector<uint8_t> threads[7], allocs[7];  // ops, sizes, stacks, refs, addrs, times, other
    for (uint64_t i = 0; i < 400; ++i) {
        threads[0].push_back(0x41);  // THREAD, a new index and its tid
        put(threads[6], i);
        put(threads[6], 1000 + i);
    }
    allocs[0].push_back(0x41);
    put(allocs[6], 0);
    put(allocs[6], 7);
    for (int i = 0; i < 20000; ++i) {
        allocs[0].push_back(0x01);  // ALLOC malloc, size 16, no stack
        allocs[1].push_back(16);
        allocs[2].push_back(0);
    }
    allocs[0].push_back(0x20);  // FREE, rank / reference code 1: the newest block
    allocs[3].push_back(1);
    const auto end_chunk = end_payload(EndSummary{});
    for (const bool flood : {true, false}) {
        std::vector<uint8_t> out(1, 0);  // mode byte: repair checksums
        const auto head = encode_file_header(h);
        out.insert(out.end(), head.begin(), head.end());
        const std::vector<uint8_t> p = payload(flood ? threads : allocs);
        if (flood) {
            append_chunk(out, ChunkType::ThreadEvents, Codec::None, p.data(), p.size());
        } else {
            ChunkStream cs(1);
            const ByteSpan piece{p.data(), p.size()};
            cs.append_stream_chunk(out, &piece, 1);
        }
        append_chunk(out, ChunkType::End, Codec::None, end_chunk.data(), end_chunk.size());
        write_file(dir + v + (flood ? "-thread-flood" : "-alloc-flood"), out);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--streams") == 0) {
        stream_seeds(argv[2], 3);
        stream_seeds(argv[2], 4);
        hostile_seeds(argv[2], 3);
        hostile_seeds(argv[2], 4);
        return 0;
    }
    if (argc < 3) {
        std::fprintf(stderr,
                     "usage: fuzz_seed TRACE OUT [MAX_BYTES [keep]] | fuzz_seed --streams DIR\n");
        return 2;
    }
    const size_t max_bytes = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 8192;
    const bool keep = argc > 4 && std::strcmp(argv[4], "keep") == 0;
    std::ifstream in(argv[1], std::ios::binary);
    std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
        if (b.size() < pmt::kFileHeaderFixedBytes) throw pmt::TraceError("too short");
        uint32_t n;
        std::memcpy(&n, b.data() + 12, 4);
        size_t pos = pmt::kFileHeaderFixedBytes + n + 4;
        if (n > pmt::kMaxHeaderPayload || pos > b.size()) throw pmt::TraceError("bad header");
        std::vector<uint8_t> out(1, 0);
        out.insert(out.end(), b.begin(), b.begin() + pos);
        std::vector<uint8_t> raw;
        pmt::ChunkDecoder decoder;  // codecs 3 and 4 need the chunks before them
        // Version 3: a stream chunk holds a stream payload, which ChunkDecoder would take for a
        // version-2 column form; the stream reader hands it over as it is.
        uint16_t version;
        std::memcpy(&version, b.data() + 8, 2);
        const bool v3 = version >= pmt::kFirstStreamFormatVersion;  // versions 3 and 4
        pmt::detail::ColumnStreamReader stream;
        while (pos + pmt::kChunkHeaderBytes <= b.size()) {
            pmt::ChunkHeader h = pmt::parse_chunk_header(b.data() + pos);
            if (h.stored_len > b.size() - pos - pmt::kChunkHeaderBytes) break;
            if (v3) {
                if (stream.decode(h, b.data() + pos + pmt::kChunkHeaderBytes, raw))
                    stream.end_stream_chunk();
            } else {
                decoder.decode(h, b.data() + pos + pmt::kChunkHeaderBytes, raw);
            }
            std::vector<uint8_t> chunk;
            if (keep)
                chunk.assign(b.begin() + pos,
                             b.begin() + pos + pmt::kChunkHeaderBytes + h.stored_len);
            else
                pmt::append_chunk(chunk, h.type, pmt::Codec::None, raw.data(), raw.size());
            if (out.size() + chunk.size() > max_bytes) break;
            out.insert(out.end(), chunk.begin(), chunk.end());
            pos += pmt::kChunkHeaderBytes + h.stored_len;
        }
        write_file(argv[2], out);
    } catch (const pmt::TraceError& e) {
        std::fprintf(stderr, "fuzz_seed: %s: %s\n", argv[1], e.what());
        return 2;
    }
    return 0;
}
