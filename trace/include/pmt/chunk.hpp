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

}  // namespace pmt
