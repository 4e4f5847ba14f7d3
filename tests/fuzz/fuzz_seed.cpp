// fuzz_seed TRACE OUT [MAX_BYTES]: turns a real trace into a seed for fuzz_trace: the same
// header and chunks with every payload stored uncompressed (codec 0), so that mutations change
// records rather than zstd bytes, prefixed by the harness's mode byte (0 = repair checksums).
// Stops before the first chunk that would pass MAX_BYTES (default 8192); the seed is then a
// truncated trace, which is itself a case the reader must handle. With a fourth argument
// "keep" the chunks are copied as stored (the zstd stream of codecs 3 and 4 gets fuzzed too).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "pmt/chunk.hpp"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: fuzz_seed TRACE OUT [MAX_BYTES]\n");
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
        while (pos + pmt::kChunkHeaderBytes <= b.size()) {
            pmt::ChunkHeader h = pmt::parse_chunk_header(b.data() + pos);
            if (h.stored_len > b.size() - pos - pmt::kChunkHeaderBytes) break;
            decoder.decode(h, b.data() + pos + pmt::kChunkHeaderBytes, raw);
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
        std::ofstream(argv[2], std::ios::binary)
            .write(reinterpret_cast<const char*>(out.data()), std::streamsize(out.size()));
    } catch (const pmt::TraceError& e) {
        std::fprintf(stderr, "fuzz_seed: %s: %s\n", argv[1], e.what());
        return 2;
    }
    return 0;
}
