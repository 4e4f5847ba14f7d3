// Advice (issue 3, requirement 5; WINDOWS.md, "Advice"): remedies a Python user knows, each
// with the peak it would give where that can be computed. Reads the windows found by
// WindowAnalysis and what each allocation stack held at the peak (AdviceSite, which
// PeakAnalysis keeps in the same pass).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "peak.hpp"
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
    // So must `peak` when given: it then keeps the per-stack sums this analysis reads (one
    // table and one lookup per change for both), and this analysis has no per-event work.
    // Without it, this analysis keeps its own PeakAnalysis for them.
    explicit AdviceAnalysis(const WindowAnalysis& windows, PeakAnalysis* peak = nullptr);
    bool per_event() const override { return own_peak_ != nullptr; }
    void on_event(const Event& e, const LiveHeap& heap) override;
    void on_step(const Event& e, const LiveHeap& heap, const LiveChanges& changes) override {
        if (own_peak_) own_peak_->on_step(e, heap, changes);
    }
    void finish(const TraceReader& reader, const LiveHeap& heap) override;
    void add_json(nlohmann::json& report) const override;
    void add_text(std::string& out) const override;

    const std::vector<Advice>& advice() const { return advice_; }

private:
    using Site = AdviceSite;
    template <class F>
    void for_each_site(F&& f) {
        peak_->for_each_advice_site(f);
    }
    void add_window_advice();
    void add_del_advice(const LiveHeap& heap);
    void add_population_advice();
    void add_float32_advice();

    const WindowAnalysis& windows_;
    std::unique_ptr<PeakAnalysis> own_peak_;  // when not given one
    PeakAnalysis* peak_;                      // the per-stack sums (AdviceSite)
    uint64_t peak_seq_ = 0, peak_stack_ = 0;
    std::vector<Advice> advice_;
};

}  // namespace pmt::analyzer
