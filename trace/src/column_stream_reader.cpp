// ColumnStreamReader (column_stream_reader.hpp): the zstd stream handling of codecs 3 and 4, for
// TraceReader (columns straight to events) and ChunkDecoder (which rebuilds the records).
#include "column_stream_reader.hpp"

#include <zstd.h>

#include <string>

namespace pmt::detail {

namespace {
// Readers accept more than the writer uses (chunk_stream.cpp, kWindowLog), but bound what a
// hostile frame can make them hold.
constexpr int kMaxReadWindowLog = 24;
}  // namespace

ColumnStreamReader::ColumnStreamReader() {
    ZSTD_DCtx* d = ZSTD_createDCtx();
    if (d) ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, kMaxReadWindowLog);
    dctx_ = d;
}

ColumnStreamReader::~ColumnStreamReader() { ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_)); }

bool ColumnStreamReader::decode(const ChunkHeader& h, const uint8_t* stored,
                                std::vector<uint8_t>& out) {
    if (h.codec != Codec::ZstdStreamStart && h.codec != Codec::ZstdStream) {
        decode_chunk_payload(h, stored, out);
        return false;
    }
    auto* dctx = static_cast<ZSTD_DCtx*>(dctx_);
    if (!dctx) throw TraceError("cannot make a zstd decompression context");
    if (h.type != ChunkType::ThreadEvents)
        throw TraceError("a zstd stream codec on a chunk that is not thread events");
    if (h.codec == Codec::ZstdStreamStart)
        ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    else if (!in_stream_)
        throw TraceError("zstd stream chunk (codec 4) without the chunks its stream began in");
    in_stream_ = false;  // until this chunk has decoded completely
    out.resize(h.raw_len);
    ZSTD_inBuffer in{stored, h.stored_len, 0};
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    for (;;) {
        size_t in_before = in.pos, out_before = o.pos;
        size_t r = ZSTD_decompressStream(dctx, &o, &in);
        if (ZSTD_isError(r)) throw TraceError(std::string("zstd: ") + ZSTD_getErrorName(r));
        if (in.pos == in.size && o.pos == o.size) break;
        if (in.pos == in_before && o.pos == out_before) break;  // no progress: cut short
    }
    if (o.pos != o.size) throw TraceError("zstd stream chunk shorter than its declared length");
    // Input left over, or output beyond the declared length still held by the context.
    uint8_t extra;
    ZSTD_outBuffer probe{&extra, 1, 0};
    ZSTD_inBuffer none{nullptr, 0, 0};
    if (in.pos != in.size ||
        (!ZSTD_isError(ZSTD_decompressStream(dctx, &probe, &none)) && probe.pos != 0))
        throw TraceError("zstd stream chunk longer than its declared length");
    return true;
}

}  // namespace pmt::detail
