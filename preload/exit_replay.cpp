// ExitReplay (exit_replay.hpp): decodes thread-events payloads (FORMAT.md, "Thread events
// chunk") straight into the live-byte accounting. Ordering follows the trace reader exactly:
// events are released at epochs in (time, tid, record order), so the peak is the analyzer's.
#include "exit_replay.hpp"

#include <algorithm>
#include <new>

#include "pmt/format.hpp"

namespace pmt::preload {

// --- LiveBlockTable --------------------------------------------------------------------------

LiveBlockTable::LiveBlockTable() : slots_(1024, Slot{0, 0}), shift_(64 - 10) {}

bool LiveBlockTable::insert(uint64_t addr, uint64_t size, uint64_t* replaced) {
    if (addr == 0) {
        bool was = zero_live_;
        *replaced = was ? zero_size_ : 0;
        zero_live_ = true;
        zero_size_ = size;
        return was;
    }
    size_t mask = slots_.size() - 1;
    for (size_t i = home(addr);; i = (i + 1) & mask) {
        Slot& s = slots_[i];
        if (s.addr == addr) {
            *replaced = s.size;
            s.size = size;
            return true;
        }
        if (s.addr == 0) {
            s = Slot{addr, size};
            if (++used_ * 2 > slots_.size()) grow();  // load at most 1/2: short probes
            *replaced = 0;
            return false;
        }
    }
}

bool LiveBlockTable::erase(uint64_t addr, uint64_t* size) {
    if (addr == 0) {
        if (!zero_live_) return false;
        zero_live_ = false;
        *size = zero_size_;
        return true;
    }
    size_t mask = slots_.size() - 1;
    size_t i = home(addr);
    while (slots_[i].addr != addr) {
        if (slots_[i].addr == 0) return false;
        i = (i + 1) & mask;
    }
    *size = slots_[i].size;
    // Backward-shift deletion: move later members of the probe run into the hole when the hole
    // lies on their way from their home slot, so no tombstones are needed.
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (slots_[j].addr == 0) break;
        size_t h = home(slots_[j].addr);
        bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
        if (movable) {
            slots_[i] = slots_[j];
            i = j;
        }
    }
    slots_[i] = Slot{0, 0};
    --used_;
    return true;
}

void LiveBlockTable::grow() {
    std::vector<Slot> old(slots_.size() * 2, Slot{0, 0});
    old.swap(slots_);
    --shift_;
    size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
        if (s.addr == 0) continue;
        size_t i = home(s.addr);
        while (slots_[i].addr != 0) i = (i + 1) & mask;
        slots_[i] = s;
    }
}

// --- decoding ----------------------------------------------------------------------------------

namespace {

// A bounds-checked cursor; a malformed varint or a field past the end sets bad and reads 0.
struct Cursor {
    const uint8_t* p;
    const uint8_t* end;
    bool bad = false;

    uint64_t varint() {
        if (__builtin_expect(end - p >= 10, 1)) {
            // 10 bytes left: no per-byte bound check (deltas and sizes take 1-3 bytes).
            uint64_t v = 0;
            for (unsigned shift = 0; shift < 63; shift += 7) {
                uint8_t b = *p++;
                v |= static_cast<uint64_t>(b & 0x7f) << shift;
                if (b < 0x80) return v;
            }
            uint8_t b = *p++;  // the 10th byte holds bit 63 only
            if (b <= 1) return v | static_cast<uint64_t>(b) << 63;
            bad = true;
            p = end;
            return 0;
        }
        return varint_slow();
    }
    uint64_t zvarint() {
        uint64_t u = varint();
        return (u >> 1) ^ (0 - (u & 1));
    }
    uint8_t u8() {
        if (p < end) return *p++;
        bad = true;
        return 0;
    }
    [[gnu::noinline]] uint64_t varint_slow() {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
            uint8_t b = *p++;
            if (shift == 63 && b > 1) break;
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (b < 0x80) return v;
        }
        bad = true;
        p = end;
        return 0;
    }
};

constexpr uint64_t kMaxKind = static_cast<uint64_t>(AllocKind::Pvalloc);

bool peek_tid(const PayloadRef& r, uint32_t* tid) {
    Cursor c{r.data, r.data + r.size};
    uint64_t v = c.varint();
    *tid = static_cast<uint32_t>(v);
    return !c.bad && v <= UINT32_MAX;
}

}  // namespace

// out(th, ev, map) receives each live-relevant event; map is the mmap-family event or null.
template <class Out>
bool ExitReplay::decode(const uint8_t* raw, size_t n, Thread*& th, Out&& out) {
    Cursor c{raw, raw + n};
    uint64_t tid = c.varint();
    uint64_t t = c.varint();
    if (c.bad || tid > UINT32_MAX) return false;
    th = &threads_[static_cast<uint32_t>(tid)];
    th->idle = 0;
    t = std::max(t, th->last_time);
    uint64_t a = 0;
    auto addr = [&c, &a] { return a += c.zvarint(); };
    while (c.p < c.end) {
        switch (static_cast<Op>(*c.p++)) {
            case Op::Alloc: {
                uint64_t kind = c.u8();
                t += c.varint();
                uint64_t at = addr();
                uint64_t size = c.varint();
                c.varint();  // stack
                if (kind > kMaxKind || size >= kMapMark) return false;
                ++events_;
                out(*th, Ev{t, at, size}, nullptr);
                break;
            }
            case Op::Free: {
                t += c.varint();
                uint64_t at = addr();
                ++events_;
                out(*th, Ev{t, at, kFreeMark}, nullptr);
                break;
            }
            case Op::Realloc: {
                uint64_t kind = c.u8();
                uint64_t t_before = t += c.varint();
                uint64_t t_after = t += c.varint();
                uint64_t old_addr = addr();
                uint64_t new_addr = addr();
                uint64_t size = c.varint();
                c.varint();  // stack
                if (kind > kMaxKind || size >= kMapMark) return false;
                if (old_addr != 0) {
                    ++events_;
                    out(*th, Ev{t_before, old_addr, kFreeMark}, nullptr);
                }
                if (new_addr != 0) {
                    ++events_;
                    out(*th, Ev{t_after, new_addr, size}, nullptr);
                }
                break;
            }
            case Op::Mmap: {
                Event e;
                e.type = EventType::Mmap;
                e.time_ns = t += c.varint();
                e.addr = addr();
                e.size = c.varint();
                e.prot = c.varint();
                e.flags = c.varint();
                e.fd = static_cast<int64_t>(c.zvarint());
                e.stack_id = c.varint();
                ++events_;
                out(*th, Ev{t, 0, kMapMark}, &e);
                break;
            }
            case Op::Munmap: {
                Event e;
                e.type = EventType::Munmap;
                e.time_ns = t += c.varint();
                e.addr = addr();
                e.size = c.varint();
                ++events_;
                out(*th, Ev{t, 0, kMapMark}, &e);
                break;
            }
            case Op::Mremap: {
                Event e;
                e.type = EventType::Mremap;
                t += c.varint();
                e.time_ns = t += c.varint();
                e.old_addr = addr();
                e.old_size = c.varint();
                e.addr = addr();
                e.size = c.varint();
                e.stack_id = c.varint();
                ++events_;
                out(*th, Ev{t, 0, kMapMark}, &e);
                break;
            }
            case Op::Rss:  // changes no live bytes: counted, never ordered
                t += c.varint();
                c.varint();
                ++events_;
                break;
            case Op::String: {
                c.varint();
                uint64_t len = c.varint();
                if (len > static_cast<uint64_t>(c.end - c.p)) return false;
                c.p += len;
                break;
            }
            case Op::Location:
                c.varint();
                for (int i = 0; i < 3; ++i)
                    if (c.varint() > UINT32_MAX) return false;
                break;
            case Op::Stack:
                c.varint();
                c.varint();
                c.varint();
                break;
            case Op::ThreadName:
                c.varint();
                break;
            default:
                return false;
        }
    }
    th->last_time = t;
    return !c.bad;
}

}  // namespace pmt::preload

// --- ordering and accounting --------------------------------------------------------------------

namespace pmt::preload {

void ExitReplay::enqueue(Thread& th, const Ev& e, const Event* map) {
    if (!map) {
        th.queue.push_back(e);
        return;
    }
    th.maps.push_back(*map);
    th.queue.push_back(Ev{e.t, th.maps.size() - 1, kMapMark});
}

// One event in the reader's order. The clamp mirrors the reader's (only a stream breaking the
// epoch promise needs it); the peak is checked after every event, as LiveHeap does.
inline void ExitReplay::apply(const Ev& e, const Event* map) {
    uint64_t time = e.t < last_time_ ? last_time_ : e.t;
    last_time_ = time;
    uint64_t old = 0;
    if (e.size < kMapMark) {
        if (blocks_.insert(e.addr, e.size, &old)) heap_live_ -= old;
        heap_live_ += e.size;
    } else if (e.size == kFreeMark) {
        if (blocks_.erase(e.addr, &old)) heap_live_ -= old;
        return;  // nothing grew
    } else {
        Event m = *map;
        m.time_ns = time;
        maps_.apply(m);
    }
    uint64_t live = heap_live_ + maps_.live_bytes();
    if (live > peak_bytes_) {
        peak_bytes_ = live;
        peak_time_ns_ = time;
    }
}

void ExitReplay::cycle(const PayloadRef* payloads, size_t n, uint64_t t) noexcept {
    if (failed_) return;
    try {
        run(payloads, n, t);
    } catch (...) {  // out of memory: the exit line says the peak is unknown
        failed_ = true;
    }
}

void ExitReplay::run(const PayloadRef* payloads, size_t n, uint64_t t) {
    // The thread with the largest payload is usually the only one with heap events (the
    // sampler's payloads hold rss records only): decode the others first, and if none of them
    // left anything to order, that thread's events before t are applied as they are decoded.
    size_t big = n;
    for (size_t i = 0; i < n; ++i)
        if (big == n || payloads[i].size > payloads[big].size) big = i;
    uint32_t big_tid = 0;
    if (n && !peek_tid(payloads[big], &big_tid)) {
        failed_ = true;
        return;
    }
    auto queue_out = [](Thread& th, const Ev& e, const Event* map) { enqueue(th, e, map); };
    for (size_t i = 0; i < n; ++i) {
        uint32_t tid = 0;
        if (!peek_tid(payloads[i], &tid)) failed_ = true;
        Thread* th = nullptr;
        if (!failed_ && tid != big_tid &&
            !decode(payloads[i].data, payloads[i].size, th, queue_out))
            failed_ = true;
        if (failed_) return;
    }
    bool alone = true;
    for (auto& [tid, th] : threads_)
        if (tid != big_tid && th.pending()) alone = false;

    if (alone && n) {
        Thread& th = threads_[big_tid];
        while (th.pending() && th.queue[th.head].t < t) {
            const Ev& e = th.queue[th.head++];
            apply(e, e.size == kMapMark ? &th.maps[e.addr] : nullptr);
        }
        bool hold = th.pending();  // its later events must wait behind the held ones
        auto direct_out = [this, t, &hold](Thread& q, const Ev& e, const Event* map) {
            if (!hold && e.t < t) {
                apply(e, map);
            } else {
                hold = true;
                enqueue(q, e, map);
            }
        };
        for (size_t i = 0; i < n; ++i) {
            uint32_t tid = 0;
            peek_tid(payloads[i], &tid);
            Thread* q = nullptr;
            if (tid == big_tid && !decode(payloads[i].data, payloads[i].size, q, direct_out)) {
                failed_ = true;
                return;
            }
        }
    } else {
        for (size_t i = 0; i < n; ++i) {
            uint32_t tid = 0;
            peek_tid(payloads[i], &tid);
            Thread* q = nullptr;
            if (tid == big_tid && !decode(payloads[i].data, payloads[i].size, q, queue_out)) {
                failed_ = true;
                return;
            }
        }
        merge_before(t);
    }
    compact();
}

// A k-way merge of the threads' queued prefixes before t, in (time, tid, record order).
void ExitReplay::merge_before(uint64_t t) {
    struct R {
        const Ev* p;
        const Ev* end;
        uint32_t tid;
        Thread* th;
        bool before(const R& o) const { return p->t != o.p->t ? p->t < o.p->t : tid < o.tid; }
    };
    std::vector<R> runs;
    for (auto& [tid, th] : threads_) {
        const Ev* b = th.queue.data() + th.head;
        const Ev* e = th.queue.data() + th.queue.size();
        const Ev* cut = std::partition_point(b, e, [t](const Ev& x) { return x.t < t; });
        if (cut != b) runs.push_back({b, cut, tid, &th});
        th.head += static_cast<size_t>(cut - b);
    }
    std::sort(runs.begin(), runs.end(), [](const R& a, const R& b) { return a.before(b); });
    while (!runs.empty()) {
        R& r = runs[0];
        // r goes on while it stays before the next run's front (ties: the smaller tid first).
        const Ev* stop = r.end;
        if (runs.size() > 1) {
            const R& next = runs[1];
            uint64_t nt = next.p->t;
            stop = r.p;
            if (r.tid < next.tid)
                while (stop < r.end && stop->t <= nt) ++stop;
            else
                while (stop < r.end && stop->t < nt) ++stop;
        }
        for (; r.p < stop; ++r.p)
            apply(*r.p, r.p->size == kMapMark ? &r.th->maps[r.p->addr] : nullptr);
        if (r.p == r.end) {
            runs.erase(runs.begin());
            continue;
        }
        for (size_t i = 0; i + 1 < runs.size() && runs[i + 1].before(runs[i]); ++i)
            std::swap(runs[i], runs[i + 1]);
    }
}

// Applied events are dropped. A thread stays known for its last time (the reader keeps every
// thread's), but one idle for a while gives its queue's memory back.
void ExitReplay::compact() {
    constexpr uint32_t kIdleCycles = 16;
    for (auto& [tid, th] : threads_) {
        if (th.head == th.queue.size()) {
            th.queue.clear();
            th.maps.clear();
            th.head = 0;
            if (++th.idle == kIdleCycles) {
                th.queue.shrink_to_fit();
                th.maps.shrink_to_fit();
            }
        } else if (th.head >= 4096 && th.head * 2 >= th.queue.size()) {
            th.queue.erase(th.queue.begin(), th.queue.begin() + static_cast<ptrdiff_t>(th.head));
            th.head = 0;
        }
    }
}

}  // namespace pmt::preload
