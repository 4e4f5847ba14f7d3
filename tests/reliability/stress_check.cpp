// stress_check TRACE: counts, in one trace of tests/reliability/stress.c, the malloc blocks of
// the stress sizes (odd, 3001..3999), the frees of those blocks, their bytes still live at the
// end, and the one-page anonymous mappings the signal handler made and removed. Reads the
// trace through pmt::TraceReader only. Prints one line the test compares with the program's.
#include <cinttypes>
#include <cstdio>
#include <unordered_map>

#include "pmt/chunk.hpp"
#include "pmt/reader.hpp"

namespace {

class Counter : public pmt::EventVisitor {
public:
    void on_event(const pmt::Event& e) override {
        using pmt::EventType;
        if (e.type == EventType::Alloc && e.kind == pmt::AllocKind::Malloc && e.size >= 3001 &&
            e.size <= 3999 && (e.size & 1)) {
            ++allocs;
            live += e.size;
            blocks[e.addr] = e.size;
        } else if (e.type == EventType::Free) {
            auto it = blocks.find(e.addr);
            if (it == blocks.end()) return;
            ++frees;
            live -= it->second;
            blocks.erase(it);
        } else if (e.type == EventType::Mmap && e.size == 4096 && (e.flags & pmt::kMapAnonymous)) {
            ++maps;
        } else if (e.type == EventType::Munmap && e.size == 4096) {
            ++unmaps;
        }
    }
    uint64_t allocs = 0, frees = 0, live = 0, maps = 0, unmaps = 0;
    std::unordered_map<uint64_t, uint64_t> blocks;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: stress_check TRACE\n");
        return 2;
    }
    try {
        pmt::TraceReader r(argv[1]);
        Counter c;
        r.read(c);
        std::printf("allocs %" PRIu64 " frees %" PRIu64 " live %" PRIu64 " maps %" PRIu64
                    " unmaps %" PRIu64 " truncated %d forked %d\n",
                    c.allocs, c.frees, c.live, c.maps, c.unmaps, r.truncated() ? 1 : 0,
                    r.header().forked ? 1 : 0);
    } catch (const pmt::TraceError& e) {
        std::fprintf(stderr, "stress_check: %s\n", e.what());
        return 2;
    }
    return 0;
}
