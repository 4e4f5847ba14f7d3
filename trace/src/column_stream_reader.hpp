// Private to trace/: decodes a file's chunks, keeping the zstd stream context of codecs 3 and
// 4 (FORMAT.md "Column form") from chunk to chunk, and hands thread-events payloads of the
// stream over in column form. TraceReader gives them to EventMerger::add_thread_columns, which
// decodes the columns straight into its queued events; ChunkDecoder rebuilds the records.
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
    // (returns true), the raw payload for codecs 0-2 (returns false). Throws TraceError on a
    // payload that does not decode. A stream chunk only becomes the context of a codec-4
    // chunk after end_stream_chunk(), i.e. once its columns decoded too.
    bool decode(const ChunkHeader& h, const uint8_t* stored, std::vector<uint8_t>& out);
    void end_stream_chunk() { in_stream_ = true; }

private:
    void* dctx_ = nullptr;  // ZSTD_DCtx
    bool in_stream_ = false;
};

}  // namespace pmt::detail
