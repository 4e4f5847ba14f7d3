// Private to trace/: the reader's decoder of a file's chunks that hands thread-events payloads
// of the zstd stream (codecs 3 and 4, FORMAT.md "Column form") over in column form, so that
// EventMerger::add_thread_columns decodes the columns straight into its queued events instead
// of rebuilding the records first (ChunkDecoder's from_columns) and decoding those again.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pmt/chunk.hpp"

namespace pmt::detail {

class ColumnStreamReader {
public:
    ColumnStreamReader();
    ~ColumnStreamReader();
    ColumnStreamReader(const ColumnStreamReader&) = delete;
    ColumnStreamReader& operator=(const ColumnStreamReader&) = delete;
    // Decodes the chunk's stored payload into out: the column form for a stream chunk
    // (returns true), the raw payload for codecs 0-2 (returns false). The checks and their
    // messages are ChunkDecoder::decode's; a stream chunk only becomes the context of a
    // codec-4 chunk after end_stream_chunk(ok = true), i.e. once its columns decoded too.
    bool decode(const ChunkHeader& h, const uint8_t* stored, std::vector<uint8_t>& out);
    void end_stream_chunk() { in_stream_ = true; }

private:
    void* dctx_ = nullptr;  // ZSTD_DCtx
    bool in_stream_ = false;
};

}  // namespace pmt::detail
