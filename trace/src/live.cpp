// LiveHeap: exact live bytes from a time-ordered event stream (FORMAT.md, "What counts as
// live"). Heap blocks are keyed by address; anonymous mappings are non-overlapping ranges that
// munmap, MAP_FIXED-style mmap and mremap cut, trim or move the way the kernel does.
#include "pmt/live.hpp"

#include <algorithm>

namespace pmt {

namespace {

// [addr, addr + len) without wrapping past the top of the address space.
uint64_t range_end(uint64_t addr, uint64_t len) {
    return len > UINT64_MAX - addr ? UINT64_MAX : addr + len;
}

using live_detail::ToChanges;
using live_detail::ToListener;

}  // namespace

template <class Sink>
void LiveHeap::add_mapping(const Block& b, Sink& l) {
    if (b.size == 0) return;
    mappings_.emplace(b.addr, b);
    live_bytes_ += b.size;
    ++made_live_;
    made_live_bytes_ += b.size;
    l.live(b);
}

template <class Sink>
uint64_t LiveHeap::unmap_range(uint64_t addr, uint64_t len, uint64_t t, Sink& l,
                               Block* first_removed) {
    if (len == 0 || mappings_.empty()) return 0;
    uint64_t end = range_end(addr, len);
    uint64_t removed = 0;
    auto it = mappings_.upper_bound(addr);
    if (it != mappings_.begin()) {
        auto prev = std::prev(it);
        if (range_end(prev->first, prev->second.size) > addr) it = prev;
    }
    while (it != mappings_.end() && it->first < end) {
        Block b = it->second;
        uint64_t b_end = range_end(b.addr, b.size);
        uint64_t cut_begin = std::max(b.addr, addr);
        uint64_t cut_end = std::min(b_end, end);
        it = mappings_.erase(it);

        Block dead = b;
        dead.addr = cut_begin;
        dead.size = cut_end - cut_begin;
        live_bytes_ -= dead.size;
        if (first_removed && removed == 0) *first_removed = dead;
        removed += dead.size;
        ++made_dead_;
        l.dead(dead, t);

        // What is left of b on either side keeps its stack and birth time.
        if (b.addr < cut_begin) {
            Block left = b;
            left.size = cut_begin - b.addr;
            mappings_.emplace(left.addr, left);
        }
        if (cut_end < b_end) {
            Block right = b;
            right.addr = cut_end;
            right.size = b_end - cut_end;
            it = mappings_.emplace(right.addr, right).first;
            ++it;  // right begins at or after end: the loop stops
        }
    }
    return removed;
}

void LiveHeap::apply(const Event& e, LiveListener* listener) {
    ToListener sink{listener};
    apply_to(e, sink);
}

void LiveHeap::apply_slow(const Event& e, LiveChanges& out) {
    ToChanges sink{out};
    apply_to(e, sink);
}

template <class Sink>
void LiveHeap::apply_to(const Event& e, Sink& l) {
    switch (e.type) {
        case EventType::Alloc:
            add_block({e.addr, e.size, e.stack_id, e.time_ns, false}, l);
            break;
        case EventType::Free:
            free_block(e.addr, e.time_ns, l);
            break;
        case EventType::Mmap:
            // A new mapping replaces whatever it overlaps (MAP_FIXED), counted or not; only an
            // anonymous one holds live bytes itself.
            unmap_range(e.addr, e.size, e.time_ns, l, nullptr);
            if (e.flags & kMapAnonymous)
                add_mapping({e.addr, e.size, e.stack_id, e.time_ns, true}, l);
            break;
        case EventType::Munmap:
            unmap_range(e.addr, e.size, e.time_ns, l, nullptr);
            break;
        case EventType::Mremap: {
            // The counted part of the old range moves: if any of it was counted, the whole new
            // range is (the kernel carries the old pages over and the growth is the same kind
            // of memory). Like realloc, the new range is attributed to the mremap's stack; with
            // no stack it keeps the one it had.
            Block first;
            uint64_t moved = unmap_range(e.old_addr, e.old_size, e.time_ns, l, &first);
            unmap_range(e.addr, e.size, e.time_ns, l, nullptr);  // the destination is replaced
            if (moved > 0) {
                uint64_t stack = e.stack_id ? e.stack_id : first.stack_id;
                add_mapping({e.addr, e.size, stack, e.time_ns, true}, l);
            }
            break;
        }
        case EventType::Rss:
            return;
    }
    note_peak(e);
}

}  // namespace pmt
