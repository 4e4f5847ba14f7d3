// Varint and zigzag coding (FORMAT.md, first paragraph) and a bounds-checked cursor over
// decoded bytes, for trace/ and the interposer's writer thread. The writing half allocates
// nothing and makes no syscall; the reading half throws TraceError on malformed input.
#pragma once
#include <cstddef>
#include <cstdint>

#include "pmt/chunk.hpp"

namespace pmt::detail {

inline uint8_t* put_varint(uint8_t* p, uint64_t v) {
    if (v < 0x80) {  // one and two bytes (most sizes, stack ids and references) without a loop
        *p = static_cast<uint8_t>(v);
        return p + 1;
    }
    if (v < 0x4000) {
        p[0] = static_cast<uint8_t>(v) | 0x80;
        p[1] = static_cast<uint8_t>(v >> 7);
        return p + 2;
    }
    while (v >= 0x80) {
        *p++ = static_cast<uint8_t>(v) | 0x80;
        v >>= 7;
    }
    *p++ = static_cast<uint8_t>(v);
    return p;
}

inline uint64_t zigzag(int64_t v) {
    return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}

inline int64_t unzigzag(uint64_t u) {
    return static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
}

[[noreturn, gnu::cold, gnu::noinline]] void throw_format(const char* what);

// Reads varints and raw bytes from [p, end). Every method checks bounds; a varint longer
// than 10 bytes (or whose 10th byte carries more than the top bit) is malformed.
struct ByteCursor {
    const uint8_t* p;
    const uint8_t* end;

    bool at_end() const { return p >= end; }
    size_t left() const { return static_cast<size_t>(end - p); }

    uint8_t u8() {
        if (p >= end) throw_format("record runs past the end of its payload");
        return *p++;
    }

    uint64_t varint() {
        // Fast path: one-byte values are most deltas, sizes and ids in a real trace.
        if (p < end && *p < 0x80) return *p++;
        // With 10 bytes left no per-byte bound check is needed.
        if (end - p >= 10) {
            uint64_t v = *p++ & 0x7f;
            for (unsigned shift = 7; shift < 63; shift += 7) {
                uint8_t b = *p++;
                v |= static_cast<uint64_t>(b & 0x7f) << shift;
                if (b < 0x80) return v;
            }
            uint8_t b = *p++;  // the 10th byte holds bit 63 only
            if (b > 1) throw_format("overlong varint");
            return v | static_cast<uint64_t>(b) << 63;
        }
        Varint r = varint_checked(p, end);
        p = r.p;
        return r.value;
    }

    // Near the end of the payload: bound-checked byte by byte. Takes and returns the
    // position by value so the cursor never escapes and stays in registers in the callers.
    struct Varint {
        uint64_t value;
        const uint8_t* p;
    };
    [[gnu::noinline]] static Varint varint_checked(const uint8_t* p, const uint8_t* end) {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 70; shift += 7) {
            if (p >= end) throw_format("record runs past the end of its payload");
            uint8_t b = *p++;
            if (shift == 63 && b > 1) throw_format("overlong varint");
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (b < 0x80) return {v, p};
        }
        throw_format("overlong varint");
    }

    int64_t zvarint() { return unzigzag(varint()); }

    // n bytes in place; throws when fewer remain (guards hostile lengths before any copy).
    const uint8_t* bytes(uint64_t n) {
        if (n > left()) throw_format("length runs past the end of its payload");
        const uint8_t* q = p;
        p += n;
        return q;
    }
};

// Bytes of v written as a shortest varint.
inline uint64_t varint_len(uint64_t v) {
    return (static_cast<unsigned>(64 - __builtin_clzll(v | 1)) + 6u) / 7u;
}

// A varint of a column [p, end) in a decoder's inner loop: one- and two-byte values inline, the
// rest (and the column's end, and a varint over 10 bytes) through varint_checked. With a
// `longer` counter, it adds the bytes the varint spends beyond its shortest form.
[[gnu::always_inline]] inline uint64_t column_varint(const uint8_t*& p, const uint8_t* end,
                                                     uint64_t* longer = nullptr) {
    if (__builtin_expect(p < end, 1)) {
        const uint8_t b0 = p[0];
        if (b0 < 0x80) {
            ++p;
            return b0;
        }
        if (end - p >= 2 && p[1] < 0x80) {
            const uint64_t v = (b0 & 0x7fu) | uint64_t{p[1]} << 7;
            if (longer) *longer += p[1] == 0;
            p += 2;
            return v;
        }
    }
    const auto r = ByteCursor::varint_checked(p, end);
    if (longer) *longer += static_cast<uint64_t>(r.p - p) - varint_len(r.value);
    p = r.p;
    return r.value;
}

}  // namespace pmt::detail
