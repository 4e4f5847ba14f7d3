// ById<T>: a table of per-stack (or per-id) values indexed by id, for the analyses' per-event
// paths; shared by the peak, windows and advice analyses.
#pragma once

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pmt::analyzer {

// Per-stack values without a hash lookup per event: stack ids are handed out by one counter
// per process, so they index a vector; absurd ids (a corrupt or hostile trace) go to a map so
// they cannot make us allocate gigabytes. Entries never set hold the default value.
template <class T>
class ById {
public:
    explicit ById(T init = T{}) : init_(init) {}
    T& operator[](uint64_t id) {
        if (__builtin_expect(id < dense_.size(), 1)) return dense_[id];
        return grow_for(id);
    }
    // The entry of id if the vector holds it, else nullptr (nothing grows): for a caller that
    // keeps its common path free of calls.
    T* find_dense(uint64_t id) { return id < dense_.size() ? &dense_[id] : nullptr; }
    // Every entry, default ones included, by increasing id for the dense part.
    template <class F>
    void for_each(F&& f) {
        for (size_t id = 0; id < dense_.size(); ++id) f(uint64_t{id}, dense_[id]);
        for (auto& [id, v] : sparse_) f(id, v);
    }
    template <class F>
    void for_each(F&& f) const {
        for (size_t id = 0; id < dense_.size(); ++id) f(uint64_t{id}, dense_[id]);
        for (const auto& [id, v] : sparse_) f(id, v);
    }

private:
    // Out of line: keeps the per-event callers' fast path small.
    [[gnu::noinline]] T& grow_for(uint64_t id) {
        // Ids come from one counter per process, so real ones arrive near those already
        // seen: the table doubles only for them. An id far ahead (a damaged or hostile trace)
        // waits in the map, costing nothing in proportion to its value, and moves into the
        // table once the table grows over it.
        const size_t reach = std::max<size_t>(dense_.size() * 2, 1024);
        if (id >= reach || id >= kDenseLimit) return sparse_.try_emplace(id, init_).first->second;
        const size_t n = std::min<size_t>(reach, kDenseLimit);
        dense_.resize(n, init_);
        for (auto it = sparse_.begin(); it != sparse_.end();) {
            if (it->first < n) {
                dense_[it->first] = std::move(it->second);
                it = sparse_.erase(it);
            } else {
                ++it;
            }
        }
        return dense_[id];
    }

    static constexpr uint64_t kDenseLimit = uint64_t{1} << 22;
    T init_;
    std::vector<T> dense_;
    std::unordered_map<uint64_t, T> sparse_;
};

}  // namespace pmt::analyzer
