// The writer's cycle (see exit_replay.hpp): read, order across threads, encode as the
// version-4 event stream, replay. Events are ordered as a reader of the nanosecond times
// would order them (time, tid, record order; events timed >= the cycle's clock reading held
// to the next cycle). The thread with the most bytes is streamed: its events are fed to the
// encoder as they are decoded, after the queued events of the other threads that come
// before them.
#include "exit_replay.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <new>
#include <stdexcept>

#include "own_blocks.hpp"
#include "pmt/record_decoder.hpp"  // mmap_event, munmap_event, mremap_event
#include "populate.hpp"
#include "thread_records.hpp"

#ifdef PMT_WRITER_RUN_STATS
#define PMT_RUN_STAT(x) (run_stats_.x)
#else
#define PMT_RUN_STAT(x) ((void)0)
#endif

namespace pmt::preload {
// --- LiveBlockTable --------------------------------------------------------------------------

// The slots live in anonymous mappings of their own: fresh pages are zero (no fill), and
// madvise makes them present in one call (Linux 5.14+; else they fault in as they are touched):
// on a KVM guest with shadow paging a first touch costs ~11 us a page, the table's doublings
// ~500 such faults on json_roundtrip --python-allocators. From 2 MiB on the array is 2
// MiB-aligned and asks for transparent huge pages (where the kernel gives them on request),
// which also spares the probes of a large table most of their TLB misses.
LiveBlockTable::Slot* LiveBlockTable::map_slots(size_t n, Mapping* m, bool populate) {
    const size_t bytes = n * sizeof(Slot);
    const bool huge = bytes >= kGrowChunk;
    const size_t len = huge ? bytes + kGrowChunk : bytes;
    void* base = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    auto* at = static_cast<char*>(base);
    if (huge) {
        at = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + kGrowChunk - 1) &
                                     ~(kGrowChunk - 1));
        madvise(at, bytes, MADV_HUGEPAGE);
    }
    if (populate) populate_pages(at, bytes);
    *m = Mapping{base, len};
    return reinterpret_cast<Slot*>(at);
}

void LiveBlockTable::unmap_slots(const Mapping& m) { munmap(m.base, m.bytes); }

LiveBlockTable::LiveBlockTable()
    : s_(map_slots(1024, &map_, true)), mask_(1024 - 1), shift_(64 - 10) {}

LiveBlockTable::~LiveBlockTable() { unmap_slots(map_); }

// Doubling a large table never holds both arrays whole. The home slot is the top bits of the
// hashed address, so a block at old slot i (home h <= i, or wrapped) has home 2h or 2h + 1 in
// the new array: reading the old array in order writes the new one in order too. So the old
// array is read a 2 MiB chunk at a time, the part of the new array its blocks go to is made
// present first, and the chunk is released once read. The process's RSS then peaks at the new
// array and about two chunks, not at old + new (py-alloc dataframe: 32 + 16 MB).
void LiveBlockTable::grow() {
    const Mapping old_map = map_;
    Slot* const old = s_;
    const size_t old_count = mask_ + 1;
    const bool chunked = old_count * sizeof(Slot) >= kGrowChunk;
    s_ = map_slots(old_count * 2, &map_, !chunked);
    mask_ = old_count * 2 - 1;
    --shift_;
    const size_t mask = mask_;
    constexpr size_t kChunkSlots = kGrowChunk / sizeof(Slot);
    const size_t step = chunked ? kChunkSlots : old_count;
    for (size_t c = 0; c < old_count; c += step) {
        if (chunked) populate_pages(s_ + 2 * c, 2 * kGrowChunk);
        for (size_t k = c; k < c + step; ++k) {
            const Slot& s = old[k];
            if (s.key == 0) continue;
            size_t i = home(s.key);
            while (s_[i].key != 0) i = (i + 1) & mask;
            s_[i] = s;
        }
        if (chunked) madvise(old + c, kGrowChunk, MADV_DONTNEED);
    }
    unmap_slots(old_map);
}

size_t LiveBlockTable::find_outside(uint64_t addr, bool* live) const {
    *live = spilled_.count(addr) != 0;
    return kOutside;
}

LiveBlockTable::Block LiveBlockTable::at_slow(uint64_t addr) const { return spilled_.at(addr); }

void LiveBlockTable::insert_slow(size_t slot, const Block& b) {
    spilled_[b.addr] = b;
    if (slot == kOutside) {
        ++outside_;
        return;
    }
    s_[slot] = Slot{b.addr | kSpilledSize << kSizeShift, 0};
    if (++used_ > limit(mask_)) grow();
}

void LiveBlockTable::erase_slow(size_t slot, uint64_t addr) {
    spilled_.erase(addr);
    if (slot == kOutside) {
        --outside_;
        return;
    }
    erase_in(s_, mask_, shift_, slot);
    --used_;
}

// --- decoding -----------------------------------------------------------------------------------

// The second half of a realloc whose free is timed before the cut and whose new block after
// it: written next cycle as realloc(NULL) (old = 0).
struct Split {
    AllocKind kind;
    uint64_t t, addr, size, stack;
};

// The free half of a realloc record is a free of its kind (Realloc or ReallocArray).
inline AllocKind free_half_kind(AllocKind k) {
    return k == AllocKind::ReallocArray ? AllocKind::ReallocArray : AllocKind::Realloc;
}

// Decodes a thread's records timed before the cut; stops at the first record with an event at
// or after it. Direct (the streamed thread): each event is fed to the encoder once the queued
// threads' events before it are; otherwise the records are queued as items.
template <bool Direct>
struct WriterCycle::Visitor {
    WriterCycle& w;
    Thread& th;
    uint64_t cut;
    Split split{};
    bool did_split = false;

    void push(ItemOp op, uint64_t t, AllocKind kind, uint64_t a, uint64_t b, uint64_t c,
              uint32_t x = 0) {
        th.items.push_back(Item{t, op, kind, x, a, b, c});
    }
    void alloc_ev(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack) {
        if constexpr (Direct) {
            w.drain(t);
            w.feed_alloc(th.tid, kind, t, addr, size, stack);
        } else {
            push(ItemOp::Alloc, t, kind, addr, size, stack);
        }
    }
    void free_ev(uint64_t t, uint64_t addr, AllocKind kind) {
        if constexpr (Direct) {
            w.drain(t);
            w.feed_free(th.tid, t, addr, kind);
        } else {
            push(ItemOp::Free, t, kind, addr, 0, 0);
        }
    }

    // The streamed thread's allocs and frees test one bound, gate_ = min(cut, lim_), before
    // the cut and the queued threads' next event.
    [[gnu::always_inline]] RecNext alloc(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size,
                                         uint64_t stack) {
        if constexpr (Direct) {
            if (__builtin_expect(t >= w.gate_, 0)) {
                if (t >= cut) return RecNext::StopBefore;
                w.drain(t);
            }
            w.feed_alloc(th.tid, kind, t, addr, size, stack);
        } else {
            if (t >= cut) return RecNext::StopBefore;
            alloc_ev(kind, t, addr, size, stack);
        }
        return RecNext::Go;
    }
    RecNext free(uint64_t t, uint64_t addr) {
        if constexpr (Direct) {
            if (__builtin_expect(t >= w.gate_, 0)) {
                if (t >= cut) return RecNext::StopBefore;
                w.drain(t);
            }
            w.feed_free(th.tid, t, addr, AllocKind::Malloc);
        } else {
            if (t >= cut) return RecNext::StopBefore;
            free_ev(t, addr, AllocKind::Malloc);
        }
        return RecNext::Go;
    }
    RecNext realloc(AllocKind kind, uint64_t tb, uint64_t ta, uint64_t old_addr, uint64_t new_addr,
                    uint64_t size, uint64_t stack) {
        uint64_t first = old_addr != 0 || new_addr == 0 ? tb : ta;
        if (first >= cut) return RecNext::StopBefore;
        if (old_addr != 0) free_ev(tb, old_addr, free_half_kind(kind));
        if (new_addr != 0) {
            if (ta >= cut) {  // old_addr != 0: tb < cut
                split = Split{kind, ta, new_addr, size, stack};
                did_split = true;
                return RecNext::StopAfter;
            }
            alloc_ev(kind, ta, new_addr, size, stack);
        }
        return RecNext::Go;
    }
    RecNext mmap(uint64_t t, uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags,
                 int64_t fd, uint64_t stack) {
        if (t >= cut) return RecNext::StopBefore;
        if constexpr (Direct) {
            w.drain(t);
            w.feed_map(th.tid, mmap_event(t, addr, length, prot, flags, fd, stack));
        } else {
            th.extra.push_back(Extra{prot, flags, static_cast<uint64_t>(fd)});
            push(ItemOp::Mmap, t, AllocKind::Malloc, addr, length, stack,
                 static_cast<uint32_t>(th.extra.size() - 1));
        }
        return RecNext::Go;
    }
    RecNext munmap(uint64_t t, uint64_t addr, uint64_t length) {
        if (t >= cut) return RecNext::StopBefore;
        if constexpr (Direct) {
            w.drain(t);
            w.feed_map(th.tid, munmap_event(t, addr, length));
        } else {
            push(ItemOp::Munmap, t, AllocKind::Malloc, addr, length, 0);
        }
        return RecNext::Go;
    }
    RecNext mremap(uint64_t tb, uint64_t ta, uint64_t old_addr, uint64_t old_length,
                   uint64_t new_addr, uint64_t new_length, uint64_t stack) {
        (void)tb;
        if (ta >= cut) return RecNext::StopBefore;  // one event, at t_after
        if constexpr (Direct) {
            w.drain(ta);
            w.feed_map(th.tid, mremap_event(ta, old_addr, old_length, new_addr, new_length, stack));
        } else {
            th.extra.push_back(Extra{new_addr, new_length, stack});
            push(ItemOp::Mremap, ta, AllocKind::Malloc, old_addr, old_length, 0,
                 static_cast<uint32_t>(th.extra.size() - 1));
        }
        return RecNext::Go;
    }
    RecNext rss(uint64_t t, uint64_t bytes) {
        if (t >= cut) return RecNext::StopBefore;
        if constexpr (Direct) {
            w.drain(t);
            w.feed_rss(th.tid, t, bytes);
        } else {
            push(ItemOp::Rss, t, AllocKind::Malloc, bytes, 0, 0);
        }
        return RecNext::Go;
    }
    // Definitions: the streamed thread's go to the encoder at once (only their thread's own
    // records must follow them).
    RecNext string(uint64_t id, const uint8_t* s, size_t n) {
        if constexpr (Direct) {
            w.enc_.string(id, reinterpret_cast<const char*>(s), n);
            w.check_size();
        } else {
            push(ItemOp::String, 0, AllocKind::Malloc, id, reinterpret_cast<uintptr_t>(s), n);
        }
        return RecNext::Go;
    }
    RecNext location(uint64_t id, uint32_t f, uint32_t fn, uint32_t l) {
        if constexpr (Direct)
            w.enc_.location(id, f, fn, l);
        else
            push(ItemOp::Location, 0, AllocKind::Malloc, id, uint64_t(f) | uint64_t(fn) << 32, l);
        return RecNext::Go;
    }
    RecNext stack(uint64_t id, uint64_t p, uint64_t l) {
        if constexpr (Direct)
            w.enc_.stack(id, p, l);
        else
            push(ItemOp::Stack, 0, AllocKind::Malloc, id, p, l);
        return RecNext::Go;
    }
    RecNext thread_name(uint64_t id) {
        if constexpr (Direct) {
            w.set_thread(th.tid);
            w.enc_.thread_name(id);
        } else {
            push(ItemOp::ThreadName, 0, AllocKind::Malloc, id, 0, 0);
        }
        return RecNext::Go;
    }
};

WriterCycle::WriterCycle(unsigned time_shift, unsigned tick_shift, size_t payload_bytes,
                         bool fast_runs)
    : enc_(time_shift, tick_shift, kStreamFormatVersion, /*check_frees=*/false),
      payload_bytes_(payload_bytes),
      run_gate_(fast_runs ? UINT64_MAX : 0),
      fast_runs_(fast_runs) {
    // The columns at their payload's size from the start: doubling them from 4 KiB copied each
    // into fresh pages (json_roundtrip --opt: ~270 of the writer's page faults, ~11 us each on
    // a VM). Pages never written are not faulted in. A payload overshoots payload_bytes by at
    // most a check's records (check_size) and a fast run's room (StreamEncoder::Cursor); a
    // larger one grows as before. Without the memory the columns just grow from 4 KiB.
    try {
        enc_.reserve(std::min(payload_bytes, size_t(64) << 20) + (64u << 10));
    } catch (const std::bad_alloc&) {
    }
}
WriterCycle::~WriterCycle() = default;

// Records [p, end) of thread tid, and first the second half of a split realloc, become a
// payload of their own for the next cycle: the records are copied as they are (their times
// are absolute).
void WriterCycle::hold(const uint64_t* p, const uint64_t* end, uint32_t tid, const Split* split) {
    std::vector<uint64_t>& buf = held_next_.emplace_back();
    const size_t rest = static_cast<size_t>(end - p);
    buf.resize(1 + 7 + rest + rec::kAllocWords);  // header, a realloc, the rest (and slack)
    RecordWriter w;
    w.reset(buf.data(), buf.size(), tid);
    if (split)
        w.realloc(split->kind, split->t, split->t, 0, split->addr, split->size, split->stack);
    const size_t head = w.words();
    std::copy(p, end, buf.data() + head);
    buf.resize(head + rest);
}

// Passes one record to a visitor: decode_thread_records stops after it (stop: the visitor
// itself stopped there).
template <class V>
struct OneRecord {
    V& v;
    bool stop = false;

    RecNext one(RecNext n) {
        if (n == RecNext::Go) return RecNext::StopAfter;
        stop = true;
        return n;
    }
    RecNext alloc(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack) {
        return one(v.alloc(kind, t, addr, size, stack));
    }
    RecNext free(uint64_t t, uint64_t addr) { return one(v.free(t, addr)); }
    RecNext realloc(AllocKind kind, uint64_t tb, uint64_t ta, uint64_t old_addr, uint64_t new_addr,
                    uint64_t size, uint64_t stack) {
        return one(v.realloc(kind, tb, ta, old_addr, new_addr, size, stack));
    }
    RecNext mmap(uint64_t t, uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags,
                 int64_t fd, uint64_t stack) {
        return one(v.mmap(t, addr, length, prot, flags, fd, stack));
    }
    RecNext munmap(uint64_t t, uint64_t addr, uint64_t length) {
        return one(v.munmap(t, addr, length));
    }
    RecNext mremap(uint64_t tb, uint64_t ta, uint64_t old_addr, uint64_t old_length,
                   uint64_t new_addr, uint64_t new_length, uint64_t stack) {
        return one(v.mremap(tb, ta, old_addr, old_length, new_addr, new_length, stack));
    }
    RecNext rss(uint64_t t, uint64_t bytes) { return one(v.rss(t, bytes)); }
    RecNext string(uint64_t id, const uint8_t* s, size_t n) { return one(v.string(id, s, n)); }
    RecNext location(uint64_t id, uint32_t f, uint32_t fn, uint32_t l) {
        return one(v.location(id, f, fn, l));
    }
    RecNext stack(uint64_t id, uint64_t p, uint64_t l) { return one(v.stack(id, p, l)); }
    RecNext thread_name(uint64_t id) { return one(v.thread_name(id)); }
};

template <bool Direct>
void WriterCycle::decode(const PayloadRef& r, Thread& th, uint64_t cut) {
    if (th.stopped) {  // after a held record every later one is held too
        held_next_.emplace_back(r.data, r.data + r.words);
        return;
    }
    Visitor<Direct> v{*this, th, cut};
    RecPosition at;
    if constexpr (Direct)
        at = decode_direct(r.data + 1, r.data + r.words, th.last_ns, v);
    else
        at = decode_thread_records(r.data + 1, r.data + r.words, th.last_ns, v);
    th.last_ns = at.t;
    if (at.stopped) {
        th.stopped = true;
        hold(at.p, r.data + r.words, th.tid, v.did_split ? &v.split : nullptr);
    }
}

// The streamed thread's records as decode_thread_records reads them (thread_records.hpp), with
// the two frequent ones read here: a free, an alloc, and an alloc followed at once by the
// free of its address (most of a program's blocks: regex's malloc/free pairs) fed as one PAIR
// when nothing can come between them. Any other record goes through decode_thread_records.
RecPosition WriterCycle::decode_direct(const uint64_t* p, const uint64_t* end, uint64_t t,
                                       Visitor<true>& v) {
    constexpr size_t kAhead = 12;  // words
    const uint32_t tid = v.th.tid;
    while (p < end) {
        const uint64_t w = p[0];
        const unsigned tag = static_cast<unsigned>(w >> rec::kTagShift);
        const uint64_t addr = w & rec::kLowMask;
        const size_t left = static_cast<size_t>(end - p);
        if (left > kAhead) {
            // A free or an alloc a few records on (most words there are not a record's first:
            // their top bits are 0, no such tag): its table slot, loaded meanwhile.
            const uint64_t x = p[kAhead];
            const unsigned xt = static_cast<unsigned>(x >> rec::kTagShift);
            if (xt == rec::kFree || xt - rec::kAlloc < rec::kKinds)
                blocks_.prefetch(x & rec::kLowMask);
        }
        if (tag - rec::kAlloc < rec::kKinds && left >= 4) {
            const AllocKind kind = static_cast<AllocKind>(tag - rec::kAlloc);
            const uint64_t ta = p[1] > t ? p[1] : t;
            // A PAIR (the next record frees the block) that feed_pair may take; when the pair
            // after it is at the same address too (regex's runs), pair_run takes those, and
            // otherwise event_run takes the PAIR with what follows.
            const bool pair = left >= 6 && p[4] == (rec::tag(rec::kFree) | addr);
            const uint64_t tf = pair && p[5] > ta ? p[5] : ta;
            const bool pair_ok = pair && tf < run_gate_ && since_check_ < 254 && !enc_.may_tick(tf);
            if (!pair_ok || left < 12 || !pair_run_follows(p)) {
                if (run_may_start(ta)) {
                    const uint64_t* const at = p;
                    event_run(p, end, t, tid);
                    if (p != at) continue;
                }
            }
            if (pair_ok) {
                feed_pair(tid, kind, ta, addr, p[2], p[3]);
                t = tf;
                p += 6;
                pair_run(p, end, t);
                continue;
            }
            if (v.alloc(kind, ta, addr, p[2], p[3]) == RecNext::StopBefore) return {p, t, true};
            t = ta;
            p += 4;
            continue;
        }
        if (tag == rec::kFree && left >= 2) {
            const uint64_t tf = p[1] > t ? p[1] : t;
            if (run_may_start(tf)) {
                const uint64_t* const at = p;
                event_run(p, end, t, tid);
                if (p != at) continue;
            }
            if (v.free(tf, addr) == RecNext::StopBefore) return {p, t, true};
            t = tf;
            p += 2;
            continue;
        }
        OneRecord<Visitor<true>> one{v};
        const RecPosition at = decode_thread_records(p, end, t, one);
        if (one.stop) return at;
        p = at.p;
        t = at.t;
    }
    return {p, t, false};
}

// --- feeding the encoder, with the replay ------------------------------------------------------

// The free of a block the replay holds live (blocks_ or the pending block), so live in the
// stream: the encoder keeps no set of its own (check_frees false) and refuses only an owner
// index it does not know (a bug here).
inline void WriterCycle::free_block(uint64_t ref, AllocKind kind) {
    if (!enc_.free(static_cast<uint32_t>(ref & 0xFFFFFF), ref >> 24, kind)) bad_block();
}

void WriterCycle::bad_block() {
    throw std::logic_error("a live block unknown to the stream encoder");
}

// A heap block made live by thread tid (inline: with the free of the pending block, the
// common pair; the rest is out of line). The new block waits as pending, counted but not in
// blocks_: most are freed by the next event and never enter it.
[[gnu::always_inline]] inline void WriterCycle::feed_alloc(uint32_t tid, AllocKind kind, uint64_t t,
                                                           uint64_t addr, uint64_t size,
                                                           uint64_t stack) {
    set_thread(tid);
    enc_.time(t);
    const size_t slot = new_block_slot(addr);
    uint64_t seq = enc_.alloc(kind, size, stack);
    check_ref(seq);
    pending_ = true;
    pending_slot_ = slot;
    pending_block_ = LiveBlockTable::Block{addr, size, seq << 24 | cur_};
    heap_live_ += size;
    ++events_;
    grew(t);
    counted();
}

// feed_alloc and then feed_free of the same address, both by thread tid at times t <= t_free,
// in one step: the caller has checked that nothing comes between them (no queued event, no
// TICK at t_free, no size check). The same bytes and state as the two calls.
inline void WriterCycle::feed_pair(uint32_t tid, AllocKind kind, uint64_t t, uint64_t addr,
                                   uint64_t size, uint64_t stack) {
    set_thread(tid);
    const size_t slot = new_block_slot(addr);
    check_ref(enc_.pair(kind, size, stack));
    reuse_ = true;
    reuse_addr_ = addr;
    reuse_slot_ = slot;
    events_ += 2;
    since_check_ += 2;
    PMT_RUN_STAT(pair += 2);
    const uint64_t live = heap_live_ + size + maps_.live_bytes();
    if (live > peak_bytes_) {
        peak_bytes_ = live;
        peak_time_ns_ = t;
    }
}

// After feed_pair: the pairs right after it at the same address (an allocator handing the
// block just freed out again: regex's), each as feed_pair would feed it (blocks_, the reuse
// slot and the pending state stay as they are; no TICK, no queued event, no size check comes
// between them), with the state in registers. Leaves p and t after the last one fed.
void WriterCycle::pair_run(const uint64_t*& p, const uint64_t* end, uint64_t& t) {
    const size_t most = static_cast<size_t>(end - p) / 6;
    // check_ref for each: the seqs stay below 2^40 (and the thread index is the same).
    if (most == 0 || ((enc_.next_seq() + most) >> 40 | cur_ >> 24) != 0) return;
    const uint64_t key = rec::tag(rec::kFree) | reuse_addr_;  // its free record's first word
    const uint64_t lim = std::min(gate_, enc_.tick_at_ns());
    const uint64_t base = heap_live_ + maps_.live_bytes();
    const uint64_t* q = p;
    uint64_t tq = t;
    unsigned since = since_check_;
    uint64_t peak = peak_bytes_, peak_t = peak_time_ns_;
    const uint64_t n = enc_.pairs([&](AllocKind& kind, uint64_t& size, uint64_t& stack) {
        if (end - q < 6) return false;
        const uint64_t w = q[0];
        const unsigned tag = static_cast<unsigned>(w >> rec::kTagShift);
        // An alloc at the reused address (the free's word less its tag), then its free.
        if (tag - rec::kAlloc >= rec::kKinds || q[4] != key ||
            (w & rec::kLowMask) != (key & rec::kLowMask) || since >= 254)
            return false;
        const uint64_t ta = q[1] > tq ? q[1] : tq;
        const uint64_t tf = q[5] > ta ? q[5] : ta;
        if (tf >= lim) return false;
        kind = static_cast<AllocKind>(tag - rec::kAlloc);
        size = q[2];
        stack = q[3];
        const uint64_t live = base + size;
        if (live > peak) {
            peak = live;
            peak_t = ta;
        }
        since += 2;
        tq = tf;
        q += 6;
        return true;
    });
    if (n == 0) return;
    events_ += 2 * n;
    PMT_RUN_STAT(pair_run += 2 * n);
    since_check_ = since;
    peak_bytes_ = peak;
    peak_time_ns_ = peak_t;
    p = q;
    t = tq;
}

// The streamed thread's allocs and frees from p on (p at one), each as feed_alloc / feed_free
// would feed it, with the replay's and the encoder's state in locals (StreamEncoder::Cursor):
// stores to the columns' bytes would otherwise make every member be reloaded. A new block
// enters blocks_ at once instead of waiting as the pending block: the next record would
// settle it anyway, unless it is the block's free, and such a PAIR goes to the caller. Stops,
// before the record, at the first one that needs anything else: another record, a queued
// event or the cut before it (gate_), a TICK, the size check, a table that must grow, an
// address still live or not live, a PAIR, the last few words of the payload. Leaves p and t
// after the last one fed.
void WriterCycle::event_run(const uint64_t*& p, const uint64_t* end, uint64_t& t, uint32_t tid) {
    constexpr size_t kAhead = 12;  // words, as decode_direct
    // At most 255 - since_check_ records (the size check comes after the next one); check_ref
    // for each: the thread index fits and the seqs stay below 2^40. Not worth its setup unless its
    // first three records (or fewer, two PAIRs) are allocs and frees before any queued event or
    // TICK (a few threads' events are interleaved), and no run of PAIRs at one address starts
    // among them.
    if (end - p <= static_cast<ptrdiff_t>(kAhead) || since_check_ >= 255 || !enc_.is_current(tid) ||
        !enc_.cursor_ok() || ((enc_.next_seq() + 256) >> 40 | cur_ >> 24) != 0)
        return;
    const uint64_t lim = std::min(gate_, enc_.tick_at_ns());
    const uint64_t* n = p;
    for (int k = 0; k < 3 && n - p <= static_cast<ptrdiff_t>(kAhead) - 6; ++k) {
        // (each record read here lies within p[0, kAhead])
        const unsigned tag = static_cast<unsigned>(n[0] >> rec::kTagShift);
        if (n[1] >= lim) return;
        if (tag == rec::kFree) {
            n += 2;
        } else {
            if (tag - rec::kAlloc >= rec::kKinds) return;
            if (n[4] != (rec::tag(rec::kFree) | (n[0] & rec::kLowMask))) {
                n += 4;
                continue;
            }
            // A PAIR; followed by an alloc at the same address, it starts a run of them,
            // pair_run's (n[6] lies within p[0, kAhead]).
            if (((n[6] ^ n[0]) & rec::kLowMask) == 0) return;
            n += 6;
        }
    }
    if (pending_) {
        // The pending block is settled first, as the record at p would (unless it frees it).
        if (p[0] == (rec::tag(rec::kFree) | pending_block_.addr) ||
            pending_slot_ == LiveBlockTable::kOutside ||
            blocks_.used_ >= LiveBlockTable::limit(blocks_.mask_))
            return;
        settle_pending();
    }
    reuse_ = false;  // blocks_ changes: reuse_slot_ would be stale
    const unsigned most = 255 - since_check_;
    StreamEncoder::Cursor c(enc_, most);
    const uint64_t cur = cur_;
    LiveBlockTable::Slot* const s = blocks_.s_;
    const size_t mask = blocks_.mask_;
    const unsigned shift = blocks_.shift_;
    auto find = [&](uint64_t a, bool& live) {  // a != 0
        return LiveBlockTable::find_in(s, mask, shift, a, &live);
    };
    size_t used = blocks_.used_;  // one more makes the table grow once used >= most_used
    const size_t most_used = LiveBlockTable::limit(mask);
    uint64_t live_bytes = heap_live_, peak_t = peak_time_ns_;
    // The peak of heap_live_ alone while the mappings' bytes stay as they are (the peak is at
    // least the live bytes now, so at least the mappings').
    uint64_t heap_peak = peak_bytes_ - maps_.live_bytes();
    const uint64_t* q = p;
    // Each record is 2 words or more: at most `most` of them end before q0 + 2 * most.
    const uint64_t* const q0 = q;
    const uint64_t seq0 = c.next_seq();
    const uint64_t* const stop = std::min(end - kAhead, q + 2 * static_cast<size_t>(most));
    uint64_t tq = t;
    bool bad = false;
    // The tags of a free and an alloc (below 64), as bits.
    constexpr uint64_t kEventTags = uint64_t(1) << rec::kFree | ((uint64_t(1) << rec::kKinds) - 1)
                                                                    << rec::kAlloc;
    static_assert(rec::kAlloc + rec::kKinds <= 64);
    while (q < stop) {
        {
            // A free or an alloc a few records on (a wrong guess only loads a useless line).
            const uint64_t x = q[kAhead];
            if (kEventTags >> ((x >> rec::kTagShift) & 63) & 1)
                __builtin_prefetch(&s[LiveBlockTable::home_in(x & rec::kLowMask, shift)]);
        }
        const uint64_t w = q[0];
        const unsigned tag = static_cast<unsigned>(w >> rec::kTagShift);
        const uint64_t addr = w & rec::kLowMask;
        if (tag - rec::kAlloc < rec::kKinds) {
            const uint64_t ta = q[1] > tq ? q[1] : tq;
            const uint64_t size = q[2];
            // A size the slot cannot hold, an address with no slots: spilled, as insert_at
            // keeps them.
            if (ta >= lim || used >= most_used || size > LiveBlockTable::kMaxSize ||
                addr > LiveBlockTable::kAddrMask)
                break;
            // A PAIR: the next record frees the block (feed_pair's case).
            const bool pair = q[4] == (rec::tag(rec::kFree) | addr);
            const uint64_t tf = q[5] > ta ? q[5] : ta;
            // Two records: q + 2 < stop keeps the count within most (each record so far took
            // 2 words or more). q[10] lies below end - kAhead.
            if (pair && (tf >= lim || q + 2 >= stop || pair_run_follows(q))) break;
            // new_block_slot (address 0 is found "live" in an empty slot: replace's case too)
            bool live;
            const size_t slot = find(addr, live);
            if (live) break;  // replace()
            const uint64_t seq = c.alloc(static_cast<AllocKind>(tag - rec::kAlloc), size, q[3]);
            if (pair) {  // the block never enters blocks_; the encoder writes the PAIR
                c.free(static_cast<uint32_t>(cur), seq);
                PMT_RUN_STAT(run_pair += 2);
                if (live_bytes + size > heap_peak) {
                    heap_peak = live_bytes + size;
                    peak_t = ta;
                }
                tq = tf;
                q += 6;
                continue;
            }
            s[slot] =
                LiveBlockTable::Slot{addr | size << LiveBlockTable::kSizeShift, seq << 24 | cur};
            ++used;
            live_bytes += size;
            if (live_bytes > heap_peak) {
                heap_peak = live_bytes;
                peak_t = ta;
            }
            tq = ta;
            q += 4;
        } else if (tag == rec::kFree) {
            const uint64_t tf = q[1] > tq ? q[1] : tq;
            if (tf >= lim || addr == 0) break;
            bool live;
            size_t i = find(addr, live);
            if (!live) break;  // free_unknown
            const LiveBlockTable::Slot e = s[i];
            const uint64_t size = e.key >> LiveBlockTable::kSizeShift;
            if (size == LiveBlockTable::kSpilledSize) break;  // in spilled_
            live_bytes -= size;
            LiveBlockTable::erase_in(s, mask, shift, i);
            --used;
            if (!c.free(static_cast<uint32_t>(e.ref & 0xFFFFFF), e.ref >> 24)) {
                bad = true;
                break;
            }
            tq = tf;
            q += 2;
        } else {
            break;
        }
    }
    c.close();
    blocks_.used_ = used;
    heap_live_ = live_bytes;
    const uint64_t peak = heap_peak + maps_.live_bytes();
    if (peak != peak_bytes_) {
        peak_bytes_ = peak;
        peak_time_ns_ = peak_t;
    }
    // allocs: one seq each; frees: the rest of the words, two each
    const uint64_t allocs = c.next_seq() - seq0;
    const uint64_t fed = allocs + (static_cast<uint64_t>(q - q0) - 4 * allocs) / 2;
    events_ += fed;
    PMT_RUN_STAT(event_run += fed);
    since_check_ += static_cast<unsigned>(fed);
    p = q;
    t = tq;
    if (bad) bad_block();
}

// An address still live (its free was not seen) is freed first, so the reader's accounting
// replaces the block as the replay does. Returns the empty slot for the new block.
size_t WriterCycle::replace(size_t slot, uint64_t addr) {
    const LiveBlockTable::Block b = blocks_.at(slot, addr);
    free_block(b.ref, AllocKind::Malloc);
    heap_live_ -= b.size;
    ++events_;
    ++replaced_;
    reuse_ = false;
    blocks_.erase_at(slot, addr);
    bool live;
    return blocks_.find(addr, &live);
}

inline void WriterCycle::free_table(uint64_t addr, AllocKind kind) {
    settle_pending();
    bool live;
    size_t slot = blocks_.find(addr, &live);
    if (live) {
        const LiveBlockTable::Block b = blocks_.at(slot, addr);
        free_block(b.ref, kind);
        heap_live_ -= b.size;
        reuse_ = false;
        blocks_.erase_at(slot, addr);
    } else if (own_block_freed(addr)) {
        --events_;  // one of our blocks, not the program's (own_blocks.hpp): dropped
    } else {
        enc_.free_unknown(addr, kind);
    }
}

inline void WriterCycle::feed_free(uint32_t tid, uint64_t t, uint64_t addr, AllocKind kind) {
    set_thread(tid);
    enc_.time(t);
    ++events_;
    if (pending_ && addr == pending_block_.addr) {  // the last alloc's block: never entered
        pending_ = false;
        heap_live_ -= pending_block_.size;
        reuse_ = true;
        reuse_addr_ = addr;
        reuse_slot_ = pending_slot_;
        free_block(pending_block_.ref, kind);
    } else {
        free_table(addr, kind);
    }
    counted();
}

void WriterCycle::feed_map(uint32_t tid, const Event& e) {
    set_thread(tid);
    enc_.time(e.time_ns);
    switch (e.type) {
        case EventType::Mmap:
            enc_.mmap(e.addr, e.size, e.prot, e.flags, e.fd, e.stack_id);
            break;
        case EventType::Munmap:
            enc_.munmap(e.addr, e.size);
            break;
        default:
            enc_.mremap(e.old_addr, e.old_size, e.addr, e.size, e.stack_id);
    }
    maps_.apply(e);
    ++events_;
    grew(e.time_ns);
    counted();
}

void WriterCycle::feed_rss(uint32_t tid, uint64_t t, uint64_t bytes) {
    set_thread(tid);
    enc_.time(t);
    enc_.rss(bytes);
    ++events_;
    counted();
}

void WriterCycle::feed_item(const Item& it, const Thread& th) {
    switch (it.op) {
        case ItemOp::Alloc:
            feed_alloc(th.tid, it.kind, it.t, it.a, it.b, it.c);
            break;
        case ItemOp::Free:
            feed_free(th.tid, it.t, it.a, it.kind);
            break;
        case ItemOp::Mmap: {
            const Extra& x = th.extra[it.x];
            feed_map(th.tid,
                     mmap_event(it.t, it.a, it.b, x.p, x.q, static_cast<int64_t>(x.r), it.c));
            break;
        }
        case ItemOp::Munmap:
            feed_map(th.tid, munmap_event(it.t, it.a, it.b));
            break;
        case ItemOp::Mremap: {
            const Extra& x = th.extra[it.x];
            feed_map(th.tid, mremap_event(it.t, it.a, it.b, x.p, x.q, x.r));
            break;
        }
        case ItemOp::Rss:
            feed_rss(th.tid, it.t, it.a);
            break;
        case ItemOp::String:
            enc_.string(it.a, reinterpret_cast<const char*>(static_cast<uintptr_t>(it.b)),
                        static_cast<size_t>(it.c));
            check_size();
            break;
        case ItemOp::Location:
            enc_.location(it.a, it.b & 0xFFFFFFFF, it.b >> 32, it.c);
            break;
        case ItemOp::Stack:
            enc_.stack(it.a, it.b, it.c);
            break;
        case ItemOp::ThreadName:
            set_thread(th.tid);
            enc_.thread_name(it.a);
            break;
    }
}

// The definitions at the front of a run (they go right after their thread's previous event).
void WriterCycle::feed_definitions(Run& r) {
    while (r.p < r.end && r.p->op >= ItemOp::String) feed_item(*r.p++, *r.th);
}

void WriterCycle::set_lim() {
    if (runs_.empty()) {
        lim_ = UINT64_MAX;
    } else {
        const Run& r = runs_[0];
        lim_ = r.p->t + (big_tid_ < r.th->tid ? 1 : 0);  // ties: the smaller tid first
    }
    gate_ = std::min(lim_, cut_);
    run_gate_ = fast_runs_ ? gate_ : 0;
}

// Feeds the queued events before the streamed thread's next event at t (t = UINT64_MAX: all
// of them), each with the definitions after it: the front run goes on while its events stay
// before both that event and the next run's front.
void WriterCycle::pop_runs(uint64_t t) {
    do {
        Run& r = runs_[0];
        const uint32_t tid = r.th->tid;
        uint64_t lim = t == UINT64_MAX ? UINT64_MAX : t + (tid < big_tid_ ? 1 : 0);
        if (runs_.size() > 1) lim = std::min(lim, runs_[1].p->t + (tid < runs_[1].th->tid ? 1 : 0));
        do {
            feed_item(*r.p++, *r.th);
            feed_definitions(r);
        } while (r.p != r.end && r.p->t < lim);
        if (r.p == r.end) {
            runs_.erase(runs_.begin());
        } else {
            for (size_t i = 0; i + 1 < runs_.size() && run_before(runs_[i + 1], runs_[i]); ++i)
                std::swap(runs_[i], runs_[i + 1]);
        }
        set_lim();
    } while (!runs_.empty() && t >= lim_);
}

void WriterCycle::check_size() {
    since_check_ = 0;
    if (enc_.pending_bytes_bound() > payload_bytes_ && enc_.pending_bytes() > payload_bytes_)
        flush();
}

// Ends the encoder's payload and writes it.
void WriterCycle::flush() {
    ByteSpan pieces[StreamEncoder::kPieces];
    size_t n = enc_.finish(pieces);
    if (n) sink_->stream_chunk(pieces, n);
}

// The payload ends with the cycle unless the interval since the last one has not passed.
void WriterCycle::end_cycle_payload(uint64_t cut) {
    if (cut != UINT64_MAX && payload_interval_ns_ != 0 && cut >= payload_ended_ns_ &&
        cut - payload_ended_ns_ < payload_interval_ns_)
        return;
    flush();
    payload_ended_ns_ = cut;
}

// --- the cycle ------------------------------------------------------------------------------

uint64_t WriterCycle::cycle(const PayloadRef* payloads, size_t n, uint64_t t_ns, bool last,
                            ChunkSink& sink) noexcept {
    if (!failed_) {
        try {
            sink_ = &sink;
            run(payloads, n, last ? UINT64_MAX : t_ns);
        } catch (...) {
            // Out of memory (or a malformed payload): the encoder's state is lost with this
            // cycle's events; the trace ends at its last complete chunk.
            failed_ = true;
            held_.clear();
            held_next_.clear();
            sink.fail();
        }
    }
    return std::max(t_ns, last_t_);
}

void WriterCycle::run(const PayloadRef* payloads, size_t n, uint64_t cut) {
    // This cycle's payloads: first those held from the last one (older records of the same
    // threads), then the collected ones; grouped by thread, each thread's in order.
    refs_.clear();
    for (auto& h : held_) refs_.push_back(PayloadRef{h.data(), h.size()});
    refs_.insert(refs_.end(), payloads, payloads + n);
    thread_index_.clear();
    n_threads_ = 0;
    held_next_.clear();
    pending_ = false;
    reuse_ = false;
    std::vector<uint32_t> of(refs_.size());
    for (size_t i = 0; i < refs_.size(); ++i) {
        uint32_t tid = payload_tid(refs_[i].data, refs_[i].words);
        auto [it, fresh] = thread_index_.emplace(tid, n_threads_);
        if (fresh) {
            if (n_threads_ == threads_.size()) threads_.emplace_back();
            Thread& th = threads_[n_threads_++];
            th.tid = tid;
            th.stopped = false;
            th.items.clear();
            th.extra.clear();
            th.payload_words = 0;
            th.last_ns = last_ns_[tid];
        }
        of[i] = static_cast<uint32_t>(it->second);
        threads_[it->second].payload_words += refs_[i].words;
    }
    if (n_threads_ == 0) {
        end_cycle_payload(cut);
        return;
    }
    // The thread with the most bytes is streamed; the others are queued first.
    size_t big = 0;
    for (size_t i = 1; i < n_threads_; ++i)
        if (threads_[i].payload_words > threads_[big].payload_words) big = i;
    big_tid_ = threads_[big].tid;
    for (size_t i = 0; i < refs_.size(); ++i)
        if (of[i] != big) decode<false>(refs_[i], threads_[of[i]], cut);
    runs_.clear();
    for (size_t i = 0; i < n_threads_; ++i) {
        if (i == big || threads_[i].items.empty()) continue;
        const Thread& th = threads_[i];
        Run r{th.items.data(), th.items.data() + th.items.size(), &th};
        feed_definitions(r);
        if (r.p != r.end) runs_.push_back(r);
    }
    std::sort(runs_.begin(), runs_.end(), run_before);
    cut_ = cut;
    set_lim();
    for (size_t i = 0; i < refs_.size(); ++i)
        if (of[i] == big) decode<true>(refs_[i], threads_[big], cut);
    if (!runs_.empty()) pop_runs(UINT64_MAX);
    settle_pending();
    end_cycle_payload(cut);
    for (size_t i = 0; i < n_threads_; ++i) {
        last_ns_[threads_[i].tid] = threads_[i].last_ns;
        last_t_ = std::max(last_t_, threads_[i].last_ns);
    }
    held_.swap(held_next_);
}

}  // namespace pmt::preload
