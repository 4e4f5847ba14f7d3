// Private to trace/: a table from the format's ids (strings, locations, stacks) to values.
// Ids come from one counter per process, so they are dense and a vector serves them; an id
// far beyond what has been defined (a hostile or corrupt trace) goes to a hash map instead of
// growing the vector, so memory stays proportional to the definitions actually read.
#pragma once
#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace pmt::detail {

template <class T>
class IdTable {
public:
    void set(uint64_t id, const T& v) {
        if (id >= dense_.size() && id < dense_limit()) {
            size_t n =
                std::max<size_t>(id + 1, std::min<uint64_t>(dense_.size() * 2, dense_limit()));
            dense_.resize(n);
            present_.resize(n, 0);
        }
        if (id < dense_.size()) {
            count_ += !present_[id];
            dense_[id] = v;
            present_[id] = 1;
        } else {
            count_ += sparse_.count(id) == 0;
            sparse_[id] = v;
        }
    }

    const T* get(uint64_t id) const {
        if (id < dense_.size()) return present_[id] ? &dense_[id] : nullptr;
        if (sparse_.empty()) return nullptr;
        auto it = sparse_.find(id);
        return it == sparse_.end() ? nullptr : &it->second;
    }

    size_t size() const { return count_; }

private:
    uint64_t dense_limit() const { return 2 * static_cast<uint64_t>(count_) + 65536; }

    std::vector<T> dense_;
    std::vector<uint8_t> present_;
    std::unordered_map<uint64_t, T> sparse_;
    size_t count_ = 0;
};

}  // namespace pmt::detail
