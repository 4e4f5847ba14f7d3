// The one decoder of thread-events records (FORMAT.md, "Thread events chunk"), shared by the
// trace reader (EventMerger) and the interposer's writer thread, which re-times and replays
// the payloads it writes. Header-only so each caller's visitor is inlined into the loop.
// Malformed input throws TraceError with a message that does not name the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>

#include "pmt/chunk.hpp"
#include "pmt/format.hpp"
#include "pmt/reader.hpp"
#include "pmt/varint.hpp"

namespace pmt {
namespace detail {

inline AllocKind checked_alloc_kind(uint8_t k) {
    if (k > static_cast<uint8_t>(kLastAllocKind)) throw_format("unknown allocation kind");
    return static_cast<AllocKind>(k);
}

inline uint32_t checked_u32(uint64_t v, const char* what) {
    if (v > UINT32_MAX) throw_format(what);
    return static_cast<uint32_t>(v);
}

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_unknown_opcode(uint8_t op) {
    char msg[64];
    std::snprintf(msg, sizeof msg, "unknown record opcode %u", op);
    throw TraceError(msg);
}

}  // namespace detail

// The events of the mmap-family records as the reader delivers them (tid and seq left 0).
inline Event mmap_event(uint64_t t, uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags,
                        int64_t fd, uint64_t stack) {
    Event e;
    e.type = EventType::Mmap;
    e.time_ns = t;
    e.addr = addr;
    e.size = length;
    e.prot = prot;
    e.flags = flags;
    e.fd = fd;
    e.stack_id = stack;
    return e;
}
inline Event munmap_event(uint64_t t, uint64_t addr, uint64_t length) {
    Event e;
    e.type = EventType::Munmap;
    e.time_ns = t;
    e.addr = addr;
    e.size = length;
    return e;
}
// One event at t_after.
inline Event mremap_event(uint64_t t_after, uint64_t old_addr, uint64_t old_length,
                          uint64_t new_addr, uint64_t new_length, uint64_t stack) {
    Event e;
    e.type = EventType::Mremap;
    e.time_ns = t_after;
    e.old_addr = old_addr;
    e.old_size = old_length;
    e.addr = new_addr;
    e.size = new_length;
    e.stack_id = stack;
    return e;
}

// What a visitor's callback tells decode_records: go on, or stop with the record just seen
// left undecoded (Before) or consumed (After).
enum class Next : uint8_t { Go, StopBefore, StopAfter };

// Where decoding stopped: the next record's bytes, running time and running address.
struct RecordPosition {
    const uint8_t* p;
    uint64_t t;
    uint64_t a;
    bool stopped;
};

// Decodes the records in [p, end) with running time t and running address a (FORMAT.md: both
// fields of the records are deltas). Times and addresses reach the visitor absolute. The
// visitor V has, each returning Next:
//   alloc(kind, t, addr, size, stack)            free(t, addr)
//   realloc(kind, t_before, t_after, old_addr, new_addr, size, stack)
//   mmap(t, addr, length, prot, flags, fd, stack)  munmap(t, addr, length)
//   mremap(t_before, t_after, old_addr, old_length, new_addr, new_length, stack)
//   rss(t, bytes)   string(id, bytes, len)   location(id, file, function, line)
//   stack(id, parent, location)   thread_name(string_id)
template <class V>
RecordPosition decode_records(const uint8_t* p, const uint8_t* end, uint64_t t, uint64_t a, V& v) {
    detail::ByteCursor c{p, end};
    auto addr = [&c, &a] { return a += static_cast<uint64_t>(c.zvarint()); };
    while (!c.at_end()) {
        const uint8_t* record = c.p;
        const uint64_t t0 = t, a0 = a;
        uint8_t op = *c.p++;
        Next next;
        switch (static_cast<Op>(op)) {
            case Op::Alloc: {
                AllocKind kind = detail::checked_alloc_kind(c.u8());
                t += c.varint();
                uint64_t at = addr();
                uint64_t size = c.varint();
                next = v.alloc(kind, t, at, size, c.varint());
                break;
            }
            case Op::Free: {
                t += c.varint();
                next = v.free(t, addr());
                break;
            }
            case Op::Realloc: {
                AllocKind kind = detail::checked_alloc_kind(c.u8());
                uint64_t t_before = t += c.varint();
                uint64_t t_after = t += c.varint();
                uint64_t old_addr = addr();
                uint64_t new_addr = addr();
                uint64_t size = c.varint();
                next = v.realloc(kind, t_before, t_after, old_addr, new_addr, size, c.varint());
                break;
            }
            case Op::Mmap: {
                t += c.varint();
                uint64_t at = addr();
                uint64_t length = c.varint();
                uint64_t prot = c.varint();
                uint64_t flags = c.varint();
                int64_t fd = c.zvarint();
                next = v.mmap(t, at, length, prot, flags, fd, c.varint());
                break;
            }
            case Op::Munmap: {
                t += c.varint();
                uint64_t at = addr();
                next = v.munmap(t, at, c.varint());
                break;
            }
            case Op::Mremap: {
                uint64_t t_before = t += c.varint();
                uint64_t t_after = t += c.varint();
                uint64_t old_addr = addr();
                uint64_t old_length = c.varint();
                uint64_t new_addr = addr();
                uint64_t new_length = c.varint();
                next = v.mremap(t_before, t_after, old_addr, old_length, new_addr, new_length,
                                c.varint());
                break;
            }
            case Op::Rss: {
                t += c.varint();
                next = v.rss(t, c.varint());
                break;
            }
            case Op::String: {
                uint64_t id = c.varint();
                uint64_t len = c.varint();
                next = v.string(id, c.bytes(len), static_cast<size_t>(len));
                break;
            }
            case Op::Location: {
                uint64_t id = c.varint();
                uint32_t file = detail::checked_u32(c.varint(), "location's file id out of range");
                uint32_t function =
                    detail::checked_u32(c.varint(), "location's function id out of range");
                uint32_t line = detail::checked_u32(c.varint(), "location's line out of range");
                next = v.location(id, file, function, line);
                break;
            }
            case Op::Stack: {
                uint64_t id = c.varint();
                uint64_t parent = c.varint();
                next = v.stack(id, parent, c.varint());
                break;
            }
            case Op::ThreadName:
                next = v.thread_name(c.varint());
                break;
            default:
                detail::throw_unknown_opcode(op);
        }
        if (next == Next::StopBefore) return {record, t0, a0, true};
        if (next == Next::StopAfter) return {c.p, t, a, true};
    }
    return {c.p, t, a, false};
}

}  // namespace pmt
