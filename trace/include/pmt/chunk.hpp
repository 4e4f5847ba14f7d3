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

// Appends one complete chunk (header + stored payload) to out, compressing raw with codec.
// Falls back to Codec::None when compression does not shrink the payload.
void append_chunk(std::vector<uint8_t>& out, ChunkType type, Codec codec, const uint8_t* raw,
                  size_t raw_len, int level = 1);

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
// Decompresses (or copies) a chunk's stored payload into raw (resized to h.raw_len).
void decode_chunk_payload(const ChunkHeader& h, const uint8_t* stored, std::vector<uint8_t>& raw);
uint64_t decode_epoch_payload(const uint8_t* raw, size_t n);
EndSummary decode_end_payload(const uint8_t* raw, size_t n);

}  // namespace pmt
