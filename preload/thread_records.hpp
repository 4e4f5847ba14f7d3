// The records a recording thread hands to the writer thread: fixed-layout 64-bit words, stored
// without encoding on the allocating thread (RecordWriter) and read without decoding by the
// writer's cycle (decode_thread_records). Not a file format: the writer orders these records
// across threads and encodes them as the version-4 event stream (exit_replay.hpp); nothing
// outside the process ever sees them.
//
// Layout. A payload (one thread's buffer, or a part of it held back to the next cycle) is a
// sequence of words. Its first word is a header, then records follow. The first word of every
// record (and the header) carries a tag in its top 7 bits (word >> 57) and a 57-bit field in
// the rest (word & kLowMask); the other words are whole 64-bit values:
//   header        [kHeader | tid]
//   free          [kFree | addr, t]                                            2 words
//   alloc         [(kAlloc + kind) | addr, t, size, stack]                     4 words
//   free, wide    [kFreeWide, t, addr]                                         3 words
//   alloc, wide   [(kAllocWide + kind), t, addr, size, stack]                  5 words
//   realloc       [(kRealloc + kind), t_before, t_after, old, new, size, stack] 7 words
//   mmap          [kMmap, t, addr, length, prot, flags, fd, stack]             8 words
//   munmap        [kMunmap, t, addr, length]                                   4 words
//   mremap        [kMremap, t_before, t_after, old, old_length, new, new_length, stack]  8
//   rss           [kRss, t, bytes]                                             3 words
//   string        [kString | n, id, n bytes padded with zeros to whole words]  2 + ceil(n/8)
//   location      [kLocation, id, file, function, line]                        5 words
//   stack         [kStack, id, parent, location]                               4 words
//   thread_name   [kThreadName, string_id]                                     2 words
// The two frequent records (free, alloc) keep the address in the tag word: user-space
// addresses on x86-64 Linux are below 2^57 (2^47, or 2^56 with 5-level paging). An address
// that is not takes the wide form, so no value is ever cut. Times are absolute nanoseconds as
// the thread read them (no deltas): holding records back to the next cycle is a plain copy.
// A thread's times may step back slightly (a clock reading taken before another that ends up
// in an earlier record); the reader of the records clamps each time to the latest before it,
// as the version-2 records' deltas did.
//
// RecordWriter runs on the allocating thread inside the interposer: it never allocates, never
// locks and never makes a syscall; it only stores words into a buffer its caller owns.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>

#include "pmt/format.hpp"

namespace pmt::preload {

namespace rec {
inline constexpr unsigned kTagShift = 57;
inline constexpr uint64_t kLowMask = (uint64_t(1) << kTagShift) - 1;
enum Tag : uint8_t {
    kHeader = 0x01,
    kFree = 0x02,
    kFreeWide = 0x03,
    kMmap = 0x04,
    kMunmap = 0x05,
    kMremap = 0x06,
    kRss = 0x07,
    kString = 0x08,
    kLocation = 0x09,
    kStack = 0x0A,
    kThreadName = 0x0B,
    kAlloc = 0x10,      // + AllocKind (0..14)
    kAllocWide = 0x20,  // + AllocKind
    kRealloc = 0x30,    // + AllocKind
};
inline constexpr unsigned kKinds = kAllocKindCount;  // AllocKind 0..14 (below the next tag)
static_assert(kAlloc + kKinds <= kAllocWide);
inline constexpr uint64_t tag(unsigned t) { return uint64_t(t) << kTagShift; }
inline constexpr size_t kAllocWords = 4;  // the largest record the fast paths store
inline constexpr size_t string_words(size_t n) { return 2 + (n + 7) / 8; }
}  // namespace rec

class RecordWriter {
public:
    // Starts a payload of this thread in buf (words of capacity): its header. With no room for
    // the header and an alloc, every record fails and the payload stays empty.
    void reset(uint64_t* buf, size_t words, uint32_t tid) {
        begin_ = pos_ = buf;
        if (words < 1 + rec::kAllocWords) {
            end_ = stop_ = buf;
            return;
        }
        *pos_++ = rec::tag(rec::kHeader) | tid;
        end_ = buf + words;
        stop_ = end_ - (rec::kAllocWords - 1);
    }
    size_t words() const { return static_cast<size_t>(pos_ - begin_); }
    // The clock reading of the latest event record this thread has stored or tried to store
    // (one that did not fit goes into the next buffer: later than everything in this one).
    uint64_t last_time() const { return last_t_; }
    const uint64_t* data() const { return begin_; }
    bool empty() const { return pos_ - begin_ <= 1; }  // nothing after the header

    // Each returns false, storing nothing, when the record does not fit: the caller hands the
    // buffer off, resets onto a fresh one and calls again.
    bool alloc(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack) {
        last_t_ = t;
        uint64_t* p = pos_;
        if (__builtin_expect(p >= stop_ || (addr >> rec::kTagShift) != 0, 0))
            return alloc_slow(kind, t, addr, size, stack);
        p[0] = addr | rec::tag(rec::kAlloc + static_cast<unsigned>(kind));
        p[1] = t;
        p[2] = size;
        p[3] = stack;
        pos_ = p + 4;
        return true;
    }
    bool free(uint64_t t, uint64_t addr) {
        last_t_ = t;
        uint64_t* p = pos_;
        if (__builtin_expect(p >= stop_ || (addr >> rec::kTagShift) != 0, 0))
            return free_slow(t, addr);
        p[0] = addr | rec::tag(rec::kFree);
        p[1] = t;
        pos_ = p + 2;
        return true;
    }
    // The hooks' fast path (hooks.cpp) splits alloc()/free(): it asks whether the record fits
    // before it reads the clock, then stores it. The address must be below 2^57 (the caller
    // checks).
    bool fast_fits() const { return pos_ < stop_; }
    // Whether this buffer's latest record is the allocation of addr (its 4-word form, the
    // fast paths'). The 4th-last word of any other ending is a time, size, id, address or
    // length (below 2^57: no tag), another record's tag word (another tag, or no address in
    // it) or a string's text, which would have to spell addr's 57 bits and an alloc tag.
    bool follows_alloc_of(uint64_t addr) const {
        if (pos_ - begin_ < static_cast<ptrdiff_t>(1 + rec::kAllocWords)) return false;
        const uint64_t w = pos_[-static_cast<ptrdiff_t>(rec::kAllocWords)];
        return (w & rec::kLowMask) == addr && (w >> rec::kTagShift) - rec::kAlloc < rec::kKinds;
    }
    void fast_alloc(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack) {
        last_t_ = t;
        uint64_t* p = pos_;
        p[0] = addr | rec::tag(rec::kAlloc + static_cast<unsigned>(kind));
        p[1] = t;
        p[2] = size;
        p[3] = stack;
        pos_ = p + 4;
    }
    void fast_free(uint64_t t, uint64_t addr) {
        last_t_ = t;
        uint64_t* p = pos_;
        p[0] = addr | rec::tag(rec::kFree);
        p[1] = t;
        pos_ = p + 2;
    }
    bool realloc(AllocKind kind, uint64_t t_before, uint64_t t_after, uint64_t old_addr,
                 uint64_t new_addr, uint64_t size, uint64_t stack) {
        last_t_ = t_after;
        return put({rec::tag(rec::kRealloc + static_cast<unsigned>(kind)), t_before, t_after,
                    old_addr, new_addr, size, stack});
    }
    bool mmap(uint64_t t, uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags, int64_t fd,
              uint64_t stack) {
        last_t_ = t;
        return put(
            {rec::tag(rec::kMmap), t, addr, length, prot, flags, static_cast<uint64_t>(fd), stack});
    }
    bool munmap(uint64_t t, uint64_t addr, uint64_t length) {
        last_t_ = t;
        return put({rec::tag(rec::kMunmap), t, addr, length});
    }
    bool mremap(uint64_t t_before, uint64_t t_after, uint64_t old_addr, uint64_t old_length,
                uint64_t new_addr, uint64_t new_length, uint64_t stack) {
        last_t_ = t_after;
        return put({rec::tag(rec::kMremap), t_before, t_after, old_addr, old_length, new_addr,
                    new_length, stack});
    }
    bool rss(uint64_t t, uint64_t bytes) {
        last_t_ = t;
        return put({rec::tag(rec::kRss), t, bytes});
    }
    // n must be below 2^57 (callers cut names far shorter).
    bool string(uint64_t id, const char* s, size_t n) {
        size_t w = rec::string_words(n);
        if (static_cast<size_t>(end_ - pos_) < w) return false;
        pos_[w - 1] = 0;  // the padding of the last word (the id's word when n is 0)
        pos_[0] = rec::tag(rec::kString) | n;
        pos_[1] = id;
        std::memcpy(pos_ + 2, s, n);
        pos_ += w;
        return true;
    }
    bool location(uint64_t id, uint64_t file_id, uint64_t function_id, uint64_t line) {
        return put({rec::tag(rec::kLocation), id, file_id, function_id, line});
    }
    bool stack(uint64_t id, uint64_t parent_id, uint64_t location_id) {
        return put({rec::tag(rec::kStack), id, parent_id, location_id});
    }
    bool thread_name(uint64_t string_id) { return put({rec::tag(rec::kThreadName), string_id}); }

private:
    bool put(std::initializer_list<uint64_t> w) {
        if (static_cast<size_t>(end_ - pos_) < w.size()) return false;
        for (uint64_t x : w) *pos_++ = x;
        return true;
    }
    // Near the end of the buffer, or an address of 57 bits or more.
    [[gnu::noinline]] bool alloc_slow(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size,
                                      uint64_t stack) {
        if ((addr >> rec::kTagShift) == 0)
            return put(
                {addr | rec::tag(rec::kAlloc + static_cast<unsigned>(kind)), t, size, stack});
        return put({rec::tag(rec::kAllocWide + static_cast<unsigned>(kind)), t, addr, size, stack});
    }
    [[gnu::noinline]] bool free_slow(uint64_t t, uint64_t addr) {
        if ((addr >> rec::kTagShift) == 0) return put({addr | rec::tag(rec::kFree), t});
        return put({rec::tag(rec::kFreeWide), t, addr});
    }

    uint64_t* begin_ = nullptr;
    uint64_t* pos_ = nullptr;
    uint64_t* stop_ = nullptr;  // the fast paths store only below it (room for an alloc)
    uint64_t* end_ = nullptr;
    uint64_t last_t_ = 0;  // kept across buffers
};

// What a visitor's callback tells decode_thread_records: go on, or stop with the record just
// seen left undecoded (StopBefore) or consumed (StopAfter).
enum class RecNext : uint8_t { Go, StopBefore, StopAfter };

// Where decoding stopped: the next record and the latest time before it.
struct RecPosition {
    const uint64_t* p;
    uint64_t t;
    bool stopped;
};

[[noreturn, gnu::cold, gnu::noinline]] inline void bad_thread_records(const char* what) {
    throw std::runtime_error(what);
}

// The tid of a payload (its header word); throws if the first word is not a header.
inline uint32_t payload_tid(const uint64_t* p, size_t words) {
    if (words < 1 || (p[0] >> rec::kTagShift) != rec::kHeader ||
        (p[0] & rec::kLowMask) > UINT32_MAX)
        bad_thread_records("thread records without a header");
    return static_cast<uint32_t>(p[0] & rec::kLowMask);
}

// Reads the records in [p, end) (after the header); t is the latest time before them. Every
// time reaches the visitor clamped to the latest one before it. The visitor V has, each
// returning RecNext:
//   alloc(kind, t, addr, size, stack)            free(t, addr)
//   realloc(kind, t_before, t_after, old_addr, new_addr, size, stack)
//   mmap(t, addr, length, prot, flags, fd, stack)  munmap(t, addr, length)
//   mremap(t_before, t_after, old_addr, old_length, new_addr, new_length, stack)
//   rss(t, bytes)   string(id, bytes, len)   location(id, file, function, line)
//   stack(id, parent, location)   thread_name(string_id)
// A malformed payload (unknown tag, a record cut short, a location field over 32 bits)
// throws std::runtime_error.
template <class V>
RecPosition decode_thread_records(const uint64_t* p, const uint64_t* end, uint64_t t, V& v) {
    auto at = [&t](uint64_t x) { return t = x > t ? x : t; };
    auto need = [&p, end](size_t n) {
        if (__builtin_expect(static_cast<size_t>(end - p) < n, 0))
            bad_thread_records("thread record cut short");
    };
    auto u32 = [](uint64_t x) {
        if (x > UINT32_MAX) bad_thread_records("location field out of range");
        return static_cast<uint32_t>(x);
    };
    while (p < end) {
        const uint64_t w = p[0];
        const unsigned tag = static_cast<unsigned>(w >> rec::kTagShift);
        const uint64_t low = w & rec::kLowMask;
        const uint64_t t0 = t;
        RecNext next;
        size_t n;
        if (tag == rec::kFree) {
            need(2);
            next = v.free(at(p[1]), low);
            n = 2;
        } else if (tag - rec::kAlloc < rec::kKinds) {
            need(4);
            next = v.alloc(static_cast<AllocKind>(tag - rec::kAlloc), at(p[1]), low, p[2], p[3]);
            n = 4;
        } else if (tag - rec::kAllocWide < rec::kKinds) {
            need(5);
            next =
                v.alloc(static_cast<AllocKind>(tag - rec::kAllocWide), at(p[1]), p[2], p[3], p[4]);
            n = 5;
        } else if (tag - rec::kRealloc < rec::kKinds) {
            need(7);
            uint64_t tb = at(p[1]);
            uint64_t ta = at(p[2]);
            next = v.realloc(static_cast<AllocKind>(tag - rec::kRealloc), tb, ta, p[3], p[4], p[5],
                             p[6]);
            n = 7;
        } else {
            switch (tag) {
                case rec::kFreeWide:
                    need(3);
                    next = v.free(at(p[1]), p[2]);
                    n = 3;
                    break;
                case rec::kMmap:
                    need(8);
                    next =
                        v.mmap(at(p[1]), p[2], p[3], p[4], p[5], static_cast<int64_t>(p[6]), p[7]);
                    n = 8;
                    break;
                case rec::kMunmap:
                    need(4);
                    next = v.munmap(at(p[1]), p[2], p[3]);
                    n = 4;
                    break;
                case rec::kMremap: {
                    need(8);
                    uint64_t tb = at(p[1]);
                    uint64_t ta = at(p[2]);
                    next = v.mremap(tb, ta, p[3], p[4], p[5], p[6], p[7]);
                    n = 8;
                    break;
                }
                case rec::kRss:
                    need(3);
                    next = v.rss(at(p[1]), p[2]);
                    n = 3;
                    break;
                case rec::kString:
                    need(2);
                    if (low > static_cast<uint64_t>(end - p) * 8)
                        bad_thread_records("thread record cut short");
                    n = rec::string_words(static_cast<size_t>(low));
                    need(n);
                    next = v.string(p[1], reinterpret_cast<const uint8_t*>(p + 2),
                                    static_cast<size_t>(low));
                    break;
                case rec::kLocation:
                    need(5);
                    next = v.location(p[1], u32(p[2]), u32(p[3]), u32(p[4]));
                    n = 5;
                    break;
                case rec::kStack:
                    need(4);
                    next = v.stack(p[1], p[2], p[3]);
                    n = 4;
                    break;
                case rec::kThreadName:
                    need(2);
                    next = v.thread_name(p[1]);
                    n = 2;
                    break;
                default:
                    bad_thread_records("unknown thread record tag");
            }
        }
        if (next == RecNext::StopBefore) return {p, t0, true};
        p += n;
        if (next == RecNext::StopAfter) return {p, t, true};
    }
    return {p, t, false};
}

}  // namespace pmt::preload
