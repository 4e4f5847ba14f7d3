// Unit tests of LiveSeqs (pmt/live_seqs.hpp), the live-block set of version-4 streams: every
// add/remove/contains against std::set under random, oldest-first and newest-first orders with
// gaps of every size between seqs (PAIR blocks are never added), and the memory bound: pages
// only where blocks are live, a window that follows the oldest live block.
#include <catch2/catch.hpp>
#include <random>
#include <set>

#include "pmt/live_seqs.hpp"

using pmt::LiveSeqs;

TEST_CASE("live seqs: random adds and removes agree with a set", "[trace][live_seqs]") {
    for (uint64_t seed = 1; seed <= 40; ++seed) {
        INFO("seed " << seed);
        std::mt19937_64 rng(seed);
        LiveSeqs live;
        std::set<uint64_t> want;
        uint64_t next = seed % 3 == 0 ? (uint64_t{1} << 40) - 5000 : 0;
        const uint64_t big_gap = seed % 4 == 0 ? 20000 : 100;
        for (int i = 0; i < 60000; ++i) {
            const int op = static_cast<int>(rng() % 10);
            if (op < 4) {
                next += 1 + (rng() % 3 == 0 ? rng() % big_gap : 0);
                live.add(next);
                want.insert(next);
            } else {
                uint64_t s;
                if (!want.empty() && op < 9) {  // a live one, or the next above a random point
                    auto it = want.lower_bound(rng() % (next + 1));
                    if (it == want.end()) it = want.begin();
                    s = *it;
                } else {  // anything: dead, never added, below every page, far above
                    s = rng() % 4 == 0 ? rng() : rng() % (next + 10000);
                }
                REQUIRE(live.contains(s) == (want.count(s) == 1));
                REQUIRE(live.remove(s) == (want.erase(s) == 1));
                REQUIRE_FALSE(live.contains(s));
            }
            REQUIRE(live.size() == want.size());
        }
        for (uint64_t s : want) REQUIRE(live.remove(s));
        CHECK(live.size() == 0);
        CHECK(live.pages() <= 1);  // at most the top page stays
    }
}

TEST_CASE("live seqs: oldest-first and newest-first teardown, and the memory bound",
          "[trace][live_seqs]") {
    const uint64_t n = 50000;
    for (const bool oldest_first : {true, false}) {
        LiveSeqs live;
        for (uint64_t s = 0; s < n; ++s) live.add(s * 3);  // every third seq made live
        CHECK(live.size() == n);
        CHECK(live.pages() == (3 * n + 4095) / 4096);
        for (uint64_t k = 0; k < n; ++k) {
            const uint64_t s = oldest_first ? k * 3 : (n - 1 - k) * 3;
            REQUIRE(live.remove(s));
            REQUIRE_FALSE(live.remove(s));
        }
        CHECK(live.size() == 0);
        CHECK(live.pages() <= 1);
        CHECK(live.window() <= 1);
    }
    // One early block stays live while a million more come and go: two pages in use, and the
    // window holds one pointer per 4096 seqs between them.
    LiveSeqs live;
    live.add(0);
    for (uint64_t s = 1; s <= 1000000; ++s) {
        live.add(s);
        REQUIRE(live.remove(s));
    }
    CHECK(live.size() == 1);
    CHECK(live.pages() <= 2);
    CHECK(live.window() == 1000000 / 4096 + 1);
    CHECK(live.contains(0));
    CHECK(live.remove(0));
    // With the early block gone the window drops to the top page.
    live.add(1000001);
    CHECK(live.window() == 1);
    CHECK(live.pages() == 1);
}
