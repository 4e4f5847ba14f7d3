// The windows and advice analyses over a trace built with TraceBuilder, run together as
// `pymemtrace report` runs them (tests/unit/test_windows_detect.cpp, test_windows_advice.cpp).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "advice.hpp"
#include "trace_builder.hpp"

namespace pmt::testing {

struct WindowRun {
    analyzer::WindowAnalysis w;
    analyzer::AdviceAnalysis a{w};
    LiveHeap heap;
    nlohmann::json json;  // the report's "windows" and "advice" keys
    explicit WindowRun(TraceBuilder& b) {
        replay_built(b, heap, {&w, &a});
        w.add_json(json);
        a.add_json(json);
    }
    // The innermost line of window i's new (old) buffer.
    uint32_t new_line(size_t i = 0) const {
        return w.frames().innermost(w.windows().at(i).new_stack).line;
    }
    uint32_t old_line(size_t i = 0) const {
        return w.frames().innermost(w.windows().at(i).old_stack).line;
    }
    const analyzer::Advice* find(const std::string& kind) const {
        for (const analyzer::Advice& x : a.advice())
            if (x.kind == kind) return &x;
        return nullptr;
    }
};

}  // namespace pmt::testing
