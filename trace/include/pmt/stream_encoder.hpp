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
    // Every event and THREAD_NAME needs a current thread: call thread() before the first.
    // A heap block allocated by the current thread; returns its seq (store it with the block,
    // with the thread index, for its free).
    // (Inline: the ALLOC is held back, and the held one written out of line.)
    uint64_t alloc(AllocKind kind, uint64_t size, uint64_t stack) {
        if (pending_) write_alloc(pend_);
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
    // it for the reference to stay short. (Inline: the free of the ALLOC held back, a PAIR.)
    bool free(uint32_t owner, uint64_t seq, AllocKind kind = AllocKind::Malloc) {
        if (pending_ && op3_free_group(kind) == 0 && owner == cur_ && seq == pend_.seq) {
            op(op3_pair(pend_.kind));
            put(kSizes, pend_.size);
            put(kStacks, pend_.stack);
            pending_ = false;
            return true;
        }
        return free_held(owner, seq, kind);
    }
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
        size_t size() const { return static_cast<size_t>(w - buf.get()); }
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
    void tick(uint64_t c);
    [[gnu::noinline]] void time_slow(uint64_t t_ns);
    void set_tick_at();
    void confirm() {  // writes the held-back ALLOC, if any
        if (pending_) write_alloc(pend_);
    }
    // Writes the held-back ALLOC p (pend_) and clears pending_.
    [[gnu::noinline]] void write_alloc(const Pending& p);
    // free() of a block other than the held-back ALLOC's (that one is written first).
    [[gnu::noinline]] bool free_held(uint32_t owner, uint64_t seq, AllocKind kind);
    void grow(Column& c, size_t need);
    uint8_t* room(Col c, size_t n) {
        Column& col = cols_[c];
        if (static_cast<size_t>(col.end - col.w) < n) grow(col, n);
        return col.w;
    }
    void op(uint8_t o) {
        uint8_t* p = room(kOps, 1);
        *p = o;
        cols_[kOps].w = p + 1;
    }
    void put(Col c, uint64_t v) { cols_[c].w = detail::put_varint(room(c, 10), v); }
    void address(uint64_t addr);
    Column cols_[kCols];
    std::vector<Thread> threads_;
    LiveSeqs live_;          // version 4: every live block of the stream
    detail::TidTable tids_;  // tid -> thread index
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

}  // namespace pmt
