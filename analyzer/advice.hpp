// Advice (issue 3, requirement 5; WINDOWS.md, "Advice"): remedies a Python user knows, each
// with the peak it would give where that can be computed. Reads the windows found by
// WindowAnalysis and keeps, in the same pass, what each allocation stack held at the peak.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "windows.hpp"

namespace pmt::analyzer {

struct Advice {
    std::string kind;  // "window" | "del" | "numpy-array" | "float32"
    std::string file;
    uint32_t line = 0;
    std::optional<uint64_t> saving_bytes;
    std::string text;
};

class AdviceAnalysis : public BlockDeltaAnalysis {
public:
    // `windows` must come before this analysis in the replay's list (its finish() runs first).
    explicit AdviceAnalysis(const WindowAnalysis& windows) : windows_(windows) {}
    void on_event(const Event& e, const LiveHeap& heap) override;
    void on_step(const Event& e, const LiveHeap& heap, const LiveChanges& changes) override {
        step_as(this, e, heap, changes);
    }
    void finish(const TraceReader& reader, const LiveHeap& heap) override;
    void add_json(nlohmann::json& report) const override;
    void add_text(std::string& out) const override;

    const std::vector<Advice>& advice() const { return advice_; }

private:
    // What one allocation stack holds; the *_peak fields are a lazy snapshot taken at the
    // stack's first change after the current peak (so no per-peak copy of every stack).
    struct Site {
        uint64_t heap = 0, big = 0, arena = 0;  // live bytes: heap blocks, >= 1 MiB, arenas
        uint64_t heap_peak = 0, big_peak = 0, arena_peak = 0;
        uint64_t snap_for = UINT64_MAX;  // peak seq the snapshot belongs to
        uint64_t last_change = 0;        // seq
        uint64_t first_free_after_peak_ns = 0;
        uint64_t last_alloc_seq = 0, peak_after_last_alloc = 0;
    };
    void touch(Site& s, uint64_t seq);
    void add_window_advice();
    void add_del_advice(const LiveHeap& heap);
    void add_population_advice();
    void add_float32_advice();

    const WindowAnalysis& windows_;
    ById<Site> sites_;  // by allocation stack id
    uint64_t peak_seq_ = 0, peak_seen_ = 0, peak_stack_ = 0;
    std::vector<Advice> advice_;
};

}  // namespace pmt::analyzer
