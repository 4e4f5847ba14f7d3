// EventMerger: decodes thread-events payloads (FORMAT.md, "Thread events chunk"), applies
// definitions as they arrive and releases events in global time order at epochs. Each thread's
// events are already time-ordered, so releasing is a k-way merge of per-thread queues.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "id_table.hpp"
#include "pmt/reader.hpp"
#include "varint.hpp"

namespace pmt {

using detail::ByteCursor;
using detail::IdTable;
using detail::throw_format;

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

// Strings live in fixed blocks so the string_views handed out stay valid as tables grow.
class StringArena {
public:
    std::string_view store(const uint8_t* p, size_t n) {
        if (n > kBlock / 4) {
            big_.emplace_back(new char[n]);
            std::memcpy(big_.back().get(), p, n);
            return {big_.back().get(), n};
        }
        if (blocks_.empty() || used_ + n > kBlock) {
            blocks_.emplace_back(new char[kBlock]);
            used_ = 0;
        }
        char* dst = blocks_.back().get() + used_;
        if (n) std::memcpy(dst, p, n);
        used_ += n;
        return {dst, n};
    }

private:
    static constexpr size_t kBlock = 64 * 1024;
    std::vector<std::unique_ptr<char[]>> blocks_;
    std::vector<std::unique_ptr<char[]>> big_;
    size_t used_ = 0;
};

uint32_t narrow32(uint64_t v, const char* what) {
    if (v > UINT32_MAX) throw_format(what);
    return static_cast<uint32_t>(v);
}

AllocKind alloc_kind(uint8_t k) {
    if (k > static_cast<uint8_t>(AllocKind::Pvalloc)) throw_format("unknown allocation kind");
    return static_cast<AllocKind>(k);
}

}  // namespace

struct EventMerger::Impl {
    bool keep_definitions;
    std::vector<ThreadQueue> threads;
    std::unordered_map<uint32_t, ThreadSlot> thread_slots;
    size_t queued = 0;
    uint64_t delivered = 0;
    uint64_t last_time = 0;  // time of the last event delivered
    StringArena arena;
    IdTable<std::string_view> strings;
    IdTable<Location> locations;
    IdTable<StackNode> stacks;
    std::unordered_map<uint32_t, uint64_t> thread_names;  // tid -> string id

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

    // Numbers [p, end) and hands it to the visitor in one call.
    void deliver(Event* p, Event* end, EventVisitor& v) {
        if (p == end) return;
        uint64_t last = last_time, seq = delivered;
        for (Event* e = p; e < end; ++e) {
            // Only a writer breaking the epoch promise could make time go back here; clamping
            // keeps the stream's documented order for every consumer.
            if (e->time_ns < last) e->time_ns = last;
            last = e->time_ns;
            e->seq = seq++;
        }
        last_time = last;
        delivered = seq;
        v.on_events(p, static_cast<size_t>(end - p));
    }
};

void EventMerger::Impl::decode(const uint8_t* raw, size_t n) {
    ByteCursor c{raw, raw + n};
    uint32_t tid = narrow32(c.varint(), "thread id out of range");
    uint64_t t = c.varint();
    ThreadSlot& slot = thread_slots[tid];  // node-based map: the reference stays valid
    ThreadQueue& q = queue_for(tid, slot);
    t = std::max(t, slot.last_time);
    uint64_t a = 0;
    std::vector<Event>& out = q.events;
    size_t before = out.size();
    // A record is at least 2 bytes; reserving for that bounds growth by the payload size.
    // Geometric growth: many payloads of one thread per epoch must not copy quadratically.
    if (out.capacity() < before + n / 4) out.reserve(std::max(before + n / 4, 2 * out.capacity()));
    auto addr = [&c, &a] { return a += static_cast<uint64_t>(c.zvarint()); };

    while (!c.at_end()) {
        uint8_t op = *c.p++;
        switch (static_cast<Op>(op)) {
            case Op::Alloc: {
                Event& e = out.emplace_back();
                e.kind = alloc_kind(c.u8());
                e.tid = tid;
                e.time_ns = t += c.varint();
                e.addr = addr();
                e.size = c.varint();
                e.stack_id = c.varint();
                break;
            }
            case Op::Free: {
                Event& e = out.emplace_back();
                e.type = EventType::Free;
                e.tid = tid;
                e.time_ns = t += c.varint();
                e.addr = addr();
                break;
            }
            case Op::Realloc: {
                AllocKind kind = alloc_kind(c.u8());
                uint64_t t_before = t += c.varint();
                uint64_t t_after = t += c.varint();
                uint64_t old_addr = addr();
                uint64_t new_addr = addr();
                uint64_t size = c.varint();
                uint64_t stack = c.varint();
                if (old_addr != 0) {
                    Event& e = out.emplace_back();
                    e.type = EventType::Free;
                    e.kind = kind;
                    e.tid = tid;
                    e.time_ns = t_before;
                    e.addr = old_addr;
                }
                if (new_addr != 0) {
                    Event& e = out.emplace_back();
                    e.kind = kind;
                    e.tid = tid;
                    e.time_ns = t_after;
                    e.addr = new_addr;
                    e.size = size;
                    e.stack_id = stack;
                }
                break;
            }
            case Op::Mmap: {
                Event& e = out.emplace_back();
                e.type = EventType::Mmap;
                e.tid = tid;
                e.time_ns = t += c.varint();
                e.addr = addr();
                e.size = c.varint();
                e.prot = c.varint();
                e.flags = c.varint();
                e.fd = c.zvarint();
                e.stack_id = c.varint();
                break;
            }
            case Op::Munmap: {
                Event& e = out.emplace_back();
                e.type = EventType::Munmap;
                e.tid = tid;
                e.time_ns = t += c.varint();
                e.addr = addr();
                e.size = c.varint();
                break;
            }
            case Op::Mremap: {
                Event& e = out.emplace_back();
                e.type = EventType::Mremap;
                e.tid = tid;
                t += c.varint();
                e.time_ns = t += c.varint();
                e.old_addr = addr();
                e.old_size = c.varint();
                e.addr = addr();
                e.size = c.varint();
                e.stack_id = c.varint();
                break;
            }
            case Op::Rss: {
                Event& e = out.emplace_back();
                e.type = EventType::Rss;
                e.tid = tid;
                e.time_ns = t += c.varint();
                e.size = c.varint();
                break;
            }
            case Op::String: {
                uint64_t id = c.varint();
                uint64_t len = c.varint();
                const uint8_t* s = c.bytes(len);
                if (keep_definitions) strings.set(id, arena.store(s, len));
                break;
            }
            case Op::Location: {
                uint64_t id = c.varint();
                Location l;
                l.file = narrow32(c.varint(), "location's file id out of range");
                l.function = narrow32(c.varint(), "location's function id out of range");
                l.line = narrow32(c.varint(), "location's line out of range");
                if (keep_definitions) locations.set(id, l);
                break;
            }
            case Op::Stack: {
                uint64_t id = c.varint();
                StackNode s;
                s.parent = c.varint();
                s.location = c.varint();
                if (keep_definitions) stacks.set(id, s);
                break;
            }
            case Op::ThreadName: {
                uint64_t id = c.varint();
                if (keep_definitions) thread_names[tid] = id;
                break;
            }
            default: {
                char msg[64];
                std::snprintf(msg, sizeof msg, "unknown record opcode %u", op);
                throw TraceError(msg);
            }
        }
    }
    slot.last_time = t;
    queued += out.size() - before;
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

std::string_view EventMerger::string(uint64_t id) const {
    const std::string_view* s = impl_->strings.get(id);
    return s ? *s : std::string_view();
}
const Location* EventMerger::location(uint64_t id) const { return impl_->locations.get(id); }
const StackNode* EventMerger::stack(uint64_t id) const {
    return id ? impl_->stacks.get(id) : nullptr;
}
std::string_view EventMerger::thread_name(uint32_t tid) const {
    auto it = impl_->thread_names.find(tid);
    return it == impl_->thread_names.end() ? std::string_view() : string(it->second);
}

}  // namespace pmt
