// StackFrames (content-compared frames per stack id) and LiveHistory (suffix maxima of live
// bytes) used by windows.cpp and advice.cpp. Depends only on the trace reader.
#include "window_support.hpp"

#include <algorithm>

#include "frames.hpp"

namespace pmt::analyzer {

uint32_t StackFrames::intern(std::string_view s) {
    auto it = ids_.find(s);  // no string made to look one up
    if (it != ids_.end()) return it->second;
    const auto id = static_cast<uint32_t>(texts_.size());
    texts_.emplace_back(s);
    ids_.emplace(std::string_view(texts_.back()), id);  // the deque keeps the text in place
    return id;
}

const std::vector<FrameKey>& StackFrames::outer_first(uint64_t stack_id) {
    auto it = stacks_.find(stack_id);
    if (it != stacks_.end()) return it->second;
    std::vector<FrameKey> keys;
    if (reader_ && stack_id != 0) {
        const std::vector<Frame> frames = reader_->frames(stack_id);
        keys.reserve(frames.size());
        for (auto f = frames.rbegin(); f != frames.rend(); ++f)
            keys.push_back({intern(f->file), intern(f->function), f->line});
    }
    return stacks_.emplace(stack_id, std::move(keys)).first->second;
}

bool StackFrames::has_prefix(uint64_t stack_id, const std::vector<FrameKey>& prefix) {
    const std::vector<FrameKey>& f = outer_first(stack_id);
    if (prefix.empty() || f.size() < prefix.size()) return false;
    return std::equal(prefix.begin(), prefix.end(), f.begin());
}

std::vector<FrameKey> StackFrames::inner_first(uint64_t stack_id) {
    const std::vector<FrameKey>& f = outer_first(stack_id);
    return {f.rbegin(), f.rend()};
}

FrameKey StackFrames::innermost(uint64_t stack_id) {
    const std::vector<FrameKey>& f = outer_first(stack_id);
    return f.empty() ? FrameKey{} : f.back();
}

// Code objects made by libraries at run time ("<__array_function__ internals>" in numpy) are
// library code too; "<string>" and "<stdin>" are the user's.
static bool is_generated(std::string_view file) {
    return !file.empty() && file.front() == '<' && file != "<string>" && file != "<stdin>";
}

FrameKey StackFrames::attributed(uint64_t stack_id) {
    const std::vector<FrameKey>& f = outer_first(stack_id);
    for (auto it = f.rbegin(); it != f.rend(); ++it)
        if (!is_library_file(text(it->file)) && !is_generated(text(it->file))) return *it;
    return f.empty() ? FrameKey{} : f.back();
}

uint64_t LiveHistory::max_from(uint64_t seq) const {
    // entries_ followed by top_ is the list with the entries no higher than top_ removed:
    // they are the tail of entries_, and top_ answers for them.
    auto it = std::lower_bound(entries_.begin(), entries_.end(), seq,
                               [](const Entry& e, uint64_t s) { return e.seq < s; });
    if (it == entries_.end()) return top_.seq >= seq ? top_.live : 0;
    return std::max(it->live, top_.live);
}

void LiveHistory::thin_with(uint64_t seq, uint64_t live) {
    // thin() keeps the last entry as it is: (seq, live) comes back out as the top.
    entries_.push_back({seq, live});
    thin();
    entries_.pop_back();
}

void LiveHistory::thin() {
    // Merge pairs in the older half into one entry carrying the later seq and the higher
    // value: a query may then see a maximum slightly too high (a cost slightly too low),
    // never too low.
    const size_t half = entries_.size() / 2;
    std::vector<Entry> out;
    out.reserve(entries_.size());
    size_t i = 0;
    for (; i + 1 < half; i += 2) out.push_back({entries_[i + 1].seq, entries_[i].live});
    for (; i < entries_.size(); ++i) out.push_back(entries_[i]);
    entries_.swap(out);
}

}  // namespace pmt::analyzer
