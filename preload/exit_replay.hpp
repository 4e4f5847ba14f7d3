// The writer's replay for the exit line and the End chunk: exact peak live bytes (and its time)
// and the event count, computed from the raw thread-events payloads the writer just wrote.
// Same answer as the trace library's EventMerger + LiveHeap, at a fraction of the cost: no
// general event objects, a flat address->size table, and no merge when one thread recorded.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "pmt/live.hpp"

namespace pmt::preload {

// Live heap blocks by address: open addressing, linear probing, backward-shift deletion.
class LiveBlockTable {
public:
    LiveBlockTable();
    // Makes addr live with size bytes; returns the size of a block it replaced (0 if none) in
    // *replaced and whether there was one (an address handed out again: its free was not seen).
    bool insert(uint64_t addr, uint64_t size, uint64_t* replaced);
    // Removes addr; returns false when it was not live.
    bool erase(uint64_t addr, uint64_t* size);

private:
    struct Slot {
        uint64_t addr;  // 0: empty
        uint64_t size;
    };
    size_t home(uint64_t addr) const {
        return static_cast<size_t>((addr * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    void grow();

    std::vector<Slot> slots_;
    size_t used_ = 0;
    unsigned shift_;
    bool zero_live_ = false;  // address 0 (only a damaged stream has it) lives outside the array
    uint64_t zero_size_ = 0;
};

struct PayloadRef {
    const uint8_t* data;
    size_t size;
};

class ExitReplay {
public:
    // One writer cycle: the raw payloads collected (each thread's in record order), then the
    // release of every event timed before t (the cycle's Epoch); t = UINT64_MAX releases all.
    // A malformed payload or a failed allocation makes failed() true; nothing is thrown.
    void cycle(const PayloadRef* payloads, size_t n, uint64_t t) noexcept;

    bool failed() const { return failed_; }
    uint64_t events() const { return events_; }  // every decoded event (all, once released)
    uint64_t peak_bytes() const { return peak_bytes_; }
    uint64_t peak_time_ns() const { return peak_time_ns_; }
    uint64_t live_bytes() const { return heap_live_ + maps_.live_bytes(); }  // after the release

private:
    // A queued event: an alloc (size below the marks), a free, or an mmap-family event whose
    // details sit in the thread's side vector (addr is the index). Rss events change no live
    // bytes and are only counted, so they are never queued.
    struct Ev {
        uint64_t t;
        uint64_t addr;
        uint64_t size;
    };
    static constexpr uint64_t kFreeMark = UINT64_MAX;
    static constexpr uint64_t kMapMark = UINT64_MAX - 1;

    struct Thread {
        uint64_t last_time = 0;  // keeps times non-decreasing across payloads (as the reader)
        std::vector<Ev> queue;   // decoded, not yet applied; [head, size)
        size_t head = 0;
        std::vector<Event> maps;  // mmap/munmap/mremap details, referenced from queue
        uint32_t idle = 0;        // cycles without a payload (idle empty threads are dropped)
        bool pending() const { return head < queue.size(); }
    };
    void run(const PayloadRef* payloads, size_t n, uint64_t t);
    template <class Out>
    bool decode(const uint8_t* p, size_t n, Thread*& th, Out&& out);
    void apply(const Ev& e, const Event* map);
    static void enqueue(Thread& th, const Ev& e, const Event* map);
    void merge_before(uint64_t t);
    void compact();

    std::unordered_map<uint32_t, Thread> threads_;
    LiveBlockTable blocks_;
    LiveHeap maps_;  // anonymous mappings (its heap-block side stays unused)
    uint64_t heap_live_ = 0;
    uint64_t last_time_ = 0;  // of the last applied event: the reader's clamp
    uint64_t events_ = 0;
    uint64_t peak_bytes_ = 0;
    uint64_t peak_time_ns_ = 0;
    bool failed_ = false;
};

}  // namespace pmt::preload
