// EventMerger: decodes thread-events payloads (FORMAT.md, "Thread events chunk"), applies
// definitions as they arrive and releases events in global time order at epochs. Each thread's
// events are already time-ordered, so releasing is a k-way merge of per-thread queues.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "columns.hpp"
#include "id_table.hpp"
#include "pmt/reader.hpp"
#include "pmt/record_decoder.hpp"
#include "varint.hpp"

namespace pmt {

using detail::ByteCursor;
using detail::throw_format;
using detail::varint_len;

namespace {

// Per-thread queue of decoded events in record order; [head, size) not yet delivered.
struct ThreadQueue {
    uint32_t tid = 0;
    uint32_t idle = 0;  // releases since this thread last had a payload
    std::vector<Event> events;
    size_t head = 0;
};

// Every thread ever seen: its queue while it is active, and where its time stands.
struct ThreadSlot {
    static constexpr size_t kNoQueue = SIZE_MAX;
    size_t queue = kNoQueue;  // index into Impl::threads
    uint64_t last_time = 0;   // keeps a thread's times non-decreasing across its payloads
};

// An exited thread's empty queue is dropped after this many releases, so a release costs
// O(active threads), not O(threads ever seen) (programs that start a thread per task).
constexpr uint32_t kIdleReleases = 16;

}  // namespace

struct EventMerger::Impl {
    bool keep_definitions;
    std::vector<ThreadQueue> threads;
    std::unordered_map<uint32_t, ThreadSlot> thread_slots;
    size_t queued = 0;
    uint64_t delivered = 0;
    uint64_t last_time = 0;  // time of the last event delivered
    detail::Definitions defs;

    ThreadQueue& queue_for(uint32_t tid, ThreadSlot& slot) {
        if (slot.queue == ThreadSlot::kNoQueue) {
            slot.queue = threads.size();
            threads.emplace_back();
            threads.back().tid = tid;
        }
        ThreadQueue& q = threads[slot.queue];
        q.idle = 0;
        return q;
    }

    void compact();

    void decode(const uint8_t* raw, size_t n);
    void decode_columns(const uint8_t* cols, size_t n);
    std::vector<uint8_t> rebuilt;  // decode_columns' fallback: the records from_columns makes

    // Numbers [p, end) and hands it to the visitor, a few hundred events at a time: they are
    // still in the cache when the visitor reads them (a run can be a whole epoch, megabytes).
    void deliver(Event* p, Event* end, EventVisitor& v) {
        constexpr size_t kBatch = 256;
        while (p != end) {
            Event* stop = static_cast<size_t>(end - p) > kBatch ? p + kBatch : end;
            uint64_t last = last_time, seq = delivered;
            for (Event* e = p; e < stop; ++e) {
                // Only a writer breaking the epoch promise could make time go back here;
                // clamping keeps the stream's documented order for every consumer.
                if (e->time_ns < last) e->time_ns = last;
                last = e->time_ns;
                e->seq = seq++;
            }
            last_time = last;
            delivered = seq;
            v.on_events(p, static_cast<size_t>(stop - p));
            p = stop;
        }
    }
};

namespace {

// Queues a payload's events and applies its definitions (decode_records calls it per record).
// M is EventMerger::Impl (a template: the Impl is private to EventMerger).
template <class M>
struct QueueVisitor {
    M& m;
    std::vector<Event>& out;
    uint32_t tid;

    Event& push(EventType type, uint64_t t) {
        Event& e = out.emplace_back();
        e.type = type;
        e.tid = tid;
        e.time_ns = t;
        return e;
    }
    Next alloc(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack) {
        Event& e = push(EventType::Alloc, t);
        e.kind = kind;
        e.addr = addr;
        e.size = size;
        e.stack_id = stack;
        return Next::Go;
    }
    Next free(uint64_t t, uint64_t addr) {
        push(EventType::Free, t).addr = addr;
        return Next::Go;
    }
    Next realloc(AllocKind kind, uint64_t t_before, uint64_t t_after, uint64_t old_addr,
                 uint64_t new_addr, uint64_t size, uint64_t stack) {
        if (old_addr != 0) {
            Event& e = push(EventType::Free, t_before);
            e.kind = kind;
            e.addr = old_addr;
        }
        if (new_addr != 0) alloc(kind, t_after, new_addr, size, stack);
        return Next::Go;
    }
    Next mmap(uint64_t t, uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags, int64_t fd,
              uint64_t stack) {
        out.push_back(mmap_event(t, addr, length, prot, flags, fd, stack));
        out.back().tid = tid;
        return Next::Go;
    }
    Next munmap(uint64_t t, uint64_t addr, uint64_t length) {
        out.push_back(munmap_event(t, addr, length));
        out.back().tid = tid;
        return Next::Go;
    }
    Next mremap(uint64_t, uint64_t t_after, uint64_t old_addr, uint64_t old_length,
                uint64_t new_addr, uint64_t new_length, uint64_t stack) {
        out.push_back(mremap_event(t_after, old_addr, old_length, new_addr, new_length, stack));
        out.back().tid = tid;
        return Next::Go;
    }
    Next rss(uint64_t t, uint64_t bytes) {
        push(EventType::Rss, t).size = bytes;
        return Next::Go;
    }
    Next string(uint64_t id, const uint8_t* s, size_t len) {
        if (m.keep_definitions) m.defs.set_string(id, s, len);
        return Next::Go;
    }
    Next location(uint64_t id, uint32_t file, uint32_t function, uint32_t line) {
        if (m.keep_definitions) m.defs.set_location(id, Location{file, function, line});
        return Next::Go;
    }
    Next stack(uint64_t id, uint64_t parent, uint64_t location) {
        if (m.keep_definitions) m.defs.set_stack(id, StackNode{parent, location});
        return Next::Go;
    }
    Next thread_name(uint64_t id) {
        if (m.keep_definitions) m.defs.set_thread_name(tid, id);
        return Next::Go;
    }
};

}  // namespace

void EventMerger::Impl::decode(const uint8_t* raw, size_t n) {
    ByteCursor c{raw, raw + n};
    uint32_t tid = detail::checked_u32(c.varint(), "thread id out of range");
    uint64_t t = c.varint();
    ThreadSlot& slot = thread_slots[tid];  // node-based map: the reference stays valid
    ThreadQueue& q = queue_for(tid, slot);
    t = std::max(t, slot.last_time);
    std::vector<Event>& out = q.events;
    size_t before = out.size();
    // A record is at least 2 bytes; reserving for that bounds growth by the payload size.
    // Geometric growth: many payloads of one thread per epoch must not copy quadratically.
    if (out.capacity() < before + n / 4) out.reserve(std::max(before + n / 4, 2 * out.capacity()));
    QueueVisitor<Impl> v{*this, out, tid};
    slot.last_time = decode_records(c.p, c.end, t, 0, v).t;
    queued += out.size() - before;
}

namespace {

// A varint of a column at p (bounds and overlong checked as ByteCursor does). `longer` counts
// the bytes the column spends beyond the shortest form, which from_columns would not rebuild.
[[gnu::always_inline]] inline uint64_t column_varint(const uint8_t*& p, const uint8_t* end,
                                                     uint64_t& longer) {
    return detail::column_varint(p, end, &longer);
}

}  // namespace

// The column form (FORMAT.md, "Column form") decoded straight into the thread's queue: the
// events and definitions decode(from_columns(cols)) would give, without the records in
// between. It checks what from_columns and the record decoder check; the length of the records
// from_columns would rebuild is counted from the column lengths (every column must be used up)
// plus the time fields' re-encoded lengths, less the bytes of varints not in shortest form. On
// any malformation it drops what it queued and leaves the verdict and its message to that
// record path.
void EventMerger::Impl::decode_columns(const uint8_t* cols, size_t n) {
    using detail::checked_u32;
    using detail::unzigzag;
    ThreadQueue* queue = nullptr;
    size_t before = 0;
    try {
        detail::ByteCursor head{cols, cols + n};
        const unsigned shift = head.u8();
        if (shift > 40) throw_format("column form: time resolution over 2^40 ns");
        const uint64_t len = head.varint();
        if (len > kMaxChunkPayload) throw_format("column form: payload length over 64 MiB");
        uint64_t col_len[ColumnBuilder::kColumns];
        for (auto& l : col_len) l = head.varint();
        const uint8_t* col[ColumnBuilder::kColumns];
        uint64_t rebuilt_len = 0;  // of every column but the times, used up exactly
        for (size_t i = 0; i < ColumnBuilder::kColumns; ++i) {
            col[i] = head.bytes(col_len[i]);
            if (i != ColumnBuilder::kTimes) rebuilt_len += col_len[i];
        }
        if (!head.at_end()) throw_format("column form: bytes after the last column");
        const uint8_t *ops = col[ColumnBuilder::kOps], *kinds = col[ColumnBuilder::kKinds],
                      *times = col[ColumnBuilder::kTimes], *addrs = col[ColumnBuilder::kAddrs],
                      *sizes = col[ColumnBuilder::kSizes], *stack_ids = col[ColumnBuilder::kStacks],
                      *other = col[ColumnBuilder::kOther];
        const uint8_t* const ops_end = ops + col_len[ColumnBuilder::kOps];
        const uint8_t* const kinds_end = kinds + col_len[ColumnBuilder::kKinds];
        const uint8_t* const times_end = times + col_len[ColumnBuilder::kTimes];
        const uint8_t* const addrs_end = addrs + col_len[ColumnBuilder::kAddrs];
        const uint8_t* const sizes_end = sizes + col_len[ColumnBuilder::kSizes];
        const uint8_t* const stacks_end = stack_ids + col_len[ColumnBuilder::kStacks];
        const uint8_t* const other_end = other + col_len[ColumnBuilder::kOther];
        const uint64_t max_units = UINT64_MAX >> shift;
        uint64_t longer = 0, times_longer = 0;  // times_longer: unused (times are re-encoded)
        uint64_t time_len = 0;                  // the time fields as from_columns writes them
        // A time delta of one byte, re-encoded in ns, takes time_len_of[delta] bytes.
        uint8_t time_len_of[128];
        for (uint64_t d = 0; d < 128; ++d)
            time_len_of[d] = static_cast<uint8_t>(varint_len(d << shift));

        const uint64_t tid64 = column_varint(other, other_end, longer);
        const uint64_t base = column_varint(other, other_end, longer);
        if (base > max_units) throw_format("column form: time out of range");
        rebuilt_len += varint_len(base << shift) - varint_len(base);
        const uint32_t tid = checked_u32(tid64, "thread id out of range");
        ThreadSlot& slot = thread_slots[tid];  // node-based map: the reference stays valid
        ThreadQueue& q = queue_for(tid, slot);
        queue = &q;
        std::vector<Event>& out = q.events;
        before = out.size();
        // Reserved as decode() reserves for the records this rebuilds (len bytes), so the queue
        // grows at the same points and the reader's peak memory stays what it was.
        const size_t want = before + static_cast<size_t>(len / 4);
        if (out.capacity() < want) out.reserve(std::max(want, 2 * out.capacity()));
        uint64_t t = std::max(base << shift, slot.last_time);
        uint64_t a = 0;

        auto dt = [&]() __attribute__((always_inline)) {
            uint64_t d = column_varint(times, times_end, times_longer);
            if (__builtin_expect(d < 128, 1)) {
                time_len += time_len_of[d];
            } else {
                if (d > max_units) throw_format("column form: time delta out of range");
                time_len += varint_len(d << shift);
            }
            return d << shift;
        };
        auto kind = [&]() __attribute__((always_inline)) {
            if (kinds >= kinds_end) throw_format("record runs past the end of its payload");
            return detail::checked_alloc_kind(*kinds++);
        };
        auto addr = [&]() __attribute__((always_inline)) {
            return a += static_cast<uint64_t>(unzigzag(column_varint(addrs, addrs_end, longer)));
        };
        auto size = [&]() __attribute__((always_inline)) {
            return column_varint(sizes, sizes_end, longer);
        };
        auto stack = [&]() __attribute__((always_inline)) {
            return column_varint(stack_ids, stacks_end, longer);
        };
        auto field = [&]() __attribute__((always_inline)) {
            return column_varint(other, other_end, longer);
        };
        auto push = [&out, tid](EventType type, uint64_t time) -> Event& {
            Event& e = out.emplace_back();
            e.type = type;
            e.tid = tid;
            e.time_ns = time;
            return e;
        };

        while (ops < ops_end) {
            const uint8_t op = *ops++;
            switch (static_cast<Op>(op)) {
                case Op::Alloc: {
                    const AllocKind k = kind();
                    t += dt();
                    const uint64_t at = addr();
                    const uint64_t bytes = size();
                    const uint64_t stack_id = stack();
                    Event& e = push(EventType::Alloc, t);
                    e.kind = k;
                    e.addr = at;
                    e.size = bytes;
                    e.stack_id = stack_id;
                    break;
                }
                case Op::Free: {
                    t += dt();
                    const uint64_t at = addr();
                    push(EventType::Free, t).addr = at;
                    break;
                }
                case Op::Realloc: {
                    const AllocKind k = kind();
                    const uint64_t t_before = t += dt();
                    const uint64_t t_after = t += dt();
                    const uint64_t old_addr = addr();
                    const uint64_t new_addr = addr();
                    const uint64_t bytes = size();
                    const uint64_t stack_id = stack();
                    if (old_addr != 0) {
                        Event& e = push(EventType::Free, t_before);
                        e.kind = k;
                        e.addr = old_addr;
                    }
                    if (new_addr != 0) {
                        Event& e = push(EventType::Alloc, t_after);
                        e.kind = k;
                        e.addr = new_addr;
                        e.size = bytes;
                        e.stack_id = stack_id;
                    }
                    break;
                }
                case Op::Mmap: {
                    t += dt();
                    const uint64_t at = addr();
                    const uint64_t length = size();
                    const uint64_t prot = field();
                    const uint64_t flags = field();
                    const int64_t fd = unzigzag(field());
                    const uint64_t stack_id = stack();
                    out.push_back(mmap_event(t, at, length, prot, flags, fd, stack_id));
                    out.back().tid = tid;
                    break;
                }
                case Op::Munmap: {
                    t += dt();
                    const uint64_t at = addr();
                    const uint64_t length = size();
                    out.push_back(munmap_event(t, at, length));
                    out.back().tid = tid;
                    break;
                }
                case Op::Mremap: {
                    t += dt();
                    const uint64_t t_after = t += dt();
                    const uint64_t old_addr = addr();
                    const uint64_t old_length = size();
                    const uint64_t new_addr = addr();
                    const uint64_t new_length = size();
                    const uint64_t stack_id = stack();
                    out.push_back(mremap_event(t_after, old_addr, old_length, new_addr, new_length,
                                               stack_id));
                    out.back().tid = tid;
                    break;
                }
                case Op::Rss: {
                    t += dt();
                    const uint64_t bytes = field();
                    push(EventType::Rss, t).size = bytes;
                    break;
                }
                case Op::String: {
                    const uint64_t id = field();
                    const uint64_t slen = field();
                    if (slen > static_cast<uint64_t>(other_end - other))
                        throw_format("length runs past the end of its payload");
                    const uint8_t* str = other;
                    other += slen;
                    if (keep_definitions) defs.set_string(id, str, slen);
                    break;
                }
                case Op::Location: {
                    const uint64_t id = field();
                    const uint32_t file = checked_u32(field(), "location's file id out of range");
                    const uint32_t function =
                        checked_u32(field(), "location's function id out of range");
                    const uint32_t line = checked_u32(field(), "location's line out of range");
                    if (keep_definitions) defs.set_location(id, Location{file, function, line});
                    break;
                }
                case Op::Stack: {
                    const uint64_t id = field();
                    const uint64_t parent = field();
                    const uint64_t location = field();
                    if (keep_definitions) defs.set_stack(id, StackNode{parent, location});
                    break;
                }
                case Op::ThreadName: {
                    const uint64_t id = field();
                    if (keep_definitions) defs.set_thread_name(tid, id);
                    break;
                }
                default:
                    throw_format("column form: unknown opcode");
            }
        }
        if (rebuilt_len - longer + time_len != len)
            throw_format("column form: records do not add up to the declared length");
        if (kinds != kinds_end || times != times_end || addrs != addrs_end || sizes != sizes_end ||
            stack_ids != stacks_end || other != other_end)
            throw_format("column form: a column has bytes left over");
        slot.last_time = t;
        queued += out.size() - before;
    } catch (const TraceError&) {
        // The verdict and its message are the record path's: rebuild and decode the records.
        if (queue) queue->events.resize(before);
        detail::from_columns(cols, n, rebuilt);
        decode(rebuilt.data(), rebuilt.size());
    }
}

void EventMerger::add_thread_columns(const uint8_t* cols, size_t n) {
    impl_->decode_columns(cols, n);
}

EventMerger::EventMerger(bool keep_definitions) : impl_(std::make_unique<Impl>()) {
    impl_->keep_definitions = keep_definitions;
}
EventMerger::~EventMerger() = default;

void EventMerger::add_thread_payload(const uint8_t* raw, size_t n) { impl_->decode(raw, n); }

namespace {

// The undelivered events of one thread with time < t: [p, end), sorted by time.
struct Run {
    Event* p;
    Event* end;
    uint32_t tid;
    bool before(const Run& o) const {
        return p->time_ns != o.p->time_ns ? p->time_ns < o.p->time_ns : tid < o.tid;
    }
};

// How far `r` may go before `next` has to take over: events earlier than next's front, or at
// the same time when r's tid is smaller.
Event* run_limit(const Run& r, const Run& next) {
    uint64_t nt = next.p->time_ns;
    Event* q = r.p;
    if (r.tid < next.tid)
        while (q < r.end && q->time_ns <= nt) ++q;
    else
        while (q < r.end && q->time_ns < nt) ++q;
    return q;
}

}  // namespace

void EventMerger::release_before(uint64_t t, EventVisitor& v) {
    Impl& m = *impl_;
    std::vector<ThreadQueue>& threads = m.threads;
    std::vector<Run> runs;
    runs.reserve(threads.size());
    for (ThreadQueue& q : threads) {
        Event* b = q.events.data() + q.head;
        Event* e = q.events.data() + q.events.size();
        // Times within a queue never decrease: the events before t are a prefix.
        Event* cut = std::partition_point(b, e, [t](const Event& x) { return x.time_ns < t; });
        if (cut != b) runs.push_back({b, cut, q.tid});
        m.queued -= static_cast<size_t>(cut - b);
        q.head += static_cast<size_t>(cut - b);
    }

    // Few runs (the usual case: a handful of threads): keep them sorted by their front and
    // move the one just advanced back into place, which beats a heap's bookkeeping.
    if (runs.size() <= 8) {
        std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.before(b); });
        while (!runs.empty()) {
            Run& r = runs[0];
            Event* stop = runs.size() > 1 ? run_limit(r, runs[1]) : r.end;
            m.deliver(r.p, stop, v);
            r.p = stop;
            if (r.p == r.end) {
                runs.erase(runs.begin());
                continue;
            }
            for (size_t i = 0; i + 1 < runs.size() && runs[i + 1].before(runs[i]); ++i)
                std::swap(runs[i], runs[i + 1]);
        }
    } else {
        auto after = [](const Run& a, const Run& b) { return b.before(a); };
        std::make_heap(runs.begin(), runs.end(), after);
        while (!runs.empty()) {
            std::pop_heap(runs.begin(), runs.end(), after);
            Run& r = runs.back();
            Event* stop = runs.size() > 1 ? run_limit(r, runs.front()) : r.end;
            m.deliver(r.p, stop, v);
            r.p = stop;
            if (r.p == r.end)
                runs.pop_back();
            else
                std::push_heap(runs.begin(), runs.end(), after);
        }
    }

    m.compact();
}

void EventMerger::Impl::compact() {
    for (size_t i = threads.size(); i-- > 0;) {
        ThreadQueue& q = threads[i];
        if (q.head == q.events.size()) {
            q.events.clear();
            q.head = 0;
            if (++q.idle > kIdleReleases) {
                thread_slots[q.tid].queue = ThreadSlot::kNoQueue;
                if (i + 1 != threads.size()) {
                    q = std::move(threads.back());
                    thread_slots[q.tid].queue = i;
                }
                threads.pop_back();
            }
        } else if (q.head >= 4096 && q.head * 2 >= q.events.size()) {
            q.events.erase(q.events.begin(), q.events.begin() + static_cast<ptrdiff_t>(q.head));
            q.head = 0;
        }
    }
}

size_t EventMerger::queued() const { return impl_->queued; }
uint64_t EventMerger::delivered() const { return impl_->delivered; }
uint64_t EventMerger::last_time_ns() const { return impl_->last_time; }

std::string_view EventMerger::string(uint64_t id) const { return impl_->defs.string(id); }
const Location* EventMerger::location(uint64_t id) const { return impl_->defs.location(id); }
const StackNode* EventMerger::stack(uint64_t id) const { return impl_->defs.stack(id); }
std::string_view EventMerger::thread_name(uint32_t tid) const {
    return impl_->defs.thread_name(tid);
}

}  // namespace pmt
