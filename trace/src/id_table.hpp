// Private to trace/: a table from the format's ids (strings, locations, stacks) to values.
// Ids come from one counter per process, so they are dense and a vector serves them; an id
// far beyond what has been defined (a hostile or corrupt trace) goes to a hash map instead of
// growing the vector, so memory stays proportional to the definitions actually read.
// Below it, Definitions: the definition tables of a trace as the readers of every version keep
// them (EventMerger for versions 1-2, StreamDecoder for versions 3-4).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pmt/reader.hpp"
#include "pmt/tid_table.hpp"  // HashSeeds

namespace pmt::detail {

// The hash of IdTable's sparse ids: std::hash<uint64_t> is the identity, so ids that are
// multiples of the bucket count (a 2.3 MB file of 400,000 such stack ids) all shared one bucket
// and reading took 78.6 s. A seeded mix spreads them.
struct SeededIdHash {
    uint64_t seed;
    size_t operator()(uint64_t id) const {
        uint64_t z = (id ^ seed) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 31)) * 0x94D049BB133111EBull;
        return static_cast<size_t>(z ^ (z >> 29));
    }
};

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

    IdTable() : sparse_(0, SeededIdHash{HashSeeds(this).next()}) {}

private:
    uint64_t dense_limit() const { return 2 * static_cast<uint64_t>(count_) + 65536; }

    std::vector<T> dense_;
    std::vector<uint8_t> present_;
    std::unordered_map<uint64_t, T, SeededIdHash> sparse_;
    size_t count_ = 0;
};

// Strings live in fixed blocks so the string_views handed out stay valid as tables grow.
class StringArena {
public:
    std::string_view store(const uint8_t* p, size_t n) {
        if (n > kBlock / 4) {
            big_.emplace_back(new char[n]);
            std::memcpy(big_.back().get(), p, n);
            return {big_.back().get(), n};
        }
        if (blocks_.empty() || used_ + n > kBlock) {
            blocks_.emplace_back(new char[kBlock]);
            used_ = 0;
        }
        char* dst = blocks_.back().get() + used_;
        if (n) std::memcpy(dst, p, n);
        used_ += n;
        return {dst, n};
    }

private:
    static constexpr size_t kBlock = 64 * 1024;
    std::vector<std::unique_ptr<char[]>> blocks_;
    std::vector<std::unique_ptr<char[]>> big_;
    size_t used_ = 0;
};

// Strings, locations, stacks and thread names (FORMAT.md, the definition records): a later
// definition of an id replaces the earlier one; unknown ids read as "" / nullptr.
class Definitions {
public:
    void set_string(uint64_t id, const uint8_t* s, size_t n) {
        strings_.set(id, arena_.store(s, n));
    }
    void set_location(uint64_t id, const Location& l) { locations_.set(id, l); }
    void set_stack(uint64_t id, const StackNode& s) { stacks_.set(id, s); }
    void set_thread_name(uint32_t tid, uint64_t string_id) { thread_names_[tid] = string_id; }

    std::string_view string(uint64_t id) const {
        const std::string_view* s = strings_.get(id);
        return s ? *s : std::string_view();
    }
    const Location* location(uint64_t id) const { return locations_.get(id); }
    const StackNode* stack(uint64_t id) const { return id ? stacks_.get(id) : nullptr; }
    std::string_view thread_name(uint32_t tid) const {
        auto it = thread_names_.find(tid);
        return it == thread_names_.end() ? std::string_view() : string(it->second);
    }

private:
    StringArena arena_;
    IdTable<std::string_view> strings_;
    IdTable<Location> locations_;
    IdTable<StackNode> stacks_;
    std::unordered_map<uint32_t, uint64_t> thread_names_;  // tid -> string id
};

}  // namespace pmt::detail
