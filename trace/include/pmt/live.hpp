// Exact live-byte accounting from a time-ordered event stream (FORMAT.md, "What counts as
// live"): heap blocks by address, anonymous mappings as page ranges with partial unmaps.
// Used by the analyzer's replay and by the interposer's writer thread for the exit line.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "pmt/block_table.hpp"
#include "pmt/reader.hpp"

namespace pmt {

class LiveListener {
public:
    virtual ~LiveListener() = default;
    virtual void on_live(const Block&) {}
    virtual void on_dead(const Block&, uint64_t /*time_ns*/) {}
};

// One change an event made to the live set: a block made live, or (a piece of) one made dead at
// the event's time. Several for an mremap or an address handed out again.
struct LiveChange {
    Block block;
    bool live = false;
};

// The changes of one event, in the order LiveHeap made them (what a LiveListener would have
// been told). Reused from event to event: no allocation once it has grown.
class LiveChanges {
public:
    void clear() { n_ = 0; }
    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    const LiveChange* begin() const { return v_.data(); }
    const LiveChange* end() const { return v_.data() + n_; }
    const LiveChange& operator[](size_t i) const { return v_[i]; }
    void push(const Block& b, bool live) {
        if (__builtin_expect(n_ == cap_, 0)) grow();
        v_[n_].block = b;
        v_[n_].live = live;
        ++n_;
    }

private:
    void grow() {
        v_.resize(n_ + 4);
        cap_ = v_.size();
    }
    std::vector<LiveChange> v_;
    size_t n_ = 0;
    size_t cap_ = 0;  // v_.size(), kept apart (LiveChange is 56 bytes: no division per push)
};

namespace live_detail {
// Sinks of LiveHeap's changes: a LiveListener (may be null), or a record of the changes.
struct ToListener {
    LiveListener* l;
    void live(const Block& b) {
        if (l) l->on_live(b);
    }
    void dead(const Block& b, uint64_t t) {
        if (l) l->on_dead(b, t);
    }
};

struct ToChanges {
    LiveChanges& out;
    void live(const Block& b) { out.push(b, true); }
    void dead(const Block& b, uint64_t /*t*/) { out.push(b, false); }
};
}  // namespace live_detail

class LiveHeap {
public:
    // Applies one event (in time order). Rss events are ignored here.
    void apply(const Event& e, LiveListener* listener = nullptr);
    // The same, appending the changes to `out` (not cleared) instead of calling a listener.
    // Inline for heap blocks (the replay's call per event); mappings go through live.cpp.
    void apply(const Event& e, LiveChanges& out) {
        live_detail::ToChanges sink{out};
        switch (e.type) {
            case EventType::Alloc:
                add_block({e.addr, e.size, e.stack_id, e.time_ns, false}, sink);
                note_peak(e);
                return;
            case EventType::Free:
                // Live bytes only fall: no new peak.
                free_block(e.addr, e.time_ns, sink);
                return;
            default:
                apply_slow(e, out);
        }
    }

    uint64_t live_bytes() const { return live_bytes_; }
    uint64_t peak_bytes() const { return peak_bytes_; }
    uint64_t peak_time_ns() const { return peak_time_ns_; }
    uint64_t peak_seq() const { return peak_seq_; }  // Event::seq of the event that set the peak
    uint64_t unknown_frees() const { return unknown_frees_; }
    // Allocs at an address that was still live (its free was never seen): the old block was
    // counted as dead first.
    uint64_t replaced_live() const { return replaced_live_; }
    uint64_t live_blocks() const { return blocks_.size() + mappings_.size(); }
    // Every change so far: blocks made live (and their bytes), blocks or pieces made dead.
    // The same counts a listener would get from on_live / on_dead calls.
    uint64_t made_live() const { return made_live_; }
    uint64_t made_live_bytes() const { return made_live_bytes_; }
    uint64_t made_dead() const { return made_dead_; }

    // Tags the live heap block at addr (Block::tag; not mappings); false when there is none.
    // Tags are listeners' annotations, not heap state: setting one is allowed on a const heap.
    // The block the latest event made live is found without a lookup.
    bool set_tag(uint64_t addr, uint32_t tag) const {
        Block* b = last_added_ && last_added_->addr == addr ? last_added_ : blocks_.find(addr);
        if (!b) return false;
        b->tag = tag;
        return true;
    }

    template <class F>
    void for_each_live(F&& f) const {
        blocks_.for_each(f);
        for (const auto& [addr, b] : mappings_) f(b);
    }

private:
    // Sink: where changes go (live_detail: a listener, or a LiveChanges record).
    template <class Sink>
    void apply_to(const Event& e, Sink& s);
    void apply_slow(const Event& e, LiveChanges& out);
    void note_peak(const Event& e) {
        if (live_bytes_ > peak_bytes_) {
            peak_bytes_ = live_bytes_;
            peak_time_ns_ = e.time_ns;
            peak_seq_ = e.seq;
        }
    }
    template <class Sink>
    void add_block(const Block& b, Sink& l) {
        auto [slot, added] = blocks_.insert(b);
        if (__builtin_expect(!added, 0)) {
            // An address handed out again while we think it is live: its free was not seen
            // (made before tracing, or by a path we do not intercept). The old block is gone;
            // say so.
            ++replaced_live_;
            live_bytes_ -= slot->size;
            ++made_dead_;
            l.dead(*slot, b.time_ns);
            *slot = b;
        }
        last_added_ = slot;
        live_bytes_ += b.size;
        ++made_live_;
        made_live_bytes_ += b.size;
        l.live(b);
    }
    template <class Sink>
    void free_block(uint64_t addr, uint64_t t, Sink& l) {
        Block* slot = blocks_.find(addr);
        if (!slot) {
            if (addr != 0) ++unknown_frees_;
            return;
        }
        live_bytes_ -= slot->size;
        ++made_dead_;
        l.dead(*slot, t);  // before the erase: no copy of the block
        blocks_.erase(slot);
        last_added_ = nullptr;  // erase may have moved it
    }
    template <class Sink>
    void add_mapping(const Block& b, Sink& s);
    // Removes the counted parts of [addr, addr+len), splitting ranges that stick out; returns
    // the bytes removed and stores the first removed piece in *first_removed.
    template <class Sink>
    uint64_t unmap_range(uint64_t addr, uint64_t len, uint64_t t, Sink& s, Block* first_removed);

    mutable BlockTable blocks_;            // mutable for tags only
    mutable Block* last_added_ = nullptr;  // slot of the latest heap block made live
    std::map<uint64_t, Block> mappings_;   // by start address; non-overlapping, counted only
    uint64_t live_bytes_ = 0;
    uint64_t peak_bytes_ = 0;
    uint64_t peak_time_ns_ = 0;
    uint64_t peak_seq_ = 0;
    uint64_t unknown_frees_ = 0;
    uint64_t replaced_live_ = 0;
    uint64_t made_live_ = 0, made_live_bytes_ = 0, made_dead_ = 0;
};

}  // namespace pmt
