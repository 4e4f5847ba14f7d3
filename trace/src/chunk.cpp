// File header and chunk framing (FORMAT.md, "File header" and "Chunks"): encoding for the
// interposer's writer thread, parsing, checksums and decompression for the reader.
// Compression is libzstd (one-shot frames) and liblz4's block API.
#include "pmt/chunk.hpp"

#include <lz4.h>
#include <zstd.h>

#include <cstring>
#include <string>

#include "varint.hpp"

namespace pmt {

using namespace detail;

namespace {

// Header payload field types (FORMAT.md).
enum FieldType : uint8_t { kVarint = 0, kBytes = 1, kList = 2 };

void put_v(std::vector<uint8_t>& out, uint64_t v) {
    uint8_t tmp[10];
    out.insert(out.end(), tmp, put_varint(tmp, v));
}
void field_varint(std::vector<uint8_t>& out, uint64_t key, uint64_t v) {
    put_v(out, key);
    out.push_back(kVarint);
    put_v(out, v);
}
void put_bytes(std::vector<uint8_t>& out, const std::string& s) {
    put_v(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}
void field_bytes(std::vector<uint8_t>& out, uint64_t key, const std::string& s) {
    put_v(out, key);
    out.push_back(kBytes);
    put_bytes(out, s);
}

// One compression context per thread that compresses (in practice the writer thread and
// the tests). A plain pointer, deliberately never freed: a thread_local with a destructor
// would register an exit handler inside the traced process.
ZSTD_CCtx* zstd_cctx() {
    static thread_local ZSTD_CCtx* c = nullptr;
    if (!c) c = ZSTD_createCCtx();
    return c;
}
ZSTD_DCtx* zstd_dctx() {
    static thread_local ZSTD_DCtx* d = nullptr;
    if (!d) d = ZSTD_createDCtx();
    return d;
}

}  // namespace

std::vector<uint8_t> encode_file_header(const TraceHeader& h) {
    std::vector<uint8_t> payload;
    field_varint(payload, 1, h.pid);
    field_varint(payload, 2, h.ppid);
    put_v(payload, 3);
    payload.push_back(kList);
    put_v(payload, h.argv.size());
    for (const auto& a : h.argv) put_bytes(payload, a);
    field_varint(payload, 4, h.start_wall_ns);
    field_bytes(payload, 5, h.python_version);
    field_bytes(payload, 6, h.allocator);
    field_varint(payload, 7, h.page_size);
    field_varint(payload, 8, h.rss_interval_ms);
    field_varint(payload, 9, h.flush_interval_ms);
    field_varint(payload, 10, h.flags);
    field_bytes(payload, 11, h.exe);
    field_varint(payload, 12, h.forked ? 1 : 0);
    field_varint(payload, 13, h.time_shift);
    if (h.tick_shift != 0) field_varint(payload, 14, h.tick_shift);  // absent = 0

    std::vector<uint8_t> out(kFileHeaderFixedBytes + payload.size() + 4);
    std::memcpy(out.data(), kFileMagic, 8);
    put_u16(out.data() + 8, h.version);
    put_u16(out.data() + 10, 0);
    put_u32(out.data() + 12, static_cast<uint32_t>(payload.size()));
    if (!payload.empty()) std::memcpy(out.data() + 16, payload.data(), payload.size());
    size_t body = kFileHeaderFixedBytes + payload.size();
    put_u32(out.data() + body, crc32c(out.data(), body));
    return out;
}

void append_chunk(std::vector<uint8_t>& out, ChunkType type, Codec codec, const uint8_t* raw,
                  size_t raw_len, int level) {
    // Stream codecs need a per-file context: ChunkStream writes them.
    if (codec == Codec::ZstdStreamStart || codec == Codec::ZstdStream) codec = Codec::Zstd;
    size_t start = out.size();
    size_t bound = raw_len;
    if (codec == Codec::Zstd) bound = ZSTD_compressBound(raw_len);
    if (codec == Codec::Lz4)
        bound = static_cast<size_t>(LZ4_compressBound(static_cast<int>(raw_len)));
    out.resize(start + kChunkHeaderBytes + bound);
    uint8_t* stored = out.data() + start + kChunkHeaderBytes;

    size_t stored_len = 0;
    if (codec == Codec::Zstd && raw_len > 0) {
        size_t r = ZSTD_compressCCtx(zstd_cctx(), stored, bound, raw, raw_len, level);
        stored_len = ZSTD_isError(r) ? 0 : r;
    } else if (codec == Codec::Lz4 && raw_len > 0) {
        int r = LZ4_compress_default(reinterpret_cast<const char*>(raw),
                                     reinterpret_cast<char*>(stored), static_cast<int>(raw_len),
                                     static_cast<int>(bound));
        stored_len = r > 0 ? static_cast<size_t>(r) : 0;
    }
    // Compression that failed or did not shrink the payload: store it as is.
    if (stored_len == 0 || stored_len >= raw_len) {
        codec = Codec::None;
        stored_len = raw_len;
        if (raw_len) std::memcpy(stored, raw, raw_len);
    }

    uint8_t* h = out.data() + start;
    std::memcpy(h, kChunkMagic, 4);
    h[4] = static_cast<uint8_t>(type);
    h[5] = static_cast<uint8_t>(codec);
    put_u16(h + 6, 0);
    put_u32(h + 8, static_cast<uint32_t>(stored_len));
    put_u32(h + 12, static_cast<uint32_t>(raw_len));
    put_u32(h + 16, chunk_crc(h, stored, stored_len));
    out.resize(start + kChunkHeaderBytes + stored_len);
}

std::vector<uint8_t> epoch_payload(uint64_t t) {
    std::vector<uint8_t> out;
    put_v(out, quantize_time(t));  // see FORMAT.md, "Epoch chunk"
    return out;
}

std::vector<uint8_t> end_payload(const EndSummary& s) {
    std::vector<uint8_t> out;
    put_v(out, s.end_time_ns);
    put_v(out, s.events);
    put_v(out, s.peak_live_bytes);
    put_v(out, s.peak_time_ns);
    put_v(out, s.lost_events);
    return out;
}

// --- Reading side -------------------------------------------------------------------------

TraceHeader decode_header_payload(const uint8_t* p, size_t n) {
    TraceHeader h;
    h.time_shift = 0;  // absent (version 1): nanoseconds
    ByteCursor c{p, p + n};
    auto str = [&c] {
        uint64_t len = c.varint();
        const uint8_t* b = c.bytes(len);
        return std::string(reinterpret_cast<const char*>(b), len);
    };
    try {
        while (!c.at_end()) {
            uint64_t key = c.varint();
            uint8_t type = c.u8();
            if (type == kVarint) {
                uint64_t v = c.varint();
                switch (key) {
                    case 1:
                        h.pid = v;
                        break;
                    case 2:
                        h.ppid = v;
                        break;
                    case 4:
                        h.start_wall_ns = v;
                        break;
                    case 7:
                        h.page_size = v;
                        break;
                    case 8:
                        h.rss_interval_ms = v;
                        break;
                    case 9:
                        h.flush_interval_ms = v;
                        break;
                    case 10:
                        h.flags = v;
                        break;
                    case 12:
                        h.forked = v != 0;
                        break;
                    case 13:
                        if (v > 40) throw TraceError("time resolution over 2^40 ns");
                        h.time_shift = v;
                        break;
                    case 14:
                        if (v > kMaxTickShift) throw TraceError("tick shift over 40");
                        h.tick_shift = v;
                        break;
                    default:
                        break;
                }
            } else if (type == kBytes) {
                std::string s = str();
                if (key == 5) h.python_version = std::move(s);
                if (key == 6) h.allocator = std::move(s);
                if (key == 11) h.exe = std::move(s);
            } else if (type == kList) {
                uint64_t count = c.varint();
                // Each element takes at least one byte: a count beyond that is a lie.
                if (count > c.left()) throw TraceError("list count runs past the end");
                std::vector<std::string> items;
                items.reserve(count);
                for (uint64_t i = 0; i < count; ++i) items.push_back(str());
                if (key == 3) h.argv = std::move(items);
            } else {
                throw TraceError("unknown field type " + std::to_string(type));
            }
        }
    } catch (const TraceError& e) {
        throw TraceError(std::string("corrupt header: ") + e.what());
    }
    return h;
}

ChunkHeader parse_chunk_header(const uint8_t* p) {
    if (std::memcmp(p, kChunkMagic, 4) != 0) throw TraceError("bad chunk magic");
    ChunkHeader h;
    if (p[4] < 1 || p[4] > 3) throw TraceError("unknown chunk type " + std::to_string(p[4]));
    if (p[5] > 4) throw TraceError("unknown chunk codec " + std::to_string(p[5]));
    h.type = static_cast<ChunkType>(p[4]);
    h.codec = static_cast<Codec>(p[5]);
    h.stored_len = get_u32(p + 8);
    h.raw_len = get_u32(p + 12);
    h.crc = get_u32(p + 16);
    if (h.stored_len > kMaxChunkPayload || h.raw_len > kMaxChunkPayload)
        throw TraceError("chunk length over the 64 MiB limit");
    if (h.codec == Codec::None && h.stored_len != h.raw_len)
        throw TraceError("uncompressed chunk with different stored and raw lengths");
    return h;
}

uint32_t chunk_crc(const uint8_t* header, const uint8_t* stored, size_t stored_len) {
    return crc32c(stored, stored_len, crc32c(header, 16));
}

void decode_chunk_payload(const ChunkHeader& h, const uint8_t* stored, std::vector<uint8_t>& raw) {
    raw.resize(h.raw_len);
    if (h.codec == Codec::None) {
        if (h.raw_len) std::memcpy(raw.data(), stored, h.raw_len);
        return;
    }
    if (h.codec == Codec::ZstdStreamStart || h.codec == Codec::ZstdStream)
        throw TraceError("a zstd stream chunk needs the context of the chunks before it");
    if (h.codec == Codec::Zstd) {
        size_t r = ZSTD_decompressDCtx(zstd_dctx(), raw.data(), raw.size(), stored, h.stored_len);
        if (ZSTD_isError(r)) throw TraceError(std::string("zstd: ") + ZSTD_getErrorName(r));
        if (r != h.raw_len) throw TraceError("zstd payload shorter than its declared length");
        return;
    }
    int r = LZ4_decompress_safe(reinterpret_cast<const char*>(stored),
                                reinterpret_cast<char*>(raw.data()), static_cast<int>(h.stored_len),
                                static_cast<int>(h.raw_len));
    if (r < 0) throw TraceError("lz4 payload does not decompress");
    if (static_cast<uint32_t>(r) != h.raw_len)
        throw TraceError("lz4 payload shorter than its declared length");
}

uint64_t decode_epoch_payload(const uint8_t* raw, size_t n) {
    ByteCursor c{raw, raw + n};
    return c.varint();
}

EndSummary decode_end_payload(const uint8_t* raw, size_t n) {
    ByteCursor c{raw, raw + n};
    EndSummary s;
    s.end_time_ns = c.varint();
    s.events = c.varint();
    s.peak_live_bytes = c.varint();
    s.peak_time_ns = c.varint();
    if (!c.at_end()) s.lost_events = c.varint();  // absent before: none lost
    return s;
}

}  // namespace pmt
