// Helpers of the windows and advice analyses (WINDOWS.md): stack frames compared by content
// (outermost first, for "same statement" tests) and the history of live bytes kept as suffix
// maxima, which answers "highest live bytes from event s until now" for counterfactual peaks.
#pragma once
#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "by_id.hpp"
#include "pmt/reader.hpp"

namespace pmt::analyzer {

// One frame, with file and function interned by this cache (ids compare by content, unlike
// the trace's ids, which two threads may assign differently to the same text).
struct FrameKey {
    uint32_t file = 0;
    uint32_t function = 0;
    uint32_t line = 0;
    bool operator==(const FrameKey& o) const {
        return file == o.file && function == o.function && line == o.line;
    }
    bool operator!=(const FrameKey& o) const { return !(*this == o); }
};

class StackFrames {
public:
    StackFrames() = default;
    StackFrames(const StackFrames&) = delete;  // ids_ holds views of this object's texts_
    StackFrames& operator=(const StackFrames&) = delete;
    void attach(const TraceReader* reader) { reader_ = reader; }
    // Frames of a stack, outermost first (empty for stack 0). Cached per stack id.
    const std::vector<FrameKey>& outer_first(uint64_t stack_id);
    // Whether the stack's outermost frames are exactly `prefix` (outermost first).
    bool has_prefix(uint64_t stack_id, const std::vector<FrameKey>& prefix);
    std::string_view text(uint32_t id) const {
        return id < texts_.size() ? std::string_view(texts_[id]) : std::string_view();
    }
    // Frames innermost first as JSON-ready records, and the innermost frame alone.
    std::vector<FrameKey> inner_first(uint64_t stack_id);
    FrameKey innermost(uint64_t stack_id);
    // The innermost frame of the program's own code (frames.hpp), else the innermost frame.
    FrameKey attributed(uint64_t stack_id);

private:
    uint32_t intern(std::string_view s);
    const TraceReader* reader_ = nullptr;
    std::unordered_map<uint64_t, std::vector<FrameKey>> stacks_;
    std::unordered_map<std::string_view, uint32_t> ids_;  // views of texts_
    std::deque<std::string> texts_{""};                   // id 0 = ""; a deque keeps views stable
};

// Live bytes after each event, reduced to the events whose value exceeds every later one.
// max_from(s) is then the first kept entry at or after s. Its size is the number of strictly
// decreasing steps since the highest point, bounded in practice by the blocks freed; a cap
// merges old neighbours upward (never under-estimates a maximum) if it is ever reached.
// The newest entry waits in top_ until a lower value follows (a rise replaces it in place):
// the entries it would remove from entries_ go only then, which is the same list.
class LiveHistory {
public:
    void push(uint64_t seq, uint64_t live_bytes) {
        // Before any push top_ is (0, 0): no value is lower, and it answers 0 like no entry.
        if (__builtin_expect(live_bytes < top_.live, 0)) settle(seq, live_bytes);
        top_ = {seq, live_bytes};
    }
    // Highest live bytes after any event with seq >= s (0 when no such event was pushed).
    uint64_t max_from(uint64_t seq) const;

private:
    struct Entry {
        uint64_t seq;
        uint64_t live;
    };
    static constexpr size_t kCap = size_t{1} << 22;
    // top_ goes into entries_ (an entry no higher than it can never be the maximum of a
    // suffix again) before (seq, live), lower, becomes the top.
    void settle(uint64_t seq, uint64_t live) {
        while (!entries_.empty() && entries_.back().live <= top_.live) entries_.pop_back();
        entries_.push_back(top_);
        // The full list now ends with (seq, live): the cap counts it.
        if (__builtin_expect(entries_.size() + 1 > kCap, 0)) thin_with(seq, live);
    }
    void thin_with(uint64_t seq, uint64_t live);
    void thin();
    std::vector<Entry> entries_;  // strictly decreasing live, increasing seq
    Entry top_{0, 0};
};

}  // namespace pmt::analyzer
