// Private to trace/: the version-3 stream decoder (FORMAT.md, "Version 3"). A version-3 file is
// one event stream cut into payloads; StreamDecoder keeps the stream's state (thread table,
// current thread, running time and address, block sequence counter, each thread's live blocks
// in seq order) from one payload to the next and hands the events to a visitor as it decodes
// them, numbered, a batch at a time: no queue, no merge. Heap blocks are named by their seq:
// the address an Alloc and its Free carry is (1 << 63) | seq.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "id_table.hpp"
#include "pmt/live_rank.hpp"
#include "pmt/reader.hpp"

namespace pmt::detail {

class StreamDecoder {
public:
    // time_shift: the header's k (event times are t << k ns), at most 40.
    explicit StreamDecoder(unsigned time_shift);
    ~StreamDecoder();
    StreamDecoder(const StreamDecoder&) = delete;
    StreamDecoder& operator=(const StreamDecoder&) = delete;

    // Decodes one stream payload (column form v3), applying its definitions and handing its
    // events to v.on_events before it returns. Throws TraceError (a message without the file
    // name) on a malformed payload; the decoder is then unusable.
    void decode(const uint8_t* p, size_t n, EventVisitor& v);

    uint64_t delivered() const { return delivered_; }
    uint64_t last_time_ns() const { return last_time_; }
    const Definitions& definitions() const { return defs_; }

    static constexpr uint64_t kHeapAddressBit = uint64_t{1} << 63;

private:
    struct Thread {
        uint32_t tid;
        LiveRank live;  // the blocks this thread allocated that are live, by seq
    };
    static constexpr uint32_t kNoThread = UINT32_MAX;
    static constexpr size_t kBatch = 256;

    // Hands batch_[0, end) to v; dirty: a mapping event among them (its slot's extra fields
    // are reset, see decode()).
    void flush(EventVisitor& v, Event* end, bool dirty);

    unsigned shift_;
    uint64_t t_ = 0;  // running time, units of 2^shift_ ns
    uint64_t a_ = 0;  // running mapping / unknown-free address
    uint64_t next_seq_ = 0;
    uint32_t cur_ = kNoThread;
    std::vector<std::unique_ptr<Thread>> threads_;
    std::unordered_map<uint32_t, uint32_t> index_of_;  // tid -> thread index
    uint64_t delivered_ = 0;
    uint64_t last_time_ = 0;
    std::vector<Event> batch_;
    Definitions defs_;
};

}  // namespace pmt::detail
