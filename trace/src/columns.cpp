// The column form of a thread-events payload (FORMAT.md, "Column form"): to_columns decodes
// a record payload into a ColumnBuilder (pmt/column_builder.hpp), from_columns rebuilds the
// records in the reader (bounds-checked, throws TraceError).
#include "columns.hpp"

#include <cstring>

#include "pmt/format.hpp"
#include "varint.hpp"

namespace pmt::detail {

namespace {

using Column = ColumnBuilder::Column;
constexpr Column kOps = ColumnBuilder::kOps, kKinds = ColumnBuilder::kKinds,
                 kTimes = ColumnBuilder::kTimes, kAddrs = ColumnBuilder::kAddrs,
                 kSizes = ColumnBuilder::kSizes, kStacks = ColumnBuilder::kStacks,
                 kOther = ColumnBuilder::kOther;
constexpr size_t kColumns = ColumnBuilder::kColumns;

// Fields of each opcode in record order (FORMAT.md, "Thread events chunk"), as from_columns
// reads them back (ColumnBuilder writes them in this order): k = kind byte, t = time delta,
// a = address, s = size or length, S = stack id, o = any other varint, B = bytes whose count
// is the preceding o.
const char* const kFields[] = {
    nullptr,    // 0: no such opcode
    "ktasS",    // 1 alloc
    "ta",       // 2 free
    "kttaasS",  // 3 realloc
    "tasoooS",  // 4 mmap: length, prot, flags, fd, stack
    "tas",      // 5 munmap
    "ttasasS",  // 6 mremap
    "to",       // 7 rss
    "ooB",      // 8 string
    "oooo",     // 9 location
    "ooo",      // 10 stack
    "o",        // 11 thread name
};
constexpr uint8_t kMaxOp = 11;

Column column_of(char f) {
    switch (f) {
        case 'k':
            return kKinds;
        case 't':
            return kTimes;
        case 'a':
            return kAddrs;
        case 's':
            return kSizes;
        case 'S':
            return kStacks;
        default:
            return kOther;
    }
}

}  // namespace

bool to_columns(const uint8_t* raw, size_t n, unsigned time_shift, ColumnScratch& scratch,
                std::vector<uint8_t>& out) {
    if (n > kMaxChunkPayload || time_shift > 40) return false;
    std::vector<uint64_t>& times = scratch.times;
    times.clear();
    uint64_t tid, base;
    try {
        ByteCursor c{raw, raw + n};
        tid = c.varint();
        base = c.varint();
        times.resize(n + 2);
        scratch.builder.begin(n, times.data());
        decode_records(c.p, c.end, base, 0, scratch.builder);
        times.resize(static_cast<size_t>(scratch.builder.times_end() - times.data()));
    } catch (const TraceError&) {
        return false;
    }
    // Times of a payload from another writer may not be multiples: then shift 0.
    const uint64_t mask = (uint64_t(1) << time_shift) - 1;
    bool multiples = (base & mask) == 0;
    for (size_t i = 0; multiples && i < times.size(); ++i) multiples = (times[i] & mask) == 0;
    if (!multiples) time_shift = 0;
    for (uint64_t& t : times) t >>= time_shift;
    scratch.builder.finish(tid, base >> time_shift, times.data(), times.size(), time_shift, out);
    return true;
}

void from_columns(const uint8_t* cols, size_t n, std::vector<uint8_t>& raw) {
    ByteCursor head{cols, cols + n};
    unsigned shift = head.u8();
    if (shift > 40) throw_format("column form: time resolution over 2^40 ns");
    uint64_t len = head.varint();
    if (len > kMaxChunkPayload) throw_format("column form: payload length over 64 MiB");
    ByteCursor c[kColumns];
    uint64_t col_len[kColumns];
    for (auto& l : col_len) l = head.varint();
    for (size_t i = 0; i < kColumns; ++i) {
        const uint8_t* b = head.bytes(col_len[i]);
        c[i] = ByteCursor{b, b + col_len[i]};
    }
    if (!head.at_end()) throw_format("column form: bytes after the last column");

    // Room for one more record than declared, so a record is written before the length check.
    raw.resize(len + kMaxRecordBytes);
    uint8_t* p = raw.data();
    uint8_t* const limit = raw.data() + len;
    const uint64_t max_units = UINT64_MAX >> shift;
    p = put_varint(p, c[kOther].varint());  // tid
    uint64_t base = c[kOther].varint();
    if (base > max_units) throw_format("column form: time out of range");
    p = put_varint(p, base << shift);
    while (!c[kOps].at_end()) {
        if (p > limit) throw_format("column form: records longer than the declared length");
        uint8_t op = c[kOps].u8();
        if (op == 0 || op > kMaxOp) throw_format("column form: unknown opcode");
        *p++ = op;
        uint64_t last = 0;
        for (const char* f = kFields[op]; *f; ++f) {
            switch (*f) {
                case 'k':
                    *p++ = c[kKinds].u8();
                    break;
                case 't':
                    last = c[kTimes].varint();
                    if (last > max_units) throw_format("column form: time delta out of range");
                    p = put_varint(p, last << shift);
                    break;
                case 'B': {
                    if (p > limit || last > static_cast<uint64_t>(limit - p))
                        throw_format("column form: string longer than the declared length");
                    const uint8_t* s = c[kOther].bytes(last);
                    std::memcpy(p, s, last);
                    p += last;
                    break;
                }
                default:
                    last = c[column_of(*f)].varint();
                    p = put_varint(p, last);
                    break;
            }
        }
    }
    if (p != limit) throw_format("column form: records do not add up to the declared length");
    for (auto& col : c)
        if (!col.at_end()) throw_format("column form: a column has bytes left over");
    raw.resize(len);
}

}  // namespace pmt::detail
