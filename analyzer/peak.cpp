// PeakAnalysis (peak.hpp): exact peak via our own running total of live bytes, attribution at
// the peak with per-stack lazy snapshots, grouping by attribution line (frames.hpp), and its report
// sections.
#include "peak.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include "format_util.hpp"
#include "frames.hpp"

namespace pmt::analyzer {

[[gnu::always_inline]] inline void PeakAnalysis::live(StackState& s, const Block& b) {
    if (b.mapping) mappings_[b.addr] = b.addr + b.size;
    touch(s);
    add_live(s, b);
}

namespace {

void add_clamped(uint64_t& n, int64_t delta) {
    if (delta < 0 && n < static_cast<uint64_t>(-delta)) {
        n = 0;
    } else {
        n += static_cast<uint64_t>(delta);
    }
}

}  // namespace

[[gnu::noinline]] int64_t PeakAnalysis::mapping_blocks_delta(const Block& dead) {
    auto it = mappings_.upper_bound(dead.addr);
    if (it == mappings_.begin()) return -1;
    --it;
    const uint64_t start = it->first, end = it->second;
    if (end <= dead.addr) return -1;
    mappings_.erase(it);
    int64_t delta = -1;
    if (start < dead.addr) {
        mappings_[start] = dead.addr;
        ++delta;
    }
    if (dead.addr + dead.size < end) {
        mappings_[dead.addr + dead.size] = end;
        ++delta;
    }
    return delta;
}

[[gnu::always_inline]] inline void PeakAnalysis::dead(StackState& s, const Block& b) {
    touch(s);
    const int64_t blocks = b.mapping ? mapping_blocks_delta(b) : -1;
    s.live_bytes -= std::min(s.live_bytes, b.size);
    live_bytes_ -= std::min(live_bytes_, b.size);
    add_clamped(s.live_blocks, blocks);
    add_clamped(live_blocks_, blocks);
}

void PeakAnalysis::on_live(const Block& b) { live(state(b.stack_id), b); }
void PeakAnalysis::on_dead(const Block& b, uint64_t /*time_ns*/) { dead(state(b.stack_id), b); }

void PeakAnalysis::on_event(const Event& e, const LiveHeap& /*heap*/) {
    if (e.type == EventType::Rss) {
        ++rss_samples_;
        if (e.size > rss_peak_bytes_) {
            rss_peak_bytes_ = e.size;
            rss_peak_time_ns_ = e.time_ns;
        }
    }
}

namespace {

constexpr uint64_t kBigBlock = uint64_t{1} << 20;  // a heap block this big is array-like data
constexpr uint64_t kMiB = uint64_t{1} << 20;
// pymalloc's arena sizes (CPython >= 3.10: 1 MiB; 3.8-3.9: 256 KiB).
bool is_arena(const Block& b) { return b.mapping && (b.size == kMiB || b.size == kMiB / 4); }

}  // namespace

[[gnu::always_inline]] inline void PeakAnalysis::advice_touch(AdviceSite& s, uint64_t seq) {
    if (s.snap_for != advice_peak_seq_ && s.last_change <= advice_peak_seq_) {
        s.heap_peak = s.heap;
        s.big_peak = s.big;
        s.arena_peak = s.arena;
        s.snap_for = advice_peak_seq_;
        s.first_free_after_peak_ns = 0;
    }
    s.last_change = seq;
}

[[gnu::always_inline]] inline void PeakAnalysis::advice_dead(AdviceSite& s, const Block& b,
                                                             const Event& e, bool release) {
    advice_touch(s, e.seq);
    if (is_arena(b))
        s.arena -= std::min(s.arena, b.size);
    else if (!b.mapping)
        s.heap -= std::min(s.heap, b.size);
    if (!b.mapping && b.size >= kBigBlock) s.big -= std::min(s.big, b.size);
    if (release && s.first_free_after_peak_ns == 0) s.first_free_after_peak_ns = e.time_ns;
}

[[gnu::always_inline]] inline void PeakAnalysis::advice_live(AdviceSite& s, const Block& b,
                                                             const Event& e, uint64_t heap_peak) {
    advice_touch(s, e.seq);
    if (is_arena(b))
        s.arena += b.size;
    else if (!b.mapping)
        s.heap += b.size;
    if (!b.mapping && b.size >= kBigBlock) s.big += b.size;
    s.last_alloc_seq = e.seq;
    s.peak_after_last_alloc = heap_peak;
}

// A release (not the first half of a realloc) dates the stack's first free after the peak.
static bool is_release(const Event& e) {
    return e.type == EventType::Munmap || (e.type == EventType::Free && !is_realloc_kind(e.kind));
}

// Most events make one heap block live or dead, of a stack the table already holds: that path
// is a leaf (no call, so no registers saved); everything else (mappings, several changes, none,
// RSS samples, a new stack id) goes to step_other.
void PeakAnalysis::on_step(const Event& e, const LiveHeap& heap, const LiveChanges& changes) {
    if (__builtin_expect(changes.size() != 1 || changes[0].block.mapping, 0))
        return step_other(e, heap, changes);
    const Block& b = changes[0].block;
    StackState* sp = states_.find_dense(b.stack_id);
    if (__builtin_expect(!sp, 0)) return step_other(e, heap, changes);
    StackState& s = *sp;
    const uint64_t heap_peak = heap.peak_bytes();
    touch(s);
    AdviceSite& a = s.advice;
    advice_touch(a, e.seq);
    if (changes[0].live) {
        add_live(s, b);
        a.heap += b.size;
        if (b.size >= kBigBlock) a.big += b.size;
        a.last_alloc_seq = e.seq;
        a.peak_after_last_alloc = heap_peak;
    } else {
        s.live_bytes -= std::min(s.live_bytes, b.size);
        live_bytes_ -= std::min(live_bytes_, b.size);
        s.live_blocks -= s.live_blocks != 0;
        live_blocks_ -= live_blocks_ != 0;
        a.heap -= std::min(a.heap, b.size);
        if (b.size >= kBigBlock) a.big -= std::min(a.big, b.size);
        if (a.first_free_after_peak_ns == 0 && is_release(e))
            a.first_free_after_peak_ns = e.time_ns;
    }
    note_advice_peak(e, heap_peak);
}

[[gnu::noinline]] void PeakAnalysis::step_other(const Event& e, const LiveHeap& heap,
                                                const LiveChanges& changes) {
    const uint64_t heap_peak = heap.peak_bytes();
    if (changes.size() == 1) {
        // One mapping, or a heap block of a stack new to the table, made live or dead.
        const Block& b = changes[0].block;
        StackState& s = state(b.stack_id);
        if (changes[0].live) {
            live(s, b);
            advice_live(s.advice, b, e, heap_peak);
        } else {
            dead(s, b);
            advice_dead(s.advice, b, e, is_release(e));
        }
    } else if (!changes.empty()) {
        step_several(e, heap_peak, changes);
    }
    note_advice_peak(e, heap_peak);
    if (e.type == EventType::Rss) PeakAnalysis::on_event(e, heap);
}

// Out of line: keeps on_step's common path small.
[[gnu::noinline]] void PeakAnalysis::step_several(const Event& e, uint64_t heap_peak,
                                                  const LiveChanges& changes) {
    for (const LiveChange& c : changes) {
        StackState& s = state(c.block.stack_id);
        if (c.live)
            live(s, c.block);
        else
            dead(s, c.block);
    }
    // The advice takes an event's releases before what it made live (its sums are clamped at
    // zero, so the order matters when one stack has both).
    const bool release = is_release(e);
    for (const LiveChange& c : changes)
        if (!c.live) advice_dead(state(c.block.stack_id).advice, c.block, e, release);
    for (const LiveChange& c : changes)
        if (c.live) advice_live(state(c.block.stack_id).advice, c.block, e, heap_peak);
}

namespace {

std::vector<SiteFrame> copy_frames(const TraceReader& reader, uint64_t stack_id) {
    std::vector<SiteFrame> out;
    for (const Frame& f : reader.frames(stack_id)) {
        out.push_back({std::string(f.file), std::string(f.function), f.line});
    }
    return out;
}

}  // namespace

void PeakAnalysis::finish(const TraceReader& reader, const LiveHeap& /*heap*/) {
    stacks_at_peak_.clear();
    states_.for_each([&](uint64_t id, const StackState& s) {
        const bool changed_after_peak = s.snap_epoch == epoch_;
        const uint64_t bytes = changed_after_peak ? s.snap_bytes : s.live_bytes;
        const uint64_t blocks = changed_after_peak ? s.snap_blocks : s.live_blocks;
        if (bytes != 0 || blocks != 0) stacks_at_peak_.push_back({id, bytes, blocks});
    });
    std::sort(stacks_at_peak_.begin(), stacks_at_peak_.end(),
              [](const StackAtPeak& a, const StackAtPeak& b) {
                  return a.bytes != b.bytes ? a.bytes > b.bytes : a.stack_id < b.stack_id;
              });

    // Group by the attribution frame (frames.hpp: the innermost frame of the program's own
    // code) as text (file, line, function): one line may have several location ids. Stacks
    // arrive largest first, so the first stack seen for a site is its largest contributor.
    using Key = std::tuple<std::string_view, uint32_t, std::string_view>;
    std::map<Key, size_t> index;
    sites_.clear();
    for (const StackAtPeak& st : stacks_at_peak_) {
        Key key{std::string_view(), 0, "<native>"};
        size_t frame = 0;
        if (st.stack_id != 0) {
            const std::vector<Frame> frames = reader.frames(st.stack_id);
            if (frames.empty()) {
                key = Key{std::string_view(), 0, "<unknown>"};
            } else {
                frame = attribution_index(frames);
                key = Key{frames[frame].file, frames[frame].line, frames[frame].function};
            }
        }
        auto [it, fresh] = index.emplace(key, sites_.size());
        if (fresh) {
            PeakSite site;
            site.file = std::string(std::get<0>(key));
            site.line = std::get<1>(key);
            site.function = std::string(std::get<2>(key));
            site.largest_stack = st.stack_id;
            site.frame = frame;
            sites_.push_back(std::move(site));
        }
        sites_[it->second].bytes += st.bytes;
        sites_[it->second].blocks += st.blocks;
    }
    std::stable_sort(sites_.begin(), sites_.end(), [](const PeakSite& a, const PeakSite& b) {
        return a.bytes != b.bytes ? a.bytes > b.bytes : a.blocks > b.blocks;
    });
    const size_t n = top_ == 0 ? sites_.size() : std::min(top_, sites_.size());
    for (size_t i = 0; i < n; ++i) sites_[i].stack = copy_frames(reader, sites_[i].largest_stack);
}

void PeakAnalysis::add_json(nlohmann::json& report) const {
    report["peak"] = {{"bytes", peak_bytes_},
                      {"time_s", seconds(peak_time_ns_)},
                      {"rss_bytes", rss_peak_bytes_},
                      {"rss_time_s", seconds(rss_peak_time_ns_)}};
    nlohmann::json sites = nlohmann::json::array();
    const size_t n = top_ == 0 ? sites_.size() : std::min(top_, sites_.size());
    for (size_t i = 0; i < n; ++i) {
        const PeakSite& s = sites_[i];
        nlohmann::json stack = nlohmann::json::array();
        for (const SiteFrame& f : s.stack) {
            stack.push_back({{"file", f.file}, {"line", f.line}, {"function", f.function}});
        }
        nlohmann::json site = {{"function", s.function},
                               {"bytes", s.bytes},
                               {"blocks", s.blocks},
                               {"stack", std::move(stack)}};
        site["file"] = s.file.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.file);
        site["line"] = s.file.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.line);
        sites.push_back(std::move(site));
    }
    report["at_peak"] = std::move(sites);
}

namespace {

std::string display_path(const std::string& file) {
    return file.size() <= 48 ? file : short_path(file, 2);
}

std::string where(const SiteFrame& f) {
    return display_path(f.file) + ":" + std::to_string(f.line) + " in " + f.function;
}

bool import_machinery(const SiteFrame& f) { return f.file.rfind("<frozen importlib", 0) == 0; }

// "called from a.py:21 in main, a.py:30 in <module>": the frames outside stack[from], at most
// three shown and one line long; runs of import-system frames read as "(import)".
std::string call_path(const std::vector<SiteFrame>& stack, size_t from) {
    if (stack.size() < from + 2) return "";
    constexpr size_t kShown = 3;
    constexpr size_t kMaxChars = 120;
    std::string out = "called from ";
    size_t shown = 0;
    size_t i = from + 1;
    for (; i < stack.size() && shown < kShown; ++i) {
        std::string part;
        if (import_machinery(stack[i])) {
            while (i + 1 < stack.size() && import_machinery(stack[i + 1])) ++i;
            part = "(import)";
        } else {
            part = where(stack[i]);
        }
        if (shown > 0 && out.size() + part.size() + 2 > kMaxChars) break;
        out += (shown > 0 ? ", " : "") + part;
        ++shown;
    }
    if (i < stack.size()) out += ", ... (" + std::to_string(stack.size() - i) + " more)";
    return out;
}

}  // namespace

void PeakAnalysis::add_text(std::string& out) const {
    if (sites_.empty()) {
        out += "Nothing was live at the peak.\n\n";
        return;
    }
    const size_t n = top_ == 0 ? sites_.size() : std::min(top_, sites_.size());
    out += "At the peak (" + human_bytes(peak_bytes_) + " in " + human_count(peak_blocks_) +
           " blocks), by line of the program (library frames skipped):\n";
    char buf[64];
    for (size_t i = 0; i < n; ++i) {
        const PeakSite& s = sites_[i];
        const double pct = peak_bytes_ ? 100.0 * static_cast<double>(s.bytes) / peak_bytes_ : 0;
        std::snprintf(buf, sizeof buf, "  %10s %5.1f%% %11s blk  ", human_bytes(s.bytes).c_str(),
                      pct, human_count(s.blocks).c_str());
        out += buf;
        if (s.file.empty()) {
            out += s.function + (s.function == "<native>" ? " (no Python frame)" : "") + "\n";
            continue;
        }
        out += display_path(s.file) + ":" + std::to_string(s.line) + " in " + s.function;
        const std::string text = source_line(s.file, s.line);
        if (!text.empty()) out += "   " + text;
        out += "\n";
        if (s.frame > 0 && s.frame < s.stack.size()) {
            // The memory was allocated inside a library called from this line: say where.
            out += std::string(34, ' ') + "via " + where(s.stack[0]) + "\n";
        }
        const std::string path = call_path(s.stack, s.frame);
        if (!path.empty()) out += std::string(34, ' ') + path + "\n";
    }
    if (sites_.size() > n) {
        uint64_t rest = 0;
        for (size_t i = n; i < sites_.size(); ++i) rest += sites_[i].bytes;
        out += "  " + human_bytes(rest) + " more in " + human_count(sites_.size() - n) +
               " other lines (--top N shows more)\n";
    }
    out += "\n";
}

}  // namespace pmt::analyzer
