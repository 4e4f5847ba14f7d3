// Unit tests of LiveHeap: heap blocks, realloc in place and moved, anonymous mappings cut by
// partial munmap, moved or grown by mremap, file mappings not counted, and the exact peak.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <unordered_map>
#include <vector>

#include "pmt/live.hpp"

using namespace pmt;

namespace {

constexpr uint64_t kAnon = 0x22;  // MAP_PRIVATE | MAP_ANONYMOUS
constexpr uint64_t kFile = 0x02;  // MAP_PRIVATE
constexpr uint64_t kPage = 4096;

struct Recorder : LiveListener {
    std::vector<Block> live, dead;
    std::vector<uint64_t> dead_times;
    void on_live(const Block& b) override { live.push_back(b); }
    void on_dead(const Block& b, uint64_t t) override {
        dead.push_back(b);
        dead_times.push_back(t);
    }
};

// Builds events with increasing seq and time.
struct Stream {
    uint64_t seq = 0;
    Event next(EventType type, uint64_t addr, uint64_t size) {
        Event e;
        e.type = type;
        e.addr = addr;
        e.size = size;
        e.seq = seq;
        e.time_ns = 100 * ++seq;
        return e;
    }
    Event alloc(uint64_t addr, uint64_t size, uint64_t stack = 0) {
        Event e = next(EventType::Alloc, addr, size);
        e.stack_id = stack;
        return e;
    }
    Event free(uint64_t addr) { return next(EventType::Free, addr, 0); }
    Event mmap(uint64_t addr, uint64_t size, uint64_t flags, uint64_t stack = 0) {
        Event e = next(EventType::Mmap, addr, size);
        e.flags = flags;
        e.fd = flags & kMapAnonymous ? -1 : 3;
        e.stack_id = stack;
        return e;
    }
    Event munmap(uint64_t addr, uint64_t size) { return next(EventType::Munmap, addr, size); }
    Event mremap(uint64_t old_addr, uint64_t old_size, uint64_t addr, uint64_t size,
                 uint64_t stack = 0) {
        Event e = next(EventType::Mremap, addr, size);
        e.old_addr = old_addr;
        e.old_size = old_size;
        e.stack_id = stack;
        return e;
    }
};

}  // namespace

TEST_CASE("heap blocks count their requested sizes until freed", "[trace][live]") {
    LiveHeap h;
    Stream s;
    h.apply(s.alloc(0x1000, 100));
    h.apply(s.alloc(0x2000, 50));
    CHECK(h.live_bytes() == 150);
    CHECK(h.live_blocks() == 2);
    h.apply(s.free(0x1000));
    CHECK(h.live_bytes() == 50);
    h.apply(s.free(0x1000));  // double free / unknown
    h.apply(s.free(0x9999));
    CHECK(h.unknown_frees() == 2);
    CHECK(h.live_bytes() == 50);
    h.apply(s.alloc(0x3000, 0));  // malloc(0) is live, with no bytes
    h.apply(s.free(0x3000));
    CHECK(h.unknown_frees() == 2);
}

TEST_CASE("realloc in place and moved keeps exact live bytes", "[trace][live]") {
    LiveHeap h;
    Stream s;
    Recorder r;
    h.apply(s.alloc(0x1000, 100, 1), &r);
    // In place: free at t_before then alloc at the same address at t_after.
    Event f = s.free(0x1000);
    f.kind = AllocKind::Realloc;
    h.apply(f, &r);
    h.apply(s.alloc(0x1000, 300, 2), &r);
    CHECK(h.live_bytes() == 300);
    CHECK(h.replaced_live() == 0);
    // Moved.
    h.apply(s.free(0x1000), &r);
    h.apply(s.alloc(0x8000, 1000, 3), &r);
    CHECK(h.live_bytes() == 1000);
    CHECK(h.live_blocks() == 1);
    CHECK(r.dead.size() == 2);
    CHECK(r.dead[1].size == 300);
    CHECK(r.dead[1].stack_id == 2);
}

TEST_CASE("an alloc at an address still live replaces the old block", "[trace][live]") {
    LiveHeap h;
    Stream s;
    Recorder r;
    h.apply(s.alloc(0x1000, 100), &r);
    h.apply(s.alloc(0x1000, 40), &r);
    CHECK(h.live_bytes() == 40);
    CHECK(h.replaced_live() == 1);
    REQUIRE(r.dead.size() == 1);
    CHECK(r.dead[0].size == 100);
    CHECK(h.peak_bytes() == 100);
}

TEST_CASE("file mappings hold no live bytes, anonymous ones do", "[trace][live]") {
    LiveHeap h;
    Stream s;
    h.apply(s.mmap(0x100000, 10 * kPage, kFile));
    CHECK(h.live_bytes() == 0);
    h.apply(s.mmap(0x200000, 10 * kPage, kAnon));
    CHECK(h.live_bytes() == 10 * kPage);
    h.apply(s.munmap(0x100000, 10 * kPage));
    CHECK(h.live_bytes() == 10 * kPage);
    CHECK(h.unknown_frees() == 0);
    // A file mapping placed over part of an anonymous one (MAP_FIXED) takes those pages.
    h.apply(s.mmap(0x200000, 2 * kPage, kFile));
    CHECK(h.live_bytes() == 8 * kPage);
}

TEST_CASE("a partial munmap of a middle piece splits the mapping", "[trace][live]") {
    LiveHeap h;
    Stream s;
    Recorder r;
    h.apply(s.mmap(0x100000, 10 * kPage, kAnon, 7), &r);
    uint64_t born = 100;
    h.apply(s.munmap(0x100000 + 3 * kPage, 2 * kPage), &r);
    CHECK(h.live_bytes() == 8 * kPage);
    CHECK(h.live_blocks() == 2);
    REQUIRE(r.dead.size() == 1);
    CHECK(r.dead[0].addr == 0x100000 + 3 * kPage);
    CHECK(r.dead[0].size == 2 * kPage);
    CHECK(r.dead[0].stack_id == 7);
    CHECK(r.dead[0].time_ns == born);
    CHECK(r.dead[0].mapping);
    CHECK(r.dead_times[0] == 200);

    std::vector<std::pair<uint64_t, uint64_t>> pieces;
    h.for_each_live([&](const Block& b) { pieces.emplace_back(b.addr, b.size); });
    std::sort(pieces.begin(), pieces.end());
    CHECK(pieces == std::vector<std::pair<uint64_t, uint64_t>>{{0x100000, 3 * kPage},
                                                               {0x100000 + 5 * kPage, 5 * kPage}});

    // One munmap spanning the gap and parts of both pieces.
    h.apply(s.munmap(0x100000 + 2 * kPage, 4 * kPage), &r);
    CHECK(h.live_bytes() == 6 * kPage);
    // Trim the head and the tail.
    h.apply(s.munmap(0x100000 - kPage, 2 * kPage), &r);
    h.apply(s.munmap(0x100000 + 9 * kPage, 5 * kPage), &r);
    CHECK(h.live_bytes() == 4 * kPage);
    h.apply(s.munmap(0, ~0ull), &r);  // everything, without overflowing the range end
    CHECK(h.live_bytes() == 0);
    CHECK(h.live_blocks() == 0);
}

TEST_CASE("mremap grows in place, moves, and leaves uncounted ranges uncounted", "[trace][live]") {
    LiveHeap h;
    Stream s;
    Recorder r;
    h.apply(s.mmap(0x100000, 4 * kPage, kAnon, 1), &r);
    h.apply(s.mremap(0x100000, 4 * kPage, 0x100000, 8 * kPage, 2), &r);  // grow in place
    CHECK(h.live_bytes() == 8 * kPage);
    CHECK(h.live_blocks() == 1);
    h.apply(s.mremap(0x100000, 8 * kPage, 0x900000, 16 * kPage, 0), &r);  // grow and move
    CHECK(h.live_bytes() == 16 * kPage);
    h.for_each_live([](const Block& b) {
        CHECK(b.addr == 0x900000);
        CHECK(b.stack_id == 2);  // no stack on the mremap: keeps the one it had
    });
    h.apply(s.mremap(0x900000, 16 * kPage, 0x900000, kPage), &r);  // shrink
    CHECK(h.live_bytes() == kPage);
    CHECK(h.peak_bytes() == 16 * kPage);

    // A file mapping moved stays uncounted.
    h.apply(s.mmap(0x500000, 4 * kPage, kFile), &r);
    h.apply(s.mremap(0x500000, 4 * kPage, 0x600000, 8 * kPage), &r);
    CHECK(h.live_bytes() == kPage);
    // Moving onto a counted range replaces it (MREMAP_FIXED).
    h.apply(s.mremap(0x600000, 8 * kPage, 0x900000, 8 * kPage), &r);
    CHECK(h.live_bytes() == 0);
}

TEST_CASE("the peak is the strict maximum with the time and seq of the event that set it",
          "[trace][live]") {
    LiveHeap h;
    Stream s;
    h.apply(s.alloc(1, 100));  // seq 0
    h.apply(s.alloc(2, 200));  // seq 1: 300
    h.apply(s.free(1));        // seq 2: 200
    h.apply(s.alloc(3, 100));  // seq 3: 300 again, not higher: the peak stays at seq 1
    CHECK(h.peak_bytes() == 300);
    CHECK(h.peak_seq() == 1);
    CHECK(h.peak_time_ns() == 200);
    h.apply(s.mmap(0x100000, 1, kAnon));  // seq 4: 301
    CHECK(h.peak_bytes() == 301);
    CHECK(h.peak_seq() == 4);
    CHECK(h.peak_time_ns() == 500);
    Event rss = s.next(EventType::Rss, 0, 1ull << 40);
    h.apply(rss);
    CHECK(h.peak_bytes() == 301);
}

TEST_CASE("the block table agrees with a reference map under random inserts and erases",
          "[trace][live]") {
    BlockTable t;
    std::unordered_map<uint64_t, uint64_t> ref;
    std::mt19937_64 rng(7);
    for (int i = 0; i < 200000; ++i) {
        // Few distinct addresses (some clustered, some 0) so probe chains collide and wrap.
        uint64_t addr = rng() % 3 == 0 ? (rng() % 64) * 16 : (rng() % 5000) * 4096;
        if (rng() % 2) {
            auto [b, added] = t.insert({addr, uint64_t(i), 0, 0, false});
            CHECK(added == (ref.count(addr) == 0));
            if (added) ref[addr] = uint64_t(i);
            CHECK(b->size == ref[addr]);
        } else if (Block* b = t.find(addr)) {
            REQUIRE(ref.count(addr) == 1);
            CHECK(b->size == ref[addr]);
            t.erase(b);
            ref.erase(addr);
        } else {
            CHECK(ref.count(addr) == 0);
        }
    }
    CHECK(t.size() == ref.size());
    size_t seen = 0;
    t.for_each([&](const Block& b) {
        ++seen;
        CHECK(ref.at(b.addr) == b.size);
    });
    CHECK(seen == ref.size());
}

namespace {

// Checks t against ref after every operation of a sequence of seq-named blocks ((1 << 63) |
// seq, version 3's heap addresses) and real ones: lookups, duplicate inserts, erases.
struct TableCheck {
    BlockTable t;
    std::unordered_map<uint64_t, uint64_t> ref;  // addr -> size
    uint64_t op = 0;
    void insert(uint64_t addr) {
        ++op;
        auto [b, added] = t.insert({addr, op, 0, 0, false});
        REQUIRE(added == (ref.count(addr) == 0));
        if (added) ref[addr] = op;
        REQUIRE(b->addr == addr);
        REQUIRE(b->size == ref[addr]);
    }
    bool erase(uint64_t addr) {
        Block* b = t.find(addr);
        REQUIRE((b != nullptr) == (ref.count(addr) == 1));
        if (!b) return false;
        REQUIRE(b->size == ref[addr]);
        t.erase(b);
        ref.erase(addr);
        REQUIRE(t.find(addr) == nullptr);
        return true;
    }
    void check_all() {
        REQUIRE(t.size() == ref.size());
        size_t seen = 0;
        t.for_each([&](const Block& b) {
            ++seen;
            REQUIRE(ref.count(b.addr) == 1);
            REQUIRE(ref.at(b.addr) == b.size);
        });
        REQUIRE(seen == ref.size());
        for (const auto& [addr, size] : ref) {
            const Block* b = t.find(addr);
            REQUIRE(b != nullptr);
            REQUIRE(b->size == size);
        }
    }
};

constexpr uint64_t kSeqName = uint64_t{1} << 63;

}  // namespace

TEST_CASE("the block table keeps seq-named blocks under queue, stack and random frees",
          "[trace][live]") {
    std::mt19937_64 rng(11);
    for (int pattern = 0; pattern < 4; ++pattern) {
        TableCheck c;
        std::vector<uint64_t> live;  // seqs, oldest first
        uint64_t next = pattern == 3 ? 5000 : 0;
        for (int i = 0; i < 120000; ++i) {
            // The live set swings between ~100 and ~6000 blocks (churn's cycles); a few blocks
            // live forever, so the front of the ring gets stuck and must move to the table.
            const bool growing = (i / 9000) % 2 == 0;
            const uint64_t r = rng() % 100;
            if (live.empty() || (growing ? r < 70 : r < 25)) {
                c.insert(kSeqName | next);
                if (rng() % 50 != 0) live.push_back(next);  // else never freed
                ++next;
            } else {
                size_t k = 0;
                if (pattern == 0) k = std::min<size_t>(rng() % 4, live.size() - 1);  // near FIFO
                if (pattern == 1) k = live.size() - 1;                               // LIFO
                if (pattern >= 2) k = rng() % live.size();                           // random
                REQUIRE(c.erase(kSeqName | live[k]));
                live.erase(live.begin() + static_cast<long>(k));
            }
            if (rng() % 500 == 0)
                c.insert(kSeqName | (next - 1 - rng() % 20));  // maybe a duplicate
            if (rng() % 300 == 0) {  // a seq not live (never made, or freed): unknown
                const uint64_t q = rng() % (next + 10);
                if (std::find(live.begin(), live.end(), q) == live.end()) c.erase(kSeqName | q);
            }
            if (rng() % 200 == 0) c.insert((rng() % 4000 + 1) * 16);  // real addresses
            if (rng() % 200 == 0) c.erase((rng() % 4000 + 1) * 16);
            if (i % 20000 == 0) c.check_all();
        }
        c.check_all();
    }
}

TEST_CASE("the block table takes seqs out of order, far jumps and absurd seq names",
          "[trace][live]") {
    TableCheck c;
    for (uint64_t s = 100; s < 3000; ++s) c.insert(kSeqName | s);
    for (uint64_t s = 100; s < 3000; s += 3) REQUIRE(c.erase(kSeqName | s));
    c.insert(kSeqName | 50);            // older than every block in the ring
    c.insert(kSeqName | (1ull << 30));  // far ahead: the live blocks move to the table
    c.insert(kSeqName | ((1ull << 30) + 1));
    c.insert(kSeqName | 3000);                // now older than the ring's front
    c.insert(kSeqName | ((1ull << 62) + 7));  // beyond the ring's seqs
    c.insert(~0ull);
    c.insert(kSeqName);
    c.insert(0);  // address 0 (a corrupt trace)
    c.insert(0x7f0000001000);
    c.check_all();
    for (uint64_t s = 100; s < 3000; s += 2) c.erase(kSeqName | s);
    REQUIRE(c.erase(kSeqName | 50));
    REQUIRE(c.erase(kSeqName | (1ull << 30)));
    REQUIRE(c.erase(0));
    REQUIRE(c.erase(~0ull));
    c.check_all();
    for (uint64_t s = (1ull << 30) + 2; s < (1ull << 30) + 5000; ++s) c.insert(kSeqName | s);
    for (uint64_t s = (1ull << 30) + 2; s < (1ull << 30) + 4000; ++s)
        REQUIRE(c.erase(kSeqName | s));
    c.check_all();
}
