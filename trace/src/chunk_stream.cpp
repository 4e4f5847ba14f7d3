// The file-wide zstd stream of codecs 3 and 4 (FORMAT.md, "Column form"): ChunkStream on the
// interposer's writer thread compresses each thread-events payload's column form as one
// flushed block; ChunkDecoder in the reader keeps the decompression context across chunks.
#include <zstd.h>

#include <cstring>
#include <memory>

#include "column_stream_reader.hpp"
#include "columns.hpp"
#include "pmt/chunk.hpp"
#include "varint.hpp"

namespace pmt {

using detail::put_u16;
using detail::put_u32;

namespace {

// 1 MiB of history: on the churn workload 2^20 compresses as well as 2^23 (one loop
// iteration's records fit) and costs the traced process and the reader 7 MiB less.
constexpr int kWindowLog = 20;

void frame(uint8_t* h, Codec codec, size_t stored_len, size_t raw_len) {
    std::memcpy(h, kChunkMagic, 4);
    h[4] = static_cast<uint8_t>(ChunkType::ThreadEvents);
    h[5] = static_cast<uint8_t>(codec);
    put_u16(h + 6, 0);
    put_u32(h + 8, static_cast<uint32_t>(stored_len));
    put_u32(h + 12, static_cast<uint32_t>(raw_len));
    put_u32(h + 16, chunk_crc(h, h + kChunkHeaderBytes, stored_len));
}

}  // namespace

struct ChunkStream::Impl {
    ZSTD_CCtx* cctx = nullptr;
    int level;
    unsigned time_shift;
    bool started = false;  // a codec-3 chunk began the stream and every block since was written
    detail::ColumnScratch scratch;
    std::vector<uint8_t> cols;
    // The last chunk compressed: grown, never cleared (no zero-filling per chunk).
    std::unique_ptr<uint8_t[]> chunk;
    size_t chunk_cap = 0;
    std::vector<uint8_t> fallback;  // a chunk written without the stream (rare)
};

ChunkStream::ChunkStream(int level, unsigned time_shift) : impl_(new Impl) {
    impl_->level = level;
    impl_->time_shift = time_shift;
    impl_->cctx = ZSTD_createCCtx();
    if (impl_->cctx) {
        ZSTD_CCtx_setParameter(impl_->cctx, ZSTD_c_compressionLevel, level);
        ZSTD_CCtx_setParameter(impl_->cctx, ZSTD_c_windowLog, kWindowLog);
        ZSTD_CCtx_setParameter(impl_->cctx, ZSTD_c_checksumFlag, 0);
        ZSTD_CCtx_setParameter(impl_->cctx, ZSTD_c_contentSizeFlag, 0);
    }
}

ChunkStream::~ChunkStream() {
    ZSTD_freeCCtx(impl_->cctx);
    delete impl_;
}

void ChunkStream::append_thread_chunk(std::vector<uint8_t>& out, const uint8_t* raw, size_t n) {
    Impl& m = *impl_;
    m.cols.clear();
    if (m.cctx && detail::to_columns(raw, n, m.time_shift, m.scratch, m.cols)) {
        ByteSpan piece{m.cols.data(), m.cols.size()};
        size_t len = compress(&piece, 1, piece.size);
        if (len) {
            out.insert(out.end(), m.chunk.get(), m.chunk.get() + len);
            return;
        }
    }
    append_chunk(out, ChunkType::ThreadEvents, Codec::Zstd, raw, n, m.level);
}

ByteSpan ChunkStream::stream_chunk(const ByteSpan* pieces, size_t n) {
    Impl& m = *impl_;
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) total += pieces[i].size;
    if (total > kMaxChunkPayload) return ByteSpan{nullptr, 0};
    if (m.cctx) {
        size_t len = compress(pieces, n, total);
        if (len) return ByteSpan{m.chunk.get(), len};
    }
    // zstd failed (the stream restarts with the next chunk): a version-3/4 payload is valid
    // under codecs 0-2 as a whole, so it is stored on its own.
    std::vector<uint8_t> raw;
    raw.reserve(total);
    for (size_t i = 0; i < n; ++i)
        if (pieces[i].size) raw.insert(raw.end(), pieces[i].data, pieces[i].data + pieces[i].size);
    m.fallback.clear();
    append_chunk(m.fallback, ChunkType::ThreadEvents, Codec::Zstd, raw.data(), raw.size(), m.level);
    return ByteSpan{m.fallback.data(), m.fallback.size()};
}

void ChunkStream::append_stream_chunk(std::vector<uint8_t>& out, const ByteSpan* pieces, size_t n) {
    ByteSpan c = stream_chunk(pieces, n);
    if (c.size) out.insert(out.end(), c.data, c.data + c.size);
}

// The pieces, concatenated, as one flushed block of the stream: zstd reads them in place
// (it buffers the input of a block itself). Returns the chunk's length in m.chunk, 0 when
// zstd failed (the next chunk then starts a new stream).
size_t ChunkStream::compress(const ByteSpan* pieces, size_t n, size_t total) {
    Impl& m = *impl_;
    Codec codec = m.started ? Codec::ZstdStream : Codec::ZstdStreamStart;
    if (!m.started) ZSTD_CCtx_reset(m.cctx, ZSTD_reset_session_only);
    size_t need = kChunkHeaderBytes + ZSTD_compressBound(total) + 64;
    if (m.chunk_cap < need) {
        m.chunk.reset();
        m.chunk_cap = 0;
        m.chunk.reset(new uint8_t[need]);
        m.chunk_cap = need;
    }
    ZSTD_outBuffer ob{m.chunk.get() + kChunkHeaderBytes, m.chunk_cap - kChunkHeaderBytes, 0};
    bool ok = true;
    for (size_t i = 0; ok && i < n; ++i) {
        const bool last = i + 1 == n;
        if (!last && pieces[i].size == 0) continue;
        ZSTD_inBuffer ib{pieces[i].data, pieces[i].size, 0};
        size_t left;
        do {
            left = ZSTD_compressStream2(m.cctx, &ob, &ib, last ? ZSTD_e_flush : ZSTD_e_continue);
        } while (!ZSTD_isError(left) && (last ? left != 0 : ib.pos < ib.size) && ob.pos < ob.size);
        ok = !ZSTD_isError(left) && ib.pos == ib.size && (!last || left == 0);
    }
    // Never stored uncompressed even when that would be shorter: the reader's context must
    // see every block the writer's did.
    if (!ok) {
        m.started = false;  // the next chunk starts a new stream
        return 0;
    }
    m.started = true;
    frame(m.chunk.get(), codec, ob.pos, total);
    return kChunkHeaderBytes + ob.pos;
}

// The zstd stream handling is ColumnStreamReader's (the reader's own path); this adds the
// rebuild of the records from the column form.
struct ChunkDecoder::Impl {
    detail::ColumnStreamReader stream;
    std::vector<uint8_t> cols;
};

ChunkDecoder::ChunkDecoder() : impl_(new Impl) {}

ChunkDecoder::~ChunkDecoder() { delete impl_; }

void ChunkDecoder::decode(const ChunkHeader& h, const uint8_t* stored, std::vector<uint8_t>& raw) {
    Impl& m = *impl_;
    if (h.codec != Codec::ZstdStreamStart && h.codec != Codec::ZstdStream) {
        decode_chunk_payload(h, stored, raw);
        return;
    }
    m.stream.decode(h, stored, m.cols);
    detail::from_columns(m.cols.data(), m.cols.size(), raw);
    m.stream.end_stream_chunk();
}

}  // namespace pmt
