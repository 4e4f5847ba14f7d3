// WindowAnalysis detection (WINDOWS.md, "The rule"): per thread, releases close together form
// a burst; the burst is the old generation and the statement running on that thread decides
// which still-live blocks are the new one. Costs come from LiveHistory in finish().
#include "windows.hpp"

#include <algorithm>

namespace pmt::analyzer {
namespace {

constexpr uint64_t kMinBytes = uint64_t{1} << 20;  // smaller generations are noise
constexpr uint64_t kSizeableBytes = 64 << 10;      // blocks that can open a window

}  // namespace

void WindowAnalysis::begin(const TraceReader& reader) { frames_.attach(&reader); }

size_t WindowAnalysis::first_after(uint64_t s) const {
    return static_cast<size_t>(
        std::upper_bound(log_.begin(), log_.end(), s,
                         [](uint64_t v, const Rec& r) { return v < r.seq; }) -
        log_.begin());
}

WindowAnalysis::Rec* WindowAnalysis::by_seq(uint64_t s) {
    auto it = std::lower_bound(log_.begin(), log_.end(), s,
                               [](const Rec& r, uint64_t v) { return r.seq < v; });
    return it != log_.end() && it->seq == s && !it->dead ? &*it : nullptr;
}

[[gnu::always_inline]] inline const WindowAnalysis::Rec* WindowAnalysis::remove(const Block& b) {
    if (__builtin_expect(b.mapping, 0)) return remove_mapping(b);
    if (b.tag == 0 || b.tag > log_size_) return nullptr;
    Rec* rec = &log_[b.tag - 1];
    if (rec->dead || rec->mapping || rec->addr != b.addr) return nullptr;
    rec->dead = true;
    ++log_dead_;
    return rec;
}

const WindowAnalysis::Rec* WindowAnalysis::remove_mapping(const Block& b) {
    // The released part may start inside a mapping (partial munmap).
    auto it = map_seq_.upper_bound(b.addr);
    if (it == map_seq_.begin()) return nullptr;
    --it;
    const uint64_t seq = it->second;
    Rec* rec = by_seq(seq);
    if (!rec || b.addr >= rec->addr + rec->size) return nullptr;
    Rec& r = *rec;
    if (b.size < r.size) {  // part of it stays live: shrink the record, keep its index
        part_ = r;
        part_.addr = b.addr;
        part_.size = b.size;
        r.size -= b.size;
        if (b.addr == r.addr) {
            map_seq_.erase(it);
            r.addr += b.size;
            map_seq_[r.addr] = seq;
        }
        return &part_;
    }
    map_seq_.erase(it);
    rec->dead = true;
    ++log_dead_;
    return rec;
}

[[gnu::always_inline]] inline void WindowAnalysis::add(const Block& b, const Stamp* origin,
                                                       uint64_t seq, const LiveHeap& heap) {
    Rec& r = log_.emplace_back();
    r.addr = b.addr;
    r.size = b.size;
    r.stack = b.stack_id;
    r.seq = seq;  // LiveHeap makes at most one block live per event: seqs only increase
    r.mapping = b.mapping;
    r.ns = b.time_ns;
    r.max_before = running_peak_;
    r.since = since_;
    r.detections = detection_max_.size();
    // A block that grew (realloc, mremap) keeps the age of the first one. origins_ has at most
    // one entry per record of log_, whose indices are below UINT32_MAX (tags, below).
    if (__builtin_expect(origin != nullptr, 0)) {
        origins_.push_back(*origin);
        r.origin = static_cast<uint32_t>(origins_.size());
    }
    ++log_size_;
    if (__builtin_expect(b.mapping, 0))
        map_seq_[b.addr] = seq;
    else if (log_size_ < UINT32_MAX)  // else untagged: its release reads as unknown
        heap.set_tag(b.addr, static_cast<uint32_t>(log_size_));
}

// Drops the holes once they are half the log; each live heap block gets its new index, each
// live record's origin its new place in origins_ (origins_ is in log order: indices only move
// down, so both compact in place).
void WindowAnalysis::compact(const LiveHeap& heap) {
    size_t w = 0, wo = 0;
    for (size_t i = 0; i < log_.size(); ++i) {
        if (log_[i].dead) continue;
        if (w != i) log_[w] = log_[i];
        Rec& r = log_[w++];
        if (r.origin) {
            origins_[wo++] = origins_[r.origin - 1];
            r.origin = static_cast<uint32_t>(wo);
        }
        if (!r.mapping) heap.set_tag(r.addr, static_cast<uint32_t>(w));
    }
    log_.resize(w);
    log_size_ = w;
    origins_.resize(wo);
    log_dead_ = 0;
    next_check_ = 0;
}

[[gnu::always_inline]] inline void WindowAnalysis::release(Thread& th, const Event& e,
                                                           const LiveHeap& heap,
                                                           const LiveChanges& changes) {
    Burst& bu = th.burst;
    for (const LiveChange& c : changes) {
        if (c.live) continue;
        const Block& b = c.block;
        const Rec* r = remove(b);
        if (!bu.active) {
            bu.active = true;
            bu.stmt_stack = th.last_alloc_stack;
            bu.first_ns = e.time_ns;
            bu.bytes = 0;
            bu.mappings = 0;
            bu.dead.clear();
        }
        bu.last_ns = e.time_ns;
        bu.last_seq = e.seq;
        bu.bytes += b.size;
        bu.mappings += b.mapping;
        bu.dead.emplace_back(r ? r->seq : 0, r ? r->stack : b.stack_id, b.size, b.mapping);
    }
    maybe_compact(heap);
}

[[gnu::always_inline]] inline void WindowAnalysis::allocated(Thread& th, const Event& e) {
    // Stack 0 (no Python frame: start-up, teardown) leaves no statement to blame.
    th.last_alloc_stack = e.stack_id;
    if (e.stack_id != 0) {
        int8_t& rooted = module_rooted_[e.stack_id];
        if (__builtin_expect(rooted < 0, 0)) {
            const auto& f = frames_.outer_first(e.stack_id);
            rooted = !f.empty() && frames_.text(f.front().function) == "<module>";
        }
        if (rooted) script_end_ns_ = e.time_ns;
    }
}

// The three paths are separate functions that on_step reaches by a tail call: each saves only
// the registers it needs.
void WindowAnalysis::step_alloc(const Event& e, const LiveHeap& heap, const LiveChanges& changes) {
    Thread& th = thread(e.tid);
    const bool pending = th.realloc_pending;
    th.realloc_pending = false;          // a realloc's two halves are adjacent on their thread
    if (th.burst.active) end_burst(th);  // the thread moved on
    const bool grown = is_realloc_kind(e.kind) && pending;
    if (__builtin_expect(changes.size() == 1 && changes[0].live && !grown, 1))
        add(changes[0].block, nullptr, e.seq, heap);  // most events: a new block
    else
        add_changes(th, grown, e, heap, changes);
    allocated(th, e);
    after(e, heap);
}

void WindowAnalysis::step_free(const Event& e, const LiveHeap& heap, const LiveChanges& changes) {
    Thread& th = thread(e.tid);
    th.realloc_pending = false;
    release(th, e, heap, changes);
    after(e, heap);
}

void WindowAnalysis::step_rest(const Event& e, const LiveHeap& heap, const LiveChanges& changes) {
    Thread& th = thread(e.tid);
    th.realloc_pending = false;
    step_other(th, e, heap, changes);
    after(e, heap);
}

[[gnu::always_inline]] inline void WindowAnalysis::step(const Event& e, const LiveHeap& heap,
                                                        const LiveChanges& changes) {
    if (e.type == EventType::Alloc)
        step_alloc(e, heap, changes);
    else if (e.type == EventType::Free && !is_realloc_kind(e.kind))
        step_free(e, heap, changes);
    else
        step_rest(e, heap, changes);
}

void WindowAnalysis::on_event(const Event& e, const LiveHeap& heap) {
    step(e, heap, changes());
    clear_deltas();
}

void WindowAnalysis::on_step(const Event& e, const LiveHeap& heap, const LiveChanges& changes) {
    step(e, heap, changes);
}

void WindowAnalysis::add_changes(Thread& th, bool grown, const Event& e, const LiveHeap& heap,
                                 const LiveChanges& changes) {
    Stamp carried;  // the age a grown block keeps (realloc, mremap)
    bool have = false;
    if (grown) {
        carried = th.realloc_origin;
        have = true;
    }
    for (const LiveChange& c : changes) {  // mremap: the old range moves to the new
        if (c.live) continue;
        const Rec* r = remove(c.block);
        if (r && !have) {
            carried = origin_of(*r);
            have = true;
        }
    }
    for (const LiveChange& c : changes)
        if (c.live) add(c.block, have ? &carried : nullptr, e.seq, heap);
    maybe_compact(heap);
}

void WindowAnalysis::step_other(Thread& th, const Event& e, const LiveHeap& heap,
                                const LiveChanges& changes) {
    switch (e.type) {
        case EventType::Alloc:  // step_alloc() handles it
            break;
        case EventType::Mmap:
        case EventType::Mremap:
            if (th.burst.active) end_burst(th);  // the thread moved on
            add_changes(th, false, e, heap, changes);
            allocated(th, e);
            break;
        case EventType::Free:
            // A realloc's first half: the block it releases passes its origin to the second.
            for (const LiveChange& c : changes) {
                if (c.live) continue;
                const Rec* r = remove(c.block);
                if (!r) continue;
                th.realloc_pending = true;
                th.realloc_origin = origin_of(*r);
            }
            maybe_compact(heap);
            break;
        case EventType::Munmap:
            release(th, e, heap, changes);
            break;
        case EventType::Rss:
            break;
    }
}

}  // namespace pmt::analyzer

namespace pmt::analyzer {

void WindowAnalysis::close_burst(Thread& th, uint64_t /*seq_now*/) {
    Burst& bu = th.burst;
    bu.active = false;
    if (bu.bytes < kMinBytes || bu.stmt_stack == 0) return;
    const std::vector<FrameKey> stmt = frames_.outer_first(bu.stmt_stack);
    if (stmt.empty()) return;

    // The old data's stack: the one that released the most bytes.
    std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> by_stack;  // bytes, max seq
    // A run of releases from one stack is summed before it goes into the map (the keys still
    // arrive in the order of their first release, so the map iterates as it would without).
    uint64_t max_seq = 0;  // of the whole burst
    for (const Burst::Dead *d = bu.dead.data(), *end = d + bu.dead.size(); d != end;) {
        const uint64_t run_stack = d->stack;
        uint64_t run_bytes = 0, run_max_seq = 0;
        for (; d != end && d->stack == run_stack; ++d) {
            run_bytes += d->size;
            run_max_seq = std::max(run_max_seq, d->seq);
        }
        auto& [bytes, stack_max_seq] = by_stack[run_stack];
        bytes += run_bytes;
        stack_max_seq = std::max(stack_max_seq, run_max_seq);
        max_seq = std::max(max_seq, run_max_seq);
    }
    uint64_t old_stack = 0, dom_bytes = 0, old_max_seq = 0;
    for (const auto& [stack, v] : by_stack)
        if (v.first > dom_bytes) {
            old_stack = stack;
            dom_bytes = v.first;
            old_max_seq = v.second;
        }

    // The statement: the first frame, from the outermost, where the running code has left
    // the code that made the old data (the whole stack when both are the same line: loops).
    const std::vector<FrameKey>& old = frames_.outer_first(old_stack);
    size_t depth = 0;
    while (depth < stmt.size() && depth < old.size() && stmt[depth] == old[depth]) ++depth;
    if (depth >= stmt.size()) depth = stmt.size() - 1;
    const std::vector<FrameKey> prefix(stmt.begin(), stmt.begin() + depth + 1);

    // Old generation: every released block except the statement's own temporaries.
    // Counted as the whole burst less those; none when no block is younger than the old data.
    Window w;
    w.old_bytes = bu.bytes;
    w.old_blocks = bu.dead.size();
    w.old_mappings = bu.mappings;
    if (max_seq > old_max_seq)
        for (const Burst::Dead& d : bu.dead) {
            if (d.seq <= old_max_seq || !frames_.has_prefix(d.stack, prefix)) continue;
            w.old_bytes -= d.size;
            --w.old_blocks;
            w.old_mappings -= d.mapping;
        }
    // New generation: what the statement allocated after the old data and still holds.
    std::unordered_map<uint64_t, uint64_t> new_by_stack;
    // The window opens with the new generation's first sizeable block: small blocks left
    // alive by an earlier run of the same statement (caches) must not open it early.
    Stamp first_big, first_small;
    bool have_big = false, have_small = false;
    for (size_t i = first_after(old_max_seq); i < log_.size(); ++i) {
        const Rec& r = log_[i];
        if (r.dead || !frames_.has_prefix(r.stack, prefix)) continue;
        w.new_bytes += r.size;
        new_by_stack[r.stack] += r.size;
        // A buffer older than the old data that this statement merely grew (an interpreter
        // buffer) opened nothing: its own reallocation is its first byte here.
        const Stamp origin = origin_of(r);
        const Stamp st = origin.seq > old_max_seq ? origin : r.latest();
        const bool big = r.size >= kSizeableBytes || r.mapping;
        Stamp& slot = big ? first_big : first_small;
        bool& have = big ? have_big : have_small;
        if (!have || st.seq < slot.seq) {
            slot = st;
            have = true;
        }
    }
    const Stamp* first = have_big ? &first_big : have_small ? &first_small : nullptr;
    if (w.old_bytes < kMinBytes || !first || w.new_bytes < std::max(kMinBytes, w.old_bytes / 8))
        return;
    uint64_t best = 0;
    for (const auto& [stack, bytes] : new_by_stack)
        if (bytes > best) {
            best = bytes;
            w.new_stack = stack;
        }
    w.old_stack = old_stack;
    w.statement = prefix;
    w.open_ns = first->ns;
    w.open_seq = first->seq;
    w.max_before = first->max_before;
    w.close_ns = bu.first_ns;
    w.close_seq = bu.last_seq;
    w.max_in = history_.max_from(w.open_seq);
    const uint64_t post_close = history_.max_from(w.close_seq + 1);
    const Stamp opener = *first;
    keep(std::move(w), opener, post_close);
    detection_max_.push_back(since_);
    since_ = 0;
}

void WindowAnalysis::keep(Window w, const Stamp& first, uint64_t post_close) {
    std::vector<uint32_t> key;
    for (const FrameKey& f : w.statement) key.insert(key.end(), {f.file, f.function, f.line});
    // The old line stays out of the key: a loop's first repetition replaces data made before
    // the loop, and fixing the statement fixes every repetition.
    const FrameKey nf = frames_.attributed(w.new_stack);
    key.insert(key.end(), {nf.file, nf.function, nf.line});
    const uint64_t inside = w.max_in > w.old_bytes ? w.max_in - w.old_bytes : 0;
    auto it = found_.find(key);
    if (it == found_.end()) {
        Key k;
        k.first_close_ns = w.close_ns;
        k.before = w.max_before;
        k.inside = inside;
        k.last_close_seq = w.close_seq;
        k.last_detection = detection_max_.size();
        k.last_post_close = post_close;
        k.shown = std::move(w);
        found_.emplace(std::move(key), std::move(k));
        return;
    }
    Key& k = it->second;
    // Between the previous repetition's release and this one's first byte: after the
    // release until its detection, the detections in between, and since the last of them.
    uint64_t between = std::max(k.last_post_close, first.since);
    for (uint64_t d = k.last_detection + 1; d < first.detections && d < detection_max_.size(); ++d)
        between = std::max(between, detection_max_[d]);
    k.between = std::max(k.between, between);
    k.inside = std::max(k.inside, inside);
    k.last_close_seq = w.close_seq;
    k.last_detection = detection_max_.size();
    k.last_post_close = post_close;
    const uint64_t count = k.shown.count + 1;
    if (w.max_in >= k.shown.max_in) k.shown = std::move(w);
    k.shown.count = count;
}

std::string WindowAnalysis::remedy_for(const Window& w) {
    if (w.old_mappings >= 2 || w.old_blocks >= 16) return "replace-elements";
    return "in-place";
}

void WindowAnalysis::finish(const TraceReader& /*reader*/, const LiveHeap& heap) {
    for (auto& [tid, t] : threads_)
        if (t.burst.active) close_burst(t, 0);
    peak_bytes_ = heap.peak_bytes();
    peak_time_ns_ = heap.peak_time_ns();
    for (auto& [key, k] : found_) {
        // Releases after the script's last own allocation are the interpreter's exit.
        if (k.first_close_ns > script_end_ns_) continue;
        Window& w = k.shown;
        const uint64_t after = history_.max_from(k.last_close_seq + 1);
        const uint64_t cf = std::max({k.before, k.between, k.inside, after});
        w.peak_if_fixed = std::min(cf, peak_bytes_);
        w.cost_bytes = peak_bytes_ - w.peak_if_fixed;
        w.remedy = remedy_for(w);
        windows_.push_back(w);
    }
    std::sort(windows_.begin(), windows_.end(), [](const Window& a, const Window& b) {
        if (a.cost_bytes != b.cost_bytes) return a.cost_bytes > b.cost_bytes;
        if (a.old_bytes != b.old_bytes) return a.old_bytes > b.old_bytes;
        return a.open_seq < b.open_seq;
    });
}

}  // namespace pmt::analyzer
