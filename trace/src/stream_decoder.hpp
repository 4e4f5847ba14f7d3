// Private to trace/: the stream decoder of versions 3 and 4 (FORMAT.md, "Version 3", "Version
// 4"). Such a file is one event stream cut into payloads; StreamDecoder keeps the stream's state
// (thread table, current thread, running time and address, block sequence counter, the live
// blocks: version 4 as a set of seqs with each thread's free-reference predictors, version 3 as
// each thread's blocks in seq order) from one payload to the next and hands the events to a
// visitor as it decodes them, numbered, a batch at a time: no queue, no merge. Heap blocks are
// named by their seq: the address an Alloc and its Free carry is (1 << 63) | seq.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "id_table.hpp"
#include "pmt/live_rank.hpp"
#include "pmt/live_seqs.hpp"
#include "pmt/reader.hpp"

namespace pmt::detail {

class StreamDecoder {
public:
    // What a file can make the decoder hold, beyond which it is corrupt (a TraceError, never
    // std::bad_alloc): threads, and version 3's positions (live blocks and tombstones) in one
    // thread's LiveRank (LiveRank::add_bounded: its arrays do not grow to hold that many).
    // Tests lower them to reach them with small files.
    struct Limits {
        // Linux hands out thread ids below PID_MAX_LIMIT (2^22) and a writer names a tid that
        // comes back with its old index, so a Linux process has at most 2^22 threads in the
        // table; each costs the reader about 50-100 bytes.
        uint64_t threads = uint64_t{1} << 22;
        uint64_t positions = LiveRank::kMaxPositions;  // at most that
    };

    // time_shift: the header's k (event times are t << k ns), at most 40; version: 3 or 4.
    StreamDecoder(unsigned time_shift, uint16_t version, Limits limits);
    StreamDecoder(unsigned time_shift, uint16_t version)
        : StreamDecoder(time_shift, version, Limits{}) {}
    ~StreamDecoder();
    StreamDecoder(const StreamDecoder&) = delete;
    StreamDecoder& operator=(const StreamDecoder&) = delete;

    // Decodes one stream payload (FORMAT.md "Stream payload"), applying its definitions and handing
    // its events to v.on_events before it returns. Throws TraceError (a message without the file
    // name) on a malformed payload; the decoder is then unusable.
    void decode(const uint8_t* p, size_t n, EventVisitor& v);

    uint64_t delivered() const { return delivered_; }
    uint64_t last_time_ns() const { return last_time_; }
    const Definitions& definitions() const { return defs_; }

    static constexpr uint64_t kHeapAddressBit = uint64_t{1} << 63;

private:
    // 32 bytes, held in place in threads_ (a hostile file may add millions).
    struct Thread {
        uint32_t tid;
        uint64_t next_free = 0;   // version 4: f, one past the seq of its last block freed
        uint64_t next_alloc = 0;  // version 4: a, one past the seq of its last ALLOC
        // Version 3: the blocks it allocated that are live, by seq; made at its first ALLOC.
        std::unique_ptr<LiveRank> live;
    };
    static constexpr uint32_t kNoThread = UINT32_MAX;
    static constexpr size_t kBatch = 256;

    // Hands batch_[0, end) to v; dirty: a mapping event among them (its slot's extra fields
    // are reset, see decode()).
    void flush(EventVisitor& v, Event* end, bool dirty);
    template <bool kV4>
    void decode_payload(const uint8_t* p, size_t n, EventVisitor& v);

    unsigned shift_;
    bool v4_;
    Limits limits_;
    uint64_t t_ = 0;  // running time, units of 2^shift_ ns
    uint64_t a_ = 0;  // running mapping / unknown-free address
    uint64_t next_seq_ = 0;
    uint32_t cur_ = kNoThread;
    std::vector<Thread> threads_;  // by index (cur points into it: reset after a push)
    TidTable index_of_;            // tid -> thread index, only to refuse a tid added twice
    LiveSeqs live_;                // version 4: the live blocks
    uint64_t delivered_ = 0;
    uint64_t last_time_ = 0;
    std::vector<Event> batch_;
    Definitions defs_;
};

}  // namespace pmt::detail
