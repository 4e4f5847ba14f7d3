// The writer's cycle: it reads the records it collected from the recording threads
// (thread_records.hpp: fixed-layout words, nanosecond times), orders their events across
// threads as the nanosecond clock readings order them (time, tid, record order), and feeds
// them in that order to the stream encoder (FORMAT.md, "Version 4"): one event
// stream, frees naming their block by (owner thread, seq). It replays the events as it feeds
// them for the exit line and the End chunk (exact peak live bytes, its time in ns, the event
// count as a reader counts it).
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <unordered_map>
#include <vector>

#include "pmt/chunk.hpp"
#include "pmt/format.hpp"
#include "pmt/live.hpp"
#include "pmt/stream_encoder.hpp"

namespace pmt::preload {

// Live heap blocks by address: open addressing, linear probing, backward-shift deletion, at
// most two thirds of the slots used. A slot is 16 bytes: the address with the block's size in
// its top 16 bits (addr | size << 48), and the block's name in the stream (seq << 24 | owner
// thread index) whole, so any owner the format allows (below 2^24) is held in the slot. User
// addresses lie below 2^48 (x86-64, AArch64 with 48-bit virtual addresses). A block larger than
// kMaxSize has the size field kSpilledSize: its size and name are in spilled_. Address
// 0 and addresses from 2^48 on (only a damaged stream or another address layout has them) have
// no slot: they are kept whole in spilled_ (slot kOutside). Those go through out-of-line
// functions.
class LiveBlockTable {
public:
    struct Block {
        uint64_t addr;
        uint64_t size;
        uint64_t ref;  // seq << 24 | owner thread index
    };
    struct Slot {
        uint64_t key;  // addr | size << 48; 0: empty
        uint64_t ref;  // seq << 24 | owner thread index (a kSpilledSize slot: unused)
    };
    static constexpr unsigned kSizeShift = 48;
    static constexpr uint64_t kAddrMask = (uint64_t(1) << kSizeShift) - 1;
    static constexpr uint64_t kSpilledSize = 0xFFFF;        // the size field of a spilled block
    static constexpr uint64_t kMaxSize = kSpilledSize - 1;  // the largest size a slot holds
    static constexpr size_t kOutside = SIZE_MAX;  // the "slot" of address 0 and those >= 2^48
    // Whether addr has slots (else it is kept in spilled_ alone).
    static bool in_slots(uint64_t addr) { return addr - 1 < kAddrMask; }

    LiveBlockTable();
    ~LiveBlockTable();
    LiveBlockTable(const LiveBlockTable&) = delete;
    LiveBlockTable& operator=(const LiveBlockTable&) = delete;
    // The most blocks an array of mask + 1 slots holds: one more makes it grow.
    static size_t limit(size_t mask) { return (mask + 1) * 2 / 3; }
    // The slot of a live addr, or (*live false) the empty slot where it would go.
    size_t find(uint64_t addr, bool* live) const {
        if (__builtin_expect(!in_slots(addr), 0)) return find_outside(addr, live);
        return find_in(s_, mask_, shift_, addr, live);
    }
    // The live block find gave for addr.
    Block at(size_t slot, uint64_t addr) const {
        if (__builtin_expect(slot != kOutside, 1)) {
            const Slot e = s_[slot];
            const uint64_t size = e.key >> kSizeShift;
            if (__builtin_expect(size != kSpilledSize, 1)) return Block{addr, size, e.ref};
        }
        return at_slow(addr);
    }
    // Makes b.addr live in the empty slot find gave for it; the table must not have changed
    // since.
    void insert_at(size_t slot, const Block& b) {
        if (__builtin_expect(slot == kOutside || b.size > kMaxSize, 0)) return insert_slow(slot, b);
        s_[slot] = Slot{b.addr | b.size << kSizeShift, b.ref};
        if (++used_ > limit(mask_)) grow();
    }
    // Removes the live block find gave for addr.
    void erase_at(size_t slot, uint64_t addr) {
        if (__builtin_expect(slot == kOutside || s_[slot].key >> kSizeShift == kSpilledSize, 0))
            return erase_slow(slot, addr);
        erase_in(s_, mask_, shift_, slot);
        --used_;
    }
    // Starts loading the slot where find(addr) begins (the writer looks a few records ahead).
    void prefetch(uint64_t addr) const { __builtin_prefetch(&s_[home(addr)]); }
    size_t size() const { return used_ + outside_; }

    // The probing itself, on an array of mask + 1 slots given explicitly: the member functions
    // use it, and so does WriterCycle::event_run, which keeps the array, mask and shift in
    // registers while it feeds a run of records. The home slot of a nonzero addr, or of a
    // slot's key: the multiplier's low 16 bits are 0, so bits from 2^48 on (the size) do not
    // count (Fibonacci hashing of the 48-bit address); its slot if live, else (*live false) the
    // empty slot where it would go (an addr from 2^48 on is never found live; 0 is found "live"
    // in an empty slot); backward-shift deletion of slot i.
    static size_t home_in(uint64_t key, unsigned shift) {
        return static_cast<size_t>((key * 0x9E3779B97F4B0000ull) >> shift);
    }
    static size_t find_in(const Slot* s, size_t mask, unsigned shift, uint64_t addr, bool* live) {
        for (size_t i = home_in(addr, shift);; i = (i + 1) & mask) {
            const uint64_t k = s[i].key;
            if ((k & kAddrMask) == addr) {
                *live = true;
                return i;
            }
            if (k == 0) {
                *live = false;
                return i;
            }
        }
    }
    static void erase_in(Slot* s, size_t mask, unsigned shift, size_t i) {
        // Move later members of the probe run into the hole when the hole lies on their way
        // from their home slot (their distance from home reaches back to it), so no
        // tombstones are needed.
        for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
            if (s[j].key == 0) break;
            if (((j - home_in(s[j].key, shift)) & mask) >= ((j - i) & mask)) {
                s[i] = s[j];
                i = j;
            }
        }
        s[i] = Slot{0, 0};
    }

private:
    friend class WriterCycle;  // its run of allocs and frees keeps the table's state in locals
    size_t home(uint64_t key) const { return home_in(key, shift_); }
    [[gnu::noinline]] void grow();
    [[gnu::noinline]] size_t find_outside(uint64_t addr, bool* live) const;
    [[gnu::noinline]] Block at_slow(uint64_t addr) const;
    [[gnu::noinline]] void insert_slow(size_t slot, const Block& b);
    [[gnu::noinline]] void erase_slow(size_t slot, uint64_t addr);

    // The slot array: mask_ + 1 slots at s_, inside a mapping of its own (map_).
    struct Mapping {
        void* base;
        size_t bytes;
    };
    // The unit of a large array: its alignment, and how much of it grow() reads at a time.
    static constexpr size_t kGrowChunk = size_t(2) << 20;
    // A zeroed array of n slots (n a power of two), present at once if populate.
    static Slot* map_slots(size_t n, Mapping* m, bool populate);
    static void unmap_slots(const Mapping& m);
    Mapping map_{nullptr, 0};  // set by map_slots in the constructor
    Slot* s_;
    size_t mask_;  // the slot count less one (a power of two less one)
    size_t used_ = 0;
    size_t outside_ = 0;  // blocks of spilled_ with no slot (kOutside)
    unsigned shift_;
    // Each spilled block (kSpilledSize or kOutside) whole, by address.
    std::unordered_map<uint64_t, Block> spilled_;
};

// Where the cycle's chunks go, in file order.
class ChunkSink {
public:
    virtual ~ChunkSink() = default;
    // One stream payload: its column form is the concatenation of pieces[0, n).
    virtual void stream_chunk(const ByteSpan* pieces, size_t n) = 0;
    // The cycle failed (out of memory, a malformed buffer): the trace ends at the last
    // complete chunk. Called once.
    virtual void fail() = 0;
};

// One thread's records as a recording thread hands them over (thread_records.hpp: a header
// word with the tid, then records).
struct PayloadRef {
    const uint64_t* data;
    size_t words;
};

struct Split;
struct RecPosition;

class WriterCycle {
public:
    // 1 MiB: the encoder's columns (kept across payloads) and zstd's input reach about this
    // much. With 4 MiB a short --opt run touched ~1,400 more pages (json_roundtrip: 5,189 page
    // faults against 3,761, ~11 us each on this VM, RSS +4.2 MB, CPU +2-4%); the trace is no
    // larger with 1 MiB (one zstd stream spans the payloads).
    static constexpr size_t kPayloadBytes = 1u << 20;

    // A stream payload is ended once its column form passes payload_bytes. fast_runs false
    // (tests only): every record goes through the general path (feed_alloc, feed_free, ...),
    // never feed_pair, pair_run or event_run, which must give the same bytes and replay.
    explicit WriterCycle(unsigned time_shift = kWriterTimeShift, unsigned tick_shift = kTickShift,
                         size_t payload_bytes = kPayloadBytes, bool fast_runs = true);
    ~WriterCycle();

    // One writer cycle: payloads are the buffers collected after the clock read t_ns (each
    // thread's in record order, nanosecond times). Events timed >= t_ns are held back to the
    // next cycle (copied, not written yet); the last cycle (at exit or exec) holds
    // nothing. Writes the cycle's stream payload(s) to sink and returns the time (ns) up to
    // which events are written. Nothing is thrown: a malformed payload or a failed allocation
    // makes failed() true and calls sink.fail(); from then on nothing is written.
    uint64_t cycle(const PayloadRef* payloads, size_t n, uint64_t t_ns, bool last,
                   ChunkSink& sink) noexcept;
    // Records held back, or encoded but not yet written: the next cycle has work even when it
    // collects nothing.
    bool holding() const { return !held_.empty() || enc_.pending_bytes() != 0; }
    // A cycle ends its payload only once interval_ns have passed since the last one ended (or
    // at the last cycle, or past payload_bytes): a fast program's many short cycles then share
    // one payload, which compresses better (regex: each 64 KiB buffer handed off starts a
    // cycle). 0, the default: every cycle ends its payload.
    void set_payload_interval(uint64_t interval_ns) { payload_interval_ns_ = interval_ns; }

#ifdef PMT_WRITER_RUN_STATS
    // (Test builds only.) Events fed by feed_pair, pair_run and event_run (run_pair: those of
    // event_run's that were PAIRs).
    struct RunStats {
        uint64_t pair = 0, pair_run = 0, event_run = 0, run_pair = 0;
    };
    const RunStats& run_stats() const { return run_stats_; }
#endif
    bool failed() const { return failed_; }
    uint64_t events() const { return events_; }  // every event written so far, as read back
    uint64_t peak_bytes() const { return peak_bytes_; }
    uint64_t peak_time_ns() const { return peak_time_ns_; }
    uint64_t live_bytes() const { return heap_live_ + maps_.live_bytes(); }
    // Allocations at an address still live (its free was not seen): a free was written first.
    uint64_t replaced() const { return replaced_; }

private:
    // One record of a thread that is not streamed, queued to be fed in the global order.
    enum class ItemOp : uint8_t {
        Alloc,
        Free,
        Mmap,
        Munmap,
        Mremap,
        Rss,
        String,
        Location,
        Stack,
        ThreadName,
    };
    struct Item {
        uint64_t t;  // ns (events)
        ItemOp op;
        AllocKind kind;
        uint32_t x;  // Mmap, Mremap: index of the rest in the thread's extra
        uint64_t a, b, c;
    };
    struct Extra {
        uint64_t p, q, r;
    };
    // One thread's part of the cycle.
    struct Thread {
        uint32_t tid = 0;
        bool stopped = false;  // its later records are held back to the next cycle
        std::vector<Item> items;
        std::vector<Extra> extra;
        uint64_t payload_words = 0;
        uint64_t last_ns = 0;  // the latest time of its records: later ones are clamped to it
    };
    // A queued thread's items not yet fed; p is an event.
    struct Run {
        const Item* p;
        const Item* end;
        const Thread* th;
    };
    // The order of two runs' next events: (time, tid).
    static bool run_before(const Run& a, const Run& b) {
        return a.p->t != b.p->t ? a.p->t < b.p->t : a.th->tid < b.th->tid;
    }
    template <bool Direct>
    struct Visitor;

    void run(const PayloadRef* payloads, size_t n, uint64_t cut);
    template <bool Direct>
    void decode(const PayloadRef& p, Thread& th, uint64_t cut);
    RecPosition decode_direct(const uint64_t* p, const uint64_t* end, uint64_t t, Visitor<true>& v);
    void hold(const uint64_t* p, const uint64_t* end, uint32_t tid, const Split* split);

    // Feeding the encoder in the global order (with the replay).
    void set_thread(uint32_t tid) { cur_ = enc_.thread(tid); }
    void free_block(uint64_t ref, AllocKind kind);
    [[noreturn, gnu::cold, gnu::noinline]] static void bad_block();
    [[gnu::noinline]] size_t replace(size_t slot, uint64_t addr);
    void free_table(uint64_t addr, AllocKind kind);
    void feed_alloc(uint32_t tid, AllocKind kind, uint64_t t, uint64_t addr, uint64_t size,
                    uint64_t stack);
    void feed_pair(uint32_t tid, AllocKind kind, uint64_t t, uint64_t addr, uint64_t size,
                   uint64_t stack);
    void feed_free(uint32_t tid, uint64_t t, uint64_t addr, AllocKind kind);
    void pair_run(const uint64_t*& p, const uint64_t* end, uint64_t& t);
    void event_run(const uint64_t*& p, const uint64_t* end, uint64_t& t, uint32_t tid);
    // Whether the PAIR at q (an alloc, its free at q[4]) is followed by another PAIR at the
    // same address (its free at q[10]): a run of them, pair_run's (regex's), which needs no
    // table probes. q[10] must be readable.
    static bool pair_run_follows(const uint64_t* q) { return q[10] == q[4]; }
    // The cheap part of event_run's tests, inline: the record at p (time t) is before the next
    // queued event, the cut and a TICK; the size check is not due.
    bool run_may_start(uint64_t t) const {
        return t < run_gate_ && since_check_ < 255 && !enc_.may_tick(t);
    }
    // The empty slot of blocks_ for a new block at addr (the pending one settled first; a block
    // still live there freed first).
    size_t new_block_slot(uint64_t addr) {
        settle_pending();
        if (reuse_ && addr == reuse_addr_) return reuse_slot_;
        bool live;
        const size_t slot = blocks_.find(addr, &live);
        return __builtin_expect(live, 0) ? replace(slot, addr) : slot;
    }
    // A block's reference (seq << 24 | thread index) must fit 64 bits.
    void check_ref(uint64_t seq) const {
        if (__builtin_expect((seq >> 40 | cur_ >> 24) != 0, 0)) throw std::bad_alloc();
    }
    void feed_map(uint32_t tid, const Event& e);
    void feed_rss(uint32_t tid, uint64_t t, uint64_t bytes);
    void feed_item(const Item& it, const Thread& th);
    void feed_definitions(Run& r);
    void settle_pending() {
        if (!pending_) return;
        pending_ = false;
        reuse_ = false;
        blocks_.insert_at(pending_slot_, pending_block_);
    }
    void grew(uint64_t t) {
        uint64_t live = heap_live_ + maps_.live_bytes();
        if (live > peak_bytes_) {
            peak_bytes_ = live;
            peak_time_ns_ = t;
        }
    }
    // Queued threads' events up to the streamed thread's next event at t.
    void drain(uint64_t t) {
        if (t >= lim_) pop_runs(t);
    }
    void pop_runs(uint64_t t);
    void set_lim();
    void counted() {
        if (++since_check_ >= 256) check_size();
    }
    void check_size();
    void flush();
    void end_cycle_payload(uint64_t cut);

    StreamEncoder enc_;
    const size_t payload_bytes_;
    uint64_t payload_interval_ns_ = 0;
    uint64_t payload_ended_ns_ = 0;  // the cycle's clock reading when a payload last ended
    ChunkSink* sink_ = nullptr;      // this cycle's
    uint32_t cur_ = 0;               // the encoder's current thread index
    unsigned since_check_ = 0;

    std::vector<Thread> threads_;  // this cycle's, [0, n_threads_)
    size_t n_threads_ = 0;
    std::unordered_map<uint32_t, size_t> thread_index_;
    std::unordered_map<uint32_t, uint64_t> last_ns_;  // every thread's, kept as the reader does
    std::vector<std::vector<uint64_t>> held_, held_next_;  // payloads held to the next cycle
    std::vector<PayloadRef> refs_;
    std::vector<Run> runs_;       // queued threads, ordered by their next event (time, tid)
    uint64_t lim_ = UINT64_MAX;   // the streamed thread's event at t goes first iff t < lim_
    uint64_t cut_ = UINT64_MAX;   // this cycle's cut (events at or after it are held)
    uint64_t gate_ = UINT64_MAX;  // min(lim_, cut_), kept by set_lim
    // gate_, or 0 with the fast runs off: the bound a PAIR or event_run's first record must
    // be before (no extra test on the hot path).
    uint64_t run_gate_ = UINT64_MAX;
    const bool fast_runs_;
    uint32_t big_tid_ = 0;  // the streamed thread
    uint64_t last_t_ = 0;   // the latest event time fed

    LiveBlockTable blocks_;
    LiveHeap maps_;  // anonymous mappings (its heap-block side stays unused)
    uint64_t heap_live_ = 0;
    // The block of the last alloc, counted live but not yet in blocks_ (most are freed by the
    // next event and never enter it); the empty slot find gave for it.
    bool pending_ = false;
    size_t pending_slot_ = 0;
    LiveBlockTable::Block pending_block_{0, 0, 0};
    // reuse_: blocks_ has not changed since the pending block at reuse_addr_ was freed, so
    // that address is not live and reuse_slot_ is still the empty slot find gives for it (an
    // allocator hands the block just freed out again: regex's malloc/free pairs, one address).
    bool reuse_ = false;
    uint64_t reuse_addr_ = 0;
    size_t reuse_slot_ = 0;
    uint64_t events_ = 0;
    uint64_t replaced_ = 0;
    uint64_t peak_bytes_ = 0;
    uint64_t peak_time_ns_ = 0;
    bool failed_ = false;
#ifdef PMT_WRITER_RUN_STATS
    RunStats run_stats_;
#endif
};

}  // namespace pmt::preload
