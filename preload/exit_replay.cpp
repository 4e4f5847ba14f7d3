// The writer's cycle (see exit_replay.hpp): decode, re-time, write in column form, replay.
// Events are ordered as the trace reader would order the nanosecond times (time, tid, record
// order, events timed >= the cycle's clock reading held to the next cycle); each gets a time
// unit t' >= its clock reading >> k, never below the last Epoch, non-decreasing in that
// order and strictly increasing where the thread changes, so the reader's (t', tid) order is
// this order (FORMAT.md, "Event times").
#include "exit_replay.hpp"

#include <algorithm>
#include <new>

#include "pmt/encoder.hpp"
#include "pmt/record_decoder.hpp"

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

// --- decoding -----------------------------------------------------------------------------------

// The second half of a realloc whose free is timed before the cut and whose new block after
// it: written next cycle as realloc(NULL) (FORMAT.md: old = 0), the free as returning NULL.
struct Split {
    AllocKind kind;
    uint64_t t, addr, size, stack;
};

// Re-encodes held records into a fresh raw payload (absolute tid, base time and addresses).
struct HoldVisitor {
    RecordEncoder& enc;
    static Next ok(bool fit) {
        if (!fit) throw std::bad_alloc();  // sized for the records: cannot happen
        return Next::Go;
    }
    Next alloc(AllocKind k, uint64_t t, uint64_t a, uint64_t s, uint64_t st) {
        return ok(enc.alloc(k, t, a, s, st));
    }
    Next free(uint64_t t, uint64_t a) { return ok(enc.free(t, a)); }
    Next realloc(AllocKind k, uint64_t tb, uint64_t ta, uint64_t o, uint64_t n, uint64_t s,
                 uint64_t st) {
        return ok(enc.realloc(k, tb, ta, o, n, s, st));
    }
    Next mmap(uint64_t t, uint64_t a, uint64_t l, uint64_t p, uint64_t f, int64_t fd, uint64_t st) {
        return ok(enc.mmap(t, a, l, p, f, fd, st));
    }
    Next munmap(uint64_t t, uint64_t a, uint64_t l) { return ok(enc.munmap(t, a, l)); }
    Next mremap(uint64_t tb, uint64_t ta, uint64_t o, uint64_t ol, uint64_t n, uint64_t nl,
                uint64_t st) {
        return ok(enc.mremap(tb, ta, o, ol, n, nl, st));
    }
    Next rss(uint64_t t, uint64_t b) { return ok(enc.rss(t, b)); }
    Next string(uint64_t id, const uint8_t* s, size_t n) {
        return ok(enc.string(id, reinterpret_cast<const char*>(s), n));
    }
    Next location(uint64_t id, uint32_t f, uint32_t fn, uint32_t l) {
        return ok(enc.location(id, f, fn, l));
    }
    Next stack(uint64_t id, uint64_t p, uint64_t l) { return ok(enc.stack(id, p, l)); }
    Next thread_name(uint64_t id) { return ok(enc.thread_name(id)); }
};

// Builds the columns of the records timed before the cut, collects their times and replay
// events; stops at the first record with an event at or after the cut. Direct: the events
// are replayed as they are decoded (no other thread has any in this cycle).
template <bool Direct>
struct WriterCycle::Visitor {
    WriterCycle& w;
    Thread& th;
    ColumnBuilder& cols;
    uint64_t cut;
    Split split{};
    bool did_split = false;

    // The last time field's index.
    uint64_t tf() const { return static_cast<uint64_t>(cols.times_end() - th.time.data()) - 1; }
    [[gnu::always_inline]] void out(uint64_t tf, uint64_t addr, uint64_t size,
                                    const Event* map = nullptr) {
        ++w.events_;
        if constexpr (Direct) {
            // The common pair inline: an alloc whose address is not live becomes pending,
            // and the free of the pending block takes it back (apply_direct has the rest).
            if (size == kFreeMark && w.pending_ && addr == w.pending_addr_) {
                w.pending_ = false;  // the block the last alloc made: never entered blocks_
                w.heap_live_ -= w.pending_size_;
                return;
            }
            if (size < kMapMark && addr != 0 && !w.pending_) {
                bool live;
                size_t slot = w.blocks_.find(addr, &live);
                if (!live) {
                    w.pending_ = true;
                    w.pending_slot_ = slot;
                    w.pending_addr_ = addr;
                    w.pending_size_ = size;
                    w.heap_live_ += size;
                    uint64_t live_bytes = w.heap_live_ + w.maps_.live_bytes();
                    if (live_bytes > w.peak_bytes_) {
                        w.peak_bytes_ = live_bytes;
                        w.peak_th_ = static_cast<size_t>(&th - w.threads_.data());
                        w.peak_tf_ = tf;
                    }
                    return;
                }
            }
            w.apply_direct(th, Ev{tf, addr, size}, map);
        } else {
            Ev e{tf, addr, size};
            if (map) {
                th.maps.push_back(*map);
                e.addr = th.maps.size() - 1;
            }
            th.ev.push_back(e);
        }
    }

    Next alloc(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack) {
        if (t >= cut) return Next::StopBefore;
        cols.alloc(kind, t, addr, size, stack);
        out(tf(), addr, size);
        return Next::Go;
    }
    Next free(uint64_t t, uint64_t addr) {
        if (t >= cut) return Next::StopBefore;
        cols.free(t, addr);
        out(tf(), addr, kFreeMark);
        return Next::Go;
    }
    Next realloc(AllocKind kind, uint64_t tb, uint64_t ta, uint64_t old_addr, uint64_t new_addr,
                 uint64_t size, uint64_t stack) {
        uint64_t first = old_addr != 0 || new_addr == 0 ? tb : ta;
        if (first >= cut) return Next::StopBefore;
        if (old_addr != 0 && new_addr != 0 && ta >= cut) {
            cols.realloc(kind, tb, tb, old_addr, 0, 0, stack);
            out(tf() - 1, old_addr, kFreeMark);
            split = Split{kind, ta, new_addr, size, stack};
            did_split = true;
            return Next::StopAfter;
        }
        cols.realloc(kind, tb, ta, old_addr, new_addr, size, stack);
        if (old_addr != 0) out(tf() - 1, old_addr, kFreeMark);
        if (new_addr != 0) out(tf(), new_addr, size);
        return Next::Go;
    }
    Next mmap(uint64_t t, uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags, int64_t fd,
              uint64_t stack) {
        if (t >= cut) return Next::StopBefore;
        cols.mmap(t, addr, length, prot, flags, fd, stack);
        Event e = mmap_event(t, addr, length, prot, flags, fd, stack);
        out(tf(), 0, kMapMark, &e);
        return Next::Go;
    }
    Next munmap(uint64_t t, uint64_t addr, uint64_t length) {
        if (t >= cut) return Next::StopBefore;
        cols.munmap(t, addr, length);
        Event e = munmap_event(t, addr, length);
        out(tf(), 0, kMapMark, &e);
        return Next::Go;
    }
    Next mremap(uint64_t tb, uint64_t ta, uint64_t old_addr, uint64_t old_length, uint64_t new_addr,
                uint64_t new_length, uint64_t stack) {
        if (ta >= cut) return Next::StopBefore;  // one event, at t_after
        cols.mremap(tb, ta, old_addr, old_length, new_addr, new_length, stack);
        Event e = mremap_event(ta, old_addr, old_length, new_addr, new_length, stack);
        out(tf(), 0, kMapMark, &e);
        return Next::Go;
    }
    Next rss(uint64_t t, uint64_t bytes) {
        if (t >= cut) return Next::StopBefore;
        cols.rss(t, bytes);
        ++w.events_;
        return Next::Go;
    }
    Next string(uint64_t id, const uint8_t* s, size_t n) { return cols.string(id, s, n); }
    Next location(uint64_t id, uint32_t f, uint32_t fn, uint32_t l) {
        return cols.location(id, f, fn, l);
    }
    Next stack(uint64_t id, uint64_t p, uint64_t l) { return cols.stack(id, p, l); }
    Next thread_name(uint64_t id) { return cols.thread_name(id); }
};

WriterCycle::WriterCycle(unsigned shift) : shift_(shift) {}
WriterCycle::~WriterCycle() = default;

// Records [p, end) of thread tid (running time t, address a), and first the second half of a
// split realloc, become a raw payload of their own for the next cycle.
void WriterCycle::hold(const uint8_t* p, const uint8_t* end, uint64_t t, uint64_t a, uint32_t tid,
                       const Split* split) {
    std::vector<uint8_t>& buf = held_next_.emplace_back();
    // Re-encoding makes no field longer except the first address (absolute now).
    buf.resize(static_cast<size_t>(end - p) + 2 * kMaxRecordBytes + 32);
    RecordEncoder enc;
    enc.reset(buf.data(), buf.size(), tid, split ? split->t : t, 0);
    HoldVisitor v{enc};
    if (split)
        v.realloc(split->kind, split->t, split->t, 0, split->addr, split->size, split->stack);
    decode_records(p, end, t, a, v);
    buf.resize(enc.size());
}

template <bool Direct>
void WriterCycle::decode(const PayloadRef& r, Thread& th, uint64_t cut) {
    detail::ByteCursor c{r.data, r.data + r.size};
    c.varint();                                        // tid, read by run
    uint64_t base = std::max(c.varint(), th.last_ns);  // as the reader reads it
    if (th.stopped) {  // after a held record every later one is held too
        held_next_.emplace_back(r.data, r.data + r.size);
        return;
    }
    if (segs_.size() == builders_.size()) builders_.push_back(std::make_unique<ColumnBuilder>());
    ColumnBuilder& cols = *builders_[segs_.size()];
    size_t t_begin = th.time.size();
    cols.begin(r.size, th.time.room(r.size + 2));
    Visitor<Direct> v{*this, th, cols, cut};
    RecordPosition at = decode_records(c.p, c.end, base, 0, v);
    th.time.grow_to(cols.times_end());
    if constexpr (Direct) settle_pending();
    th.last_ns = at.t;
    segs_.push_back(
        Seg{static_cast<size_t>(&th - threads_.data()), t_begin, th.time.size(), &cols});
    if (at.stopped) {
        th.stopped = true;
        hold(at.p, c.end, at.t, at.a, th.tid, v.did_split ? &v.split : nullptr);
    }
}

// --- ordering and accounting --------------------------------------------------------------------

// One event in the reader's order, at time unit `units`; the peak is checked after every event,
// as LiveHeap does.
inline void WriterCycle::apply(const Ev& e, const Event* map, uint64_t units) {
    uint64_t old = 0;
    if (e.size < kMapMark) {
        if (blocks_.insert(e.addr, e.size, &old)) heap_live_ -= old;
        heap_live_ += e.size;
    } else if (e.size == kFreeMark) {
        if (blocks_.erase(e.addr, &old)) heap_live_ -= old;
        return;  // nothing grew
    } else {
        maps_.apply(*map);
    }
    uint64_t live = heap_live_ + maps_.live_bytes();
    if (live > peak_bytes_) {
        peak_bytes_ = live;
        peak_time_ns_ = units << shift_;
    }
}

// The same while decoding, before the event has its time: the peak keeps its time field.
// A new block is held as pending (counted, not in blocks_) until the thread's next event:
// when that frees it (99% of regex's events; Visitor::out checks), the table is not touched
// again.
[[gnu::noinline]] void WriterCycle::apply_direct(Thread& th, const Ev& e, const Event* map) {
    settle_pending();
    uint64_t before = peak_bytes_;
    if (e.size < kMapMark && e.addr != 0) {
        bool live;
        size_t slot = blocks_.find(e.addr, &live);
        if (live) {  // an address handed out again: its free was not seen
            heap_live_ -= blocks_.size_at(slot);
            blocks_.set_size_at(slot, e.size);
        } else {
            pending_ = true;
            pending_slot_ = slot;
            pending_addr_ = e.addr;
            pending_size_ = e.size;
        }
        heap_live_ += e.size;
        uint64_t live_bytes = heap_live_ + maps_.live_bytes();
        if (live_bytes > peak_bytes_) peak_bytes_ = live_bytes;
    } else {
        apply(e, map, 0);
    }
    if (peak_bytes_ != before) {
        peak_th_ = static_cast<size_t>(&th - threads_.data());
        peak_tf_ = e.tf;
    }
}

// A k-way merge of the threads' time fields in (time, tid, record order), giving each its
// unit; queued replay events are applied in that order.
template <bool Queued>
void WriterCycle::merge() {
    struct R {
        uint64_t* p;
        uint64_t* end;
        uint32_t tid;
        Thread* th;
        bool before(const R& o) const { return *p != *o.p ? *p < *o.p : tid < o.tid; }
    };
    std::vector<R> runs;
    for (size_t i = 0; i < n_threads_; ++i) {
        Thread& th = threads_[i];
        if (!th.time.empty())
            runs.push_back({th.time.data(), th.time.data() + th.time.size(), th.tid, &th});
    }
    std::sort(runs.begin(), runs.end(), [](const R& a, const R& b) { return a.before(b); });
    uint64_t lo = floor_;  // the least unit the next time field may take
    const unsigned k = shift_;
    while (!runs.empty()) {
        R& r = runs[0];
        Thread& th = *r.th;
        // One field at its unit; *p is read (for the run's end) before it is overwritten.
        auto give = [&](uint64_t* p) {
            uint64_t u = std::max(*p >> k, lo);
            *p = lo = u;
            if constexpr (Queued) {
                uint64_t tf = static_cast<uint64_t>(p - th.time.data());
                while (th.ev_done < th.ev.size() && th.ev[th.ev_done].tf == tf) {
                    const Ev& e = th.ev[th.ev_done++];
                    apply(e, e.size == kMapMark ? &th.maps[e.addr] : nullptr, u);
                }
            }
        };
        // r goes on while it stays before the next run's front (ties: the smaller tid first).
        uint64_t* p = r.p;
        uint64_t* const end = r.end;
        if (runs.size() > 1) {
            const uint64_t nt = *runs[1].p;
            if (r.tid < runs[1].tid)
                for (; p < end && *p <= nt; ++p) give(p);
            else
                for (; p < end && *p < nt; ++p) give(p);
        } else {
            for (; p < end; ++p) give(p);
        }
        r.p = p;
        ++lo;  // the next field is another thread's: a later unit
        if (r.p == r.end) {
            runs.erase(runs.begin());
            continue;
        }
        for (size_t i = 0; i + 1 < runs.size() && runs[i + 1].before(runs[i]); ++i)
            std::swap(runs[i], runs[i + 1]);
    }
    last_ = lo;  // one past the last unit given (or the floor)
}

uint64_t WriterCycle::cycle(const PayloadRef* payloads, size_t n, uint64_t t_ns, bool last,
                            ChunkSink& sink) noexcept {
    if (!failed_) {
        try {
            emitting_ = false;
            run(payloads, n, last ? UINT64_MAX : t_ns, sink);
        } catch (...) {
            // Out of memory (or a malformed payload): from now on payloads are written as they
            // came. Before the first chunk of this cycle nothing is lost; once chunks were being
            // written, the rest of this cycle's records are.
            failed_ = true;
            held_next_.clear();
            if (!emitting_) {
                for (auto& h : held_) sink.raw_chunk(h.data(), h.size());
                for (size_t i = 0; i < n; ++i) sink.raw_chunk(payloads[i].data, payloads[i].size);
            }
            held_.clear();
        }
    } else {
        for (size_t i = 0; i < n; ++i) sink.raw_chunk(payloads[i].data, payloads[i].size);
    }
    uint64_t units = t_ns >> shift_;
    floor_ = std::max({floor_, units, last_});
    return floor_ << shift_;
}

void WriterCycle::run(const PayloadRef* payloads, size_t n, uint64_t cut, ChunkSink& sink) {
    // This cycle's payloads: first those held from the last one (older records of the same
    // threads), then the collected ones; grouped by thread, each thread's in order.
    refs_.clear();
    for (auto& h : held_) refs_.push_back(PayloadRef{h.data(), h.size()});
    refs_.insert(refs_.end(), payloads, payloads + n);
    thread_index_.clear();
    n_threads_ = 0;
    segs_.clear();
    held_next_.clear();
    peak_th_ = SIZE_MAX;
    pending_ = false;
    std::vector<uint32_t> of(refs_.size());
    for (size_t i = 0; i < refs_.size(); ++i) {
        detail::ByteCursor c{refs_[i].data, refs_[i].data + refs_[i].size};
        uint32_t tid = detail::checked_u32(c.varint(), "thread id out of range");
        auto [it, fresh] = thread_index_.emplace(tid, n_threads_);
        if (fresh) {
            if (n_threads_ == threads_.size()) threads_.emplace_back();
            Thread& th = threads_[n_threads_++];
            th.tid = tid;
            th.stopped = false;
            th.time.clear();
            th.ev.clear();
            th.maps.clear();
            th.ev_done = 0;
            th.payload_bytes = 0;
            th.last_ns = last_ns_[tid];
        }
        of[i] = static_cast<uint32_t>(it->second);
        threads_[it->second].payload_bytes += refs_[i].size;
    }
    // The thread with the most bytes is usually the only one with heap events (the sampler's
    // payloads hold rss records only): the others are decoded first, and if none of them has
    // an event to replay, its events are replayed as they are decoded.
    size_t big = 0;
    for (size_t i = 1; i < n_threads_; ++i)
        if (threads_[i].payload_bytes > threads_[big].payload_bytes) big = i;
    for (size_t i = 0; i < refs_.size(); ++i)
        if (of[i] != big) decode<false>(refs_[i], threads_[of[i]], cut);
    bool alone = true;
    for (size_t i = 0; i < n_threads_; ++i)
        if (i != big && !threads_[i].ev.empty()) alone = false;
    for (size_t i = 0; i < refs_.size(); ++i) {
        if (of[i] != big) continue;
        if (alone)
            decode<true>(refs_[i], threads_[big], cut);
        else
            decode<false>(refs_[i], threads_[big], cut);
    }
    if (alone)
        merge<false>();
    else
        merge<true>();
    if (peak_th_ != SIZE_MAX) peak_time_ns_ = threads_[peak_th_].time[peak_tf_] << shift_;

    // The payloads in column form with their new times, each thread's in order. A payload
    // with no time field starts where its thread stands.
    std::vector<uint64_t> at(n_threads_, floor_);
    emitting_ = true;
    for (const Seg& s : segs_) {
        Thread& th = threads_[s.th];
        const uint64_t* t = th.time.data() + s.t_begin;
        size_t nt = s.t_end - s.t_begin;
        uint64_t base = nt ? t[0] : at[s.th];
        if (nt) at[s.th] = t[nt - 1];
        ByteSpan pieces[ColumnBuilder::kPieces];
        s.cols->finish_pieces(th.tid, base, t, nt, shift_, pieces);
        sink.column_chunk(pieces, ColumnBuilder::kPieces);
    }
    for (size_t i = 0; i < n_threads_; ++i) last_ns_[threads_[i].tid] = threads_[i].last_ns;
    held_.swap(held_next_);
}

}  // namespace pmt::preload
