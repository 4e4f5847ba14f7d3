// AdviceAnalysis: per-stack live bytes with a lazy snapshot at the running peak (AdviceSite,
// kept by PeakAnalysis in its per-stack table), then the rules of WINDOWS.md ("Advice") turned into
// lines of advice with their estimated peaks.
#include "advice.hpp"

#include <algorithm>
#include <map>

#include "format_util.hpp"

namespace pmt::analyzer {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
// A float object is 24 bytes; pymalloc rounds blocks to 16 bytes (CPython >= 3.8, 64-bit).
constexpr uint64_t kFloatBlockBytes = 32;
constexpr uint64_t kPointerBytes = 8;

}  // namespace

AdviceAnalysis::AdviceAnalysis(const WindowAnalysis& windows, PeakAnalysis* peak)
    : windows_(windows),
      own_peak_(peak ? nullptr : std::make_unique<PeakAnalysis>()),
      peak_(peak ? peak : own_peak_.get()) {}

// Through on_live/on_dead calls (not replay()): the collected changes go to our own peak.
void AdviceAnalysis::on_event(const Event& e, const LiveHeap& heap) {
    if (own_peak_) own_peak_->on_step(e, heap, changes());
    clear_deltas();
}

void AdviceAnalysis::finish(const TraceReader& /*reader*/, const LiveHeap& heap) {
    peak_seq_ = peak_->advice_peak_seq();
    peak_stack_ = peak_->advice_peak_stack();
    // Sites untouched since the peak still hold what they held at it.
    for_each_site([&](uint64_t, Site& s) {
        if (s.snap_for != peak_seq_) {
            s.heap_peak = s.heap;
            s.big_peak = s.big;
            s.arena_peak = s.arena;
            s.snap_for = peak_seq_;
            s.first_free_after_peak_ns = 0;
        }
    });
    add_window_advice();
    add_del_advice(heap);
    add_population_advice();
    add_float32_advice();
    // Remedies that surely apply come first, by saving; float32 depends on precision.
    std::stable_sort(advice_.begin(), advice_.end(), [](const Advice& a, const Advice& b) {
        const bool ca = a.kind == "float32", cb = b.kind == "float32";
        if (ca != cb) return cb;
        return a.saving_bytes.value_or(0) > b.saving_bytes.value_or(0);
    });
}

void AdviceAnalysis::add_window_advice() {
    StackFrames& f = windows_.frames();
    size_t n = 0;
    for (const Window& w : windows_.windows()) {
        if (w.cost_bytes == 0 || n++ == 5) break;
        const FrameKey& st = w.statement.back();
        const FrameKey old = f.attributed(w.old_stack);
        Advice a{"window", std::string(f.text(st.file)), st.line, w.cost_bytes, ""};
        a.text = frame_text(f, st) + " makes new data (" + human_bytes(w.new_bytes) +
                 ") while the old (" + human_bytes(w.old_bytes) + ", from " + frame_text(f, old) +
                 ") is still alive; ";
        a.text += w.remedy == "replace-elements"
                      ? "replace the elements one by one, or `del` the old list first"
                      : "update in place (`out=`, `*=`) or `del` the old data first";
        a.text += ": peak if fixed " + human_bytes(w.peak_if_fixed) + ".";
        advice_.push_back(std::move(a));
    }
}

void AdviceAnalysis::add_del_advice(const LiveHeap& heap) {
    const uint64_t peak = heap.peak_bytes();
    StackFrames& f = windows_.frames();
    const std::vector<FrameKey> at_peak = f.outer_first(peak_stack_);
    std::vector<uint64_t> released_by_windows;  // their release is a window's, not exit's
    for (const Window& w : windows_.windows()) released_by_windows.push_back(w.old_stack);
    std::vector<std::pair<uint64_t, const Site*>> kept;  // (stack, site)
    for_each_site([&](uint64_t stack, const Site& s) {
        if (s.heap_peak < std::max(kMiB, peak / 50) || s.last_alloc_seq >= peak_seq_) return;
        if (std::count(released_by_windows.begin(), released_by_windows.end(), stack)) return;
        // Released only at exit: nothing of it freed between the peak and the script's end.
        if (s.first_free_after_peak_ns != 0 &&
            s.first_free_after_peak_ns <= windows_.script_end_ns())
            return;
        // Made by another statement than the one running at the peak.
        const std::vector<FrameKey>& mine = f.outer_first(stack);
        size_t d = 0;
        while (d < mine.size() && d < at_peak.size() && mine[d] == at_peak[d]) ++d;
        if (!at_peak.empty() && (d == mine.size() || d == at_peak.size())) return;
        kept.push_back({stack, &s});
    });
    // The most recent of them is most likely what the code at the peak works on: leave it
    // out...
    std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
        return a.second->last_alloc_seq < b.second->last_alloc_seq;
    });
    // ... unless other big data was made between it and the peak: then it is not the input
    // of the statement at the peak.
    if (!kept.empty()) {
        const uint64_t newest = kept.back().second->last_alloc_seq;
        bool made_since = false;
        for_each_site([&](uint64_t, const Site& s) {
            made_since |= s.heap_peak >= std::max(kMiB, peak / 50) && s.last_alloc_seq > newest &&
                          s.last_alloc_seq < peak_seq_;
        });
        if (!made_since) kept.pop_back();
    }
    if (kept.empty()) return;
    uint64_t kept_bytes = 0, last_seq = 0, peak_then = 0;
    for (const auto& [stack, s] : kept) {
        kept_bytes += s->heap_peak;
        if (s->last_alloc_seq > last_seq) {
            last_seq = s->last_alloc_seq;
            peak_then = s->peak_after_last_alloc;
        }
    }
    // Counterfactual: the kept blocks released once the last of them was made.
    const uint64_t later = windows_.history().max_from(last_seq + 1);
    const uint64_t cf =
        std::min(peak, std::max(peak_then, later > kept_bytes ? later - kept_bytes : 0));
    if (cf + std::max(kMiB, peak / 50) > peak) return;  // not worth a line
    std::string lines;
    for (size_t i = 0; i < kept.size() && i < 4; ++i) {
        if (i) lines += i + 1 == kept.size() ? " and " : ", ";
        lines += frame_text(f, f.attributed(kept[i].first));
    }
    if (kept.size() > 4) lines += " and " + std::to_string(kept.size() - 4) + " more";
    const FrameKey first = f.attributed(kept.front().first);
    Advice a{"del", std::string(f.text(first.file)), first.line, peak - cf, ""};
    a.text = lines + (kept.size() > 1 ? " keep " : " keeps ") + human_bytes(kept_bytes) +
             " alive at the peak; " + (kept.size() > 1 ? "they are" : "it is") +
             " freed only at exit. `del` " + (kept.size() > 1 ? "them" : "it") +
             " after the last use. If " + (kept.size() > 1 ? "they are" : "it is") +
             " not needed once " + frame_text(f, f.attributed(kept.back().first)) +
             " has run, peak if freed there: " + human_bytes(cf) + ".";
    advice_.push_back(std::move(a));
}

void AdviceAnalysis::add_population_advice() {
    const uint64_t peak = windows_.peak_bytes();
    StackFrames& f = windows_.frames();
    struct Line {
        uint64_t arena = 0, heap = 0;
        FrameKey where;
    };
    std::map<std::tuple<uint32_t, uint32_t>, Line> lines;  // by (file, line)
    for_each_site([&](uint64_t stack, const Site& s) {
        if (s.arena_peak == 0 && s.heap_peak == 0) return;
        const FrameKey k = f.attributed(stack);
        if (k.line == 0) return;
        Line& l = lines[{k.file, k.line}];
        l.arena += s.arena_peak;
        l.heap += s.heap_peak;
        l.where = k;
    });
    for (const auto& [key, l] : lines) {
        if (l.arena < std::max(4 * kMiB, peak / 20)) continue;
        // Estimated: arena bytes over a float's pymalloc block; other small objects (ints,
        // tuples, strings) would give other counts.
        const uint64_t count = l.arena / kFloatBlockBytes;
        const uint64_t as_list = l.arena + l.heap;
        const uint64_t as_array = count * kPointerBytes;
        if (as_list <= as_array) continue;
        Advice a{"numpy-array", std::string(f.text(l.where.file)), l.where.line, as_list - as_array,
                 ""};
        a.text = frame_text(f, l.where) + " builds a population of small Python objects (" +
                 human_bytes(as_list) + " at the peak, " + human_bytes(l.arena) +
                 " of it in pymalloc arenas): about " + human_count(count) +
                 " objects if they are floats (32-byte pymalloc blocks; an estimate from the "
                 "arena bytes). A numpy float64 array holds that many in " +
                 human_bytes(as_array) + ": peak if so about " +
                 human_bytes(peak - (as_list - as_array)) + ".";
        advice_.push_back(std::move(a));
    }
}

void AdviceAnalysis::add_float32_advice() {
    const uint64_t peak = windows_.peak_bytes();
    StackFrames& f = windows_.frames();
    uint64_t big = 0;
    std::vector<std::pair<uint64_t, uint64_t>> by_site;  // (bytes, stack)
    for_each_site([&](uint64_t stack, const Site& s) {
        if (s.big_peak) {
            big += s.big_peak;
            by_site.push_back({s.big_peak, stack});
        }
    });
    if (big == 0 || big * 2 < peak) return;
    std::sort(by_site.rbegin(), by_site.rend());
    // Several stacks can share one program line (the same line called from two places):
    // name each line once.
    std::vector<std::string> named;
    bool more = false;
    for (const auto& site : by_site) {
        std::string text = frame_text(f, f.attributed(site.second));
        if (std::find(named.begin(), named.end(), text) != named.end()) continue;
        if (named.size() == 3) {
            more = true;
            break;
        }
        named.push_back(std::move(text));
    }
    std::string lines;
    for (size_t i = 0; i < named.size(); ++i) lines += (i ? ", " : "") + named[i];
    if (more) lines += " and others";
    const FrameKey top = f.attributed(by_site.front().second);
    Advice a{"float32", std::string(f.text(top.file)), top.line, big / 2, ""};
    a.text = "Large buffers (numpy-like, >= 1 MiB each) from " + lines + " hold " +
             human_bytes(big) + " of the " + human_bytes(peak) +
             " peak. If they are float64 and float32 precision is enough for this job, "
             "`dtype=np.float32` halves them: peak about " +
             human_bytes(peak - big / 2) +
             " (conditional on precision; integer or float32 data gains nothing).";
    advice_.push_back(std::move(a));
}

void AdviceAnalysis::add_json(nlohmann::json& report) const {
    nlohmann::json list = nlohmann::json::array();
    for (const Advice& a : advice_) {
        nlohmann::json j = {{"kind", a.kind}, {"file", a.file}, {"line", a.line}, {"text", a.text}};
        j["saving_bytes"] = a.saving_bytes ? nlohmann::json(*a.saving_bytes) : nlohmann::json();
        list.push_back(std::move(j));
    }
    report["advice"] = std::move(list);
}

void AdviceAnalysis::add_text(std::string& out) const {
    if (advice_.empty()) return;
    out += "Advice:\n";
    for (const Advice& a : advice_) out += "  - " + a.text + "\n";
}

}  // namespace pmt::analyzer
