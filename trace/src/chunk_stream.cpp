// The file-wide zstd stream of codecs 3 and 4 (FORMAT.md, "Column form"): ChunkStream on the
// interposer's writer thread compresses each thread-events payload's column form as one
// flushed block; ChunkDecoder in the reader keeps the decompression context across chunks.
#include <zstd.h>

#include <cstring>
#include <memory>

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
// Readers accept more than the writer uses, but bound what a hostile frame can make them hold.
constexpr int kMaxReadWindowLog = 24;

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

void ChunkStream::append_column_chunk(std::vector<uint8_t>& out, const uint8_t* cols, size_t n) {
    ByteSpan piece{cols, n};
    ByteSpan c = column_chunk(&piece, 1);
    out.insert(out.end(), c.data, c.data + c.size);
}

ByteSpan ChunkStream::column_chunk(const ByteSpan* pieces, size_t n) {
    Impl& m = *impl_;
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) total += pieces[i].size;
    if (m.cctx) {
        size_t len = compress(pieces, n, total);
        if (len) return ByteSpan{m.chunk.get(), len};
    }
    std::vector<uint8_t> cols, raw;
    cols.reserve(total);
    for (size_t i = 0; i < n; ++i)
        cols.insert(cols.end(), pieces[i].data, pieces[i].data + pieces[i].size);
    try {
        detail::from_columns(cols.data(), cols.size(), raw);
    } catch (const TraceError&) {
        return ByteSpan{nullptr, 0};  // not a column form: nothing a reader could take
    }
    m.fallback.clear();
    append_chunk(m.fallback, ChunkType::ThreadEvents, Codec::Zstd, raw.data(), raw.size(), m.level);
    return ByteSpan{m.fallback.data(), m.fallback.size()};
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

struct ChunkDecoder::Impl {
    ZSTD_DCtx* dctx = nullptr;
    bool in_stream = false;  // the last stream chunk decoded: a codec-4 chunk may follow
    std::vector<uint8_t> cols;
};

ChunkDecoder::ChunkDecoder() : impl_(new Impl) {
    impl_->dctx = ZSTD_createDCtx();
    if (impl_->dctx) ZSTD_DCtx_setParameter(impl_->dctx, ZSTD_d_windowLogMax, kMaxReadWindowLog);
}

ChunkDecoder::~ChunkDecoder() {
    ZSTD_freeDCtx(impl_->dctx);
    delete impl_;
}

void ChunkDecoder::decode(const ChunkHeader& h, const uint8_t* stored, std::vector<uint8_t>& raw) {
    Impl& m = *impl_;
    if (h.codec != Codec::ZstdStreamStart && h.codec != Codec::ZstdStream) {
        decode_chunk_payload(h, stored, raw);
        return;
    }
    if (!m.dctx) throw TraceError("cannot make a zstd decompression context");
    if (h.type != ChunkType::ThreadEvents)
        throw TraceError("a zstd stream codec on a chunk that is not thread events");
    if (h.codec == Codec::ZstdStreamStart)
        ZSTD_DCtx_reset(m.dctx, ZSTD_reset_session_only);
    else if (!m.in_stream)
        throw TraceError("zstd stream chunk (codec 4) without the chunks its stream began in");
    m.in_stream = false;  // until this chunk has decoded completely
    m.cols.resize(h.raw_len);
    ZSTD_inBuffer in{stored, h.stored_len, 0};
    ZSTD_outBuffer out{m.cols.data(), m.cols.size(), 0};
    for (;;) {
        size_t in_before = in.pos, out_before = out.pos;
        size_t r = ZSTD_decompressStream(m.dctx, &out, &in);
        if (ZSTD_isError(r)) throw TraceError(std::string("zstd: ") + ZSTD_getErrorName(r));
        if (in.pos == in.size && out.pos == out.size) break;
        if (in.pos == in_before && out.pos == out_before) break;  // no progress: cut short
    }
    if (out.pos != out.size) throw TraceError("zstd stream chunk shorter than its declared length");
    // Input left over, or output beyond the declared length still held by the context.
    uint8_t extra;
    ZSTD_outBuffer probe{&extra, 1, 0};
    ZSTD_inBuffer none{nullptr, 0, 0};
    if (in.pos != in.size ||
        (!ZSTD_isError(ZSTD_decompressStream(m.dctx, &probe, &none)) && probe.pos != 0))
        throw TraceError("zstd stream chunk longer than its declared length");
    detail::from_columns(m.cols.data(), m.cols.size(), raw);
    m.in_stream = true;
}

}  // namespace pmt
