// Trace-size study (issue 6, target 2; results in bench/SIZE-STUDY.md): reads a trace and
// re-encodes its thread-event payloads under alternative record models, compressing each as the
// interposer's writer does (one zstd stream per file, level 1, window 2^20, one flushed block
// per payload, same payload boundaries), and prints bytes per event for each model: the joint
// column stream (what a file would hold, framing included) and, to show which field costs
// what, each column compressed in a stream of its own.
//
// Models (FORMAT.md describes "a"; the others are proposals, not formats):
//   a     format 2 as the writer makes it (checked: every payload's column form has the
//         length the file's chunk declares, and the compressed stream is compared with the file)
//   b     frees name a block by its rank among the freeing thread's live blocks, counted from
//         the nearer end, newest or oldest (escape: the address); an allocation's address is a
//         selector: 0 the block glibc would most likely reuse (realloc: the old block; else
//         the last block of the same glibc size class this thread freed, LIFO, as tcache
//         does), 1 the chunk right after the thread's previous allocation; 2 a miss, then a
//         delta against that previous allocation
//   c     an interned (size, stack) pair id instead of size and stack (a new pair is defined
//         in line)
//   d     a "pair" record for malloc immediately followed by the free of the same block on that
//         thread, when no event of another thread lies between (checked against the reader's
//         global order: both times in one run of the thread)
//   e<N>  per-event times dropped: each payload keeps its thread's runs (events in a row with
//         no other thread between: count and exact start unit, so the global order stays exact)
//         and a mark whenever the time crosses a multiple of N us
//   k     the allocation kind folded into the opcode byte (one column less)
//   i     bcdk+e10ms without heap addresses: a free names its block by rank (another thread's
//         block: that thread's number, then the rank); exact block identity, no numbers
//   j     i with size and stack columns instead of interned pairs (bdk+e10ms, no addresses)
//   j1ms  j with a mark every 1 ms (the analyzer's finest automatic timeline step)
//   -age  a free names its block by age: the thread's allocations since it (another thread's
//         block: its number there); the writer needs no rank structure, only the seq
//   h     heaptrack-like: no heap addresses at all; a free names the (size, stack) pair of the
//         block it releases (known to the writer); b-d-e otherwise. Exact live bytes and peak,
//         but which block of a class was freed is not known.
// Usage: size-study [--verbose] [--level N] [--merge [N] | --cycle-flush] [--verify
// i|j|j1ms|j1ms-age|h] TRACE.pmt...
#include <zstd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "pmt/chunk.hpp"
#include "pmt/format.hpp"
#include "pmt/reader.hpp"
#include "pmt/record_decoder.hpp"
#include "pmt/varint.hpp"

namespace {

using pmt::AllocKind;
using pmt::Next;
using pmt::Op;

// ---------------------------------------------------------------- the file, chunk by chunk

struct Payload {
    std::vector<uint8_t> raw;    // record payload (column form undone)
    uint64_t epoch = 0;          // epoch chunks before this payload
    uint32_t declared_cols = 0;  // the chunk's R for codecs 3/4, else 0
    uint32_t stored = 0;
};

struct FileChunks {
    pmt::TraceHeader header;
    uint64_t file_bytes = 0;
    uint64_t framing = 0;             // header, chunk headers, epoch/end chunks
    uint64_t stream_bytes = 0;        // stored bytes of codec 3/4 chunks
    uint64_t other_thread_bytes = 0;  // stored bytes of thread chunks in other codecs
    std::vector<Payload> payloads;
    uint64_t epochs = 0;
};

FileChunks read_chunks(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> f((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (f.size() < 20 || std::memcmp(f.data(), "PYMTRACE", 8) != 0)
        throw pmt::TraceError(path + ": not a trace");
    FileChunks fc;
    fc.file_bytes = f.size();
    uint32_t n;
    std::memcpy(&n, f.data() + 12, 4);
    uint16_t version;
    std::memcpy(&version, f.data() + 8, 2);
    if (version >= pmt::kFirstStreamFormatVersion)
        throw pmt::TraceError(  // main() prefixes the path
            "version 3 and 4 traces are not supported by the study; it measures version 2");
    fc.header = pmt::decode_header_payload(f.data() + 16, n);
    size_t off = 16 + n + 4;
    fc.framing = off;
    pmt::ChunkDecoder dec;
    while (off + 20 <= f.size()) {
        pmt::ChunkHeader h = pmt::parse_chunk_header(f.data() + off);
        if (off + 20 + h.stored_len > f.size()) break;
        const uint8_t* stored = f.data() + off + 20;
        fc.framing += 20;
        if (h.type == pmt::ChunkType::ThreadEvents) {
            Payload p;
            p.epoch = fc.epochs;
            dec.decode(h, stored, p.raw);
            bool stream =
                h.codec == pmt::Codec::ZstdStreamStart || h.codec == pmt::Codec::ZstdStream;
            p.declared_cols = stream ? h.raw_len : 0;
            p.stored = h.stored_len;
            (stream ? fc.stream_bytes : fc.other_thread_bytes) += h.stored_len;
            fc.payloads.push_back(std::move(p));
        } else {
            fc.framing += h.stored_len;
            if (h.type == pmt::ChunkType::Epoch) ++fc.epochs;
        }
        off += 20 + h.stored_len;
    }
    return fc;
}

// ---------------------------------------------------------------- records of one payload

struct Rec {
    Op op;
    uint8_t kind = 0;
    uint64_t t0 = 0, t1 = 0;  // time units (2^k ns)
    uint64_t a0 = 0, a1 = 0;
    uint64_t s0 = 0, s1 = 0;
    uint64_t stack = 0;
    uint64_t o[4] = {};
    const uint8_t* bytes = nullptr;
    size_t blen = 0;
};

struct Decoded {
    uint64_t tid = 0, base = 0;  // base in units
    std::vector<Rec> recs;
};

struct RecCollector {
    std::vector<Rec>* out;
    unsigned k;
    uint64_t u(uint64_t t) const { return t >> k; }
    Next push(const Rec& r) {
        out->push_back(r);
        return Next::Go;
    }
    Next alloc(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size, uint64_t stack) {
        Rec r{Op::Alloc};
        r.kind = static_cast<uint8_t>(kind);
        r.t0 = u(t);
        r.a0 = addr;
        r.s0 = size;
        r.stack = stack;
        return push(r);
    }
    Next free(uint64_t t, uint64_t addr) {
        Rec r{Op::Free};
        r.t0 = u(t);
        r.a0 = addr;
        return push(r);
    }
    Next realloc(AllocKind kind, uint64_t tb, uint64_t ta, uint64_t old_addr, uint64_t new_addr,
                 uint64_t size, uint64_t stack) {
        Rec r{Op::Realloc};
        r.kind = static_cast<uint8_t>(kind);
        r.t0 = u(tb);
        r.t1 = u(ta);
        r.a0 = old_addr;
        r.a1 = new_addr;
        r.s0 = size;
        r.stack = stack;
        return push(r);
    }
    Next mmap(uint64_t t, uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags, int64_t fd,
              uint64_t stack) {
        Rec r{Op::Mmap};
        r.t0 = u(t);
        r.a0 = addr;
        r.s0 = length;
        r.o[0] = prot;
        r.o[1] = flags;
        r.o[2] = pmt::detail::zigzag(fd);
        r.stack = stack;
        return push(r);
    }
    Next munmap(uint64_t t, uint64_t addr, uint64_t length) {
        Rec r{Op::Munmap};
        r.t0 = u(t);
        r.a0 = addr;
        r.s0 = length;
        return push(r);
    }
    Next mremap(uint64_t tb, uint64_t ta, uint64_t oa, uint64_t ol, uint64_t na, uint64_t nl,
                uint64_t stack) {
        Rec r{Op::Mremap};
        r.t0 = u(tb);
        r.t1 = u(ta);
        r.a0 = oa;
        r.s0 = ol;
        r.a1 = na;
        r.s1 = nl;
        r.stack = stack;
        return push(r);
    }
    Next rss(uint64_t t, uint64_t bytes) {
        Rec r{Op::Rss};
        r.t0 = u(t);
        r.o[0] = bytes;
        return push(r);
    }
    Next string(uint64_t id, const uint8_t* s, size_t len) {
        Rec r{Op::String};
        r.o[0] = id;
        r.o[1] = len;
        r.bytes = s;
        r.blen = len;
        return push(r);
    }
    Next location(uint64_t id, uint32_t file, uint32_t function, uint32_t line) {
        Rec r{Op::Location};
        r.o[0] = id;
        r.o[1] = file;
        r.o[2] = function;
        r.o[3] = line;
        return push(r);
    }
    Next stack(uint64_t id, uint64_t parent, uint64_t location) {
        Rec r{Op::Stack};
        r.o[0] = id;
        r.o[1] = parent;
        r.o[2] = location;
        return push(r);
    }
    Next thread_name(uint64_t id) {
        Rec r{Op::ThreadName};
        r.o[0] = id;
        return push(r);
    }
};

void decode_payload(const std::vector<uint8_t>& raw, unsigned k, Decoded& d) {
    pmt::detail::ByteCursor c{raw.data(), raw.data() + raw.size()};
    d.tid = c.varint();
    uint64_t base = c.varint();
    d.base = base >> k;
    d.recs.clear();
    RecCollector col{&d.recs, k};
    pmt::decode_records(c.p, c.end, base, 0, col);
}

// ---------------------------------------------------------------- the reader's global order

// Per thread, its runs: [first unit, last unit] of events delivered in a row with no event
// of another thread between (the reader's order, FORMAT.md "Event times").
struct Runs {
    std::unordered_map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>> by_tid;
    uint64_t total = 0;
    // Index of the run of tid holding unit t (the first run ending at or after t).
    size_t find(uint64_t tid, uint64_t t) const {
        const auto& v = by_tid.at(tid);
        auto it = std::lower_bound(
            v.begin(), v.end(), t,
            [](const std::pair<uint64_t, uint64_t>& r, uint64_t x) { return r.second < x; });
        return static_cast<size_t>(it - v.begin());
    }
    uint64_t start(uint64_t tid, size_t i) const {
        const auto& v = by_tid.at(tid);
        return i < v.size() ? v[i].first : (v.empty() ? 0 : v.back().second);
    }
};

// One event as a verified model delivers it: no heap address; a free names the Alloc it
// releases by its index in the delivered sequence.
struct VEvent {
    uint64_t key = 0;    // decoder: run start unit
    uint64_t order = 0;  // decoder: position in file order; after sorting, unused
    uint64_t size = 0, stack = 0;
    uint64_t ref = 0;   // Free: index of the Alloc of the block; decoder: block key before
    uint64_t time = 0;  // ns (decoder: the estimate from runs and marks)
    uint32_t tid = 0;
    uint8_t type = 0;  // pmt::EventType
};

struct GlobalPass final : pmt::EventVisitor {
    Runs runs;
    unsigned k = 0;
    bool have = false;
    uint64_t cur_tid = 0;
    // Heap-only exact live bytes and peak, for the record.
    std::unordered_map<uint64_t, uint64_t> live;
    uint64_t live_bytes = 0, peak = 0;
    uint64_t replaced = 0;    // allocations at an address that was still live
    uint64_t max_blocks = 0;  // most live heap blocks at once (a writer's block table)
    // --verify: the reader's events as a model without heap addresses must rebuild them.
    bool keep = false;
    std::vector<VEvent> events;
    std::unordered_map<uint64_t, uint64_t> alloc_index;  // live address -> its Alloc in events
    void on_event(const pmt::Event& e) override {
        if (keep) record(e);
        uint64_t u = e.time_ns >> k;
        if (!have || e.tid != cur_tid) {
            runs.by_tid[e.tid].push_back({u, u});
            ++runs.total;
            cur_tid = e.tid;
            have = true;
        } else {
            runs.by_tid[e.tid].back().second = u;
        }
        if (e.type == pmt::EventType::Alloc && e.addr != 0) {
            auto [it, fresh] = live.emplace(e.addr, e.size);
            if (!fresh) {
                live_bytes -= it->second;
                it->second = e.size;
                ++replaced;
            }
            live_bytes += e.size;
            peak = std::max(peak, live_bytes);
            max_blocks = std::max<uint64_t>(max_blocks, live.size());
        } else if (e.type == pmt::EventType::Free) {
            auto it = live.find(e.addr);
            if (it != live.end()) {
                live_bytes -= it->second;
                live.erase(it);
            }
        }
    }
    void record(const pmt::Event& e) {
        VEvent v;
        v.type = static_cast<uint8_t>(e.type);
        v.tid = e.tid;
        v.time = e.time_ns;
        v.size = e.size;
        v.stack = e.stack_id;
        if (e.type == pmt::EventType::Alloc) {
            alloc_index[e.addr] = events.size();
        } else if (e.type == pmt::EventType::Free) {
            auto it = alloc_index.find(e.addr);
            if (it == alloc_index.end()) return;  // not live: a model without addresses drops it
            v.ref = it->second;
            v.size = events[it->second].size;
            alloc_index.erase(it);
        }
        events.push_back(v);
    }
};

// ---------------------------------------------------------------- columns and zstd streams

enum Col : uint8_t {
    kOps,
    kKinds,
    kTimes,
    kAddrs,
    kSizes,
    kStacks,
    kOther,
    kFreeRef,
    kPairId,
    kPairDef,
    kRuns,
    kMarks,
    kAddrSel,
    kNumCols
};
const char* const kColName[kNumCols] = {"ops",    "kinds", "times",   "addrs",  "sizes",
                                        "stacks", "other", "freeref", "pairid", "pairdef",
                                        "runs",   "marks", "addrsel"};

struct Cols {
    std::vector<uint8_t> c[kNumCols];
    void clear() {
        for (auto& v : c) v.clear();
    }
    void put(Col k, uint64_t v) {
        uint8_t b[10];
        uint8_t* e = pmt::detail::put_varint(b, v);
        c[k].insert(c[k].end(), b, e);
    }
    void zput(Col k, int64_t v) { put(k, pmt::detail::zigzag(v)); }
    void byte(Col k, uint8_t v) { c[k].push_back(v); }
};

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
    uint8_t b[10];
    uint8_t* e = pmt::detail::put_varint(b, v);
    out.insert(out.end(), b, e);
}

// zstd level: the writer's (ChunkStream's default) 1; --level N shows what another one buys.
int g_level = 1;
// --merge: one payload per thread per writer cycle (between two epochs) instead of one per
// 64 KiB buffer: what larger payloads would buy (fewer chunk headers and flushed blocks).
bool g_merge = false;
uint64_t g_merge_cap = 0;
// --cycle-flush: payloads stay as the writer made them (one per 64 KiB buffer), but the stream
// is flushed, and a chunk written, once per writer cycle (all threads' payloads of the cycle in
// one chunk, each behind its length), not once per payload.
bool g_cycle_flush = false;  // --merge N: at most N buffers per payload (0: the whole cycle)
// --verify MODEL: decode that model's columns back (i, j or h) and compare its events with the
// reader's, one by one.
std::string g_verify;

// One zstd stream as the writer's ChunkStream makes it: level 1, window 2^20, one flushed
// block per payload.

class ZStream {
public:
    ZStream() {
        cctx_ = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, g_level);
        ZSTD_CCtx_setParameter(cctx_, ZSTD_c_windowLog, 20);
        ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 0);
        ZSTD_CCtx_setParameter(cctx_, ZSTD_c_contentSizeFlag, 0);
    }
    ~ZStream() { ZSTD_freeCCtx(cctx_); }
    ZStream(const ZStream&) = delete;
    ZStream& operator=(const ZStream&) = delete;
    // Compresses p[0, n); flush: end with a flushed block (the writer does so per payload;
    // --cycle-flush only per writer cycle, see flush()).
    void add(const uint8_t* p, size_t n, bool flush = true) {
        if (n == 0) return;
        run(p, n, flush ? ZSTD_e_flush : ZSTD_e_continue);
        raw += n;
    }
    void flush() { run(nullptr, 0, ZSTD_e_flush); }

private:
    void run(const uint8_t* p, size_t n, ZSTD_EndDirective how) {
        buf_.resize(ZSTD_compressBound(n) + (1 << 17) + 64);
        ZSTD_inBuffer ib{p, n, 0};
        size_t left;
        do {
            ZSTD_outBuffer ob{buf_.data(), buf_.size(), 0};
            left = ZSTD_compressStream2(cctx_, &ob, &ib, how);
            if (ZSTD_isError(left)) throw pmt::TraceError("zstd failed");
            bytes += ob.pos;
        } while (how == ZSTD_e_flush ? left != 0 : ib.pos < ib.size);
    }

public:
    uint64_t bytes = 0, raw = 0;

private:
    ZSTD_CCtx* cctx_;
    std::vector<uint8_t> buf_;
};

// ---------------------------------------------------------------- per-thread block state

// Live flags of a thread's allocations in allocation order with prefix counts (Fenwick tree):
// the rank of a block among the thread's live blocks, newest first, and back.
class LiveOrder {
public:
    uint64_t count() const { return n_; }  // allocations so far (the next seq)
    uint64_t push() {
        uint64_t s = n_++;
        if (n_ > tree_.size()) grow();
        add(s, 1);
        ++live_;
        return s;
    }
    void kill(uint64_t s) {
        add(s, -1);
        --live_;
    }
    // Live blocks allocated after seq s (newest-first rank) and before it (oldest-first).
    uint64_t rank(uint64_t s) const { return live_ - prefix(s + 1); }
    uint64_t rank_old(uint64_t s) const { return static_cast<uint64_t>(prefix(s)); }
    // The seq of the block of newest-first rank r (reader side).
    uint64_t at_rank(uint64_t r) const { return nth(live_ - r); }
    uint64_t at_rank_old(uint64_t r) const { return nth(r + 1); }

private:
    // The seq of the n-th live block (1-based) in allocation order.
    uint64_t nth(uint64_t n) const {
        int64_t want = static_cast<int64_t>(n);
        size_t pos = 0;
        size_t step = 1;
        while (step * 2 <= tree_.size()) step *= 2;
        for (; step; step /= 2) {
            if (pos + step <= tree_.size() && tree_[pos + step - 1] < want) {
                pos += step;
                want -= tree_[pos - 1];
            }
        }
        return pos;  // 0-based seq
    }
    void add(uint64_t s, int d) {
        for (size_t i = s + 1; i <= tree_.size(); i += i & (~i + 1)) tree_[i - 1] += d;
    }
    int64_t prefix(uint64_t n) const {  // live among seqs [0, n)
        int64_t r = 0;
        for (size_t i = n; i > 0; i -= i & (~i + 1)) r += tree_[i - 1];
        return r;
    }
    void grow() {
        size_t cap = std::max<size_t>(1024, tree_.size() * 2);
        std::vector<int32_t> flags(cap, 0);
        // Recover per-seq flags from the old tree, then rebuild.
        for (size_t s = 0; s + 1 < n_; ++s)
            flags[s] = static_cast<int32_t>(prefix(s + 1) - prefix(s));
        tree_.assign(cap, 0);
        for (size_t i = 1; i <= cap; ++i) {
            tree_[i - 1] += flags[i - 1];
            size_t j = i + (i & (~i + 1));
            if (j <= cap) tree_[j - 1] += tree_[i - 1];
        }
    }
    std::vector<int32_t> tree_;
    uint64_t n_ = 0, live_ = 0;
};

uint64_t glibc_bin(uint64_t size) {
    uint64_t c = (size + 8 + 15) & ~uint64_t{15};
    return c < 32 ? 32 : c;
}

struct Block {
    uint64_t tid, seq, size, pid;
};

struct ThreadState {
    LiveOrder order;
    uint64_t last_alloc = 0, last_alloc_size = 0;
    std::vector<uint64_t> seq_addr;  // seq -> address (the reader's side of a rank)
    std::unordered_map<uint64_t, std::vector<uint64_t>> lifo;  // glibc bin -> freed addresses
};

// ---------------------------------------------------------------- the models

struct ModelSpec {
    const char* name;
    // 0 running delta (format 2); 1 ranks + reuse prediction; 2 none, frees by (size, stack)
    // pair; 3 none, frees by rank (block identity kept)
    int addr_mode;
    bool pair_ids;
    bool pair_records;
    uint64_t coarse_us;      // 0: every event's time
    bool fuse_kind = false;  // the allocation kind folded into the opcode byte
    // Mode 3: a free names its block by age (this thread's allocations since it, >= 1)
    // instead of its rank among the live blocks; another thread's block by its seq.
    bool by_age = false;
};

// --verify: reads back the columns of a model without heap addresses (i, j, h: coarse times,
// kind in the opcode) as a reader of that format would, and delivers its events in the order
// its runs give (run start unit, then file order), to be compared with the real reader's.
class ModelDecoder {
public:
    ModelDecoder(const ModelSpec& s, unsigned k) : spec_(s), k_(k) {}

    void payload(const Cols& cols) {
        for (int c = 0; c < kNumCols; ++c)
            cur_[c] =
                pmt::detail::ByteCursor{cols.c[c].data(), cols.c[c].data() + cols.c[c].size()};
        tid_ = cur_[kOther].varint();
        uint64_t base = cur_[kOther].varint();
        // Runs: each time field's run start; marks: its tick.
        field_run_.clear();
        field_tick_.clear();
        const uint64_t tick_ns = spec_.coarse_us * 1000;
        uint64_t start = base;
        while (!cur_[kRuns].at_end()) {
            uint64_t n = cur_[kRuns].varint();
            start += cur_[kRuns].varint();
            uint64_t tick = (start << k_) / tick_ns;
            for (uint64_t q = 0; q < n; ++q) {
                field_run_.push_back(start);
                field_tick_.push_back(tick);
            }
        }
        // Marks: (field index delta since the payload's previous mark, tick delta): the field
        // and the rest of its run move on by that many ticks.
        size_t pos = 0;
        while (!cur_[kMarks].at_end()) {
            pos += cur_[kMarks].varint();
            uint64_t dt = cur_[kMarks].varint();
            for (size_t q = pos; q < field_run_.size() && field_run_[q] == field_run_[pos]; ++q)
                field_tick_[q] += dt;
        }
        field_ = 0;
        a_ = 0;
        while (!cur_[kOps].at_end()) {
            uint8_t b = cur_[kOps].u8();
            if (b >= 16) {
                int group = (b - 16) / 16;  // (b - 16) % 16 is the kind: not compared
                if (group == 0) {           // alloc
                    size_t fld = field_++;
                    auto [size, stack] = size_stack();
                    emit_alloc(fld, size, stack);
                } else if (group == 1) {  // realloc
                    size_t f1 = field_++, f2 = field_++;
                    free_ref(f1);
                    auto [size, stack] = size_stack();
                    emit_alloc(f2, size, stack);
                } else if (group == 2) {  // pair
                    size_t fld = field_++, f2 = field_++;
                    auto [size, stack] = size_stack();
                    VEvent& a = push(pmt::EventType::Alloc, fld, size, stack);
                    a.ref = kPairBlock;
                    VEvent& fr = push(pmt::EventType::Free, f2, size, 0);
                    fr.ref = kPairBlock;
                } else {  // realloc that returned NULL
                    size_t f1 = field_++;
                    ++field_;
                    free_ref(f1);
                }
                continue;
            }
            switch (static_cast<Op>(b)) {
                case Op::Free:
                    free_ref(field_++);
                    break;
                case Op::Mmap: {
                    size_t fld = field_++;
                    addr();
                    uint64_t len = cur_[kSizes].varint();
                    cur_[kOther].varint();
                    cur_[kOther].varint();
                    cur_[kOther].varint();
                    push(pmt::EventType::Mmap, fld, len, cur_[kStacks].varint());
                    break;
                }
                case Op::Munmap: {
                    size_t fld = field_++;
                    addr();
                    push(pmt::EventType::Munmap, fld, cur_[kSizes].varint(), 0);
                    break;
                }
                case Op::Mremap: {
                    ++field_;
                    size_t fld = field_++;
                    addr();
                    cur_[kSizes].varint();
                    addr();
                    uint64_t len = cur_[kSizes].varint();
                    push(pmt::EventType::Mremap, fld, len, cur_[kStacks].varint());
                    break;
                }
                case Op::Rss: {
                    size_t fld = field_++;
                    push(pmt::EventType::Rss, fld, cur_[kOther].varint(), 0);
                    break;
                }
                case Op::String: {
                    cur_[kOther].varint();
                    cur_[kOther].bytes(cur_[kOther].varint());
                    break;
                }
                case Op::Location:
                    for (int j = 0; j < 4; ++j) cur_[kOther].varint();
                    break;
                case Op::Stack:
                    for (int j = 0; j < 3; ++j) cur_[kOther].varint();
                    break;
                case Op::ThreadName:
                    cur_[kOther].varint();
                    break;
                default:
                    throw pmt::TraceError("verify: unexpected opcode");
            }
        }
        if (field_ != field_run_.size()) ++field_count_mismatch;
    }

    // Sorts into the delivered order and turns block keys into Alloc indices.
    void finish() {
        std::stable_sort(events.begin(), events.end(), [](const VEvent& x, const VEvent& y) {
            return x.key != y.key ? x.key < y.key : x.order < y.order;
        });
        std::unordered_map<uint64_t, uint64_t> index;  // block key -> Alloc index
        for (size_t i = 0; i < events.size(); ++i) {
            VEvent& e = events[i];
            if (e.type == static_cast<uint8_t>(pmt::EventType::Alloc)) {
                if (e.ref != kPairBlock) index[e.ref] = i;
                e.ref = 0;
            } else if (e.type == static_cast<uint8_t>(pmt::EventType::Free)) {
                if (e.ref == kPairBlock) {
                    e.ref = i - 1;
                } else {
                    auto it = index.find(e.ref);
                    e.ref = it == index.end() ? UINT64_MAX : it->second;
                    if (it != index.end()) index.erase(it);
                }
            }
        }
    }

    std::vector<VEvent> events;
    uint64_t field_count_mismatch = 0;

private:
    static constexpr uint64_t kPairBlock = UINT64_MAX - 1;

    void addr() { a_ += static_cast<uint64_t>(cur_[kAddrs].zvarint()); }

    std::pair<uint64_t, uint64_t> size_stack() {
        if (!spec_.pair_ids) {
            uint64_t size = cur_[kSizes].varint();
            return {size, cur_[kStacks].varint()};
        }
        uint64_t id = cur_[kPairId].varint();
        if (id == 0) {
            uint64_t size = cur_[kPairDef].varint();
            pairs_.push_back({size, cur_[kPairDef].varint()});
            id = pairs_.size();
        }
        if (spec_.addr_mode == 2) last_pid_ = id;
        return pairs_.at(id - 1);
    }

    VEvent& push(pmt::EventType t, size_t fld, uint64_t size, uint64_t stack) {
        VEvent& v = events.emplace_back();
        v.type = static_cast<uint8_t>(t);
        v.tid = static_cast<uint32_t>(tid_);
        v.key = fld < field_run_.size() ? field_run_[fld] : UINT64_MAX;
        v.order = order_++;
        v.size = size;
        v.stack = stack;
        uint64_t run_ns = v.key << k_;
        uint64_t tick_ns = field_tick_.size() > fld ? field_tick_[fld] * spec_.coarse_us * 1000 : 0;
        v.time = std::max(run_ns, tick_ns);
        return v;
    }

    struct DBlock {
        uint64_t size;
        uint64_t key;
    };
    struct DThread {
        LiveOrder order;
        std::vector<DBlock> blocks;  // by seq
    };

    void emit_alloc(size_t fld, uint64_t size, uint64_t stack) {
        uint64_t key;
        if (spec_.addr_mode == 2) {
            key = next_key_++;
            by_class_[last_pid_].push_back({size, key});
        } else {
            DThread& t = threads_[tid_];
            uint64_t seq = t.order.push();
            key = (tid_ << 32) | seq;
            t.blocks.push_back({size, key});
        }
        push(pmt::EventType::Alloc, fld, size, stack).ref = key;
    }

    void free_ref(size_t fld) {
        if (spec_.addr_mode == 2) {
            uint64_t pid = cur_[kPairId].varint();
            if (pid == 0) return;
            auto& v = by_class_[pid];  // some live block of the class: the newest
            if (v.empty()) throw pmt::TraceError("verify: a free of a class with no live block");
            DBlock b = v.back();
            v.pop_back();
            push(pmt::EventType::Free, fld, b.size, 0).ref = b.key;
            return;
        }
        uint64_t v = cur_[kFreeRef].varint();
        uint64_t owner = tid_;
        if (v == 0) {
            uint64_t n = cur_[kFreeRef].varint();
            if (n == 0) return;  // no block
            if (n == thread_of_.size() + 1) thread_of_.push_back(cur_[kFreeRef].varint());
            owner = thread_of_.at(n - 1);
            v = cur_[kFreeRef].varint();
            if (spec_.by_age) {
                DThread& t = threads_[owner];
                t.order.kill(v);
                const DBlock& b = t.blocks.at(v);
                push(pmt::EventType::Free, fld, b.size, 0).ref = b.key;
                return;
            }
        }
        DThread& t = threads_[owner];
        uint64_t seq;
        if (spec_.by_age) {
            seq = t.order.count() - v;
        } else {
            uint64_t r = (v - 1) / 2;
            bool old_end = (v - 1) % 2;
            seq = old_end ? t.order.at_rank_old(r) : t.order.at_rank(r);
        }
        t.order.kill(seq);
        const DBlock& b = t.blocks.at(seq);
        push(pmt::EventType::Free, fld, b.size, 0).ref = b.key;
    }

    ModelSpec spec_;
    unsigned k_;
    pmt::detail::ByteCursor cur_[kNumCols];
    uint64_t tid_ = 0, a_ = 0, order_ = 0, next_key_ = 0, last_pid_ = 0;
    size_t field_ = 0;
    std::vector<uint64_t> field_run_, field_tick_;
    std::vector<std::pair<uint64_t, uint64_t>> pairs_;
    std::unordered_map<uint64_t, DThread> threads_;
    std::unordered_map<uint64_t, std::vector<DBlock>> by_class_;
    std::vector<uint64_t> thread_of_;
};

struct Stats {
    uint64_t allocs = 0, frees = 0, frees_rank = 0, frees_rank0 = 0, frees_escape = 0;
    uint64_t alloc_predicted = 0, alloc_hit = 0, alloc_seq_hit = 0;
    uint64_t pairs = 0, pair_candidates = 0, pairs_rejected = 0;
    uint64_t pair_defs = 0, dropped_unknown_frees = 0, marks = 0, run_segments = 0;
    uint64_t rank_check_fail = 0;
    uint64_t rank_hist[3] = {};  // nearer-end ranks < 16, < 256, larger
    uint64_t rank_old_end = 0;   // ranks counted from the oldest block
};

class Model {
public:
    Model(ModelSpec s, unsigned k, const Runs* runs) : spec_(s), k_(k), runs_(runs) {}

    void payload(const Decoded& d, const Payload& p) {
        cols_.clear();
        tid_ = d.tid;
        a_ = 0;
        field_times_.clear();
        prev_t_ = d.base;
        cols_.put(kOther, d.tid);
        cols_.put(kOther, d.base);
        const auto& rs = d.recs;
        for (size_t i = 0; i < rs.size(); ++i) {
            const Rec& r = rs[i];
            switch (r.op) {
                case Op::Alloc: {
                    ++st.allocs;
                    bool pair = false;
                    if (i + 1 < rs.size() && rs[i + 1].op == Op::Free && rs[i + 1].a0 == r.a0 &&
                        r.a0 != 0) {
                        ++st.pair_candidates;
                        bool one_run = runs_->find(tid_, r.t0) == runs_->find(tid_, rs[i + 1].t0);
                        if (!one_run) ++st.pairs_rejected;
                        pair = spec_.pair_records && one_run;
                    }
                    if (pair) {
                        ++st.pairs;
                        ++st.frees;
                        op_kind(12, r.kind);
                        time(r.t0);
                        // Coarse times too: a pair's free can come long after its malloc
                        // (a thread that computes without allocating); its field costs only
                        // when it crosses a tick.
                        time(rs[i + 1].t0);
                        alloc_addr(r.a0, r.s0, 0);
                        size_stack(r.s0, r.stack);
                        // The block dies at once: back on this thread's free list.
                        if (spec_.addr_mode == 1) push_freed(r.a0, r.s0);
                        ++i;
                        break;
                    }
                    op_kind(1, r.kind);
                    time(r.t0);
                    alloc_addr(r.a0, r.s0, 0);
                    uint64_t pid = size_stack(r.s0, r.stack);
                    born(r.a0, r.s0, pid);
                    break;
                }
                case Op::Free: {
                    ++st.frees;
                    if (spec_.addr_mode >= 2 && blocks_.find(r.a0) == blocks_.end()) {
                        ++st.dropped_unknown_frees;  // the writer knows it is not live
                        break;
                    }
                    op(2);
                    time(r.t0);
                    free_ref(r.a0);
                    break;
                }
                case Op::Realloc: {
                    ++st.allocs;
                    ++st.frees;
                    // Without addresses a realloc that returned NULL needs its own opcode.
                    op_kind(spec_.addr_mode >= 2 && r.a1 == 0 ? 13 : 3, r.kind);
                    time(r.t0);
                    time(r.t1);
                    free_ref(r.a0);
                    alloc_addr(r.a1, r.s0, r.a0);
                    uint64_t pid = size_stack(r.s0, r.stack);
                    if (r.a1 != 0) born(r.a1, r.s0, pid);
                    break;
                }
                case Op::Mmap:
                    op(4);
                    time(r.t0);
                    raw_addr(r.a0);
                    cols_.put(kSizes, r.s0);
                    cols_.put(kOther, r.o[0]);
                    cols_.put(kOther, r.o[1]);
                    cols_.put(kOther, r.o[2]);
                    cols_.put(kStacks, r.stack);
                    break;
                case Op::Munmap:
                    op(5);
                    time(r.t0);
                    raw_addr(r.a0);
                    cols_.put(kSizes, r.s0);
                    break;
                case Op::Mremap:
                    op(6);
                    time(r.t0);
                    time(r.t1);
                    raw_addr(r.a0);
                    cols_.put(kSizes, r.s0);
                    raw_addr(r.a1);
                    cols_.put(kSizes, r.s1);
                    cols_.put(kStacks, r.stack);
                    break;
                case Op::Rss:
                    op(7);
                    time(r.t0);
                    cols_.put(kOther, r.o[0]);
                    break;
                case Op::String:
                    op(8);
                    cols_.put(kOther, r.o[0]);
                    cols_.put(kOther, r.o[1]);
                    cols_.c[kOther].insert(cols_.c[kOther].end(), r.bytes, r.bytes + r.blen);
                    break;
                case Op::Location:
                    op(9);
                    for (int j = 0; j < 4; ++j) cols_.put(kOther, r.o[j]);
                    break;
                case Op::Stack:
                    op(10);
                    for (int j = 0; j < 3; ++j) cols_.put(kOther, r.o[j]);
                    break;
                case Op::ThreadName:
                    op(11);
                    cols_.put(kOther, r.o[0]);
                    break;
            }
        }
        if (spec_.coarse_us) coarse_times(d.base);
        if (decoder) decoder->payload(cols_);

        // The joint column form, laid out as FORMAT.md's (model a: byte for byte).
        joint_.clear();
        joint_.push_back(static_cast<uint8_t>(k_));
        put_varint(joint_, p.raw.size());
        size_t ncols = is_format2() ? 7 : kNumCols;
        for (size_t c = 0; c < ncols; ++c) put_varint(joint_, cols_.c[c].size());
        for (size_t c = 0; c < ncols; ++c)
            joint_.insert(joint_.end(), cols_.c[c].begin(), cols_.c[c].end());
        if (is_format2() && p.declared_cols) {
            ++checked;
            if (joint_.size() != p.declared_cols) ++mismatched;
        }
        if (g_cycle_flush) {  // payloads share a chunk: each needs its length
            uint8_t b[10];
            uint8_t* e = pmt::detail::put_varint(b, joint_.size());
            joint_.insert(joint_.begin(), b, e);
        }
        joint.add(joint_.data(), joint_.size(), !g_cycle_flush);
        for (size_t c = 0; c < kNumCols; ++c)
            col[c].add(cols_.c[c].data(), cols_.c[c].size(), !g_cycle_flush);
    }

    bool is_format2() const {
        return spec_.addr_mode == 0 && !spec_.pair_ids && !spec_.pair_records && !spec_.coarse_us;
    }

    ModelSpec spec_;
    ZStream joint;
    ZStream col[kNumCols];
    Stats st;
    uint64_t checked = 0, mismatched = 0;
    std::unique_ptr<ModelDecoder> decoder;  // --verify

private:
    void op(uint8_t o) { cols_.byte(kOps, o); }
    void op_kind(uint8_t o, uint8_t kind) {
        if (spec_.fuse_kind) {
            int group = o == 1 ? 0 : o == 3 ? 1 : o == 12 ? 2 : 3;
            cols_.byte(kOps, static_cast<uint8_t>(16 + group * 16 + kind));
        } else {
            op(o);
            cols_.byte(kKinds, kind);
        }
    }

    void time(uint64_t t) {
        if (spec_.coarse_us) {
            field_times_.push_back(t);
            return;
        }
        cols_.put(kTimes, t - prev_t_);
        prev_t_ = t;
    }

    // e<N>: runs of this thread inside the payload (count of time fields, exact start unit)
    // and a mark (field index delta since the previous mark, tick delta) whenever the time
    // crosses an N-us tick; a run starts at the tick of its start unit.
    void coarse_times(uint64_t base) {
        const uint64_t tick_ns = spec_.coarse_us * 1000;
        auto tick = [&](uint64_t u) { return (u << k_) / tick_ns; };
        size_t i = 0, last_mark = 0;
        uint64_t prev_start = base;
        while (i < field_times_.size()) {
            size_t run = runs_->find(tid_, field_times_[i]);
            size_t j = i + 1;
            while (j < field_times_.size() && runs_->find(tid_, field_times_[j]) == run) ++j;
            // A field before its run's start (an mremap's first time, read while another
            // thread ran) takes the run's start: the key orders the segment among threads.
            uint64_t start = std::max(field_times_[i], runs_->start(tid_, run));
            ++st.run_segments;
            cols_.put(kRuns, j - i);
            cols_.put(kRuns, start - prev_start);
            prev_start = start;
            uint64_t last_tick = tick(start);
            for (size_t f = i; f < j; ++f) {
                uint64_t tk = tick(field_times_[f]);
                if (tk != last_tick) {
                    ++st.marks;
                    cols_.put(kMarks, f - last_mark);
                    cols_.put(kMarks, tk - last_tick);
                    last_tick = tk;
                    last_mark = f;
                }
            }
            i = j;
        }
    }

    void raw_addr(uint64_t addr) {
        cols_.zput(kAddrs, static_cast<int64_t>(addr - a_));
        a_ = addr;
    }

    uint64_t size_stack(uint64_t size, uint64_t stack) {
        if (!spec_.pair_ids) {
            cols_.put(kSizes, size);
            cols_.put(kStacks, stack);
            return 0;
        }
        auto [it, fresh] = pair_ids_.emplace(std::make_pair(size, stack), pair_ids_.size() + 1);
        if (fresh) {
            ++st.pair_defs;
            cols_.put(kPairId, 0);  // a new pair: the next id, defined here
            cols_.put(kPairDef, size);
            cols_.put(kPairDef, stack);
        } else {
            cols_.put(kPairId, it->second);
        }
        return it->second;
    }

    ThreadState& ts(uint64_t tid) {
        auto& p = threads_[tid];
        if (!p) p = std::make_unique<ThreadState>();
        return *p;
    }

    void alloc_addr(uint64_t addr, uint64_t size, uint64_t realloc_old) {
        if (spec_.addr_mode == 0) {
            raw_addr(addr);
            return;
        }
        if (spec_.addr_mode >= 2) return;
        // Two guesses the reader can make too: the block glibc would hand back first (realloc:
        // the old block; else the last one of this size class the thread freed), and the
        // chunk right after the thread's previous allocation (carved from the top). A
        // selector says which one hit; else a delta against the previous allocation.
        ThreadState& t = ts(tid_);
        auto& lifo = t.lifo[glibc_bin(size)];
        uint64_t reuse = realloc_old ? realloc_old : lifo.empty() ? 0 : lifo.back();
        uint64_t next = t.last_alloc ? t.last_alloc + glibc_bin(t.last_alloc_size) : 0;
        if (reuse) ++st.alloc_predicted;
        if (reuse && addr == reuse) {
            ++st.alloc_hit;
            cols_.put(kAddrSel, 0);
        } else if (next && addr == next) {
            ++st.alloc_seq_hit;
            cols_.put(kAddrSel, 1);
        } else {
            cols_.put(kAddrSel, 2);
            cols_.zput(kAddrs, static_cast<int64_t>(addr - t.last_alloc));
        }
        a_ = addr;
        if (addr) {
            t.last_alloc = addr;
            t.last_alloc_size = size;
        }
        // The reader knows addr now: it leaves the free list wherever it was.
        for (size_t i = lifo.size(); i-- > 0;)
            if (lifo[i] == addr) {
                lifo.erase(lifo.begin() + static_cast<std::ptrdiff_t>(i));
                break;
            }
    }

    void push_freed(uint64_t addr, uint64_t size) {
        auto& lifo = ts(tid_).lifo[glibc_bin(size)];
        lifo.push_back(addr);
        if (lifo.size() > 16) lifo.erase(lifo.begin());
    }

    void born(uint64_t addr, uint64_t size, uint64_t pid) {
        if (spec_.addr_mode == 0 || addr == 0) return;
        auto it = blocks_.find(addr);
        if (it != blocks_.end()) kill(it);  // a block the trace never saw freed
        Block b{tid_, 0, size, pid};
        if (spec_.addr_mode == 1 || spec_.addr_mode == 3) {
            ThreadState& t = ts(tid_);
            b.seq = t.order.push();
            t.seq_addr.push_back(addr);
        }
        blocks_.emplace(addr, b);
    }

    void kill(std::unordered_map<uint64_t, Block>::iterator it) {
        if (spec_.addr_mode == 1 || spec_.addr_mode == 3)
            ts(it->second.tid).order.kill(it->second.seq);
        blocks_.erase(it);
    }

    void free_ref(uint64_t addr) {
        if (spec_.addr_mode == 0) {
            raw_addr(addr);
            return;
        }
        auto it = blocks_.find(addr);
        if (spec_.addr_mode == 2) {
            cols_.put(kPairId, it == blocks_.end() ? 0 : it->second.pid);
            if (it != blocks_.end()) kill(it);
            return;
        }
        // i (mode 3): no heap addresses; a block is (allocating thread, rank), and a block of
        // another thread is named by that thread's number, then its rank.
        bool other = it != blocks_.end() && it->second.tid != tid_;
        if (spec_.addr_mode == 3 && (other || it == blocks_.end())) {
            cols_.put(kFreeRef, 0);
            if (it == blocks_.end()) {
                cols_.put(kFreeRef, 0);  // none (realloc of a block the trace never saw)
                return;
            }
            auto [tn, fresh] = thread_no_.emplace(it->second.tid, thread_no_.size() + 1);
            cols_.put(kFreeRef, tn->second);
            if (fresh) cols_.put(kFreeRef, it->second.tid);  // a number's first use names it
            ++st.frees_escape;
        }
        if (spec_.by_age && it != blocks_.end()) {
            ThreadState& t = ts(it->second.tid);
            uint64_t v = other ? it->second.seq : t.order.count() - it->second.seq;
            cols_.put(kFreeRef, v);
            ++st.frees_rank;
            ++st.rank_hist[v < 16 ? 0 : v < 256 ? 1 : 2];
        } else if (it != blocks_.end() && (it->second.tid == tid_ || spec_.addr_mode == 3)) {
            ThreadState& t = ts(it->second.tid);
            // Rank among the thread's live blocks from the nearer end: newest first (LIFO
            // release) or oldest first (FIFO release).
            uint64_t rn = t.order.rank(it->second.seq), ro = t.order.rank_old(it->second.seq);
            bool old_end = ro < rn;
            uint64_t r = old_end ? ro : rn;
            // What a reader does with the rank: the block must be this one.
            uint64_t back = old_end ? t.order.at_rank_old(r) : t.order.at_rank(r);
            if (t.seq_addr[back] != addr) ++st.rank_check_fail;
            cols_.put(kFreeRef, 1 + 2 * r + (old_end ? 1 : 0));
            ++st.frees_rank;
            if (r == 0) ++st.frees_rank0;
            ++st.rank_hist[r < 16 ? 0 : r < 256 ? 1 : 2];
            if (old_end) ++st.rank_old_end;
        } else {
            cols_.put(kFreeRef, 0);
            raw_addr(addr);
            ++st.frees_escape;
        }
        a_ = addr;
        if (it != blocks_.end()) {
            push_freed(addr, it->second.size);
            kill(it);
        }
    }

    unsigned k_;
    const Runs* runs_;
    Cols cols_;
    std::vector<uint8_t> joint_;
    uint64_t tid_ = 0, a_ = 0, prev_t_ = 0;
    std::vector<uint64_t> field_times_;
    std::map<std::pair<uint64_t, uint64_t>, uint64_t> pair_ids_;
    std::unordered_map<uint64_t, Block> blocks_;
    std::unordered_map<uint64_t, std::unique_ptr<ThreadState>> threads_;
    std::unordered_map<uint64_t, uint64_t> thread_no_;
};

const ModelSpec kModels[] = {
    {"a", 0, false, false, 0},
    {"b", 1, false, false, 0},
    {"c", 0, true, false, 0},
    {"d", 0, false, true, 0},
    {"e1ms", 0, false, false, 1000},
    {"e10ms", 0, false, false, 10000},
    {"bcd", 1, true, true, 0},
    {"bcd+e1ms", 1, true, true, 1000},
    {"bcdk+e1ms", 1, true, true, 1000, true},  // k: the kind folded into the opcode
    {"bcdk+e10ms", 1, true, true, 10000, true},
    {"i", 3, true, true, 10000, true},     // bcdk+e10ms without heap addresses
    {"j", 3, false, true, 10000, true},    // i with size and stack columns instead of pair ids
    {"j1ms", 3, false, true, 1000, true},  // j with a time mark every 1 ms
    {"j1ms-age", 3, false, true, 1000, true, true},  // frees by age, no order statistics
    {"h", 2, true, true, 10000, true},
};

// The model's events, read back, against the reader's: same sequence of types, threads, sizes,
// stacks and released blocks, hence the same live bytes after every event and the same peak.
void verify(Model& m, GlobalPass& gp) {
    ModelDecoder& d = *m.decoder;
    d.finish();
    const auto& x = gp.events;
    const auto& y = d.events;
    uint64_t differ = 0, block_differ = 0, live_differ = 0;
    uint64_t lx = 0, ly = 0, px = 0, py = 0;
    size_t px_at = 0, py_at = 0;
    uint64_t late = 0, early = 0;  // largest time error, ns (model after / before the clock)
    size_t first = SIZE_MAX;
    size_t n = std::min(x.size(), y.size());
    const uint8_t kAlloc = static_cast<uint8_t>(pmt::EventType::Alloc);
    const uint8_t kFree = static_cast<uint8_t>(pmt::EventType::Free);
    for (size_t i = 0; i < n; ++i) {
        const VEvent &a = x[i], &b = y[i];
        bool same = a.type == b.type && a.tid == b.tid && a.size == b.size &&
                    (a.type != kAlloc || a.stack == b.stack);
        if (!same) {
            ++differ;
            if (first == SIZE_MAX) first = i;
        }
        if (a.type == kFree && b.type == kFree && a.ref != b.ref) ++block_differ;
        if (a.type == kAlloc) lx += a.size;
        if (a.type == kFree) lx -= a.size;
        if (b.type == kAlloc) ly += b.size;
        if (b.type == kFree) ly -= b.size;
        if (lx != ly) ++live_differ;
        if (lx > px) px = lx, px_at = i;
        if (ly > py) py = ly, py_at = i;
        if (b.time > a.time) late = std::max(late, b.time - a.time);
        if (a.time > b.time) early = std::max(early, a.time - b.time);
    }
    std::printf(
        "verify %s: reader %zu events (unknown frees left out), model %zu; %llu differ in type, "
        "thread, size or stack (first at %lld); %llu frees release another block than the "
        "reader's; live bytes differ after %llu events; heap peak %llu B at event %zu vs the "
        "model's %llu B at %zu; model times up to %.3f ms late, %.3f ms early; %llu payloads "
        "with a run/field count mismatch\n",
        m.spec_.name, x.size(), y.size(), (unsigned long long)differ,
        first == SIZE_MAX ? -1LL : (long long)first, (unsigned long long)block_differ,
        (unsigned long long)live_differ, (unsigned long long)px, px_at, (unsigned long long)py,
        py_at, late / 1e6, early / 1e6, (unsigned long long)d.field_count_mismatch);
}

int study(const std::string& path, bool verbose) {
    FileChunks fc = read_chunks(path);
    unsigned k = static_cast<unsigned>(fc.header.time_shift);

    GlobalPass gp;
    gp.k = k;
    gp.keep = !g_verify.empty();
    pmt::TraceReader reader(path);
    reader.read(gp);
    const double ev = static_cast<double>(reader.events());

    std::vector<std::unique_ptr<Model>> models;
    for (const ModelSpec& s : kModels) {
        models.push_back(std::make_unique<Model>(s, k, &gp.runs));
        if (g_verify == s.name) {
            if (s.addr_mode < 2 || !s.coarse_us || !s.fuse_kind)
                throw pmt::TraceError("--verify reads back only i, j, j1ms, j1ms-age and h");
            models.back()->decoder = std::make_unique<ModelDecoder>(s, k);
        }
    }
    Decoded d;
    uint64_t payloads = 0;
    if (!g_merge) {
        for (size_t q = 0; q < fc.payloads.size(); ++q) {
            const Payload& p = fc.payloads[q];
            decode_payload(p.raw, k, d);
            for (auto& m : models) m->payload(d, p);
            ++payloads;
            if (!g_cycle_flush) continue;
            bool last = q + 1 == fc.payloads.size() || fc.payloads[q + 1].epoch != p.epoch;
            if (!last) {
                fc.framing -= 20;  // the next payload shares this cycle's chunk
                continue;
            }
            for (auto& m : models) {
                m->joint.flush();
                for (auto& z : m->col) z.flush();
            }
        }
    } else {
        // Payloads of one thread between two epochs become one, or one per g_merge_cap of
        // them (in file order; the records carry absolute times once decoded, so they simply
        // follow each other). A merged payload saves one 20-byte chunk header per payload it
        // absorbs.
        struct Group {
            Decoded d;
            uint64_t raw_bytes = 0;
            uint64_t count = 0;
        };
        auto emit = [&](Group& g) {
            Payload stand_in;  // only its length is read (the rebuilt length field)
            stand_in.raw.resize(g.raw_bytes);
            for (auto& m : models) m->payload(g.d, stand_in);
            ++payloads;
            g = Group{};
        };
        size_t i = 0;
        while (i < fc.payloads.size()) {
            size_t j = i;
            while (j < fc.payloads.size() && fc.payloads[j].epoch == fc.payloads[i].epoch) ++j;
            std::map<uint64_t, Group> by_tid;
            std::vector<uint64_t> order;
            for (size_t q = i; q < j; ++q) {
                Decoded one;
                decode_payload(fc.payloads[q].raw, k, one);
                auto [it, fresh] = by_tid.try_emplace(one.tid);
                if (fresh) order.push_back(one.tid);
                Group& g = it->second;
                if (g.count == 0) {
                    g.d = std::move(one);
                } else {
                    g.d.recs.insert(g.d.recs.end(), one.recs.begin(), one.recs.end());
                    fc.framing -= 20;
                }
                g.raw_bytes += fc.payloads[q].raw.size();
                if (++g.count == g_merge_cap) emit(g);
            }
            for (uint64_t tid : order)
                if (by_tid[tid].count) emit(by_tid[tid]);
            i = j;
        }
    }

    std::printf(
        "# %s: %llu events, %llu thread payloads%s, %llu epochs, %llu thread runs, file %llu B = "
        "%.3f B/ev"
        " (framing %llu B = %.3f B/ev, zstd stream %llu B, other thread chunks %llu B),"
        " heap peak %llu B, at most %llu live heap blocks, %llu allocations at a live address\n",
        path.c_str(), static_cast<unsigned long long>(reader.events()),
        static_cast<unsigned long long>(payloads),
        g_merge ? (g_merge_cap ? " (merged, at most N buffers)" : " (merged per cycle)") : "",
        static_cast<unsigned long long>(fc.epochs), static_cast<unsigned long long>(gp.runs.total),
        static_cast<unsigned long long>(fc.file_bytes), fc.file_bytes / ev,
        static_cast<unsigned long long>(fc.framing), fc.framing / ev,
        static_cast<unsigned long long>(fc.stream_bytes),
        static_cast<unsigned long long>(fc.other_thread_bytes),
        static_cast<unsigned long long>(gp.peak), static_cast<unsigned long long>(gp.max_blocks),
        static_cast<unsigned long long>(gp.replaced));
    std::printf("%-10s %8s %8s |", "model", "B/ev", "sep B/ev");
    for (int c = 0; c < kNumCols; ++c) std::printf(" %7s", kColName[c]);
    std::printf("\n");
    for (auto& m : models) {
        uint64_t total = fc.framing + m->joint.bytes + fc.other_thread_bytes;
        uint64_t sep = fc.framing + fc.other_thread_bytes;
        for (auto& z : m->col) sep += z.bytes;
        std::printf("%-10s %8.4f %8.4f |", m->spec_.name, total / ev, sep / ev);
        for (auto& z : m->col) std::printf(" %7.4f", z.bytes / ev);
        std::printf("\n");
    }
    for (auto& m : models)
        if (m->decoder) verify(*m, gp);
    const Model& a = *models[0];
    std::printf(
        "check a: %llu of %llu payloads' column forms differ in length from the file's;"
        " a's stream %llu B vs the file's %llu B (%+.2f%%)\n",
        static_cast<unsigned long long>(a.mismatched), static_cast<unsigned long long>(a.checked),
        static_cast<unsigned long long>(a.joint.bytes),
        static_cast<unsigned long long>(fc.stream_bytes),
        fc.stream_bytes
            ? 100.0 * (static_cast<double>(a.joint.bytes) - fc.stream_bytes) / fc.stream_bytes
            : 0.0);
    for (auto& m : models) {
        const Stats& s = m->st;
        if (!verbose && std::strcmp(m->spec_.name, "bcdk+e10ms") != 0 &&
            std::strcmp(m->spec_.name, "i") != 0)
            continue;
        std::printf(
            "stats %-9s allocs %llu frees %llu | pair candidates %llu, rejected (another thread "
            "between) %llu, pairs %llu | frees by rank %llu (rank 0: %llu, <16: %llu, <256: %llu, "
            "larger: %llu; from the oldest end: %llu), by address %llu, "
            "rank checks failed %llu | alloc reuse guesses %llu hit %llu, next-chunk hits %llu | "
            "pair defs %llu | unknown "
            "frees dropped %llu | run segments %llu, marks %llu | column form %.2f B/event before "
            "zstd\n",
            m->spec_.name, (unsigned long long)s.allocs, (unsigned long long)s.frees,
            (unsigned long long)s.pair_candidates, (unsigned long long)s.pairs_rejected,
            (unsigned long long)s.pairs, (unsigned long long)s.frees_rank,
            (unsigned long long)s.frees_rank0, (unsigned long long)s.rank_hist[0],
            (unsigned long long)s.rank_hist[1], (unsigned long long)s.rank_hist[2],
            (unsigned long long)s.rank_old_end, (unsigned long long)s.frees_escape,
            (unsigned long long)s.rank_check_fail, (unsigned long long)s.alloc_predicted,
            (unsigned long long)s.alloc_hit, (unsigned long long)s.alloc_seq_hit,
            (unsigned long long)s.pair_defs, (unsigned long long)s.dropped_unknown_frees,
            (unsigned long long)s.run_segments, (unsigned long long)s.marks,
            static_cast<double>(m->joint.raw) / ev);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    bool verbose = false;
    int rc = 0;
    int files = 0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--verbose") == 0) {
            verbose = true;
            continue;
        }
        if (std::strcmp(argv[i], "--verify") == 0 && i + 1 < argc) {
            g_verify = argv[++i];
            continue;
        }
        if (std::strcmp(argv[i], "--cycle-flush") == 0) {
            g_cycle_flush = true;
            continue;
        }
        if (std::strcmp(argv[i], "--merge") == 0) {
            g_merge = true;
            if (i + 1 < argc && std::isdigit(static_cast<unsigned char>(argv[i + 1][0])))
                g_merge_cap = std::strtoull(argv[++i], nullptr, 10);
            continue;
        }
        if (std::strcmp(argv[i], "--level") == 0 && i + 1 < argc) {
            g_level = std::atoi(argv[++i]);
            continue;
        }
        ++files;
        try {
            rc |= study(argv[i], verbose);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: %s\n", argv[i], e.what());
            rc = 2;
        }
    }
    if (files == 0) {
        std::fprintf(stderr,
                     "usage: size-study [--verbose] [--level N] [--merge [N] | --cycle-flush] "
                     "[--verify i|j|j1ms|j1ms-age|h] "
                     "TRACE.pmt...\n");
        return 2;
    }
    return rc;
}
