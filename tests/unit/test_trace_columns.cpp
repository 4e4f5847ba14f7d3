// Unit tests of EventMerger::add_thread_columns, which decodes the column form (FORMAT.md,
// "Column form") straight into events: on every payload, intact or damaged, it must give
// exactly what the record path gives (from_columns, then add_thread_payload): the same events,
// definitions and thread names, or the same error message.
#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../trace/src/columns.hpp"
#include "pmt/encoder.hpp"
#include "pmt/reader.hpp"
#include "test_trace_util.hpp"

using namespace pmt;
using namespace pmt::test;

namespace {

// Everything one merger delivered and defined after one payload, or its error.
struct Outcome {
    std::string error;
    std::vector<Event> events;
    std::vector<std::string> strings;
    std::vector<uint64_t> definitions;  // locations and stacks, flattened
    std::string thread_name;
};

Outcome outcome_of(EventMerger& m, const std::string& error, uint64_t max_id) {
    Outcome o;
    o.error = error;
    if (!error.empty()) return o;
    Collect c;
    m.release_before(UINT64_MAX, c);
    o.events = c.events;
    for (uint64_t id = 0; id <= max_id; ++id) {
        o.strings.emplace_back(m.string(id));
        const Location* l = m.location(id);
        o.definitions.push_back(l ? 1 + l->file + (uint64_t{l->function} << 20) : 0);
        o.definitions.push_back(l ? l->line : 0);
        const StackNode* s = m.stack(id);
        o.definitions.push_back(s ? 1 + s->parent : 0);
        o.definitions.push_back(s ? s->location : 0);
    }
    o.thread_name = std::string(m.thread_name(7));
    return o;
}

// A first payload (the thread's earlier chunk) makes the second one's time clamp matter.
Outcome via_columns(const std::vector<uint8_t>& first, const std::vector<uint8_t>& cols) {
    EventMerger m;
    std::string error;
    try {
        m.add_thread_columns(first.data(), first.size());
        m.add_thread_columns(cols.data(), cols.size());
    } catch (const TraceError& e) {
        error = e.what();
        if (error.empty()) error = "?";
    }
    return outcome_of(m, error, 40);
}

Outcome via_records(const std::vector<uint8_t>& first, const std::vector<uint8_t>& cols) {
    EventMerger m;
    std::string error;
    try {
        std::vector<uint8_t> raw;
        detail::from_columns(first.data(), first.size(), raw);
        m.add_thread_payload(raw.data(), raw.size());
        detail::from_columns(cols.data(), cols.size(), raw);
        m.add_thread_payload(raw.data(), raw.size());
    } catch (const TraceError& e) {
        error = e.what();
        if (error.empty()) error = "?";
    }
    return outcome_of(m, error, 40);
}

void check_same(const Outcome& a, const Outcome& b) {
    REQUIRE(a.error == b.error);
    REQUIRE(a.events.size() == b.events.size());
    for (size_t i = 0; i < a.events.size(); ++i) {
        const Event& x = a.events[i];
        const Event& y = b.events[i];
        REQUIRE(std::memcmp(&x, &y, sizeof x) == 0);
    }
    REQUIRE(a.strings == b.strings);
    REQUIRE(a.definitions == b.definitions);
    REQUIRE(a.thread_name == b.thread_name);
}

// A payload with every record type and fields of every varint length.
std::vector<uint8_t> records(uint64_t base, unsigned shift, std::mt19937_64& rng) {
    std::vector<uint8_t> buf(1 << 16);
    RecordEncoder e;
    e.reset(buf.data(), buf.size(), 7, base, shift);
    uint64_t t = base;
    const uint64_t unit = uint64_t{1} << shift;
    auto step = [&] { return t += unit * (rng() % 4 == 0 ? rng() % 100000 : rng() % 3); };
    auto addr = [&] { return rng() % 3 == 0 ? rng() : 0x7f0000000000 + (rng() % 4096) * 16; };
    REQUIRE(e.string(3, "job.py", 6));
    REQUIRE(e.string(4, "<module>", 8));
    REQUIRE(e.location(5, 3, 4, 42));
    REQUIRE(e.stack(6, 0, 5));
    REQUIRE(e.stack(7, 6, 5));
    REQUIRE(e.thread_name(3));
    for (int i = 0; i < 60; ++i) {
        const uint64_t size = rng() % 5 == 0 ? rng() >> (rng() % 64) : rng() % 300;
        switch (rng() % 8) {
            case 0:
            case 1:
            case 2:
                REQUIRE(e.alloc(static_cast<AllocKind>(rng() % 9), step(), addr(), size, 6));
                break;
            case 3:
                REQUIRE(e.free(step(), addr()));
                break;
            case 4: {
                const uint64_t tb = step();
                REQUIRE(e.realloc(AllocKind::Realloc, tb, step(), rng() % 4 ? addr() : 0,
                                  rng() % 4 ? addr() : 0, size, 7));
                break;
            }
            case 5:
                REQUIRE(
                    e.mmap(step(), addr(), size, 3, rng() % 2 ? 0x22 : 0x2, rng() % 2 ? -1 : 5, 7));
                break;
            case 6: {
                const uint64_t tb = step();
                REQUIRE(e.mremap(tb, step(), addr(), size, addr(), size * 2, 6));
                break;
            }
            default:
                if (rng() % 2)
                    REQUIRE(e.munmap(step(), addr(), size));
                else
                    REQUIRE(e.rss(step(), rng() % 1000000000));
        }
    }
    return std::vector<uint8_t>(e.data(), e.data() + e.size());
}

std::vector<uint8_t> columns_of(const std::vector<uint8_t>& raw, unsigned shift) {
    detail::ColumnScratch scratch;
    std::vector<uint8_t> out;
    REQUIRE(detail::to_columns(raw.data(), raw.size(), shift, scratch, out));
    return out;
}

}  // namespace

TEST_CASE("column payloads decode straight into the events the rebuilt records give", "[trace]") {
    std::mt19937_64 rng(6);
    for (unsigned shift : {0u, 10u}) {
        for (int round = 0; round < 20; ++round) {
            const uint64_t base = (rng() % 1000000) << shift;
            const auto first =
                columns_of(records(base + (uint64_t{1} << (shift + 20)), shift, rng), shift);
            const auto cols = columns_of(records(base, shift, rng), shift);
            const Outcome fast = via_columns(first, cols);
            REQUIRE(fast.error.empty());
            REQUIRE(fast.events.size() > 60);
            check_same(fast, via_records(first, cols));
        }
    }
}

TEST_CASE("a damaged column payload fails or decodes exactly as the record path does", "[trace]") {
    std::mt19937_64 rng(66);
    const auto first = columns_of(records(1 << 20, 10, rng), 10);
    size_t failed = 0, tried = 0;
    for (int round = 0; round < 4; ++round) {
        const auto cols = columns_of(records(5 << 10, 10, rng), 10);
        // Every byte changed (several values each), and cuts at every length.
        for (size_t i = 0; i < cols.size(); ++i) {
            for (uint8_t v : {uint8_t(cols[i] ^ 1), uint8_t(cols[i] ^ 0x80), uint8_t(0),
                              uint8_t(0xff), uint8_t(rng())}) {
                auto bad = cols;
                bad[i] = v;
                const Outcome a = via_columns(first, bad);
                check_same(a, via_records(first, bad));
                failed += !a.error.empty();
                ++tried;
            }
            auto cut = std::vector<uint8_t>(cols.begin(), cols.begin() + static_cast<long>(i));
            check_same(via_columns(first, cut), via_records(first, cut));
        }
    }
    // Most damage is detected; some (a changed size or address) is a different valid payload.
    CHECK(failed > tried / 4);
    CHECK(failed < tried);
}
