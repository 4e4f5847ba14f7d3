// Record encoding for one thread's buffer (FORMAT.md, "Thread events chunk").
// Runs on the allocating thread inside the interposer: it never allocates, never locks and
// never makes a syscall; it only writes bytes into a buffer the caller owns.
#pragma once
#include <cstddef>
#include <cstdint>

#include "pmt/format.hpp"

namespace pmt {

class RecordEncoder {
public:
    // Starts a new thread-events payload in buf: writes tid and base time. Times are stored
    // rounded down to multiples of 2^time_shift ns, the resolution the file header declares
    // (FORMAT.md; the interposer uses kTimeShift, tests may use 0 for exact nanoseconds).
    void reset(uint8_t* buf, size_t capacity, uint64_t tid, uint64_t base_time_ns,
               unsigned time_shift = kTimeShift);
    size_t size() const { return static_cast<size_t>(pos_ - begin_); }
    size_t remaining() const { return static_cast<size_t>(end_ - pos_); }
    const uint8_t* data() const { return begin_; }
    bool empty() const { return pos_ == records_begin_; }  // no record after tid/base time

    // Each returns false, writing nothing, when the record does not fit; the caller hands the
    // buffer off, resets onto a fresh one and calls again. Times (ns) must not decrease.
    // alloc and free are inline: they are the interposer's most frequent records.
    inline bool alloc(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack);
    inline bool free(uint64_t t, uint64_t addr);
    bool realloc(AllocKind kind, uint64_t t_before, uint64_t t_after, uint64_t old_addr,
                 uint64_t new_addr, uint64_t size, uint64_t stack);
    bool mmap(uint64_t t, uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags, int64_t fd,
              uint64_t stack);
    bool munmap(uint64_t t, uint64_t addr, uint64_t length);
    bool mremap(uint64_t t_before, uint64_t t_after, uint64_t old_addr, uint64_t old_length,
                uint64_t new_addr, uint64_t new_length, uint64_t stack);
    bool rss(uint64_t t, uint64_t rss_bytes);
    bool string(uint64_t id, const char* s, size_t n);
    bool location(uint64_t id, uint64_t file_id, uint64_t function_id, uint64_t line);
    bool stack(uint64_t id, uint64_t parent_id, uint64_t location_id);
    bool thread_name(uint64_t string_id);

private:
    // Write one varint at p (FORMAT.md); the caller has room for it.
    static uint8_t* put(uint8_t* p, uint64_t v) {
        while (v >= 0x80) {
            *p++ = static_cast<uint8_t>(v) | 0x80;
            v >>= 7;
        }
        *p++ = static_cast<uint8_t>(v);
        return p;
    }
    // The time delta to t (rounded down to the resolution; a time going backwards is clamped).
    static uint64_t delta(uint64_t t, uint64_t mask, uint64_t& last) {
        t &= mask;
        uint64_t d = t > last ? t - last : 0;
        last += d;
        return d;
    }
    static uint64_t zigzag_delta(uint64_t a, uint64_t& last) {
        int64_t d = static_cast<int64_t>(a - last);
        last = a;
        return (static_cast<uint64_t>(d) << 1) ^ static_cast<uint64_t>(d >> 63);
    }
    // The same records when fewer than kMaxRecordBytes are left (they may not fit).
    bool alloc_near_end(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack);
    bool free_near_end(uint64_t t, uint64_t addr);

    uint8_t* begin_ = nullptr;
    uint8_t* records_begin_ = nullptr;
    uint8_t* pos_ = nullptr;
    uint8_t* end_ = nullptr;
    uint64_t last_t_ = 0;
    uint64_t last_addr_ = 0;
    uint64_t time_mask_ = ~uint64_t(0);
};

// The fast path writes straight into the buffer. The running time and address are copied to
// locals first and stored back at the end: stores through uint8_t* may alias any object, so
// reading the members between those stores would reload them every time.
inline bool RecordEncoder::alloc(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size,
                                 uint64_t stack) {
    uint8_t* p = pos_;
    if (__builtin_expect(static_cast<size_t>(end_ - p) < kMaxRecordBytes, 0))
        return alloc_near_end(kind, t, addr, size, stack);
    uint64_t last_t = last_t_, last_addr = last_addr_;
    uint64_t dt = delta(t, time_mask_, last_t);
    uint64_t da = zigzag_delta(addr, last_addr);
    p[0] = static_cast<uint8_t>(Op::Alloc);
    p[1] = static_cast<uint8_t>(kind);
    p = put(p + 2, dt);
    p = put(p, da);
    p = put(p, size);
    p = put(p, stack);
    pos_ = p;
    last_t_ = last_t;
    last_addr_ = last_addr;
    return true;
}

inline bool RecordEncoder::free(uint64_t t, uint64_t addr) {
    uint8_t* p = pos_;
    if (__builtin_expect(static_cast<size_t>(end_ - p) < kMaxRecordBytes, 0))
        return free_near_end(t, addr);
    uint64_t last_t = last_t_, last_addr = last_addr_;
    uint64_t dt = delta(t, time_mask_, last_t);
    uint64_t da = zigzag_delta(addr, last_addr);
    p[0] = static_cast<uint8_t>(Op::Free);
    p = put(p + 1, dt);
    p = put(p, da);
    pos_ = p;
    last_t_ = last_t;
    last_addr_ = last_addr;
    return true;
}

}  // namespace pmt
