// Replay speed of the trace library alone (issue 6, analyzer target): reads a trace with
// TraceReader and applies every event to a LiveHeap, as `pymemtrace report` does before its
// analyses. Prints events, CPU seconds, events per CPU second and peak RSS.
// Usage: replay TRACE.pmt
#include <sys/resource.h>

#include <cstdio>
#include <ctime>
#include <exception>

#include "pmt/live.hpp"
#include "pmt/reader.hpp"

namespace {

double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Replay final : pmt::EventVisitor {
    pmt::LiveHeap heap;
    void on_event(const pmt::Event& e) override { heap.apply(e); }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: replay TRACE.pmt\n");
        return 2;
    }
    try {
        double t0 = cpu_seconds();
        pmt::TraceReader reader(argv[1]);
        Replay r;
        reader.read(r);
        double cpu = cpu_seconds() - t0;
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        std::printf(
            "%llu events, %.3f s CPU, %.1f M events/s, peak live %llu B, peak RSS %.1f MB\n",
            static_cast<unsigned long long>(reader.events()), cpu,
            static_cast<double>(reader.events()) / cpu / 1e6,
            static_cast<unsigned long long>(r.heap.peak_bytes()),
            static_cast<double>(ru.ru_maxrss) / 1024.0);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
    return 0;
}
