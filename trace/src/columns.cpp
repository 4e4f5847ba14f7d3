// The column form of a thread-events payload (FORMAT.md, "Column form"): to_columns runs on
// the interposer's writer thread (no exceptions, buffers reused), from_columns in the reader
// (bounds-checked, throws TraceError). Both walk the records with one field table.
#include "columns.hpp"

#include <cstring>

#include "pmt/format.hpp"
#include "varint.hpp"

namespace pmt::detail {

namespace {

enum Column : uint8_t { kOps, kKinds, kTimes, kAddrs, kSizes, kStacks, kOther };

// Fields of each opcode in record order (FORMAT.md, "Thread events chunk"): k = kind byte,
// t = time delta, a = address, s = size or length, S = stack id, o = any other varint,
// B = bytes whose count is the preceding o.
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

// Non-throwing varint read for the writer side: false when malformed or cut short.
inline bool get_varint(const uint8_t*& p, const uint8_t* end, uint64_t& v) {
    if (p < end && *p < 0x80) {  // most deltas, sizes and ids
        v = *p++;
        return true;
    }
    v = 0;
    for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
        uint8_t b = *p++;
        v |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (b < 0x80) return shift < 63 || b <= 1;
    }
    return false;
}

// Writes the columns through raw pointers into buffers sized for the worst case: a column
// never holds more bytes than the payload (fields are copied or re-encoded no longer).
bool split(const uint8_t* p, const uint8_t* end, unsigned shift, ColumnScratch& s,
           size_t (&len)[kColumns]) {
    const uint64_t mask = (uint64_t(1) << shift) - 1;
    const size_t room = static_cast<size_t>(end - p) + 16;
    uint8_t* w[kColumns];
    for (size_t i = 0; i < kColumns; ++i) {
        if (s.col[i].size() < room) s.col[i].resize(room);
        w[i] = s.col[i].data();
    }
    uint64_t tid, base;
    if (!get_varint(p, end, tid) || !get_varint(p, end, base) || (base & mask)) return false;
    w[kOther] = put_varint(w[kOther], tid);
    w[kOther] = put_varint(w[kOther], base >> shift);
    uint64_t v;
    // Copies one varint field to column c (time deltas divided by 2^shift).
    auto field = [&](Column c) {
        if (!get_varint(p, end, v)) return false;
        if (c == kTimes) {
            if (v & mask) return false;
            v >>= shift;
        }
        w[c] = put_varint(w[c], v);
        return true;
    };
    while (p < end) {
        uint8_t op = *p++;
        if (op == 0 || op > kMaxOp) return false;
        *w[kOps]++ = op;
        // Frees and mallocs are nearly every record: spelled out, the table walk below was
        // half of this function's time on the regex workload.
        if (op == static_cast<uint8_t>(Op::Free)) {
            if (!field(kTimes) || !field(kAddrs)) return false;
            continue;
        }
        if (op == static_cast<uint8_t>(Op::Alloc)) {
            if (p >= end) return false;
            *w[kKinds]++ = *p++;
            if (!field(kTimes) || !field(kAddrs) || !field(kSizes) || !field(kStacks)) return false;
            continue;
        }
        uint64_t last = 0;
        for (const char* f = kFields[op]; *f; ++f) {
            if (*f == 'k') {
                if (p >= end) return false;
                *w[kKinds]++ = *p++;
            } else if (*f == 'B') {
                if (last > static_cast<size_t>(end - p)) return false;
                std::memcpy(w[kOther], p, last);
                w[kOther] += last;
                p += last;
            } else {
                if (!get_varint(p, end, last)) return false;
                if (*f == 't') {
                    if (last & mask) return false;
                    last >>= shift;
                }
                Column c = column_of(*f);
                w[c] = put_varint(w[c], last);
            }
        }
    }
    for (size_t i = 0; i < kColumns; ++i) len[i] = static_cast<size_t>(w[i] - s.col[i].data());
    return true;
}

void push_varint(std::vector<uint8_t>& c, uint64_t v) {
    uint8_t tmp[10];
    c.insert(c.end(), tmp, put_varint(tmp, v));
}

}  // namespace

bool to_columns(const uint8_t* raw, size_t n, unsigned time_shift, ColumnScratch& scratch,
                std::vector<uint8_t>& out) {
    if (n > kMaxChunkPayload || time_shift > 40) return false;
    // Times of a payload from another writer may not be multiples: then shift 0.
    size_t len[kColumns];
    if (!split(raw, raw + n, time_shift, scratch, len)) {
        if (time_shift == 0 || !split(raw, raw + n, 0, scratch, len)) return false;
        time_shift = 0;
    }
    out.push_back(static_cast<uint8_t>(time_shift));
    push_varint(out, n);
    for (size_t l : len) push_varint(out, l);
    for (size_t i = 0; i < kColumns; ++i)
        out.insert(out.end(), scratch.col[i].data(), scratch.col[i].data() + len[i]);
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
