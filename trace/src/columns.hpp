// Private to trace/: the column form of a thread-events payload (FORMAT.md, "Column form"),
// the reversible transform that codecs 3 and 4 compress. Splitting the records' fields into
// one column each lets the compressor match repeating sizes, stacks and addresses across
// records, which the interleaved record stream hides (churn: 0.45 -> 0.29 bytes per event).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "pmt/column_builder.hpp"

namespace pmt::detail {

// Column buffers reused from one payload to the next.
struct ColumnScratch {
    ColumnBuilder builder;
    std::vector<uint64_t> times;
};

// Appends the column form of the record payload raw[0, n) to out, dividing time deltas by
// 2^time_shift when they are all multiples of it (else writing them whole, shift 0). Returns
// false, leaving out as it was, when raw is not a well-formed payload. Never throws
// (except std::bad_alloc).
bool to_columns(const uint8_t* raw, size_t n, unsigned time_shift, ColumnScratch& scratch,
                std::vector<uint8_t>& out);

// Rebuilds the record payload from its column form cols[0, n) into raw. Throws TraceError on
// anything malformed: a length over the 64 MiB limit, a column running short or left with
// bytes over, an unknown opcode, a time delta that overflows.
void from_columns(const uint8_t* cols, size_t n, std::vector<uint8_t>& raw);

}  // namespace pmt::detail
