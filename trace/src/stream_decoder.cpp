// StreamDecoder (stream_decoder.hpp): the stream payload of versions 3 and 4 (FORMAT.md,
// "Stream payload"), decoded straight into events. One pass over the ops column; each record takes
// its fields from the columns the ops table names. Every malformation is a TraceError.
#include "stream_decoder.hpp"

#include <cstdio>
#include <string>

#include "pmt/record_decoder.hpp"
#include "pmt/varint.hpp"

namespace pmt::detail {

namespace {

enum Col : unsigned { kOps, kSizes, kStacks, kRefs, kAddrs, kTimes, kOther, kColumns };
const char* const kColumnName[kColumns] = {"ops",       "sizes", "stacks", "refs",
                                           "addresses", "times", "other"};

[[noreturn, gnu::cold, gnu::noinline]] void fail(const char* fmt, uint64_t a = 0, uint64_t b = 0) {
    char msg[160];
    std::snprintf(msg, sizeof msg, fmt, static_cast<unsigned long long>(a),
                  static_cast<unsigned long long>(b));
    throw TraceError(std::string("stream payload: ") + msg);
}

// A varint of a column [p, end) (bounds and overlong checked).
[[gnu::always_inline]] inline uint64_t varint(const uint8_t*& p, const uint8_t* end) {
    return column_varint(p, end);
}

}  // namespace

StreamDecoder::StreamDecoder(unsigned time_shift, uint16_t version, Limits limits)
    : shift_(time_shift), v4_(version >= 4), limits_(limits), batch_(kBatch) {
    if (time_shift > 40) throw_format("time resolution over 2^40 ns");
    if (limits_.positions > LiveRank::kMaxPositions) limits_.positions = LiveRank::kMaxPositions;
    if (limits_.threads > kNoThread) limits_.threads = kNoThread;
}

StreamDecoder::~StreamDecoder() = default;

void StreamDecoder::flush(EventVisitor& v, Event* end, bool dirty) {
    const size_t n = static_cast<size_t>(end - batch_.data());
    if (n == 0) return;
    delivered_ += n;
    last_time_ = end[-1].time_ns;
    v.on_events(batch_.data(), n);
    if (dirty) {
        const Event clean;
        for (Event* e = batch_.data(); e != end; ++e) {
            e->old_addr = clean.old_addr;
            e->old_size = clean.old_size;
            e->prot = clean.prot;
            e->flags = clean.flags;
            e->fd = clean.fd;
        }
    }
}

void StreamDecoder::decode(const uint8_t* payload, size_t n, EventVisitor& v) {
    if (v4_)
        decode_payload<true>(payload, n, v);
    else
        decode_payload<false>(payload, n, v);
}

template <bool kV4>
void StreamDecoder::decode_payload(const uint8_t* payload, size_t n, EventVisitor& v) {
    ByteCursor head{payload, payload + n};
    uint64_t len[kColumns];
    for (auto& l : len) l = head.varint();
    const uint8_t* col[kColumns];
    const uint8_t* col_end[kColumns];
    for (unsigned i = 0; i < kColumns; ++i) {
        if (len[i] > head.left())
            fail("column lengths add up to more than the payload (%llu bytes)", n);
        col[i] = head.p;
        head.p += len[i];
        col_end[i] = head.p;
    }
    if (!head.at_end()) fail("%llu bytes after the last column", head.left());

    const uint8_t* ops = col[kOps];
    const uint8_t* const ops_end = col_end[kOps];
    const uint8_t* sizes = col[kSizes];
    const uint8_t* const sizes_end = col_end[kSizes];
    const uint8_t* stacks = col[kStacks];
    const uint8_t* const stacks_end = col_end[kStacks];
    const uint8_t* refs = col[kRefs];
    const uint8_t* const refs_end = col_end[kRefs];
    const uint8_t* addrs = col[kAddrs];
    const uint8_t* const addrs_end = col_end[kAddrs];
    const uint8_t* times = col[kTimes];
    const uint8_t* const times_end = col_end[kTimes];
    const uint8_t* other = col[kOther];
    const uint8_t* const other_end = col_end[kOther];

    const unsigned shift = shift_;
    const uint64_t max_units = UINT64_MAX >> shift;
    uint64_t t = t_;
    uint64_t t_ns = t << shift;
    uint64_t a = a_;
    uint64_t seq = next_seq_;
    uint64_t number = delivered_;  // Event::seq of the next event
    Thread* cur = cur_ == kNoThread ? nullptr : &threads_[cur_];
    uint32_t tid = cur ? cur->tid : 0;
    Event* const batch = batch_.data();
    Event* out = batch;
    Event* const out_limit = batch + kBatch - 2;  // room for a PAIR's two events
    bool dirty = false;                           // a mapping event is in the batch

    auto need_thread = [&]() __attribute__((always_inline)) {
        if (__builtin_expect(cur == nullptr, 0)) fail("an event before any THREAD record");
    };
    // The batch's slots keep old_addr, old_size, prot, flags and fd at their defaults (flush()
    // restores them after a mapping event), so an event writes only the fields below.
    auto emit = [&](EventType type, AllocKind kind, uint64_t addr, uint64_t size, uint64_t stack)
                    __attribute__((always_inline))
                        ->Event& {
        Event& e = *out++;
        e.type = type;
        e.kind = kind;
        e.tid = tid;
        e.time_ns = t_ns;
        e.addr = addr;
        e.size = size;
        e.stack_id = stack;
        e.seq = number++;
        return e;
    };
    // The block a free names, read from refs and made dead. Version 4: the prediction code c
    // from the owner's f and a; version 3: its owner's live block at the rank code.
    auto take = [&](Thread & owner) __attribute__((always_inline)) {
        const uint64_t r = varint(refs, refs_end);
        if constexpr (kV4) {
            const uint64_t s = (r & 1) ? owner.next_alloc - 1 - (r >> 1)
                                       : owner.next_free + static_cast<uint64_t>(unzigzag(r >> 1));
            if (__builtin_expect(!live_.remove(s), 0))
                fail("free of block %llu (reference code %llu), which is not live", s, r);
            owner.next_free = s + 1;
            return s;
        } else {
            const uint64_t live = owner.live ? owner.live->size() : 0;
            const uint64_t i = (r & 1) ? live - 1 - (r >> 1) : r >> 1;
            if (__builtin_expect(i >= live, 0))
                fail("free of rank code %llu with %llu live blocks", r, live);
            return owner.live->remove_at(i);
        }
    };
    auto free_event = [&](uint8_t op, uint64_t addr) __attribute__((always_inline)) {
        emit(EventType::Free, op3_free_kind(op), addr, 0, 0);
    };

    while (ops < ops_end) {
        if (__builtin_expect(out > out_limit, 0)) {
            flush(v, out, dirty);
            out = batch;
            dirty = false;
        }
        const uint8_t op = *ops++;
        // ALLOC and FREE first: most records are one of them, and these tests cost less than
        // the switch's jump.
        if (static_cast<uint8_t>(op - uint8_t(Op3::Alloc)) < kAllocKindCount) {  // ALLOC + kind
            need_thread();
            const uint64_t size = varint(sizes, sizes_end);
            const uint64_t stack = varint(stacks, stacks_end);
            emit(EventType::Alloc, static_cast<AllocKind>(op - uint8_t(Op3::Alloc)),
                 kHeapAddressBit | seq, size, stack);
            if constexpr (kV4) {
                live_.add(seq);
                cur->next_alloc = ++seq;
            } else {
                LiveRank* live = cur->live.get();
                if (__builtin_expect(live == nullptr, 0))
                    cur->live = std::make_unique<LiveRank>(), live = cur->live.get();
                // Seqs only grow: refused only when the thread's blocks reach the limit.
                if (__builtin_expect(!live->add_bounded(seq++, limits_.positions), 0))
                    fail("thread index %llu has %llu live blocks, more than this reader holds",
                         cur_, live->size());
            }
            continue;
        }
        if (op == uint8_t(Op3::Free)) {  // the current thread's block
            need_thread();
            free_event(op, kHeapAddressBit | take(*cur));
            continue;
        }
        switch (op) {
            case 0x11:
            case 0x12:
            case 0x13:
            case 0x14:
            case 0x15:
            case 0x16:
            case 0x17:
            case 0x18:
            case 0x19:
            case 0x1a:
            case 0x1b:
            case 0x1c:
            case 0x1d:
            case 0x1e:
            case 0x1f: {  // PAIR + kind: the block's Alloc and its Free
                need_thread();
                const uint64_t size = varint(sizes, sizes_end);
                const uint64_t stack = varint(stacks, stacks_end);
                const uint64_t addr = kHeapAddressBit | seq++;
                emit(EventType::Alloc, static_cast<AllocKind>(op - uint8_t(Op3::Pair)), addr, size,
                     stack);
                emit(EventType::Free, AllocKind::Malloc, addr, 0, 0);
                break;
            }
            case uint8_t(Op3::ReallocFree):
            case uint8_t(Op3::ReallocArrayFree): {  // FREE of the current thread's block, realloc
                                                    // and reallocarray kinds
                need_thread();
                free_event(op, kHeapAddressBit | take(*cur));
                break;
            }
            case uint8_t(Op3::FreeOther):
            case uint8_t(Op3::ReallocFreeOther):
            case uint8_t(Op3::ReallocArrayFreeOther): {
                need_thread();
                const uint64_t owner = varint(refs, refs_end);
                if (owner >= threads_.size() || &threads_[owner] == cur)
                    fail("free of thread index %llu's block by thread index %llu", owner, cur_);
                free_event(op, kHeapAddressBit | take(threads_[owner]));
                break;
            }
            case uint8_t(Op3::FreeUnknown):
            case uint8_t(Op3::ReallocFreeUnknown):
            case uint8_t(Op3::ReallocArrayFreeUnknown): {
                need_thread();
                a += static_cast<uint64_t>(unzigzag(varint(addrs, addrs_end)));
                free_event(op, a);
                break;
            }
            case uint8_t(Op3::Mmap): {
                need_thread();
                const uint64_t at = a += static_cast<uint64_t>(unzigzag(varint(addrs, addrs_end)));
                const uint64_t length = varint(sizes, sizes_end);
                const uint64_t prot = varint(other, other_end);
                const uint64_t flags = varint(other, other_end);
                const int64_t fd = unzigzag(varint(other, other_end));
                const uint64_t stack = varint(stacks, stacks_end);
                Event& e = emit(EventType::Mmap, AllocKind::Malloc, at, length, stack);
                e.prot = prot;
                e.flags = flags;
                e.fd = fd;
                dirty = true;
                break;
            }
            case uint8_t(Op3::Munmap): {
                need_thread();
                const uint64_t at = a += static_cast<uint64_t>(unzigzag(varint(addrs, addrs_end)));
                const uint64_t length = varint(sizes, sizes_end);
                emit(EventType::Munmap, AllocKind::Malloc, at, length, 0);
                break;
            }
            case uint8_t(Op3::Mremap): {
                need_thread();
                const uint64_t old_at = a +=
                    static_cast<uint64_t>(unzigzag(varint(addrs, addrs_end)));
                const uint64_t old_length = varint(sizes, sizes_end);
                const uint64_t new_at = a +=
                    static_cast<uint64_t>(unzigzag(varint(addrs, addrs_end)));
                const uint64_t new_length = varint(sizes, sizes_end);
                const uint64_t stack = varint(stacks, stacks_end);
                Event& e = emit(EventType::Mremap, AllocKind::Malloc, new_at, new_length, stack);
                e.old_addr = old_at;
                e.old_size = old_length;
                dirty = true;
                break;
            }
            case uint8_t(Op3::Rss): {
                need_thread();
                const uint64_t bytes = varint(other, other_end);
                emit(EventType::Rss, AllocKind::Malloc, 0, bytes, 0);
                break;
            }
            case uint8_t(Op3::Tick): {
                const uint64_t dt = varint(times, times_end);
                if (dt == 0) fail("a tick of 0 units");
                if (dt > max_units - t) fail("time out of range (tick of %llu units)", dt);
                t += dt;
                t_ns = t << shift;
                break;
            }
            case uint8_t(Op3::Thread): {
                const uint64_t index = varint(other, other_end);
                const uint64_t count = threads_.size();
                if (index == count) {
                    const uint32_t new_tid = checked_u32(varint(other, other_end),
                                                         "stream payload: thread id out of range");
                    if (count >= limits_.threads)
                        fail("more than %llu threads (a Linux process has fewer thread ids)",
                             limits_.threads);
                    if (!index_of_.insert(new_tid, static_cast<uint32_t>(count)))
                        fail("thread id %llu added twice", new_tid);
                    threads_.emplace_back();
                    threads_.back().tid = new_tid;
                } else if (index > count) {
                    fail("thread index %llu with %llu threads known", index, count);
                } else if (index == cur_) {
                    fail("switch to thread index %llu, the current thread", index);
                }
                cur_ = static_cast<uint32_t>(index);
                cur = &threads_[index];
                tid = cur->tid;
                break;
            }
            case uint8_t(Op3::String): {
                const uint64_t id = varint(other, other_end);
                const uint64_t slen = varint(other, other_end);
                if (slen > static_cast<uint64_t>(other_end - other))
                    fail("string of %llu bytes runs past the other column", slen);
                defs_.set_string(id, other, static_cast<size_t>(slen));
                other += slen;
                break;
            }
            case uint8_t(Op3::Location): {
                const uint64_t id = varint(other, other_end);
                const uint32_t file = checked_u32(
                    varint(other, other_end), "stream payload: location's file id out of range");
                const uint32_t function =
                    checked_u32(varint(other, other_end),
                                "stream payload: location's function id out of range");
                const uint32_t line = checked_u32(varint(other, other_end),
                                                  "stream payload: location's line out of range");
                defs_.set_location(id, Location{file, function, line});
                break;
            }
            case uint8_t(Op3::Stack): {
                const uint64_t id = varint(other, other_end);
                const uint64_t parent = varint(other, other_end);
                const uint64_t location = varint(other, other_end);
                defs_.set_stack(id, StackNode{parent, location});
                break;
            }
            case uint8_t(Op3::ThreadName): {
                if (cur == nullptr) fail("a thread name before any THREAD record");
                defs_.set_thread_name(tid, varint(other, other_end));
                break;
            }
            default:
                fail("unknown op 0x%02llx", op);
        }
    }
    for (unsigned i = 1; i < kColumns; ++i) {
        const uint8_t* p = i == kSizes    ? sizes
                           : i == kStacks ? stacks
                           : i == kRefs   ? refs
                           : i == kAddrs  ? addrs
                           : i == kTimes  ? times
                                          : other;
        if (p != col_end[i])
            throw TraceError("stream payload: the " + std::string(kColumnName[i]) + " column has " +
                             std::to_string(col_end[i] - p) + " bytes left over");
    }
    t_ = t;
    a_ = a;
    next_seq_ = seq;
    flush(v, out, dirty);
}

}  // namespace pmt::detail
