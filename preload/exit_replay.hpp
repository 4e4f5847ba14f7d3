// The writer's cycle (FORMAT.md, "Event times"): it decodes the thread-events payloads it
// collected, gives every event its time in the file (2^k ns units) so that the reader's
// (time, tid) order is exactly the order of the nanosecond clock readings, builds each
// payload's column form with those times, and replays the events for the exit line and the
// End chunk (exact peak live bytes, its time, the event count): the same answer as the trace
// library's EventMerger + LiveHeap on the file, without general event objects.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "pmt/column_builder.hpp"
#include "pmt/format.hpp"
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
    // The slot of a live addr (not 0), or (*live false) the empty slot where it would go.
    size_t find(uint64_t addr, bool* live) const {
        size_t mask = slots_.size() - 1;
        for (size_t i = home(addr);; i = (i + 1) & mask) {
            if (slots_[i].addr == addr) {
                *live = true;
                return i;
            }
            if (slots_[i].addr == 0) {
                *live = false;
                return i;
            }
        }
    }
    uint64_t size_at(size_t slot) const { return slots_[slot].size; }
    void set_size_at(size_t slot, uint64_t size) { slots_[slot].size = size; }
    // Makes addr live in the empty slot find gave for it; the table must not have changed since.
    void insert_at(size_t slot, uint64_t addr, uint64_t size) {
        slots_[slot] = Slot{addr, size};
        if (++used_ * 2 > slots_.size()) grow();
    }

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

// A thread's time fields in a cycle: grown, never zero-filled; ColumnBuilder writes them in
// place through a pointer.
class TimeList {
public:
    uint64_t* data() { return p_.get(); }
    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    uint64_t operator[](size_t i) const { return p_[i]; }
    void clear() { n_ = 0; }
    // Room for k more fields after the last; returns where they go.
    uint64_t* room(size_t k) {
        if (n_ + k > cap_) {
            size_t cap = std::max(n_ + k, 2 * cap_);
            std::unique_ptr<uint64_t[]> p(new uint64_t[cap]);
            if (n_) std::memcpy(p.get(), p_.get(), n_ * sizeof(uint64_t));
            p_ = std::move(p);
            cap_ = cap;
        }
        return p_.get() + n_;
    }
    // The fields written up to end (within the room given) are the list's.
    void grow_to(const uint64_t* end) { n_ = static_cast<size_t>(end - p_.get()); }

private:
    std::unique_ptr<uint64_t[]> p_;
    size_t n_ = 0, cap_ = 0;
};

struct PayloadRef {
    const uint8_t* data;
    size_t size;
};

// Where the cycle's chunks go, in file order.
class ChunkSink {
public:
    virtual ~ChunkSink() = default;
    // A ColumnBuilder's output: the column form is the concatenation of pieces[0, n).
    virtual void column_chunk(const ByteSpan* pieces, size_t n) = 0;
    virtual void raw_chunk(const uint8_t* raw, size_t n) = 0;  // only after a failure, not re-timed
};

struct Split;

class WriterCycle {
public:
    explicit WriterCycle(unsigned shift = kWriterTimeShift);
    ~WriterCycle();

    // One writer cycle: payloads are the raw buffers collected after the clock read t_ns (each
    // thread's in record order, nanosecond times). Events timed >= t_ns are held back to the
    // next cycle (re-encoded, not written yet); the last cycle (at exit or exec) holds
    // nothing. Writes the chunks to sink and returns the Epoch time (ns, a multiple of 2^k):
    // above every time written so far, at most every later one. Nothing is thrown: a
    // malformed payload or a failed allocation makes failed() true, and from then on payloads
    // are passed to raw_chunk as they came (not re-timed: the writer's sink ends the trace
    // there rather than write them).
    uint64_t cycle(const PayloadRef* payloads, size_t n, uint64_t t_ns, bool last,
                   ChunkSink& sink) noexcept;
    bool holding() const { return !held_.empty(); }

    bool failed() const { return failed_; }
    uint64_t events() const { return events_; }  // every event written so far
    uint64_t peak_bytes() const { return peak_bytes_; }
    uint64_t peak_time_ns() const { return peak_time_ns_; }
    uint64_t live_bytes() const { return heap_live_ + maps_.live_bytes(); }

private:
    // A replayed event: an alloc (size below the marks), a free, or an mmap-family event whose
    // details sit in the thread's side vector (addr is the index); tf is the index of its time
    // in the thread's time list. Rss events change no live bytes and are only counted.
    struct Ev {
        uint64_t tf;
        uint64_t addr;
        uint64_t size;
    };
    static constexpr uint64_t kFreeMark = UINT64_MAX;
    static constexpr uint64_t kMapMark = UINT64_MAX - 1;

    // One thread's part of the cycle.
    struct Thread {
        uint32_t tid = 0;
        bool stopped = false;     // its later records are held back to the next cycle
        TimeList time;            // every time field, ns; after the merge, file time units
        std::vector<Ev> ev;       // queued replay events (not when replayed while decoding)
        std::vector<Event> maps;  // mmap/munmap/mremap details, referenced from ev
        size_t ev_done = 0;
        uint64_t payload_bytes = 0;
        uint64_t last_ns = 0;  // where its time stands: a payload based earlier starts here
    };
    // A payload to write: its thread, its time fields [t_begin, t_end) and its columns.
    struct Seg {
        size_t th;
        size_t t_begin, t_end;
        ColumnBuilder* cols;
    };
    template <bool Direct>
    struct Visitor;

    void run(const PayloadRef* payloads, size_t n, uint64_t cut, ChunkSink& sink);
    template <bool Direct>
    void decode(const PayloadRef& p, Thread& th, uint64_t cut);
    void hold(const uint8_t* p, const uint8_t* end, uint64_t t, uint64_t a, uint32_t tid,
              const Split* split);
    template <bool Queued>
    void merge();
    void apply(const Ev& e, const Event* map, uint64_t time_units);
    void apply_direct(Thread& th, const Ev& e, const Event* map);
    void settle_pending() {
        if (!pending_) return;
        pending_ = false;
        blocks_.insert_at(pending_slot_, pending_addr_, pending_size_);
    }

    const unsigned shift_;
    std::vector<Thread> threads_;  // this cycle's, [0, n_threads_)
    size_t n_threads_ = 0;
    std::unordered_map<uint32_t, size_t> thread_index_;
    std::unordered_map<uint32_t, uint64_t> last_ns_;  // every thread's, kept as the reader does
    std::vector<Seg> segs_;
    std::vector<std::unique_ptr<ColumnBuilder>> builders_;
    std::vector<std::vector<uint8_t>> held_, held_next_;  // raw payloads held to the next cycle
    std::vector<PayloadRef> refs_;
    uint64_t floor_ = 0;         // the last Epoch (units): every later time is at least this
    uint64_t last_ = 0;          // one past the last unit given
    size_t peak_th_ = SIZE_MAX;  // a peak found while decoding: its thread and time field,
    uint64_t peak_tf_ = 0;       // converted to the file's time after the merge

    LiveBlockTable blocks_;
    LiveHeap maps_;  // anonymous mappings (its heap-block side stays unused)
    uint64_t heap_live_ = 0;
    // Direct replay: the block of the last alloc, counted live but not yet in blocks_ (most
    // are freed by the thread's next event and never enter it); its empty slot there.
    bool pending_ = false;
    size_t pending_slot_ = 0;
    uint64_t pending_addr_ = 0, pending_size_ = 0;
    uint64_t events_ = 0;
    uint64_t peak_bytes_ = 0;
    uint64_t peak_time_ns_ = 0;
    bool failed_ = false;
    bool emitting_ = false;  // chunks of this cycle are being written
};

}  // namespace pmt::preload
