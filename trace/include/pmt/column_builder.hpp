// Builds the column form of one thread-events payload (FORMAT.md, "Column form") from decoded
// records: a visitor for decode_records (pmt/record_decoder.hpp). The trace library's
// to_columns and the interposer's writer thread (which gives each event a new time before the
// payload is written) both use it, so the column layout is written in one place; from_columns
// in trace/src/columns.cpp reads it back.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "pmt/format.hpp"
#include "pmt/record_decoder.hpp"
#include "pmt/varint.hpp"

namespace pmt {

class ColumnBuilder {
public:
    enum Column : uint8_t { kOps, kKinds, kTimes, kAddrs, kSizes, kStacks, kOther, kColumns };

    // Starts a payload whose records take at most raw_bytes bytes, plus one synthesized
    // record. Every time field read is stored at times, times + 1, ... (absolute, as
    // decoded); the caller gives room for raw_bytes + 2 (a time field takes at least a byte).
    void begin(size_t raw_bytes, uint64_t* times) {
        size_t room = raw_bytes + 2 * kMaxRecordBytes;
        for (size_t i = 0; i < kColumns; ++i) {
            if (i != kTimes) col_[i].reserve(room);
            w_[i] = col_[i].data();
        }
        times_ = times;
        a_ = 0;
    }
    // One past the last time field stored.
    uint64_t* times_end() const { return times_; }

    Next alloc(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack) {
        op(Op::Alloc);
        *w_[kKinds]++ = static_cast<uint8_t>(kind);
        *times_++ = t;
        address(addr);
        put(kSizes, size);
        put(kStacks, stack);
        return Next::Go;
    }
    Next free(uint64_t t, uint64_t addr) {
        op(Op::Free);
        *times_++ = t;
        address(addr);
        return Next::Go;
    }
    Next realloc(AllocKind kind, uint64_t t_before, uint64_t t_after, uint64_t old_addr,
                 uint64_t new_addr, uint64_t size, uint64_t stack) {
        op(Op::Realloc);
        *w_[kKinds]++ = static_cast<uint8_t>(kind);
        *times_++ = t_before;
        *times_++ = t_after;
        address(old_addr);
        address(new_addr);
        put(kSizes, size);
        put(kStacks, stack);
        return Next::Go;
    }
    Next mmap(uint64_t t, uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags, int64_t fd,
              uint64_t stack) {
        op(Op::Mmap);
        *times_++ = t;
        address(addr);
        put(kSizes, length);
        put(kOther, prot);
        put(kOther, flags);
        put(kOther, detail::zigzag(fd));
        put(kStacks, stack);
        return Next::Go;
    }
    Next munmap(uint64_t t, uint64_t addr, uint64_t length) {
        op(Op::Munmap);
        *times_++ = t;
        address(addr);
        put(kSizes, length);
        return Next::Go;
    }
    Next mremap(uint64_t t_before, uint64_t t_after, uint64_t old_addr, uint64_t old_length,
                uint64_t new_addr, uint64_t new_length, uint64_t stack) {
        op(Op::Mremap);
        *times_++ = t_before;
        *times_++ = t_after;
        address(old_addr);
        put(kSizes, old_length);
        address(new_addr);
        put(kSizes, new_length);
        put(kStacks, stack);
        return Next::Go;
    }
    Next rss(uint64_t t, uint64_t bytes) {
        op(Op::Rss);
        *times_++ = t;
        put(kOther, bytes);
        return Next::Go;
    }
    Next string(uint64_t id, const uint8_t* s, size_t len) {
        op(Op::String);
        put(kOther, id);
        put(kOther, len);
        std::memcpy(w_[kOther], s, len);
        w_[kOther] += len;
        return Next::Go;
    }
    Next location(uint64_t id, uint32_t file, uint32_t function, uint32_t line) {
        op(Op::Location);
        put(kOther, id);
        put(kOther, file);
        put(kOther, function);
        put(kOther, line);
        return Next::Go;
    }
    Next stack(uint64_t id, uint64_t parent, uint64_t location) {
        op(Op::Stack);
        put(kOther, id);
        put(kOther, parent);
        put(kOther, location);
        return Next::Go;
    }
    Next thread_name(uint64_t id) {
        op(Op::ThreadName);
        put(kOther, id);
        return Next::Go;
    }

    // The column form with tid, the base time and the record times (t[0, n), one per time
    // field in record order, non-decreasing, not below base), all times in units of 2^shift
    // ns, as kPieces spans whose concatenation is the form (no copy of the columns: the
    // spans point into this builder and stay valid until its next begin or finish).
    static constexpr size_t kPieces = kColumns + 2;
    void finish_pieces(uint64_t tid, uint64_t base, const uint64_t* t, size_t n, unsigned shift,
                       ByteSpan pieces[kPieces]);
    // The same appended to out in one piece.
    void finish(uint64_t tid, uint64_t base, const uint64_t* t, size_t n, unsigned shift,
                std::vector<uint8_t>& out);

private:
    static size_t varint_len(uint64_t v) { return detail::varint_len(v); }
    void op(Op o) { *w_[kOps]++ = static_cast<uint8_t>(o); }
    void put(Column c, uint64_t v) { w_[c] = detail::put_varint(w_[c], v); }
    void address(uint64_t addr) {
        put(kAddrs, detail::zigzag(static_cast<int64_t>(addr - a_)));
        a_ = addr;
    }

    // A column's bytes: grown, never zero-filled (pages never written stay out of the RSS).
    struct Buffer {
        std::unique_ptr<uint8_t[]> p;
        size_t cap = 0;
        void reserve(size_t n) {
            if (cap >= n) return;
            p.reset();
            cap = 0;
            p.reset(new uint8_t[n]);
            cap = n;
        }
        uint8_t* data() const { return p.get(); }
    };
    Buffer col_[kColumns];
    uint8_t* w_[kColumns] = {};
    uint8_t head_[1 + 10 * (1 + kColumns)];  // shift, L and the column lengths
    uint8_t tid_base_[20];                   // the first two fields of the other column
    uint64_t* times_ = nullptr;
    uint64_t a_ = 0;  // the running address (FORMAT.md: each address field is a delta)
};

inline void ColumnBuilder::finish_pieces(uint64_t tid, uint64_t base, const uint64_t* t, size_t n,
                                         unsigned shift, ByteSpan pieces[kPieces]) {
    uint8_t* h = detail::put_varint(tid_base_, tid);
    h = detail::put_varint(h, base);
    const size_t head_len = static_cast<size_t>(h - tid_base_);
    // The rebuilt record payload's length L: every field in its shortest varint, times in ns.
    size_t len = varint_len(tid) + varint_len(base << shift);
    col_[kTimes].reserve(n * 10);
    uint8_t* w = col_[kTimes].data();
    // Bytes beyond the first of a rebuilt delta (d << shift): extra[b] when d has b bits,
    // small[d] for a one-byte d (most of them).
    uint8_t extra[65], small[0x80];
    extra[0] = 0;
    for (unsigned b = 1; b <= 64; ++b)
        extra[b] = static_cast<uint8_t>(std::min<unsigned>((b + shift + 6) / 7, 10) - 1);
    for (unsigned d = 0; d < 0x80; ++d) small[d] = extra[64 - __builtin_clzll(d | 1) - (d == 0)];
    uint64_t prev = base;
    size_t long_times = 0;
    for (size_t i = 0; i < n; ++i) {
        uint64_t d = t[i] - prev;
        prev = t[i];
        if (d < 0x80) {
            *w++ = static_cast<uint8_t>(d);
            long_times += small[d];
        } else {
            w = detail::put_varint(w, d);
            long_times += extra[64 - __builtin_clzll(d)];
        }
    }
    w_[kTimes] = w;
    len += n + long_times;
    size_t lens[kColumns];
    for (size_t i = 0; i < kColumns; ++i) {
        lens[i] = static_cast<size_t>(w_[i] - col_[i].data());
        if (i != kTimes) len += lens[i];
    }
    lens[kOther] += head_len;
    uint8_t* p = head_;
    *p++ = static_cast<uint8_t>(shift);
    p = detail::put_varint(p, len);
    for (size_t l : lens) p = detail::put_varint(p, l);
    pieces[0] = ByteSpan{head_, static_cast<size_t>(p - head_)};
    for (size_t i = 0; i < kOther; ++i)
        pieces[1 + i] = ByteSpan{col_[i].data(), static_cast<size_t>(w_[i] - col_[i].data())};
    pieces[1 + kOther] = ByteSpan{tid_base_, head_len};
    pieces[2 + kOther] =
        ByteSpan{col_[kOther].data(), static_cast<size_t>(w_[kOther] - col_[kOther].data())};
}

inline void ColumnBuilder::finish(uint64_t tid, uint64_t base, const uint64_t* t, size_t n,
                                  unsigned shift, std::vector<uint8_t>& out) {
    ByteSpan pieces[kPieces];
    finish_pieces(tid, base, t, n, shift, pieces);
    size_t total = 0;
    for (const ByteSpan& s : pieces) total += s.size;
    size_t start = out.size();
    out.resize(start + total);
    uint8_t* p = out.data() + start;
    for (const ByteSpan& s : pieces) {
        if (s.size) std::memcpy(p, s.data, s.size);
        p += s.size;
    }
}

}  // namespace pmt
