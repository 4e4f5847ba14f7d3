// Unit tests of LiveRank (pmt/live_rank.hpp), the order-statistic structure of the version-3
// rank code: every answer is checked against a sorted std::set of the live seqs over random
// operation sequences, and memory is checked to follow the live blocks, not all blocks added.
#include <catch2/catch.hpp>
#include <iterator>
#include <random>
#include <set>
#include <vector>

#include "pmt/live_rank.hpp"

using namespace pmt;

namespace {

uint64_t ref_index(const std::set<uint64_t>& s, uint64_t seq) {
    auto it = s.find(seq);
    if (it == s.end()) return LiveRank::kNotLive;
    return static_cast<uint64_t>(std::distance(s.begin(), it));
}

uint64_t ref_at(const std::set<uint64_t>& s, uint64_t i) {
    if (i >= s.size()) return LiveRank::kNotLive;
    return *std::next(s.begin(), static_cast<std::ptrdiff_t>(i));
}

// Every live seq's index and every index's seq agree with the reference.
void check_all(const LiveRank& r, const std::set<uint64_t>& s) {
    REQUIRE(r.size() == s.size());
    uint64_t i = 0;
    for (uint64_t seq : s) {
        REQUIRE(r.at(i) == seq);
        REQUIRE(r.index_of(seq) == i);
        REQUIRE(r.contains(seq));
        ++i;
    }
    REQUIRE(r.at(s.size()) == LiveRank::kNotLive);
}

}  // namespace

TEST_CASE("live rank: empty structure answers not-live", "[trace][live_rank]") {
    LiveRank r;
    CHECK(r.size() == 0);
    CHECK(r.empty());
    CHECK(r.remove(0) == LiveRank::kNotLive);
    CHECK(r.remove_at(0) == LiveRank::kNotLive);
    CHECK(r.at(0) == LiveRank::kNotLive);
    CHECK(r.index_of(5) == LiveRank::kNotLive);
}

TEST_CASE("live rank: small hand-worked sequence", "[trace][live_rank]") {
    LiveRank r;
    for (uint64_t s : {3, 5, 9, 10, 20}) REQUIRE(r.add(s));
    CHECK(r.size() == 5);
    CHECK(r.remove(9) == 2);  // 3 5 [9] 10 20
    CHECK(r.remove(9) == LiveRank::kNotLive);
    CHECK(r.remove(4) == LiveRank::kNotLive);  // never added, between two live seqs
    CHECK(r.remove(21) == LiveRank::kNotLive);
    CHECK(r.at(2) == 10);
    CHECK(r.remove(20) == 3);  // 3 5 10 [20]
    CHECK(r.remove(3) == 0);
    CHECK(r.remove_at(1) == 10);  // 5 [10]
    CHECK(r.size() == 1);
    CHECK(r.at(0) == 5);
    // Seqs must increase: re-adding a removed or smaller seq fails and changes nothing.
    CHECK_FALSE(r.add(20));
    CHECK_FALSE(r.add(7));
    CHECK_FALSE(r.add(LiveRank::kMaxSeq + 1));
    CHECK(r.size() == 1);
    REQUIRE(r.add(21));
    CHECK(r.index_of(21) == 1);
    CHECK(r.remove(5) == 0);
    CHECK(r.remove(21) == 0);
    CHECK(r.empty());
    // Emptied: seqs still have to increase past everything added before.
    CHECK_FALSE(r.add(21));
    REQUIRE(r.add(22));
    CHECK(r.at(0) == 22);
}

TEST_CASE("live rank: random operations against std::set", "[trace][live_rank]") {
    for (uint32_t seed = 1; seed <= 40; ++seed) {
        std::mt19937_64 rng(seed);
        LiveRank r;
        std::set<uint64_t> ref;
        uint64_t next = rng() % 5;
        // Phases bias growth or shrinkage so sizes sweep from 0 to a few thousand and back,
        // crossing compactions (and the start-over at zero) many times.
        const unsigned ops = 6000 + static_cast<unsigned>(rng() % 6000);
        for (unsigned k = 0; k < ops; ++k) {
            const bool grow_phase = (k / 1500) % 2 == 0;
            const unsigned roll = static_cast<unsigned>(rng() % 100);
            if (roll < (grow_phase ? 60u : 30u)) {
                next += 1 + rng() % (seed % 3 == 0 ? 1000 : 3);
                REQUIRE(r.add(next));
                ref.insert(next);
            } else if (roll < 80) {
                // Remove by seq: live ones (from either end or the middle) and non-live ones.
                uint64_t seq;
                const unsigned how = static_cast<unsigned>(rng() % 4);
                if (ref.empty() || how == 3) {
                    seq = rng() % (next + 2);
                } else if (how == 0) {
                    seq = *ref.rbegin();
                } else if (how == 1) {
                    seq = *ref.begin();
                } else {
                    seq = ref_at(ref, rng() % ref.size());
                }
                const uint64_t want = ref_index(ref, seq);
                REQUIRE(r.remove(seq) == want);
                ref.erase(seq);
            } else if (roll < 90) {
                // The oldest, the newest (both have their own fast paths), or any index.
                const unsigned pick = static_cast<unsigned>(rng() % 3);
                const uint64_t i = ref.empty() ? 0
                                   : pick == 0 ? 0
                                   : pick == 1 ? ref.size() - 1
                                               : rng() % (ref.size() + 1);
                const uint64_t want = ref_at(ref, i);
                REQUIRE(r.remove_at(i) == want);
                if (want != LiveRank::kNotLive) ref.erase(want);
            } else {
                const uint64_t i = ref.empty() ? 0 : rng() % (ref.size() + 1);
                REQUIRE(r.at(i) == ref_at(ref, i));
                if (!ref.empty()) {
                    REQUIRE(r.at(0) == *ref.begin());
                    REQUIRE(r.at(ref.size() - 1) == *ref.rbegin());
                    REQUIRE(r.index_of(*ref.rbegin()) == ref.size() - 1);
                    REQUIRE(r.index_of(*ref.begin()) == 0);
                }
                const uint64_t seq = rng() % (next + 2);
                REQUIRE(r.index_of(seq) == ref_index(ref, seq));
            }
            REQUIRE(r.size() == ref.size());
            REQUIRE(r.positions() <= 2 * r.size() + 16);
            if (k % 997 == 0) check_all(r, ref);
        }
        check_all(r, ref);
    }
}

TEST_CASE("live rank: long-lived early blocks and millions of short-lived ones",
          "[trace][live_rank]") {
    // 500 blocks live through the whole run; 3 million later blocks each live for a few
    // operations. Memory must follow the ~500-600 live blocks, not the 3 million added.
    std::mt19937_64 rng(7);
    LiveRank r;
    std::set<uint64_t> ref;
    uint64_t seq = 0;
    for (int i = 0; i < 500; ++i) {
        REQUIRE(r.add(seq));
        ref.insert(seq);
        seq += 1 + rng() % 4;
    }
    std::vector<uint64_t> young;  // the short-lived ones, oldest first
    size_t max_capacity = 0;
    for (uint64_t k = 0; k < 3000000; ++k) {
        REQUIRE(r.add(seq));
        young.push_back(seq);
        ++seq;
        if (young.size() > 1 + rng() % 64) {
            // Free one of the young blocks, mostly the newest, sometimes the oldest young.
            size_t j = (rng() % 4 == 0) ? 0 : young.size() - 1;
            const uint64_t s = young[j];
            // Its index: the 500 early blocks, then the young ones before it.
            REQUIRE(r.remove(s) == 500 + j);
            young.erase(young.begin() + static_cast<std::ptrdiff_t>(j));
        }
        if (k % 4096 == 0) max_capacity = std::max(max_capacity, r.capacity());
    }
    CHECK(r.size() == 500 + young.size());
    // Capacity in elements of both arrays: bounded by a small multiple of the live blocks.
    CHECK(max_capacity <= 16 * (500 + 64 + 16));
    for (uint64_t s : young) ref.insert(s);
    check_all(r, ref);
    // The early blocks keep their ranks from the oldest end.
    CHECK(r.remove(*ref.begin()) == 0);
}

TEST_CASE("live rank: memory shrinks after a peak", "[trace][live_rank]") {
    LiveRank r;
    for (uint64_t s = 0; s < 200000; ++s) REQUIRE(r.add(s));
    const size_t peak = r.capacity();
    CHECK(peak >= 400000);
    // Free all but 10 (every block but those of seq % 20000 == 0, from the oldest end).
    for (uint64_t s = 0; s < 200000; ++s)
        if (s % 20000 != 0) REQUIRE(r.remove(s) != LiveRank::kNotLive);
    CHECK(r.size() == 10);
    CHECK(r.capacity() <= 16 * (10 + 32));
    for (uint64_t i = 0; i < 10; ++i) CHECK(r.at(i) == i * 20000);
    CHECK(r.remove(20000 * 9) == 9);
    CHECK(r.remove_at(0) == 0);
    CHECK(r.at(0) == 20000);
}

TEST_CASE("live rank: queue (oldest first) and stack (newest first) orders", "[trace][live_rank]") {
    // FIFO: every free is of the oldest block, with a middle one now and then.
    LiveRank r;
    std::set<uint64_t> ref;
    std::mt19937_64 rng(3);
    uint64_t seq = 0;
    for (int k = 0; k < 300000; ++k) {
        REQUIRE(r.add(seq));
        ref.insert(seq++);
        if (ref.size() > 1000) {
            if (k % 17 == 0) {
                const uint64_t i = rng() % ref.size();
                const uint64_t s = ref_at(ref, i);
                REQUIRE(r.remove(s) == i);
                ref.erase(s);
            } else if (k % 2) {
                REQUIRE(r.remove(*ref.begin()) == 0);
                ref.erase(ref.begin());
            } else {
                REQUIRE(r.remove_at(0) == *ref.begin());
                ref.erase(ref.begin());
            }
        }
        if (k % 9973 == 0) check_all(r, ref);
    }
    check_all(r, ref);
    CHECK(r.positions() <= 2 * r.size() + 16);
    // LIFO down to empty, alternating remove and remove_at at the newest end.
    while (!ref.empty()) {
        const uint64_t last = *ref.rbegin();
        if (ref.size() % 2) {
            REQUIRE(r.remove(last) == ref.size() - 1);
        } else {
            REQUIRE(r.remove_at(ref.size() - 1) == last);
        }
        ref.erase(last);
        if (ref.size() % 97 == 0) check_all(r, ref);
    }
    CHECK(r.empty());
    CHECK(r.positions() == 0);
}

TEST_CASE("live rank: removals near the last one (the finger) against std::set",
          "[trace][live_rank]") {
    // Most removals land within a few indexes of the previous one (either side, by index or by
    // seq, live or not), mixed with far removals before and after it, adds, and compactions
    // (sizes stay small so that tombstones pass half often). A finger whose index went stale
    // (a removal before it not counted, a compaction not followed) answers a wrong block.
    for (uint32_t seed = 1; seed <= 30; ++seed) {
        std::mt19937_64 rng(seed * 7919);
        LiveRank r;
        std::set<uint64_t> ref;
        uint64_t next = 0;
        int64_t last = 0;  // index of the last removal
        for (unsigned k = 0; k < 20000; ++k) {
            const unsigned roll = static_cast<unsigned>(rng() % 100);
            const size_t target = 40 + (k / 2000 % 2) * 400;
            if (roll < 45 || ref.size() < target / 2) {
                next += 1 + rng() % 3;
                REQUIRE(r.add(next));
                ref.insert(next);
                continue;
            }
            if (ref.empty()) continue;
            const int64_t n = static_cast<int64_t>(ref.size());
            int64_t i;
            if (roll < 85) {
                i = last + static_cast<int64_t>(rng() % 9) - 4;  // near, either side
            } else {
                i = static_cast<int64_t>(rng() % ref.size());  // far: before or after it
            }
            if (i < 0) i = 0;
            if (i >= n) i = n - 1;
            const unsigned how = static_cast<unsigned>(rng() % 4);
            if (how == 0) {
                const uint64_t want = ref_at(ref, static_cast<uint64_t>(i));
                REQUIRE(r.remove_at(static_cast<uint64_t>(i)) == want);
                ref.erase(want);
                last = i;
            } else if (how == 3) {
                // A seq near the finger that may not be live (a gap or one just removed).
                const uint64_t s = ref_at(ref, static_cast<uint64_t>(i)) + 1;
                const uint64_t want = ref_index(ref, s);
                REQUIRE(r.remove(s) == want);
                if (want != LiveRank::kNotLive) {
                    ref.erase(s);
                    last = static_cast<int64_t>(want);
                }
            } else {
                const uint64_t s = ref_at(ref, static_cast<uint64_t>(i));
                REQUIRE(r.remove(s) == static_cast<uint64_t>(i));
                ref.erase(s);
                // Removing it twice: not live any more.
                REQUIRE(r.remove(s) == LiveRank::kNotLive);
                last = i;
            }
            REQUIRE(r.size() == ref.size());
            if (k % 499 == 0) check_all(r, ref);
        }
        check_all(r, ref);
    }
}

TEST_CASE("live rank: oldest-first frees behind long-lived blocks keep their index",
          "[trace][live_rank]") {
    // The churn pattern: L blocks live throughout; later blocks are freed oldest first, so every
    // free is at index L; now and then one of the long-lived blocks (before the finger) or a
    // young one far after it goes, which shifts or keeps the index.
    LiveRank r;
    std::set<uint64_t> ref;
    uint64_t seq = 0;
    for (int i = 0; i < 300; ++i) {
        REQUIRE(r.add(seq));
        ref.insert(seq++);
    }
    std::mt19937_64 rng(11);
    uint64_t L = 300;
    for (int k = 0; k < 400000; ++k) {
        REQUIRE(r.add(seq));
        ref.insert(seq++);
        if (ref.size() < L + 200) continue;
        if (k % 1000 == 0 && L > 1) {
            // A long-lived block goes (before the finger): the frees' index drops by one.
            const uint64_t i = rng() % L;
            const uint64_t s = ref_at(ref, i);
            REQUIRE(r.remove(s) == i);
            ref.erase(s);
            --L;
        } else if (k % 777 == 0) {
            // A young block far after the finger.
            const uint64_t i = ref.size() - 1 - rng() % 50;
            REQUIRE(r.remove_at(i) == ref_at(ref, i));
            ref.erase(ref_at(ref, i));
        } else if (k % 2) {
            const uint64_t s = ref_at(ref, L);
            REQUIRE(r.remove(s) == L);
            ref.erase(s);
        } else {
            const uint64_t s = ref_at(ref, L);
            REQUIRE(r.remove_at(L) == s);
            ref.erase(s);
        }
        if (k % 49999 == 0) check_all(r, ref);
    }
    check_all(r, ref);
    CHECK(r.positions() <= 2 * r.size() + 16);
}

TEST_CASE("live rank: compaction and emptying while the finger is set", "[trace][live_rank]") {
    LiveRank r;
    std::set<uint64_t> ref;
    for (uint64_t s = 0; s < 100; ++s) {
        REQUIRE(r.add(s * 2));
        ref.insert(s * 2);
    }
    // Removals at index 30 (finger there, 30 live before it), then far ones before it until
    // tombstones pass half and the array is compacted; each near removal after is checked.
    for (int round = 0; round < 60 && ref.size() > 31; ++round) {
        const uint64_t s = ref_at(ref, 30);
        REQUIRE(r.remove_at(30) == s);
        ref.erase(s);
        if (ref.size() > 40 && round % 3 == 0) {
            const uint64_t b = ref_at(ref, round % 20);
            REQUIRE(r.remove(b) == static_cast<uint64_t>(round % 20));
            ref.erase(b);
        }
        REQUIRE(r.at(29) == ref_at(ref, 29));
        REQUIRE(r.index_of(ref_at(ref, 30)) == 30);
        REQUIRE(r.positions() <= 2 * r.size() + 16);
    }
    check_all(r, ref);
    // Down to empty from the finger outwards, then start over and use it again.
    while (!ref.empty()) {
        const uint64_t i = ref.size() / 2;
        const uint64_t s = ref_at(ref, i);
        REQUIRE(r.remove(s) == i);
        ref.erase(s);
    }
    CHECK(r.positions() == 0);
    for (uint64_t s = 1000; s < 1010; ++s) REQUIRE(r.add(s));
    CHECK(r.remove_at(0) == 1000);
    CHECK(r.remove_at(0) == 1001);
    CHECK(r.remove(1009) == 7);
    CHECK(r.remove(1002) == 0);
    CHECK(r.remove_at(5) == 1008);
}

TEST_CASE("live rank: adds after a removal whose tree update is still deferred",
          "[trace][live_rank]") {
    // A removal's update above its 64-position block waits for the next query or a removal in
    // another block; appends in between build new tree nodes from their children, one of which
    // may be the waiting node. Every answer afterwards must still be exact.
    std::mt19937_64 rng(5);
    for (uint64_t n0 = 64; n0 < 700; n0 += 5) {
        LiveRank r;
        std::set<uint64_t> ref;
        for (uint64_t s = 0; s < n0; ++s) {
            REQUIRE(r.add(s));
            ref.insert(s);
        }
        const uint64_t victim = rng() % (n0 / 64 * 64);  // its block's top node exists
        REQUIRE(r.remove(victim) == victim);
        ref.erase(victim);
        if (n0 % 2) {  // a second one in the same block
            const uint64_t other = victim ^ 1;
            REQUIRE(r.remove(other) == (other < victim ? other : other - 1));
            ref.erase(other);
        }
        for (uint64_t s = n0; s < 2 * n0 + 3; ++s) {
            REQUIRE(r.add(s));
            ref.insert(s);
        }
        check_all(r, ref);
    }
}

TEST_CASE("live rank: add_bounded refuses to grow past its bound and changes nothing then",
          "[trace][live_rank]") {
    // The reader's bound on what a hostile version-3 file makes it hold (stream_decoder.cpp).
    LiveRank none;
    CHECK(!none.add_bounded(0, 1));  // a bound of 1 leaves no room at all
    CHECK(none.empty());
    for (const size_t bound : {size_t(2), size_t(5), size_t(100), size_t(1000)}) {
        INFO("bound " << bound);
        LiveRank r;
        std::set<uint64_t> ref;
        uint64_t seq = 0;
        while (r.add_bounded(seq, bound)) ref.insert(seq++);
        // Refused only where the arrays would have to grow to hold the bound or more.
        CHECK(r.positions() + 1 >= bound);
        CHECK(r.positions() < 2 * bound + 4);
        CHECK(!r.add_bounded(seq, bound));
        check_all(r, ref);  // the refusal changed nothing
        // Frees make room again once tombstones are compacted away (or everything is dead).
        const uint64_t live = r.size();
        for (uint64_t i = 0; i < live; ++i) {
            REQUIRE(r.remove_at(0) == *ref.begin());
            ref.erase(ref.begin());
        }
        CHECK(r.empty());
        CHECK(r.add_bounded(seq, bound));
        ref.insert(seq);
        CHECK(!r.add_bounded(seq, bound));  // not above every seq added: refused as by add()
        check_all(r, ref);
    }
}
