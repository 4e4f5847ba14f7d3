// Checks the writer's cycle (preload/exit_replay.cpp) on random multi-thread event streams cut
// into writer cycles the way the writer cuts them. Each simulated thread stores its records as
// the interposer does (RecordWriter, preload/thread_records.hpp, small buffers handed off when
// full) and, for the reference, the same records as version-2 thread-events payloads:
// - the version-3 trace it writes, read back by TraceReader, delivers exactly the events, in
//   exactly the order, that EventMerger delivers from the nanosecond payloads (released at
//   each cycle's clock reading), plus a free of the old block before each allocation at an
//   address still live; each free names the block allocated at its address (heap addresses
//   are synthetic in version 3), an unknown free keeps its address;
// - its times are multiples of 2^k ns, never decrease, never above the nanosecond time and
//   less than 2^(k+m) ns below it;
// - its own replay (exit line, End chunk) equals LiveHeap on the trace it wrote and on the
//   nanosecond reference (peak time: the reference's exact ns);
// - with its fast runs off (feed_pair, pair_run, event_run never used: every record through the
//   general path) it writes the same bytes and keeps the same replay state, cycle by cycle
//   (Twin): a wrong owner thread index, say, changes the bytes only (a reader resolves a free
//   by its seq). The share of the events the fast runs fed is printed and bounded below;
// - a malformed payload fails the cycle and ends the trace at its last complete chunk.
// Usage: native_exit_replay_check [scenarios]; prints the fast runs' shares and one line, exits 1
// on the first mismatch.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "exit_replay.hpp"
#include "pmt/encoder.hpp"
#include "pmt/live.hpp"
#include "pmt/reader.hpp"
#include "thread_records.hpp"

using namespace pmt;

namespace {

struct Reference final : EventVisitor {
    EventMerger merger{false};
    LiveHeap heap;
    std::vector<Event> seen;
    void on_event(const Event& e) override {
        heap.apply(e);
        seen.push_back(e);
    }
};

constexpr unsigned kShift = 10;
// Tick shifts m: the interposer's, and a small one (a tick within most of the scenarios'
// clock steps).
constexpr unsigned kWriterTick = kTickShift, kSmallTick = 3;

// The writer's output as a trace file image: header, chunks in the file's zstd stream.
struct FileSink final : preload::ChunkSink {
    std::vector<uint8_t> bytes;
    ChunkStream stream{1, 0};
    bool failed = false;
    unsigned tick;
    explicit FileSink(unsigned m) : tick(m) {
        TraceHeader h;
        h.version = kStreamFormatVersion;
        h.time_shift = kShift;
        h.tick_shift = m;
        bytes = encode_file_header(h);
    }
    size_t chunks = 0;
    void stream_chunk(const ByteSpan* pieces, size_t n) override {
        ++chunks;
        ByteSpan c = stream.stream_chunk(pieces, n);
        bytes.insert(bytes.end(), c.data, c.data + c.size);
    }
    void fail() override { failed = true; }
    void end(const preload::WriterCycle& w, uint64_t end_ns) {
        EndSummary s;
        s.end_time_ns = end_ns;
        s.events = w.events();
        s.peak_live_bytes = w.peak_bytes();
        s.peak_time_ns = w.peak_time_ns();
        auto p = end_payload(s);
        append_chunk(bytes, ChunkType::End, Codec::None, p.data(), p.size());
    }
};

bool is_heap(const Event& e) { return e.type == EventType::Alloc || e.type == EventType::Free; }

// Events written, and of them fed by the writer's fast runs (feed_pair, pair_run, event_run),
// per group of runs: a differential test that never enters them proves nothing.
struct Totals {
    uint64_t events = 0, pair = 0, pair_run = 0, event_run = 0, run_pair = 0;
    void add(const preload::WriterCycle& w) {
        events += w.events();
        pair += w.run_stats().pair;
        pair_run += w.run_stats().pair_run;
        event_run += w.run_stats().event_run;
        run_pair += w.run_stats().run_pair;
    }
    double pct(uint64_t n) const { return events ? 100.0 * double(n) / double(events) : 0; }
    // The share of the events each fast run fed is at least its bound (percent).
    bool covers(const char* what, double pair_pct, double pair_run_pct, double event_run_pct,
                double run_pair_pct) const {
        if (pct(pair) >= pair_pct && pct(pair_run) >= pair_run_pct &&
            pct(event_run) >= event_run_pct && pct(run_pair) >= run_pair_pct)
            return true;
        std::printf(
            "%s: the fast runs fed too few events (at least %.1f%%, %.1f%%, %.1f%% (PAIRs "
            "%.1f%%))\n",
            what, pair_pct, pair_run_pct, event_run_pct, run_pair_pct);
        return false;
    }
    void print(const char* what) const {
        std::printf(
            "%s: %llu events, fast runs: pair %.1f%%, pair_run %.1f%%, event_run %.1f%% (PAIRs "
            "%.1f%%)\n",
            what, (unsigned long long)events, pct(pair), pct(pair_run), pct(event_run),
            pct(run_pair));
    }
};

// The writer's cycle twice on the same payloads: `fast` as the writer runs it, `general` with
// its fast runs off (every record through feed_alloc, feed_free, ...). After every cycle both
// must have written the same bytes and hold the same replay state (events, peak and its time,
// live bytes, replaced blocks, records held back), and the same End chunk at the end.
struct Twin {
    preload::WriterCycle fast, general;
    FileSink file, general_file;
    size_t compared = 0;  // bytes of file found equal so far
    bool ok = true;
    std::string what;

    Twin(const std::string& name, unsigned tick,
         size_t payload = preload::WriterCycle::kPayloadBytes)
        : fast(kShift, tick, payload, true),
          general(kShift, tick, payload, false),
          file(tick),
          general_file(tick),
          what(name) {}
    void set_payload_interval(uint64_t ns) {
        fast.set_payload_interval(ns);
        general.set_payload_interval(ns);
    }
    uint64_t cycle(const preload::PayloadRef* refs, size_t n, uint64_t t, bool last) {
        const uint64_t a = fast.cycle(refs, n, t, last, file);
        const uint64_t b = general.cycle(refs, n, t, last, general_file);
        if (ok && a != b) {
            std::printf("%s: fast runs on/off: cycle returned %llu/%llu\n", what.c_str(),
                        (unsigned long long)a, (unsigned long long)b);
            ok = false;
        }
        return a;
    }
    // The file images and the two cycles' state agree (so far).
    bool same() {
        if (!ok) return false;
        const preload::WriterCycle &a = fast, &b = general;
        if (a.failed() != b.failed() || file.failed != general_file.failed ||
            a.events() != b.events() || a.peak_bytes() != b.peak_bytes() ||
            a.peak_time_ns() != b.peak_time_ns() || a.live_bytes() != b.live_bytes() ||
            a.replaced() != b.replaced() || a.holding() != b.holding()) {
            std::printf(
                "%s: fast runs on/off: failed %d/%d events %llu/%llu peak %llu/%llu at %llu/%llu "
                "live %llu/%llu replaced %llu/%llu holding %d/%d\n",
                what.c_str(), a.failed(), b.failed(), (unsigned long long)a.events(),
                (unsigned long long)b.events(), (unsigned long long)a.peak_bytes(),
                (unsigned long long)b.peak_bytes(), (unsigned long long)a.peak_time_ns(),
                (unsigned long long)b.peak_time_ns(), (unsigned long long)a.live_bytes(),
                (unsigned long long)b.live_bytes(), (unsigned long long)a.replaced(),
                (unsigned long long)b.replaced(), a.holding(), b.holding());
            return ok = false;
        }
        const std::vector<uint8_t>&x = file.bytes, &y = general_file.bytes;
        const size_t n = std::min(x.size(), y.size());
        for (size_t i = compared; i < n; ++i) {
            if (x[i] != y[i]) {
                std::printf(
                    "%s: fast runs on/off: trace bytes differ at offset %zu (%zu/%zu bytes)\n",
                    what.c_str(), i, x.size(), y.size());
                return ok = false;
            }
        }
        if (x.size() != y.size()) {
            std::printf("%s: fast runs on/off: trace of %zu/%zu bytes\n", what.c_str(), x.size(),
                        y.size());
            return ok = false;
        }
        compared = n;
        return true;
    }
    // The last cycle, the End chunks, and the whole images compared.
    bool end(const preload::PayloadRef* refs, size_t n, uint64_t t, Totals& totals) {
        const uint64_t end_ns = cycle(refs, n, t, true);
        file.end(fast, end_ns);
        general_file.end(general, end_ns);
        totals.add(fast);
        const auto& off = general.run_stats();
        if (off.pair + off.pair_run + off.event_run != 0) {
            std::printf("%s: the fast runs fed %llu events with them off\n", what.c_str(),
                        (unsigned long long)(off.pair + off.pair_run + off.event_run));
            return ok = false;
        }
        return same();
    }
};

// Reads the image back; compares with the nanosecond reference event by event.
bool check_file(const char* what, FileSink& file, const Reference& ref,
                const preload::WriterCycle& fast) {
    std::string path = "/tmp/pmt-exit-replay-" + std::to_string(getpid()) + ".pmt";
    {
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(file.bytes.data()),
                static_cast<std::streamsize>(file.bytes.size()));
    }
    Reference got;
    try {
        TraceReader r(path);
        r.read(got);
        if (r.truncated() || !r.has_end() || r.end().events != got.seen.size()) {
            std::printf("%s: read back truncated or with %llu events in the End chunk\n", what,
                        (unsigned long long)(r.has_end() ? r.end().events : 0));
            unlink(path.c_str());
            return false;
        }
    } catch (const std::exception& e) {
        std::printf("%s: %s\n", what, e.what());
        unlink(path.c_str());
        return false;
    }
    unlink(path.c_str());
    auto differs = [&](size_t i, size_t j, const char* why) {
        const Event& a = got.seen[j];
        const Event& b = ref.seen[i];
        std::printf(
            "%s: event %zu (read back %zu) differs (%s): tid %u/%u type %d/%d addr %llx/%llx "
            "at %llu (ns %llu) kind %d/%d size %llu/%llu\n",
            what, i, j, why, a.tid, b.tid, int(a.type), int(b.type), (unsigned long long)a.addr,
            (unsigned long long)b.addr, (unsigned long long)a.time_ns,
            (unsigned long long)b.time_ns, int(a.kind), int(b.kind), (unsigned long long)a.size,
            (unsigned long long)b.size);
        return false;
    };
    const uint64_t below = uint64_t(1) << (kShift + file.tick);
    std::unordered_map<uint64_t, uint64_t> block;  // reference address -> synthetic address
    std::unordered_set<uint64_t> synthetic;        // block's values
    uint64_t replaced = 0;
    size_t j = 0;
    for (size_t i = 0; i < ref.seen.size(); ++i, ++j) {
        const Event& b = ref.seen[i];
        if (j >= got.seen.size()) return differs(i, got.seen.size() - 1, "missing");
        if (b.type == EventType::Alloc && block.count(b.addr)) {
            // Its free was not seen: the writer frees the old block first.
            const Event& f = got.seen[j];
            if (j + 1 >= got.seen.size() || f.type != EventType::Free ||
                f.kind != AllocKind::Malloc || f.tid != b.tid || f.addr != block[b.addr] ||
                f.time_ns != got.seen[j + 1].time_ns)
                return differs(i, j, "replaced block's free");
            synthetic.erase(block[b.addr]);
            block.erase(b.addr);
            ++replaced;
            ++j;
        }
        if (j >= got.seen.size()) return differs(i, got.seen.size() - 1, "missing");
        const Event& a = got.seen[j];
        bool same =
            a.type == b.type && a.tid == b.tid &&
            (b.type == EventType::Free || (a.size == b.size && a.stack_id == b.stack_id)) &&
            a.old_addr == b.old_addr && a.old_size == b.old_size &&
            // A free's kind: its group, as the stream keeps it (a domain realloc's free half
            // reads back as Realloc's)
            (!is_heap(a) ||
             (b.type == EventType::Free ? op3_free_group(a.kind) == op3_free_group(b.kind)
                                        : a.kind == b.kind)) &&
            (a.type != EventType::Mmap || (a.prot == b.prot && a.flags == b.flags && a.fd == b.fd));
        if (!same) return differs(i, j, "event");
        if (b.type == EventType::Alloc) {
            if (!(a.addr >> 63)) return differs(i, j, "not a synthetic address");
            if (!synthetic.insert(a.addr).second) return differs(i, j, "synthetic address reused");
            block[b.addr] = a.addr;
        } else if (b.type == EventType::Free) {
            auto it = block.find(b.addr);
            if (it != block.end() ? a.addr != it->second : a.addr != b.addr)
                return differs(i, j, "freed block");
            if (it != block.end()) {
                synthetic.erase(it->second);
                block.erase(it);
            }
        } else if (a.addr != b.addr) {
            return differs(i, j, "mapping address");
        }
        bool timed = (a.time_ns & ((1u << kShift) - 1)) == 0 && a.time_ns <= b.time_ns &&
                     b.time_ns - a.time_ns < below &&
                     (j == 0 || a.time_ns >= got.seen[j - 1].time_ns);
        if (!timed) return differs(i, j, "time");
    }
    if (j != got.seen.size()) return differs(ref.seen.size() - 1, j, "extra events");
    if (fast.failed() || file.failed || fast.events() != got.seen.size() ||
        fast.replaced() != replaced || fast.peak_bytes() != got.heap.peak_bytes() ||
        fast.peak_time_ns() != ref.heap.peak_time_ns() ||
        fast.live_bytes() != got.heap.live_bytes() ||
        got.heap.peak_bytes() != ref.heap.peak_bytes() || got.heap.replaced_live() != 0) {
        std::printf(
            "%s: events %llu/%zu replaced %llu/%llu peak %llu/%llu (ns trace %llu) at "
            "%llu (ns trace %llu)\n",
            what, (unsigned long long)fast.events(), got.seen.size(),
            (unsigned long long)fast.replaced(), (unsigned long long)replaced,
            (unsigned long long)fast.peak_bytes(), (unsigned long long)got.heap.peak_bytes(),
            (unsigned long long)ref.heap.peak_bytes(), (unsigned long long)fast.peak_time_ns(),
            (unsigned long long)ref.heap.peak_time_ns());
        return false;
    }
    return true;
}

// One simulated thread: its record writer over the buffer it fills, its full buffers, and
// the same records as one version-2 payload per cycle for the reference.
struct SimThread {
    uint32_t tid;
    bool rss_only;
    std::vector<uint64_t> buf;
    preload::RecordWriter rec;
    std::vector<std::vector<uint64_t>> full;
    std::vector<uint8_t> ref_buf;
    RecordEncoder ref;
    uint64_t last_t = 0;  // the latest time recorded: the base of the next reference payload
};

// A cycle's collection: the writer's payloads and the reference's.
struct Collected {
    std::vector<std::vector<uint64_t>> payloads;
    std::vector<std::vector<uint8_t>> reference;
};

struct Scenario {
    std::mt19937_64 rng;
    std::vector<SimThread> threads;
    std::vector<uint64_t> live;  // addresses we believe live (frees mostly pick these)
    uint64_t clock = 0;
    size_t capacity;  // words
    char name[64] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    // Bursts: now and then one thread's long run of allocs and frees (burst()).
    bool bursts;
    std::vector<uint64_t> run_live;  // blocks the bursts allocated, believed live
    uint64_t run_next = 0x300000000000;

    explicit Scenario(uint64_t seed) : rng(seed), bursts(seed / 7 % 3 != 0) {
        size_t n = 1 + rng() % 4;
        capacity = 16 + rng() % 512;
        threads.resize(n + 1);
        for (size_t i = 0; i <= n; ++i) {
            SimThread& t = threads[i];
            // Distinct tids (i < 5), often equal times: ties broken by tid.
            t.tid = static_cast<uint32_t>(100 + rng() % 50 * 5 + i);
            t.rss_only = i == n;
            t.buf.resize(capacity);
            t.rec.reset(t.buf.data(), capacity, t.tid);
            t.ref_buf.resize(1 << 20);
            t.ref.reset(t.ref_buf.data(), t.ref_buf.size(), t.tid, 0);
        }
    }
    uint64_t pick(uint64_t n) { return rng() % n; }

    // f(writer) stores one record in either form; its arguments are fixed before.
    template <class F>
    void emit(SimThread& t, F&& f) {
        if (!f(t.ref)) std::abort();
        if (f(t.rec)) return;
        t.full.emplace_back(t.rec.data(), t.rec.data() + t.rec.words());
        t.rec.reset(t.buf.data(), capacity, t.tid);
        if (!f(t.rec)) std::abort();
    }

    // Heap kinds of an alloc record: every one but the reallocs'.
    AllocKind alloc_kind() {
        static constexpr AllocKind kAllocs[] = {
            AllocKind::Malloc,         AllocKind::Calloc,        AllocKind::PosixMemalign,
            AllocKind::AlignedAlloc,   AllocKind::Memalign,      AllocKind::Valloc,
            AllocKind::Pvalloc,        AllocKind::PyMemMalloc,   AllocKind::PyMemCalloc,
            AllocKind::PyObjectMalloc, AllocKind::PyObjectCalloc};
        return pick(2) ? AllocKind::Malloc : kAllocs[pick(std::size(kAllocs))];
    }

    // One thread's run of allocs and frees, as the writer's event_run and pair_run take them:
    // new blocks at fresh addresses (some just below 2^48, a few from 2^48 on), sizes mostly
    // small, some around the table slot's 16 bits (0xFFFD-0x1FFFF: spilled), frees of blocks
    // any thread's bursts allocated; now and then a PAIR (a few at one address), a realloc, a
    // free of an unknown block, an alloc at a live address, an RSS sample. Times a few ns apart,
    // now and then a jump (a TICK, or the cycle's cut, within the run).
    void burst(SimThread& t) {
        uint64_t now = clock;
        auto fresh = [&]() -> uint64_t {
            run_next += 16 * (1 + pick(4));
            switch (pick(40)) {
                case 0:
                    return (uint64_t(1) << 48) - 16 * (1 + pick(256));
                case 1:
                    return (uint64_t(1) << 48) + (run_next & 0xFFFFFFF);
                default:
                    return run_next;
            }
        };
        auto size_of = [&]() -> uint64_t {
            switch (pick(16)) {
                case 0:
                    return 0xFFFD + pick(4);
                case 1:
                    return 0xFFFD + pick(0x1FFFF - 0xFFFD + 1);
                case 2:
                    return pick(2) ? 0x1FFFF : pick(2);
                default:
                    return 1 + pick(3000);
            }
        };
        auto take = [&]() {  // a live block of the bursts, forgotten
            const size_t i = pick(run_live.size());
            const uint64_t a = run_live[i];
            run_live[i] = run_live.back();
            run_live.pop_back();
            return a;
        };
        for (uint64_t k = 8 + pick(pick(4) ? 120 : 600); k > 0; --k) {
            if (pick(3) == 0) now += pick(40);
            if (pick(150) == 0) now += 4096 * (1 + pick(4));
            const uint64_t r = pick(100);
            const uint64_t stack = pick(6);
            if (r < 48 || run_live.empty()) {
                const uint64_t a = fresh(), size = size_of();
                const AllocKind kind = alloc_kind();
                emit(t, [&](auto& e) { return e.alloc(kind, now, a, size, stack); });
                run_live.push_back(a);
            } else if (r < 92) {
                const uint64_t a = take();
                emit(t, [&](auto& e) { return e.free(now, a); });
            } else if (r < 95) {  // PAIRs, a few at one address
                const uint64_t a = fresh();
                for (uint64_t j = 1 + (pick(2) ? 0 : pick(6)); j > 0; --j) {
                    const uint64_t size = size_of();
                    const AllocKind kind = alloc_kind();
                    emit(t, [&](auto& e) { return e.alloc(kind, now, a, size, stack); });
                    if (pick(4) == 0) now += pick(50);  // the free later than the alloc
                    emit(t, [&](auto& e) { return e.free(now, a); });
                }
            } else if (r < 97) {  // realloc of a live block to a fresh address, or in place
                static constexpr AllocKind kReallocs[] = {
                    AllocKind::Realloc, AllocKind::ReallocArray, AllocKind::PyMemRealloc,
                    AllocKind::PyObjectRealloc};
                const AllocKind kind = kReallocs[pick(4)];
                const uint64_t old = take(), a = pick(2) ? old : fresh(), size = size_of();
                emit(t, [&](auto& e) { return e.realloc(kind, now, now, old, a, size, stack); });
                run_live.push_back(a);
            } else if (r < 98) {  // never allocated (or freed already)
                const uint64_t a = fresh();
                emit(t, [&](auto& e) { return e.free(now, a); });
            } else if (r < 99) {  // an alloc at an address still live: the old block replaced
                const uint64_t a = run_live[pick(run_live.size())], size = size_of();
                const AllocKind kind = alloc_kind();
                emit(t, [&](auto& e) { return e.alloc(kind, now, a, size, stack); });
            } else {
                const uint64_t bytes = pick(1 << 20);
                emit(t, [&](auto& e) { return e.rss(now, bytes); });
            }
        }
        t.last_t = std::max(t.last_t, now);
        clock = std::max(clock, now);
    }

    void step() {
        clock += pick(3) * 4096 + pick(2) * 100;  // many equal (quantized) times
        SimThread& t = threads[pick(threads.size())];
        if (bursts && !t.rss_only && pick(30) == 0) {
            burst(t);
            return;
        }
        uint64_t now = clock;
        t.last_t = std::max(t.last_t, now);
        if (t.rss_only) {
            uint64_t bytes = pick(1 << 20);
            emit(t, [&](auto& e) { return e.rss(now, bytes); });
            return;
        }
        // A small address pool: reuse, replaced blocks; a few addresses of 57 bits or more
        // (the records' wide forms), a few from 2^48 on and a few just below (the writer's
        // table holds 48-bit addresses; the others live outside its array).
        const uint64_t base = pick(30) == 0   ? 0xFE00000000000000
                              : pick(30) == 0 ? uint64_t(1) << 48
                              : pick(30) == 0 ? (uint64_t(1) << 48) - 64 * 16
                                              : 0x10000;
        uint64_t a = base + pick(64) * 16;
        // Sizes: mostly small; a few at and past the 16 bits the table's slot holds.
        auto size_of = [&](uint64_t most) {
            switch (pick(40)) {
                case 0:
                    return uint64_t(0xFFFE) + pick(3);
                case 1:
                    return uint64_t(1) << (16 + pick(24));
                case 2:
                    return (uint64_t(1) << 40) + pick(9);
                default:
                    return 1 + pick(most);
            }
        };
        // Heap kinds: C's and Python's allocator domains' (9-14).
        static constexpr AllocKind kAllocs[] = {
            AllocKind::Malloc,      AllocKind::Calloc,         AllocKind::PyMemMalloc,
            AllocKind::PyMemCalloc, AllocKind::PyObjectMalloc, AllocKind::PyObjectCalloc};
        static constexpr AllocKind kReallocs[] = {AllocKind::Realloc, AllocKind::ReallocArray,
                                                  AllocKind::PyMemRealloc,
                                                  AllocKind::PyObjectRealloc};
        uint64_t m = 0x7f0000000000 + pick(16) * 4096;
        switch (pick(15)) {
            case 0:
            case 1:
            case 2:
            case 3: {
                uint64_t size = size_of(5000), stack = pick(9);
                const AllocKind kind = pick(2) ? AllocKind::Malloc : kAllocs[pick(6)];
                emit(t, [&](auto& e) { return e.alloc(kind, now, a, size, stack); });
                live.push_back(a);
                break;
            }
            case 4:
            case 5:
            case 6: {
                uint64_t f = live.empty() || pick(8) == 0 ? a : live[pick(live.size())];
                emit(t, [&](auto& e) { return e.free(now, f); });
                break;
            }
            case 7: {
                uint64_t old = live.empty() || pick(4) == 0 ? 0 : live[pick(live.size())];
                uint64_t n = pick(5) == 0 ? 0 : size_of(9000);
                uint64_t after = now + pick(2) * 4096;  // later records may read earlier
                AllocKind kind = kReallocs[pick(4)];
                emit(t, [&](auto& e) { return e.realloc(kind, now, after, old, n ? a : 0, n, 1); });
                t.last_t = std::max(t.last_t, after);
                if (n) live.push_back(a);
                break;
            }
            case 8: {
                uint64_t len = 4096 * (1 + pick(8)), flags = pick(3) ? 0x22 : 0x2;
                emit(t, [&](auto& e) { return e.mmap(now, m, len, 3, flags, -1, 2); });
                break;
            }
            case 9: {
                uint64_t at = m + pick(4) * 4096, len = 4096 * (1 + pick(4));
                emit(t, [&](auto& e) { return e.munmap(now, at, len); });
                break;
            }
            case 10: {
                uint64_t old_len = 4096 * (1 + pick(4)), to = m + pick(8) * 4096,
                         len = 4096 * (1 + pick(8)), stack = pick(2);
                emit(t, [&](auto& e) { return e.mremap(now, now, m, old_len, to, len, stack); });
                break;
            }
            case 11: {  // definitions: a string of any length (padding), a location
                uint64_t id = 1 + pick(100), n = pick(40), f = pick(50), l = pick(100000);
                const char* text = name + pick(20);
                emit(t, [&](auto& e) { return e.string(id, text, n); });
                emit(t, [&](auto& e) { return e.location(id, f, f + 1, l); });
                break;
            }
            case 14: {  // a run of malloc/free pairs at one address (the writer's PAIR runs)
                uint64_t b = pick(3) ? a : live.empty() ? 0 : live[pick(live.size())];
                for (uint64_t k = 1 + pick(40); k > 0; --k) {
                    uint64_t size = size_of(3000), stack = pick(9), at = now;
                    const AllocKind kind = pick(2) ? AllocKind::Malloc : kAllocs[pick(6)];
                    emit(t, [&](auto& e) { return e.alloc(kind, at, b, size, stack); });
                    emit(t, [&](auto& e) { return e.free(at, b); });
                    if (pick(8) == 0) now += 4096 * (1 + pick(64));  // TICKs, cuts between
                }
                t.last_t = std::max(t.last_t, now);
                clock = std::max(clock, now);
                break;
            }
            default: {
                uint64_t id = 1 + pick(100), parent = pick(100), loc = 1 + pick(100);
                emit(t, [&](auto& e) { return e.stack(id, parent, loc); });
            }
        }
    }

    // The writer's cycle: take every thread's full buffers and its current one.
    Collected collect() {
        Collected out;
        for (SimThread& t : threads) {
            for (auto& b : t.full) out.payloads.push_back(std::move(b));
            t.full.clear();
            if (!t.rec.empty()) {
                out.payloads.emplace_back(t.rec.data(), t.rec.data() + t.rec.words());
                t.rec.reset(t.buf.data(), capacity, t.tid);
            }
            if (!t.ref.empty()) {
                out.reference.emplace_back(t.ref.data(), t.ref.data() + t.ref.size());
                t.ref.reset(t.ref_buf.data(), t.ref_buf.size(), t.tid, t.last_t);
            }
        }
        return out;
    }
};

bool run(uint64_t seed, Totals& totals) {
    Scenario s(seed);
    Reference ref;
    const unsigned tick = seed % 3 == 0 ? kWriterTick : kSmallTick;
    std::string what = "seed " + std::to_string(seed);
    // Small payloads on some: the stream's state carries from payload to payload.
    Twin twin(what, tick, seed % 2 ? 200 : preload::WriterCycle::kPayloadBytes);
    preload::WriterCycle& fast = twin.fast;
    FileSink& file = twin.file;
    // Some scenarios keep every cycle's payload open until the last (an interval longer than
    // the run, as a fast program's short cycles within one interval): the stream's state and
    // the encoder's held ALLOC carry across cycles, and all is written at the end.
    const bool deferred = seed % 4 == 2;
    if (deferred) twin.set_payload_interval(UINT64_MAX / 2);
    int cycles = 1 + static_cast<int>(s.pick(12));
    for (int c = 0; c < cycles; ++c) {
        int steps = static_cast<int>(s.pick(400));
        for (int i = 0; i < steps; ++i) s.step();
        uint64_t t = s.clock + s.pick(2) * 4096;  // the clock reading, then late records
        int late = static_cast<int>(s.pick(6));
        for (int i = 0; i < late; ++i) s.step();
        Collected bufs = s.collect();
        s.clock = std::max(s.clock, t);  // later records are timed >= t (the Epoch promise)
        std::vector<preload::PayloadRef> refs;
        for (auto& b : bufs.reference) ref.merger.add_thread_payload(b.data(), b.size());
        for (auto& b : bufs.payloads) refs.push_back({b.data(), b.size()});
        ref.merger.release_before(t, ref);
        twin.cycle(refs.data(), refs.size(), t, false);
        if (!twin.same()) return false;
        if (fast.failed() || fast.live_bytes() != ref.heap.live_bytes()) {
            std::printf("seed %llu cycle %d: live %llu, reference %llu%s\n",
                        (unsigned long long)seed, c, (unsigned long long)fast.live_bytes(),
                        (unsigned long long)ref.heap.live_bytes(),
                        fast.failed() ? " (failed)" : "");
            return false;
        }
    }
    if (deferred && file.chunks != 0) {
        std::printf("seed %llu: %zu payloads written before the interval passed\n",
                    (unsigned long long)seed, file.chunks);
        return false;
    }
    ref.merger.release_before(UINT64_MAX, ref);
    if (!twin.end(nullptr, 0, s.clock, totals)) return false;
    return check_file(what.c_str(), file, ref, fast);
}

// Many live blocks: the table grows and deletes across probe runs (and within event_run's).
bool run_many_blocks(Totals& totals) {
    std::vector<uint64_t> buf(1 << 19);
    preload::RecordWriter rec;
    rec.reset(buf.data(), buf.size(), 7);
    std::vector<uint8_t> ref_buf(1 << 20);
    RecordEncoder enc;
    enc.reset(ref_buf.data(), ref_buf.size(), 7, 0);
    std::mt19937_64 rng(42);
    std::vector<uint64_t> live;
    uint64_t t = 0;
    for (int i = 0; i < 60000; ++i) {
        t += 64;  // a TICK every 128 events: event_run runs on until the table must grow
        bool ok;
        if (live.empty() || rng() % 3) {
            uint64_t a = 0x100000 + (rng() % 200000) * 16;
            uint64_t size = 1 + rng() % 100;
            ok = enc.alloc(AllocKind::Malloc, t, a, size, 0) &&
                 rec.alloc(AllocKind::Malloc, t, a, size, 0);
            live.push_back(a);
        } else {
            size_t k = rng() % live.size();
            ok = enc.free(t, live[k]) && rec.free(t, live[k]);
            live[k] = live.back();
            live.pop_back();
        }
        if (!ok) std::abort();
    }
    Reference ref;
    Twin twin("many blocks", kSmallTick, 4096);  // many payloads
    preload::WriterCycle& fast = twin.fast;
    FileSink& file = twin.file;
    ref.merger.add_thread_payload(enc.data(), enc.size());
    ref.merger.release_before(UINT64_MAX, ref);
    preload::PayloadRef r{rec.data(), rec.words()};
    if (!twin.end(&r, 1, t, totals)) return false;
    if (fast.live_bytes() != ref.heap.live_bytes()) {
        std::printf("many blocks: live %llu/%llu\n", (unsigned long long)fast.live_bytes(),
                    (unsigned long long)ref.heap.live_bytes());
        return false;
    }
    return check_file("many blocks", file, ref, fast);
}

// Threads one after another, more than 2^16 of them (owner thread indexes past 255 and 65,535):
// each allocates a few blocks (every alloc kind), some large (0xFFFD-0x1FFFF: spilled) or at
// addresses from 2^48 on, and frees blocks of earlier threads; one in 50, and the last 200,
// make a long run of them (the writer's event_run, with few TICKs), now and then a few PAIRs at
// one address. Each freed block must read back exactly (check_file). A reader resolves a free by
// its seq, so a wrong owner index other than the freeing thread's changes the bytes only: the
// writer with its fast runs off must write the same bytes (Twin).
bool run_many_threads(Totals& totals) {
    std::mt19937_64 rng(7);
    Reference ref;
    Twin twin("many threads", kWriterTick);  // few TICKs: event_run runs on
    preload::WriterCycle& fast = twin.fast;
    FileSink& file = twin.file;
    std::vector<uint64_t> buf(512);
    std::vector<uint8_t> ref_buf(4096);
    std::vector<std::vector<uint64_t>> payloads;
    std::vector<uint64_t> live;
    uint64_t t = 0, next = 0x100000;
    constexpr uint32_t kThreads = 66000;
    static constexpr AllocKind kAllocs[] = {
        AllocKind::Malloc,         AllocKind::Calloc,        AllocKind::PosixMemalign,
        AllocKind::AlignedAlloc,   AllocKind::Memalign,      AllocKind::Valloc,
        AllocKind::Pvalloc,        AllocKind::PyMemMalloc,   AllocKind::PyMemCalloc,
        AllocKind::PyObjectMalloc, AllocKind::PyObjectCalloc};
    for (uint32_t k = 0; k < kThreads; ++k) {
        const uint32_t tid = 1000 + k;
        preload::RecordWriter rec;
        rec.reset(buf.data(), buf.size(), tid);
        RecordEncoder enc;
        enc.reset(ref_buf.data(), ref_buf.size(), tid, t);
        const bool many = k % 50 == 0 || k + 200 >= kThreads;
        for (uint64_t e = many ? 30 + rng() % 30 : 1 + rng() % 4; e > 0; --e) {
            t += 1024;
            bool ok = true;
            const uint64_t r = rng() % 40;
            if (many && r == 0) {  // PAIRs at one address
                const uint64_t a = (next += 16);
                for (uint64_t j = 1 + rng() % 4; j > 0; --j) {
                    const uint64_t size = 1 + rng() % 100;
                    const AllocKind kind = kAllocs[rng() % std::size(kAllocs)];
                    ok = ok && enc.alloc(kind, t, a, size, 0) && rec.alloc(kind, t, a, size, 0) &&
                         enc.free(t, a) && rec.free(t, a);
                }
            } else if (live.empty() || rng() % 5 < 3) {
                uint64_t a = (next += 16 * (1 + rng() % 4));
                if (rng() % 50 == 0) a |= uint64_t(1) << 48;
                const uint64_t size = r == 1   ? 0xFFFE + rng() % 3
                                      : r == 2 ? 0xFFFD + rng() % (0x1FFFF - 0xFFFD + 1)
                                               : 1 + rng() % 100;
                const uint64_t stack = rng() % 4;
                const AllocKind kind =
                    rng() % 2 ? AllocKind::Malloc : kAllocs[rng() % std::size(kAllocs)];
                ok = enc.alloc(kind, t, a, size, stack) && rec.alloc(kind, t, a, size, stack);
                live.push_back(a);
            } else {
                const size_t i = rng() % live.size();
                ok = enc.free(t, live[i]) && rec.free(t, live[i]);
                live[i] = live.back();
                live.pop_back();
            }
            if (!ok) std::abort();
        }
        ref.merger.add_thread_payload(enc.data(), enc.size());
        payloads.emplace_back(rec.data(), rec.data() + rec.words());
        if (many || k % 2000 == 1999) {  // a writer cycle (a long run: its streamed thread)
            std::vector<preload::PayloadRef> refs;
            for (auto& p : payloads) refs.push_back({p.data(), p.size()});
            ref.merger.release_before(t + 1, ref);
            twin.cycle(refs.data(), refs.size(), t + 1, false);
            payloads.clear();
            if (!twin.same()) return false;
            if (fast.failed() || fast.live_bytes() != ref.heap.live_bytes()) {
                std::printf("many threads: thread %u: live %llu, reference %llu%s\n", k,
                            (unsigned long long)fast.live_bytes(),
                            (unsigned long long)ref.heap.live_bytes(),
                            fast.failed() ? " (failed)" : "");
                return false;
            }
        }
    }
    std::vector<preload::PayloadRef> refs;
    for (auto& p : payloads) refs.push_back({p.data(), p.size()});
    ref.merger.release_before(UINT64_MAX, ref);
    if (!twin.end(refs.data(), refs.size(), t + 1, totals)) return false;
    return check_file("many threads", file, ref, fast);
}

// A malformed payload (an unknown tag, a record cut short, no header) fails the cycle: the
// sink is told once, nothing more is written, and the file reads as truncated after the last
// complete chunk (the first cycle's events, exactly).
bool run_malformed(int how) {
    std::vector<uint64_t> buf(64), bad(64);
    preload::RecordWriter rec;
    rec.reset(buf.data(), buf.size(), 7);
    rec.alloc(AllocKind::Malloc, 1000, 0x1000, 10, 0);
    rec.alloc(AllocKind::Calloc, 1500, 0x2000, 20, 0);
    rec.free(2000, 0x1000);
    Twin twin("malformed " + std::to_string(how), kSmallTick);
    preload::WriterCycle& fast = twin.fast;
    FileSink& file = twin.file;
    preload::PayloadRef r{rec.data(), rec.words()};
    twin.cycle(&r, 1, 5000, false);
    preload::RecordWriter rec2;
    rec2.reset(bad.data(), bad.size(), 7);
    rec2.free(7000, 0x2000);
    std::vector<uint64_t> broken(rec2.data(), rec2.data() + rec2.words());
    if (how == 0) {
        broken.push_back(uint64_t(0x7F) << preload::rec::kTagShift);  // no such tag
    } else if (how == 1) {
        broken.push_back(preload::rec::tag(preload::rec::kAlloc) | 0x3000);  // [tag|addr, t]
        broken.push_back(8000);
    } else {
        broken.erase(broken.begin());  // the free's first word where the header should be
    }
    preload::PayloadRef b{broken.data(), broken.size()};
    twin.cycle(&b, 1, 10000, false);
    size_t written = file.bytes.size();
    twin.cycle(&r, 1, 20000, true);
    if (!twin.same()) return false;
    if (!fast.failed() || !file.failed || file.bytes.size() != written) {
        std::printf("malformed %d: failed %d, sink told %d, %zu bytes after the failure\n", how,
                    fast.failed(), file.failed, file.bytes.size() - written);
        return false;
    }
    std::string path = "/tmp/pmt-exit-replay-" + std::to_string(getpid()) + ".pmt";
    {
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(file.bytes.data()),
                static_cast<std::streamsize>(file.bytes.size()));
    }
    Reference got;
    bool truncated = false;
    try {
        TraceReader tr(path);
        tr.read(got);
        truncated = tr.truncated();
    } catch (const std::exception& e) {
        std::printf("malformed %d: %s\n", how, e.what());
    }
    unlink(path.c_str());
    if (!truncated || got.seen.size() != 3 || got.heap.live_bytes() != 20) {
        std::printf("malformed %d: truncated %d, %zu events read, live %llu\n", how, truncated,
                    got.seen.size(), (unsigned long long)got.heap.live_bytes());
        return false;
    }
    return true;
}

}  // namespace

// The writer's table of live blocks against a map: random inserts, erases and lookups, with
// sizes and addresses its 16-byte slots hold and the ones they do not (sizes from 0xFFFF on,
// address 0, addresses from 2^48 on: kept aside), addresses anywhere below 2^48 (the slot's
// size bits above them), owner thread indexes across 8, 16 and 24 bits and seqs up to 2^40 - 1,
// and enough blocks to grow it several times, the last two doublings (from 4 and 8 MiB of
// slots, ~400,000 blocks) a 2 MiB chunk at a time. Every live block must come back with exactly
// its size and name.
bool run_table() {
    std::mt19937_64 rng(99);
    auto pick = [&](uint64_t n) { return rng() % n; };
    preload::LiveBlockTable table;
    std::unordered_map<uint64_t, preload::LiveBlockTable::Block> ref;
    std::vector<uint64_t> addrs;
    for (int op = 0; op < 1050000; ++op) {
        const bool add = op < 800000 ? pick(4) != 0 : pick(2) != 0;
        uint64_t a;
        if (add || addrs.empty())
            a = pick(1000) == 0 ? 0
                : pick(50) == 0 ? ~uint64_t(0) - pick(64) * 16
                : pick(50) == 0 ? (uint64_t(1) << 48) - 16 * (1 + pick(64))
                : pick(50) == 0 ? (uint64_t(1) << 48) + 16 * pick(64)
                : pick(20) == 0 ? 16 * (1 + pick((uint64_t(1) << 44) - 1))
                                : 16 * (1 + pick(1 << 22));
        else
            a = addrs[pick(addrs.size())];
        bool live;
        const size_t slot = table.find(a, &live);
        auto it = ref.find(a);
        if (live != (it != ref.end())) {
            std::printf("table: op %d addr %llx live %d, reference %d\n", op, (unsigned long long)a,
                        live, it != ref.end());
            return false;
        }
        if (live) {
            const preload::LiveBlockTable::Block b = table.at(slot, a);
            if (b.size != it->second.size || b.ref != it->second.ref) {
                std::printf("table: op %d addr %llx size %llu/%llu ref %llx/%llx\n", op,
                            (unsigned long long)a, (unsigned long long)b.size,
                            (unsigned long long)it->second.size, (unsigned long long)b.ref,
                            (unsigned long long)it->second.ref);
                return false;
            }
            if (!add) {
                table.erase_at(slot, a);
                ref.erase(it);
            }
        } else if (add) {
            static constexpr uint64_t kSizes[] = {0,      1,       0xFFFD,  0xFFFE,
                                                  0xFFFF, 0x10000, 0x1FFFF, uint64_t(1) << 40};
            static constexpr uint64_t kOwners[] = {0,        1,        2,       254,     255,
                                                   256,      0xFFFF,   0x10000, 0x10001, 0xFF00FF,
                                                   0xFFFF00, 0xFFFFFE, 0xFFFFFF};
            const uint64_t size = pick(8) == 0 ? kSizes[pick(8)] : pick(5000);
            const uint64_t owner = pick(8) == 0   ? kOwners[pick(13)]
                                   : pick(2) == 0 ? pick(1 << 24)
                                                  : pick(6);
            const uint64_t seq = pick(8) == 0 ? (uint64_t(1) << 40) - 1 - pick(3) : pick(1 << 30);
            const preload::LiveBlockTable::Block b{a, size, seq << 24 | owner};
            table.insert_at(slot, b);
            ref[a] = b;
            addrs.push_back(a);
        }
        if (table.size() != ref.size()) {
            std::printf("table: op %d size %zu, reference %zu\n", op, table.size(), ref.size());
            return false;
        }
    }
    for (const auto& [a, b] : ref) {  // every block still there, exactly
        bool live;
        const size_t slot = table.find(a, &live);
        const preload::LiveBlockTable::Block got = live ? table.at(slot, a) : b;
        if (!live || got.size != b.size || got.ref != b.ref) {
            std::printf("table: at the end addr %llx lost or altered\n", (unsigned long long)a);
            return false;
        }
    }
    return true;
}

int main(int argc, char** argv) {
    int n = argc > 1 ? std::atoi(argv[1]) : 3000;
    Totals blocks, threads, random;
    if (!run_table() || !run_many_blocks(blocks) || !run_many_threads(threads) ||
        !run_malformed(0) || !run_malformed(1) || !run_malformed(2))
        return 1;
    for (int i = 0; i < n; ++i)
        if (!run(static_cast<uint64_t>(i) * 7919 + 1, random)) return 1;
    blocks.print("many blocks");
    threads.print("many threads");
    random.print("scenarios");
    // (The runs of 1 Dec 2026: 92% / 1.1, 2.1, 24% (PAIRs 0.3) / 3.9, 16, 19% (PAIRs 1.0) of
    // the events.)
    if (!blocks.covers("many blocks", 0, 0, 50, 0) ||
        !threads.covers("many threads", 0.3, 0.5, 10, 0.1) ||
        (n >= 1000 && !random.covers("scenarios", 1, 5, 5, 0.3)))
        return 1;
    std::printf(
        "writer cycle: same events, blocks, order and peak as the ns reference on %d scenarios; "
        "the same bytes and replay with its fast runs off\n",
        n);
    return 0;
}
