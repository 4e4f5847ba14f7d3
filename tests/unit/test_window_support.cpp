// LiveHistory (window_support.hpp) against the definition it stands for: max_from(s) is the
// highest live bytes pushed with seq >= s. Random walks of live bytes (rises, falls, plateaus,
// repeated values) are checked at every seq after every push.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <utility>
#include <vector>

#include "window_support.hpp"

using pmt::analyzer::LiveHistory;

namespace {

uint64_t brute_max_from(const std::vector<std::pair<uint64_t, uint64_t>>& pushed, uint64_t s) {
    uint64_t best = 0;
    for (const auto& [seq, live] : pushed)
        if (seq >= s) best = std::max(best, live);
    return best;
}

}  // namespace

TEST_CASE("LiveHistory answers the highest live bytes from any seq on", "[windows]") {
    for (uint32_t seed = 1; seed <= 40; ++seed) {
        std::mt19937_64 rng(seed);
        LiveHistory h;
        std::vector<std::pair<uint64_t, uint64_t>> pushed;
        CHECK(h.max_from(0) == 0);
        uint64_t live = 1000, seq = 0;
        const int steps = 60 + static_cast<int>(rng() % 60);
        for (int i = 0; i < steps; ++i) {
            seq += 1 + rng() % 3;  // seqs increase, with gaps (Rss events are not pushed)
            switch (rng() % 4) {
                case 0:
                    live += rng() % 50;
                    break;  // rise
                case 1:
                    live -= std::min<uint64_t>(live, rng() % 50);
                    break;  // fall
                case 2:
                    break;  // same value again
                default:
                    live = rng() % 2000;
                    break;  // jump
            }
            h.push(seq, live);
            pushed.emplace_back(seq, live);
            for (uint64_t s = 0; s <= seq + 1; ++s)
                REQUIRE(h.max_from(s) == brute_max_from(pushed, s));
        }
    }
}

TEST_CASE("LiveHistory: a fall after a plateau keeps the plateau's last seq", "[windows]") {
    LiveHistory h;
    h.push(1, 10);
    h.push(2, 30);
    h.push(3, 30);  // a value no higher than a later one is dropped: seq 2 goes
    h.push(4, 20);
    h.push(5, 25);
    CHECK(h.max_from(0) == 30);
    CHECK(h.max_from(3) == 30);
    CHECK(h.max_from(4) == 25);
    CHECK(h.max_from(6) == 0);
}
