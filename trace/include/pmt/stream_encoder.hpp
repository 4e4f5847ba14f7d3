// Event stream encoder (FORMAT.md, "Version 4"; "Version 3" on request): the interposer's
// writer feeds it every event of the process in stream order and cuts the stream into chunk
// payloads with finish(). It keeps the decoder's state (current thread, running time and
// address, thread table, block sequence counter, the live blocks, each thread's free-reference
// predictors; version 3: each thread's live blocks by rank) across payloads, exactly as a
// reader rebuilds it, so every record it writes is what the decoder expects.
//
// Runs on the interposer's writer thread: it allocates (column buffers, thread table, live
// block pages; the writer holds the reentrancy guard) but reuses its buffers from payload to
// payload. Nothing throws except std::bad_alloc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "pmt/chunk.hpp"
#include "pmt/format.hpp"
#include "pmt/live_rank.hpp"
#include "pmt/live_seqs.hpp"
#include "pmt/tid_table.hpp"
#include "pmt/varint.hpp"

namespace pmt {

class StreamEncoder {
public:
    // version: kStreamFormatVersion (4), or 3 (frees by rank; for tests and re-encoding).
    // check_frees false (version 4 only): the caller vouches that every free() names a block
    // live in the stream, as the interposer's writer does with its own table of live blocks;
    // the encoder then keeps no set of live seqs (no page per 4096 seqs, no bit set and
    // cleared per block) and free() refuses only an unknown owner. The bytes are the same.
    explicit StreamEncoder(unsigned time_shift = kWriterTimeShift, unsigned tick_shift = kTickShift,
                           uint16_t version = kStreamFormatVersion, bool check_frees = true);
    ~StreamEncoder();
    StreamEncoder(const StreamEncoder&) = delete;
    StreamEncoder& operator=(const StreamEncoder&) = delete;

    // Makes tid the current thread (emits THREAD when it changes); returns its index.
    uint32_t thread(uint32_t tid) {
        if (tid == cur_key_) return cur_;
        return switch_thread(tid);
    }
    // The clock reading of the next event, ns: emits a TICK when it is 2^m units or more past
    // the running time t. A reading below t changes nothing (times never decrease).
    void time(uint64_t t_ns) {
        if (__builtin_expect(t_ns >= tick_at_ns_, 0)) time_slow(t_ns);
    }
    // Whether time(t_ns) might emit a TICK (false: it changes nothing, nor does any reading
    // below t_ns).
    bool may_tick(uint64_t t_ns) const { return t_ns >= tick_at_ns_; }
    uint64_t tick_at_ns() const { return tick_at_ns_; }  // no reading below it may tick
    // Every event and THREAD_NAME needs a current thread: call thread() before the first.
    // A heap block allocated by the current thread; returns its seq (store it with the block,
    // with the thread index, for its free).
    // (Inline: the ALLOC is held back, and the held one written out of line.)
    uint64_t alloc(AllocKind kind, uint64_t size, uint64_t stack) {
        if (pending_) write_pending();
        const uint64_t seq = next_seq_++;
        pend_ = Pending{size, stack, seq, kind};
        pending_ = true;
        return seq;
    }
    // Free of a live block: its owner thread index and seq. kind Malloc for free(), Realloc /
    // ReallocArray for the free half of a realloc. Returns false, writing nothing, when the
    // owner index is unknown or seq is not live (version 3: not live in that thread; a caller's
    // bug; check_frees false: only an unknown owner). Version 4 names the block relative to
    // the owner's last free and last allocation: the owner must be the thread that allocated
    // it for the reference to stay short. (Inline: the free of the ALLOC held back, a PAIR,
    // and version 4's free without check_frees; the checks out of line.)
    bool free(uint32_t owner, uint64_t seq, AllocKind kind = AllocKind::Malloc) {
        if (pending_ && seq == pend_.seq && owner == cur_ && op3_free_group(kind) == 0) {
            op(op3_pair(pend_.kind));
            put(kSizes, pend_.size);
            put(kStacks, pend_.stack);
            pending_ = false;
            return true;
        }
        confirm();
        if (owner >= n_threads_) return false;
        Thread& th = threads_[owner];
        uint64_t r;  // the reference: version 4's prediction code, version 3's rank code
        if (__builtin_expect(check_frees_, 0)) {  // always with version 3
            if (!free_checked(th, seq, &r)) return false;
        } else {
            r = free_code(th, seq);
        }
        if (owner == cur_ && has_cur()) {
            op(op3_free(Op3::Free, kind));
        } else {
            op(op3_free(Op3::FreeOther, kind));
            put(kRefs, owner);
        }
        put(kRefs, r);
        return true;
    }
    // alloc() and then, with nothing between, free(current thread, that seq, Malloc): a PAIR,
    // in one step (the same bytes and state). Returns the block's seq.
    uint64_t pair(AllocKind kind, uint64_t size, uint64_t stack) {
        if (pending_) write_alloc();
        op(op3_pair(kind));
        put(kSizes, size);
        put(kStacks, stack);
        return next_seq_++;
    }
    // pair() over and over, the columns' write positions held in registers: next(kind, size,
    // stack) sets the next PAIR's fields and returns true, or returns false when there are no
    // more; it is not asked once a column would have to grow first. next must not call the
    // encoder. Returns how many PAIRs it wrote (the same bytes and state as that many pair()).
    template <class Next>
    uint64_t pairs(Next&& next) {
        if (pending_) write_alloc();
        Column& o = cols_[kOps];
        Column& z = cols_[kSizes];
        Column& k = cols_[kStacks];
        uint8_t* ow = o.w;
        uint8_t* zw = z.w;
        uint8_t* kw = k.w;
        const uint8_t* const ol = o.lim;
        const uint8_t* const zl = z.lim;
        const uint8_t* const kl = k.lim;
        uint64_t n = 0;
        AllocKind kind;
        uint64_t size, stack;
        while (ow < ol && zw < zl && kw < kl && next(kind, size, stack)) {
            *ow++ = op3_pair(kind);
            zw = detail::put_varint(zw, size);
            kw = detail::put_varint(kw, stack);
            ++n;
        }
        o.w = ow;
        z.w = zw;
        k.w = kw;
        next_seq_ += n;
        return n;
    }
    // alloc() and free(owner, seq, Malloc) of the current thread over and over with the
    // encoder's state (the columns' write positions, the held ALLOC, the current thread's free
    // predictors) held in the cursor's locals: a caller keeping the cursor on its stack feeds
    // a run of them without the encoder's members being reloaded after every byte stored.
    // Only while cursor_ok(): version 4 without check_frees and with a current thread. Nothing
    // else may be called on the encoder until close(); the same bytes and state as the calls.
    bool cursor_ok() const {
        return !check_frees_ && has_cur() && (!pending_ || pend_.seq + 1 == next_seq_);
    }
    bool is_current(uint32_t tid) const { return cur_key_ == tid; }
    class Cursor;
    void free_unknown(uint64_t addr, AllocKind kind = AllocKind::Malloc);
    void mmap(uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags, int64_t fd,
              uint64_t stack);
    void munmap(uint64_t addr, uint64_t length);
    void mremap(uint64_t old_addr, uint64_t old_length, uint64_t new_addr, uint64_t new_length,
                uint64_t stack);
    void rss(uint64_t bytes);
    void string(uint64_t id, const char* s, size_t n);
    void location(uint64_t id, uint64_t file_id, uint64_t function_id, uint64_t line);
    void stack(uint64_t id, uint64_t parent, uint64_t location);
    // Names the current thread (the stream must have one: call thread() first).
    void thread_name(uint64_t string_id);

    // Bytes of column form pending: exactly what finish() would return now (header, the seven
    // columns and a held-back ALLOC), 0 when nothing is pending.
    size_t pending_bytes() const;
    // At least pending_bytes(), in a few instructions: the columns' bytes plus the most their
    // lengths' varints and a held-back ALLOC can add.
    size_t pending_bytes_bound() const {
        size_t n = kCols * kVarintMax + 1 + 2 * kVarintMax;
        for (const Column& c : cols_) n += c.size();
        return n;
    }
    // Makes each column's capacity at least bytes, so that a payload that keeps every column
    // under it never copies one to grow it (the doubling copies touch about as many fresh pages
    // as the columns themselves). Not zero-filled: pages never written cost no page fault and
    // no RSS.
    void reserve(size_t bytes);
    // Ends the current payload: pieces of its column form (header + 7 columns) in out[0, n),
    // valid until the next call on the encoder. n == 0 when nothing is pending.
    static constexpr size_t kPieces = 8;
    size_t finish(ByteSpan* out /* kPieces */);

    // State, for the writer's checks and the tests.
    uint32_t thread_count() const { return static_cast<uint32_t>(threads_.size()); }
    uint64_t next_seq() const { return next_seq_; }
    uint64_t live_blocks(uint32_t thread) const;  // blocks of that thread live in the stream
    uint64_t time_units() const { return t_; }    // the running time t (units of 2^k ns)
    uint16_t version() const { return v3_ ? 3 : 4; }

private:
    enum Col : uint8_t { kOps, kSizes, kStacks, kRefs, kAddrs, kTimes, kOther, kCols };
    // A column's bytes: grown by doubling, never zero-filled, kept across payloads.
    struct Column {
        std::unique_ptr<uint8_t[]> buf;
        uint8_t* w = nullptr;
        uint8_t* end = nullptr;
        uint8_t* lim = nullptr;  // end - (kVarintMax - 1): below it a varint fits
        size_t size() const { return static_cast<size_t>(w - buf.get()); }
        size_t capacity() const { return static_cast<size_t>(end - buf.get()); }
    };
    struct Thread {
        uint32_t tid;
        uint64_t next_free = 0;   // version 4: f, one past the seq of its last block freed
        uint64_t next_alloc = 0;  // version 4: a, one past the seq of its last ALLOC
        uint64_t live_count = 0;  // version 4: its blocks live in the stream
        LiveRank live{};          // version 3: its live blocks, by rank
    };
    struct Pending {  // the ALLOC held back for the PAIR look-ahead
        uint64_t size;
        uint64_t stack;
        uint64_t seq;
        AllocKind kind;
    };

    uint32_t switch_thread(uint32_t tid);
    bool has_cur() const { return cur_key_ <= UINT32_MAX; }
    uint64_t rank_code(Thread& owner, uint64_t seq);  // version 3; LiveRank::kNotLive if not live
    // Version 4's reference to block seq of thread th, which it makes freed.
    static uint64_t free_code(Thread& th, uint64_t seq) {
        --th.live_count;
        return free_ref(seq, th.next_free, th.next_alloc);
    }
    // The reference a free of seq writes, given its thread's predictors (next_free is moved on).
    // Even: the distance from next_free (zigzag), odd: back from the last allocation; the shorter.
    static uint64_t free_ref(uint64_t seq, uint64_t& next_free, uint64_t next_alloc) {
        const uint64_t from_free = detail::zigzag(static_cast<int64_t>(seq - next_free));
        const uint64_t back = next_alloc - 1 - seq;  // wraps (never chosen) if seq >= next_alloc
        next_free = seq + 1;
        return seq < next_alloc && back < from_free ? 2 * back + 1 : 2 * from_free;
    }
    // The bookkeeping of an ALLOC and a free with check_frees_ (and version 3), or of an ALLOC
    // without a current thread: out of line, so the inline paths stay short.
    [[gnu::noinline]] void alloc_checked(uint64_t seq);
    [[gnu::noinline]] bool free_checked(Thread& th, uint64_t seq, uint64_t* r);
    void tick(uint64_t c);
    [[gnu::noinline]] void time_slow(uint64_t t_ns);
    void set_tick_at();
    void confirm() {  // writes the held-back ALLOC, if any
        if (pending_) write_alloc();
    }
    // Writes the held-back ALLOC (pend_) and clears pending_: inline in alloc(), where most
    // are written; out of line (write_alloc) elsewhere.
    void write_pending() {
        pending_ = false;
        op(op3_alloc(pend_.kind));
        put(kSizes, pend_.size);
        put(kStacks, pend_.stack);
        if (__builtin_expect(check_frees_ || !has_cur(), 0)) return alloc_checked(pend_.seq);
        Thread& th = threads_[cur_];
        th.next_alloc = pend_.seq + 1;
        ++th.live_count;
    }
    [[gnu::noinline]] void write_alloc();
    [[gnu::noinline]] void grow(Column& c, size_t need);
    void set_capacity(Column& c, size_t n);
    static constexpr size_t kVarintMax = 10;
    uint8_t* room(Col c, size_t n) {
        Column& col = cols_[c];
        if (static_cast<size_t>(col.end - col.w) < n) grow(col, n);
        return col.w;
    }
    // Room for a varint (or an opcode): one compare.
    uint8_t* room_varint(Col c) {
        Column& col = cols_[c];
        if (__builtin_expect(col.w >= col.lim, 0)) grow(col, kVarintMax);
        return col.w;
    }
    void op(uint8_t o) {
        uint8_t* p = room_varint(kOps);
        *p = o;
        cols_[kOps].w = p + 1;
    }
    void put(Col c, uint64_t v) { cols_[c].w = detail::put_varint(room_varint(c), v); }
    void address(uint64_t addr);
    Column cols_[kCols];
    std::vector<Thread> threads_;
    uint32_t n_threads_ = 0;  // threads_.size(), without the division by sizeof(Thread)
    LiveSeqs live_;           // version 4: every live block of the stream
    detail::TidTable tids_;   // tid -> thread index
    unsigned time_shift_;
    uint64_t tick_;   // 2^m
    uint64_t t_ = 0;  // running time, units of 2^k ns
    // No reading below it emits a TICK (the least that does when representable, else
    // UINT64_MAX): time() tests only this, time_slow() the exact rule.
    uint64_t tick_at_ns_ = 0;
    uint64_t a_ = 0;                        // running mapping/unknown address
    uint64_t next_seq_ = 0;                 // the next heap block's seq
    uint32_t cur_ = 0;                      // current thread index (valid when has_cur())
    uint64_t cur_key_ = uint64_t(1) << 32;  // the current tid; above every tid when none
    bool v3_ = false;                       // version 3: frees by rank
    bool check_frees_;  // version 4: live_ holds every live block (else it stays empty)
    bool pending_ = false;
    Pending pend_{};
    uint8_t head_[7 * 10];
};

class StreamEncoder::Cursor {
public:
    // Room for max_records calls (alloc or free) is made in the columns first (a column grown a
    // little earlier than it would be: the same bytes), so none is checked per byte.
    Cursor(StreamEncoder& e, size_t max_records)
        : e_(e),
          th_(e.threads_[e.cur_]),
          next_seq_(e.next_seq_),
          next_free_(th_.next_free),
          next_alloc_(th_.next_alloc),
          psize_(e.pend_.size),
          pstack_(e.pend_.stack),
          pkind_(e.pend_.kind),
          cur_(e.cur_),
          pending_(e.pending_) {
        // Most bytes one call writes per column: a held ALLOC and a FREE (two opcodes, a size,
        // a stack, a FREE_OTHER's owner and reference).
        static constexpr size_t kMost[kUsed] = {2, kVarintMax, kVarintMax, 2 * kVarintMax};
        for (size_t i = 0; i < kUsed; ++i) {
            Column& col = e.cols_[i];
            const size_t need = kMost[i] * max_records;
            if (static_cast<size_t>(col.end - col.w) < need) e.grow(col, need);
            w_[i] = col.w;
        }
    }
    uint64_t next_seq() const { return next_seq_; }
    [[gnu::always_inline]] uint64_t alloc(AllocKind kind, uint64_t size, uint64_t stack) {
        if (pending_) write_pending();
        psize_ = size;
        pstack_ = stack;
        pkind_ = kind;
        pending_ = true;
        return next_seq_++;  // the held ALLOC's seq stays next_seq_ - 1
    }
    // free(owner, seq, Malloc): false (nothing written) when the owner index is unknown.
    [[gnu::always_inline]] bool free(uint32_t owner, uint64_t seq) {
        if (pending_) {
            if (seq == next_seq_ - 1 && owner == cur_) {
                op(op3_pair(pkind_));
                put(kSizes, psize_);
                put(kStacks, pstack_);
                pending_ = false;
                return true;
            }
            write_pending();
        }
        uint64_t r;
        if (owner == cur_) {
            --th_.live_count;
            r = free_ref(seq, next_free_, next_alloc_);
            op(op3_free(Op3::Free, AllocKind::Malloc));
        } else {
            if (owner >= e_.n_threads_) return false;
            r = free_code(e_.threads_[owner], seq);
            op(op3_free(Op3::FreeOther, AllocKind::Malloc));
            put(kRefs, owner);
        }
        put(kRefs, r);
        return true;
    }
    // Stores the state back into the encoder.
    void close() {
        for (size_t i = 0; i < kUsed; ++i) e_.cols_[i].w = w_[i];
        e_.next_seq_ = next_seq_;
        th_.next_free = next_free_;
        th_.next_alloc = next_alloc_;
        e_.pending_ = pending_;
        if (pending_) e_.pend_ = Pending{psize_, pstack_, next_seq_ - 1, pkind_};
    }

private:
    static constexpr size_t kUsed = kRefs + 1;  // ops, sizes, stacks, refs
    [[gnu::always_inline]] void write_pending() {
        pending_ = false;
        op(op3_alloc(pkind_));
        put(kSizes, psize_);
        put(kStacks, pstack_);
        next_alloc_ = next_seq_;
        ++th_.live_count;
    }
    [[gnu::always_inline]] void op(uint8_t o) { *w_[kOps]++ = o; }
    [[gnu::always_inline]] void put(Col c, uint64_t v) { w_[c] = detail::put_varint(w_[c], v); }

    StreamEncoder& e_;
    Thread& th_;
    uint8_t* w_[kUsed];
    uint64_t next_seq_, next_free_, next_alloc_;
    uint64_t psize_, pstack_;  // the held ALLOC (its seq: next_seq_ - 1)
    AllocKind pkind_;
    uint32_t cur_;
    bool pending_;
};

}  // namespace pmt
