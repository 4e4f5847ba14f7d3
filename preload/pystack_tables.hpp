// Open-addressing hash tables and a text arena for the per-thread Python stack caches of
// python_stack.cpp. Memory comes from internal_malloc and co (runtime.hpp), never from the
// program's malloc. Nothing here knows about Python.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "runtime.hpp"

namespace pmt::preload::pystack {

// Finaliser of MurmurHash3: spreads pointer bits (low bits are alignment zeros) over the word.
inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

inline uint64_t hash_bytes(const char* s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL ^ n;  // FNV-1a, then mixed: names are short
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 0x100000001b3ULL;
    return mix64(h);
}

// Entry: trivially copyable, all-zero is empty, `id == 0` marks an empty slot, and
// `uint64_t hash() const` recomputes the hash used to place it (for growth).
template <class Entry>
class OpenTable {
public:
    OpenTable() = default;
    OpenTable(const OpenTable&) = delete;
    OpenTable& operator=(const OpenTable&) = delete;
    ~OpenTable() { internal_free(slots_); }

    // The slot holding an entry accepted by match, or the empty slot (id == 0) where a new
    // entry with hash h belongs: the caller fills it, id last, and calls inserted().
    // nullptr when memory ran out. Pointers stay valid until the next find().
    template <class Match>
    Entry* find(uint64_t h, const Match& match) {
        if ((used_ + 1) * 4 > capacity() * 3 && !grow()) return nullptr;
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            Entry& e = slots_[i];
            if (e.id == 0 || match(e)) return &e;
        }
    }
    void inserted() { ++used_; }

    void clear() {
        internal_free(slots_);
        slots_ = nullptr;
        mask_ = 0;
        used_ = 0;
    }
    size_t size() const { return used_; }

private:
    size_t capacity() const { return slots_ ? mask_ + 1 : 0; }

    bool grow() {
        size_t cap = slots_ ? (mask_ + 1) * 2 : 64;
        auto* fresh = static_cast<Entry*>(internal_calloc(cap, sizeof(Entry)));
        if (!fresh) return false;
        for (size_t i = 0; slots_ && i <= mask_; ++i) {
            if (slots_[i].id == 0) continue;
            size_t j = slots_[i].hash() & (cap - 1);
            while (fresh[j].id != 0) j = (j + 1) & (cap - 1);
            fresh[j] = slots_[i];
        }
        internal_free(slots_);
        slots_ = fresh;
        mask_ = cap - 1;
        return true;
    }

    Entry* slots_ = nullptr;
    size_t mask_ = 0;
    size_t used_ = 0;
};

// CPython 3.11's co_linetable (Objects/locations.md), decoded for lines only, with a cursor so
// that offsets asked in increasing order continue where the previous one stopped instead of
// rescanning from the start as PyCode_Addr2Line does. Gives exactly PyCode_Addr2Line's line
// for offsets in [0, code units): -1 for "no location" entries and past the table's end.
// All-zero is the fresh cursor (before the first entry).
struct LineCursor {
    uint32_t pos;        // byte index of the next entry
    int32_t start, end;  // current range of code units [start, end)
    int32_t computed;    // sum of the line deltas so far: the range's line is firstlineno + it
    bool has_line;       // false for a "no location" range
};

// Signed varint of the long and no-column forms: 6-bit groups, low first, 0x40 = more.
inline int32_t linetable_svarint(const unsigned char* t, uint32_t len, uint32_t p) {
    uint32_t v = 0;
    unsigned shift = 0;
    for (; p < len; ++p, shift += 6) {
        if (shift < 32) v |= uint32_t(t[p] & 63) << shift;
        if (!(t[p] & 64)) break;
    }
    return (v & 1) ? -int32_t(v >> 1) : int32_t(v >> 1);
}

inline int linetable_line(const unsigned char* t, uint32_t len, int firstlineno, LineCursor& c,
                          int32_t offset) {
    if (offset < c.start) c = LineCursor{};  // backwards: from the start, as CPython does
    while (c.end <= offset) {
        if (c.pos >= len) return -1;
        unsigned char b = t[c.pos];
        unsigned kind = b >> 3 & 15;
        int32_t delta = kind == 13 || kind == 14 ? linetable_svarint(t, len, c.pos + 1)
                        : kind == 11             ? 1
                        : kind == 12             ? 2
                                                 : 0;
        c.computed = int32_t(uint32_t(c.computed) + uint32_t(delta));
        c.has_line = (b >> 3) != 0x1f;
        c.start = c.end;
        c.end += (b & 7) + 1;
        do ++c.pos;
        while (c.pos < len && !(t[c.pos] & 128));
    }
    return c.has_line ? int(uint32_t(firstlineno) + uint32_t(c.computed)) : -1;
}

// Bump allocator for interned UTF-8 names: they live as long as the thread's cache, so one
// free per 64 KiB chunk instead of one per string.
class TextArena {
public:
    TextArena() = default;
    TextArena(const TextArena&) = delete;
    TextArena& operator=(const TextArena&) = delete;
    ~TextArena() { clear(); }

    const char* copy(const char* s, size_t n) {
        if (!head_ || head_->cap - head_->used < n) {
            size_t cap = n > kChunkBytes ? n : kChunkBytes;
            auto* c = static_cast<Chunk*>(internal_malloc(sizeof(Chunk) + cap));
            if (!c) return nullptr;
            *c = Chunk{head_, 0, cap};
            head_ = c;
        }
        char* dst = reinterpret_cast<char*>(head_ + 1) + head_->used;
        std::memcpy(dst, s, n);
        head_->used += n;
        bytes_ += n;
        return dst;
    }
    size_t bytes() const { return bytes_; }

    void clear() {
        while (head_) {
            Chunk* next = head_->next;
            internal_free(head_);
            head_ = next;
        }
        bytes_ = 0;
    }

private:
    static constexpr size_t kChunkBytes = 64 * 1024;
    struct Chunk {
        Chunk* next;
        size_t used, cap;
    };
    Chunk* head_ = nullptr;
    size_t bytes_ = 0;
};

}  // namespace pmt::preload::pystack
