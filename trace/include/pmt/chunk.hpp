// Framing: the file header and chunks (FORMAT.md), with checksums and compression.
// Used by the interposer's writer thread (never on an allocating thread) and by the reader.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pmt/format.hpp"

namespace pmt {

// Thrown by everything that reads a trace: one line, naming what is wrong.
struct TraceError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

uint32_t crc32c(const uint8_t* data, size_t n, uint32_t seed = 0);

// The whole file header (magic ... CRC) for h.
std::vector<uint8_t> encode_file_header(const TraceHeader& h);

// Appends one complete chunk (header + stored payload) to out, compressing raw with codec
// (None, Zstd or Lz4; a stream codec is taken as Zstd: ChunkStream writes those).
// Falls back to Codec::None when compression does not shrink the payload.
void append_chunk(std::vector<uint8_t>& out, ChunkType type, Codec codec, const uint8_t* raw,
                  size_t raw_len, int level = 1);

// Bytes somewhere else (not owned).
struct ByteSpan {
    const uint8_t* data;
    size_t size;
};

// The file's zstd stream (codecs 3 and 4, FORMAT.md "Column form"): thread-events payloads in
// column form, each chunk one flushed block, so a loop repeating across chunks compresses. One
// per trace file, used by one thread at a time; made by the writer thread, which owns it.
class ChunkStream {
public:
    explicit ChunkStream(int level = 1, unsigned time_shift = kTimeShift);
    ~ChunkStream();
    ChunkStream(const ChunkStream&) = delete;
    ChunkStream& operator=(const ChunkStream&) = delete;
    // Appends a thread-events chunk for the record payload raw[0, n): codec 3 for the first
    // one, 4 after; a standalone codec-1 chunk when raw does not split into columns or zstd
    // fails (the stream then starts again at the next chunk).
    void append_thread_chunk(std::vector<uint8_t>& out, const uint8_t* raw, size_t n);
    // Version 3 (FORMAT.md, "Version 3"): a stream payload given as the concatenation of
    // pieces[0, n) (StreamEncoder::finish), which zstd reads in place, taken as it is (no
    // version-2 column-form check), as a codec-3 chunk (first, or after a failure) or codec-4
    // chunk, built in the stream's buffer and valid until the next call. When zstd fails: the whole
    // payload as one codec-1 (or, when that does not shrink it, codec-0) chunk, and the next chunk
    // starts a new stream. Empty when the payload is over the 64 MiB chunk limit (the writer splits
    // long before that).
    ByteSpan stream_chunk(const ByteSpan* pieces, size_t n);
    // The same appended to out.
    void append_stream_chunk(std::vector<uint8_t>& out, const ByteSpan* pieces, size_t n);

private:
    size_t compress(const ByteSpan* pieces, size_t n, size_t total);
    struct Impl;
    Impl* impl_;
};

// Raw payloads of the small chunk types.
std::vector<uint8_t> epoch_payload(uint64_t t);
std::vector<uint8_t> end_payload(const EndSummary& s);

// --- Reading side. These throw TraceError with a message that does not name the file; the
// reader prefixes the path and byte offset.

// Decodes the header payload (the N bytes after the fixed 16). Unknown keys are skipped.
TraceHeader decode_header_payload(const uint8_t* p, size_t n);

// The fixed 20 bytes in front of every chunk.
struct ChunkHeader {
    ChunkType type = ChunkType::ThreadEvents;
    Codec codec = Codec::None;
    uint32_t stored_len = 0;
    uint32_t raw_len = 0;
    uint32_t crc = 0;
};
// Parses 20 bytes; throws on a bad magic, unknown type or codec, or lengths over the limits.
ChunkHeader parse_chunk_header(const uint8_t* p);
// CRC-32C over the first 16 header bytes and the stored payload, as FORMAT.md defines it.
uint32_t chunk_crc(const uint8_t* header, const uint8_t* stored, size_t stored_len);
// Decompresses (or copies) a chunk's stored payload into raw (resized to h.raw_len). Codecs
// 0-2 only: a stream chunk needs the chunks before it (ChunkDecoder).
void decode_chunk_payload(const ChunkHeader& h, const uint8_t* stored, std::vector<uint8_t>& raw);

// Decodes the chunks of one file in file order, keeping the zstd stream context of codecs 3
// and 4 from chunk to chunk. raw receives the record payload (column form undone).
class ChunkDecoder {
public:
    ChunkDecoder();
    ~ChunkDecoder();
    ChunkDecoder(const ChunkDecoder&) = delete;
    ChunkDecoder& operator=(const ChunkDecoder&) = delete;
    // Throws TraceError on a payload that does not decode (including a codec-4 chunk with no
    // stream before it, or after a stream chunk that failed).
    void decode(const ChunkHeader& h, const uint8_t* stored, std::vector<uint8_t>& raw);

private:
    struct Impl;
    Impl* impl_;
};
uint64_t decode_epoch_payload(const uint8_t* raw, size_t n);
EndSummary decode_end_payload(const uint8_t* raw, size_t n);

}  // namespace pmt
