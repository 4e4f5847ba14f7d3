// StreamEncoder as the interposer's writer drives it: check_frees false (the writer vouches for
// its frees and the encoder keeps no live-seq set) writes exactly the bytes of the checking
// encoder; time() emits a TICK exactly when the format's rule says, up to times near 2^64.
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "pmt/format.hpp"
#include "pmt/stream_encoder.hpp"
#include "pmt/varint.hpp"

using namespace pmt;

namespace {

std::vector<uint8_t> finish(StreamEncoder& enc) {
    ByteSpan pieces[StreamEncoder::kPieces];
    const size_t n = enc.finish(pieces);
    std::vector<uint8_t> out;
    for (size_t i = 0; i < n; ++i)
        out.insert(out.end(), pieces[i].data, pieces[i].data + pieces[i].size);
    return out;
}

// A block the random streams below left live: its owner's thread index and its seq.
struct LiveBlock {
    uint32_t owner;
    uint64_t seq;
};

// Frees a random one of the live blocks (by the thread that made it or not) with a random kind
// (0-8) and forgets it.
void free_random(StreamEncoder& enc, std::vector<LiveBlock>& live, std::mt19937_64& rng) {
    const size_t j = rng() % live.size();
    REQUIRE(enc.free(live[j].owner, live[j].seq, static_cast<AllocKind>(rng() % 9)));
    live[j] = live.back();
    live.pop_back();
}

// A random version-4 event stream (threads, allocations, frees of live blocks by their owner or
// another thread, PAIR candidates, unknown frees, mappings, definitions), fed to enc; the
// payloads it made, cut every ~cut_every events.
std::vector<std::vector<uint8_t>> script(StreamEncoder& enc, uint64_t seed, size_t events,
                                         size_t cut_every) {
    std::mt19937_64 rng(seed);
    std::vector<LiveBlock> live;
    std::vector<std::vector<uint8_t>> payloads;
    uint64_t t = 0;
    uint32_t cur = enc.thread(100);
    for (size_t i = 0; i < events; ++i) {
        const unsigned r = static_cast<unsigned>(rng() % 100);
        t += rng() % 4096;
        if (r < 5) cur = enc.thread(100 + static_cast<uint32_t>(rng() % 6));
        enc.time(t);
        if (r < 45) {
            const auto kind = static_cast<AllocKind>(rng() % 9);
            live.push_back(LiveBlock{cur, enc.alloc(kind, rng() % 5000, rng() % 300)});
            if (rng() % 2) {  // freed at once: a PAIR when its kind allows
                enc.time(t);
                REQUIRE(enc.free(cur, live.back().seq, static_cast<AllocKind>(rng() % 9)));
                live.pop_back();
            }
        } else if (r < 80 && !live.empty()) {
            free_random(enc, live, rng);
        } else if (r < 85) {
            enc.free_unknown(rng() % (uint64_t(1) << 47), static_cast<AllocKind>(rng() % 9));
        } else if (r < 90) {
            enc.mmap(rng() % (uint64_t(1) << 47), 4096, 3, 0x22, -1, rng() % 300);
        } else if (r < 93) {
            enc.munmap(rng() % (uint64_t(1) << 47), 8192);
        } else if (r < 95) {
            enc.rss(rng());
        } else if (r < 97) {
            enc.stack(i, rng() % 100, rng() % 100);
        } else {
            enc.string(i, "abc", 3);
            enc.thread_name(i);
        }
        if (i % cut_every == cut_every - 1) payloads.push_back(finish(enc));
    }
    payloads.push_back(finish(enc));
    return payloads;
}

// The TICKs the format's rule asks for (FORMAT.md, "Version 3"): a reading c = t >> k emits one
// when c >= t and c - t >= 2^m; the delta c - t goes to the times column.
std::vector<uint64_t> model_ticks(const std::vector<uint64_t>& times, unsigned k, unsigned m) {
    std::vector<uint64_t> deltas;
    uint64_t run = 0;
    for (uint64_t ns : times) {
        const uint64_t c = ns >> k;
        if (c >= run && c - run >= (uint64_t(1) << m)) {
            deltas.push_back(c - run);
            run = c;
        }
    }
    return deltas;
}

// The TICK deltas of a payload written by time() and rss() only: the ops column holds TICK and
// RSS opcodes, the times column the deltas.
std::vector<uint64_t> payload_ticks(const std::vector<uint8_t>& p) {
    detail::ByteCursor c{p.data(), p.data() + p.size()};
    uint64_t lens[7];
    for (uint64_t& l : lens) l = c.varint();
    const uint8_t* ops = c.p;
    const uint8_t* times = ops;
    for (size_t i = 0; i < 5; ++i) times += lens[i];  // ops, sizes, stacks, refs, addrs
    detail::ByteCursor tc{times, times + lens[5]};
    std::vector<uint64_t> deltas;
    for (uint64_t i = 0; i < lens[0]; ++i)
        if (ops[i] == uint8_t(Op3::Tick)) deltas.push_back(tc.varint());
    REQUIRE(tc.at_end());
    return deltas;
}

}  // namespace

TEST_CASE("writer encoder: check_frees false writes the checking encoder's bytes",
          "[trace][v4][encoder]") {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        const size_t cut = 50 + seed * 37;
        StreamEncoder checked(10, seed % 3 == 0 ? 2 : 10, kStreamFormatVersion, true);
        StreamEncoder trusted(10, seed % 3 == 0 ? 2 : 10, kStreamFormatVersion, false);
        const auto a = script(checked, seed, 20000, cut);
        const auto b = script(trusted, seed, 20000, cut);
        REQUIRE(a.size() == b.size());
        for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == b[i]);
        REQUIRE(checked.next_seq() == trusted.next_seq());
        for (uint32_t th = 0; th < checked.thread_count(); ++th)
            REQUIRE(checked.live_blocks(th) == trusted.live_blocks(th));
    }
}

TEST_CASE("writer encoder: the checking encoder still refuses a free of a dead block",
          "[trace][v4][encoder]") {
    StreamEncoder enc;
    const uint32_t t = enc.thread(7);
    const uint64_t a = enc.alloc(AllocKind::Malloc, 10, 1);
    const uint64_t b = enc.alloc(AllocKind::Malloc, 10, 1);
    REQUIRE(enc.free(t, a));
    REQUIRE_FALSE(enc.free(t, a));
    REQUIRE_FALSE(enc.free(t, b + 1));
    REQUIRE_FALSE(enc.free(t + 1, b));  // unknown owner
    StreamEncoder trusted(kWriterTimeShift, kTickShift, kStreamFormatVersion, false);
    trusted.thread(7);
    REQUIRE_FALSE(trusted.free(1, trusted.alloc(AllocKind::Malloc, 10, 1)));
}

TEST_CASE("writer encoder: time() ticks exactly by the rule, up to times near 2^64",
          "[trace][v4][encoder]") {
    const unsigned shifts[][2] = {{0, 0}, {0, 1}, {10, 10}, {3, 40}, {40, 0}, {40, 24}, {0, 40}};
    for (const auto& km : shifts) {
        const unsigned k = km[0], m = km[1];
        std::mt19937_64 rng(k * 100 + m);
        for (int round = 0; round < 40; ++round) {
            std::vector<uint64_t> times;
            uint64_t t = round % 2 ? UINT64_MAX - (rng() % (uint64_t(1) << 50)) : rng() % 1000;
            for (int i = 0; i < 300; ++i) {
                switch (rng() % 5) {
                    case 0:
                        t -= rng() % 5000;  // backwards: no tick
                        break;
                    case 1:
                        t = UINT64_MAX - rng() % 3;  // the very top
                        break;
                    default: {
                        const uint64_t step = rng() % ((uint64_t(1) << ((k + m) % 64)) * 2 + 3);
                        t = t > UINT64_MAX - step ? UINT64_MAX : t + step;
                    }
                }
                times.push_back(t);
            }
            StreamEncoder enc(k, m, kStreamFormatVersion, false);
            enc.thread(1);
            for (uint64_t ns : times) {
                enc.time(ns);
                enc.rss(1);  // an event at every reading
            }
            const auto p = finish(enc);
            REQUIRE(payload_ticks(p) == model_ticks(times, k, m));
        }
    }
}

TEST_CASE("writer encoder: put_varint writes the shortest form", "[trace][encoder]") {
    std::vector<uint64_t> values = {0, 1, 0x7f, 0x80, 0x3fff, 0x4000, ~uint64_t{0}};
    for (unsigned b = 1; b < 64; ++b) {
        const uint64_t v = uint64_t{1} << b;
        values.insert(values.end(), {v - 1, v, v + 1});
    }
    for (uint64_t v : values) {
        std::vector<uint8_t> want;  // 7 bits a byte, low first, the top bit on all but the last
        for (uint64_t x = v;; x >>= 7) {
            want.push_back(static_cast<uint8_t>(x & 0x7f) | (x >= 0x80 ? 0x80 : 0));
            if (x < 0x80) break;
        }
        uint8_t buf[10];
        const uint8_t* end = detail::put_varint(buf, v);
        const uint8_t* begin = buf;
        REQUIRE(std::vector<uint8_t>(begin, end) == want);
        REQUIRE(want.size() == detail::varint_len(v));
    }
}

// The same event stream fed three ways: each alloc freed at once by its thread with free() as
// alloc() + free(), as pair(), or in runs through pairs() (which stops before a column grows);
// between them allocations left live, frees of them, TICKs, thread switches, definitions.
static std::vector<std::vector<uint8_t>> pair_script(StreamEncoder& enc, uint64_t seed, int how) {
    std::mt19937_64 rng(seed);
    std::vector<LiveBlock> live;
    std::vector<std::vector<uint8_t>> payloads;
    uint64_t t = 0;
    uint32_t cur = enc.thread(100);
    auto one = [&](AllocKind kind, uint64_t size, uint64_t stack) {
        if (how == 0) {
            const uint64_t seq = enc.alloc(kind, size, stack);
            REQUIRE(enc.free(cur, seq, AllocKind::Malloc));
        } else {
            const uint64_t before = enc.next_seq();
            REQUIRE(enc.pair(kind, size, stack) == before);
        }
    };
    // Sizes and stacks of every varint length.
    auto value = [&rng] { return rng() % 3 ? rng() % 300 : rng() >> (rng() % 64); };
    for (int i = 0; i < 3000; ++i) {
        const unsigned r = static_cast<unsigned>(rng() % 100);
        t += rng() % 3000;
        enc.time(t);
        if (r < 50) {
            size_t k = 1 + rng() % 200;  // a run of PAIRs
            std::vector<std::tuple<AllocKind, uint64_t, uint64_t>> run;
            for (size_t j = 0; j < k; ++j)
                run.emplace_back(static_cast<AllocKind>(rng() % 9), value(), value());
            size_t j = 0;
            while (j < run.size()) {
                if (how == 2) {
                    const uint64_t before = enc.next_seq();
                    size_t asked = 0;
                    const uint64_t n =
                        enc.pairs([&](AllocKind& kind, uint64_t& size, uint64_t& stack) {
                            if (j + asked == run.size()) return false;
                            std::tie(kind, size, stack) = run[j + asked++];
                            return true;
                        });
                    REQUIRE(n == asked);
                    REQUIRE(enc.next_seq() == before + n);
                    j += n;
                    if (j == run.size()) break;
                }
                std::apply(one, run[j++]);  // pairs() stopped before a column grows
            }
        } else if (r < 70) {
            live.push_back(
                LiveBlock{cur, enc.alloc(static_cast<AllocKind>(rng() % 9), value(), value())});
        } else if (r < 85 && !live.empty()) {
            free_random(enc, live, rng);
        } else if (r < 92) {
            cur = enc.thread(100 + static_cast<uint32_t>(rng() % 4));
        } else if (r < 95) {
            t += uint64_t(1) << 30;  // a TICK
        } else {
            enc.string(i, "name", 4);
        }
        REQUIRE(enc.pending_bytes() <= enc.pending_bytes_bound());
        if (rng() % 97 == 0) payloads.push_back(finish(enc));
    }
    payloads.push_back(finish(enc));
    return payloads;
}

TEST_CASE("writer encoder: pair() and pairs() write alloc() and free()'s bytes",
          "[trace][v4][encoder]") {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
        StreamEncoder a(10, 10, kStreamFormatVersion, false);
        StreamEncoder b(10, 10, kStreamFormatVersion, false);
        StreamEncoder c(10, 10, kStreamFormatVersion, false);
        const auto pa = pair_script(a, seed, 0);
        const auto pb = pair_script(b, seed, 1);
        const auto pc = pair_script(c, seed, 2);
        REQUIRE(pa == pb);
        REQUIRE(pa == pc);
        REQUIRE(a.next_seq() == c.next_seq());
        for (uint32_t th = 0; th < a.thread_count(); ++th)
            REQUIRE(a.live_blocks(th) == c.live_blocks(th));
    }
}

// The same event stream fed with alloc() and free(owner, seq, Malloc), or with the frees and
// allocs in runs through a Cursor (closed at a random point, then TICKs, thread switches,
// frees of other kinds, definitions through the encoder): allocations left live, frees of them
// by their owner or another thread, allocs freed at once (PAIRs), sizes and stacks of every
// varint length, columns growing.
static std::vector<std::vector<uint8_t>> cursor_script(StreamEncoder& enc, uint64_t seed,
                                                       bool cursor) {
    std::mt19937_64 rng(seed);
    std::vector<LiveBlock> live;
    std::vector<std::vector<uint8_t>> payloads;
    uint64_t t = 0;
    uint32_t cur = enc.thread(100);
    auto value = [&rng] { return rng() % 3 ? rng() % 300 : rng() >> (rng() % 64); };
    for (int i = 0; i < 2000; ++i) {
        const unsigned r = static_cast<unsigned>(rng() % 100);
        if (r < 60) {
            // A run of allocs and Malloc frees of the current thread's, with nothing between.
            const size_t k = 1 + rng() % 300;
            std::vector<std::tuple<int, AllocKind, uint64_t, uint64_t, size_t>> run;
            for (size_t j = 0; j < k; ++j) {
                const unsigned x = static_cast<unsigned>(rng() % 10);
                run.emplace_back(x < 5   ? 0
                                 : x < 7 ? 1
                                         : 2,
                                 static_cast<AllocKind>(rng() % 9), value(), value(),
                                 static_cast<size_t>(rng()));
            }
            REQUIRE(enc.cursor_ok());
            std::optional<StreamEncoder::Cursor> c;
            if (cursor) c.emplace(enc, k);
            for (auto& [what, kind, size, stack, pick] : run) {
                if (what == 0 || live.empty()) {  // alloc
                    live.push_back(LiveBlock{
                        cur, c ? c->alloc(kind, size, stack) : enc.alloc(kind, size, stack)});
                } else {  // free: the newest block (a PAIR when it is the held ALLOC) or any
                    const size_t j = what == 1 ? live.size() - 1 : pick % live.size();
                    const auto [owner, seq] = live[j];
                    REQUIRE((c ? c->free(owner, seq) : enc.free(owner, seq)));
                    live[j] = live.back();
                    live.pop_back();
                }
            }
            if (c) c->close();
        } else if (r < 70 && !live.empty()) {
            free_random(enc, live, rng);
        } else if (r < 85) {
            cur = enc.thread(100 + static_cast<uint32_t>(rng() % 4));
        } else if (r < 92) {
            t += uint64_t(1) << 30;  // a TICK
            enc.time(t);
        } else {
            enc.string(i, "name", 4);
        }
        if (rng() % 50 == 0) payloads.push_back(finish(enc));
    }
    payloads.push_back(finish(enc));
    return payloads;
}

TEST_CASE("writer encoder: a Cursor writes alloc() and free()'s bytes", "[trace][v4][encoder]") {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
        StreamEncoder a(10, 10, kStreamFormatVersion, false);
        StreamEncoder b(10, 10, kStreamFormatVersion, false);
        const auto pa = cursor_script(a, seed, false);
        const auto pb = cursor_script(b, seed, true);
        REQUIRE(pa.size() == pb.size());
        for (size_t i = 0; i < pa.size(); ++i) REQUIRE(pa[i] == pb[i]);
        REQUIRE(a.next_seq() == b.next_seq());
        REQUIRE(a.pending_bytes() == b.pending_bytes());
        REQUIRE(a.thread_count() == b.thread_count());
        for (uint32_t th = 0; th < a.thread_count(); ++th)
            REQUIRE(a.live_blocks(th) == b.live_blocks(th));
    }
    // Only without the live-seq set and with a current thread.
    StreamEncoder checking(10, 10, kStreamFormatVersion, true);
    checking.thread(1);
    REQUIRE_FALSE(checking.cursor_ok());
    StreamEncoder none(10, 10, kStreamFormatVersion, false);
    REQUIRE_FALSE(none.cursor_ok());
    none.thread(1);
    REQUIRE(none.cursor_ok());
    REQUIRE(none.is_current(1));
    REQUIRE_FALSE(none.is_current(2));
}
