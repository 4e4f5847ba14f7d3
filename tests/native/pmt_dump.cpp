// pmt_dump: prints a trace's header, a count of each event type and its end summary; with
// --events every event in time order. A debugging aid for the interposer's tests, reading
// the trace only through pmt::TraceReader (no analyzer code).
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>

#include "pmt/reader.hpp"

namespace {

const char* type_name(pmt::EventType t) {
    switch (t) {
        case pmt::EventType::Alloc:
            return "alloc";
        case pmt::EventType::Free:
            return "free";
        case pmt::EventType::Mmap:
            return "mmap";
        case pmt::EventType::Munmap:
            return "munmap";
        case pmt::EventType::Mremap:
            return "mremap";
        case pmt::EventType::Rss:
            return "rss";
    }
    return "?";
}

struct Printer : pmt::EventVisitor {
    bool print = false;
    pmt::TraceReader* reader = nullptr;
    std::map<std::string, uint64_t> counts;
    uint64_t last_time = 0;
    bool ordered = true;
    void on_event(const pmt::Event& e) override {
        counts[type_name(e.type)]++;
        if (e.time_ns < last_time) ordered = false;
        last_time = e.time_ns;
        if (!print) return;
        std::printf("%12" PRIu64 " tid=%u %-6s kind=%s addr=%#" PRIx64 " size=%" PRIu64
                    " stack=%" PRIu64,
                    e.time_ns, e.tid, type_name(e.type), pmt::alloc_kind_name(e.kind), e.addr,
                    e.size, e.stack_id);
        if (e.type == pmt::EventType::Mremap)
            std::printf(" old=%#" PRIx64 "/%" PRIu64, e.old_addr, e.old_size);
        if (e.stack_id) {
            auto frames = reader->frames(e.stack_id, 3);
            for (const auto& f : frames)
                std::printf(" | %.*s:%u %.*s", int(f.file.size()), f.file.data(), f.line,
                            int(f.function.size()), f.function.data());
        }
        std::printf("\n");
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: pmt_dump TRACE [--events]\n");
        return 2;
    }
    try {
        pmt::TraceReader r(argv[1]);
        const auto& h = r.header();
        std::printf("pid %" PRIu64 " ppid %" PRIu64
                    " forked %d python '%s' allocator '%s' exe '%s'\n",
                    h.pid, h.ppid, h.forked ? 1 : 0, h.python_version.c_str(), h.allocator.c_str(),
                    h.exe.c_str());
        std::printf("argv:");
        for (const auto& a : h.argv) std::printf(" %s", a.c_str());
        std::printf("\n");
        Printer p;
        p.print = argc > 2 && std::strcmp(argv[2], "--events") == 0;
        p.reader = &r;
        r.read(p);
        for (const auto& [name, n] : p.counts) std::printf("%s %" PRIu64 "\n", name.c_str(), n);
        std::printf("events %" PRIu64 " ordered %d truncated %d file_bytes %" PRIu64 "\n",
                    r.events(), p.ordered ? 1 : 0, r.truncated() ? 1 : 0, r.file_bytes());
        if (r.truncated()) std::printf("truncation: %s\n", r.truncation_reason().c_str());
        if (r.has_end())
            std::printf("end: time %" PRIu64 " events %" PRIu64 " peak %" PRIu64 " at %" PRIu64
                        " lost %" PRIu64 "\n",
                        r.end().end_time_ns, r.end().events, r.end().peak_live_bytes,
                        r.end().peak_time_ns, r.end().lost_events);
    } catch (const pmt::TraceError& e) {
        std::fprintf(stderr, "pmt_dump: %s: %s\n", argv[1], e.what());
        return 2;
    }
    return 0;
}
