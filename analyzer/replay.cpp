// replay() (analysis.hpp): one pass over a trace in time order. The reader delivers runs of
// events, LiveHeap keeps the exact live set and records what each event made live or dead,
// then each Analysis takes the event with those changes (Analysis::on_step). Progress goes to
// stderr only for a terminal, after 1 s.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "analysis.hpp"

namespace pmt::analyzer {
namespace {

// Shows "pymemtrace: reading trace  42%" on a terminal once a pass has run for a second; the
// clock is read once per 64 Ki events so the check costs nothing per event.
class Progress {
public:
    explicit Progress(const TraceReader& reader)
        : reader_(reader), enabled_(isatty(STDERR_FILENO) == 1), start_(Clock::now()) {}
    ~Progress() {
        if (shown_) std::fputs("\r\033[K", stderr);
    }
    void tick(size_t events) {
        if (!enabled_) return;
        const uint64_t before = count_;
        count_ += events;
        if ((before >> 16) == (count_ >> 16)) return;
        const auto now = Clock::now();
        if (now - start_ < std::chrono::seconds(1) || now - last_ < std::chrono::milliseconds(200))
            return;
        last_ = now;
        shown_ = true;
        const uint64_t total = reader_.file_bytes();
        const double pct = total ? 100.0 * static_cast<double>(reader_.bytes_read()) / total : 0;
        std::fprintf(stderr, "\rpymemtrace: reading trace %3.0f%%", pct > 100 ? 100.0 : pct);
        std::fflush(stderr);
    }

private:
    using Clock = std::chrono::steady_clock;
    const TraceReader& reader_;
    bool enabled_;
    bool shown_ = false;
    uint64_t count_ = 0;
    Clock::time_point start_;
    Clock::time_point last_{};
};

// Per event: the heap applies it, recording what it made live or dead, then each analysis
// with per-event work takes the event and those changes in one call.
class Driver : public EventVisitor {
public:
    Driver(const TraceReader& reader, LiveHeap& heap, const std::vector<Analysis*>& analyses)
        : heap_(heap), progress_(reader) {
        for (Analysis* a : analyses)
            if (a->per_event()) stepping_.push_back(a);
    }

    void on_event(const Event& e) override { on_events(&e, 1); }

    void on_events(const Event* ev, size_t n) override {
        for (const Event* e = ev; e != ev + n; ++e) {
            changes_.clear();
            heap_.apply(*e, changes_);
            for (Analysis* a : stepping_) a->on_step(*e, heap_, changes_);
        }
        progress_.tick(n);
    }

private:
    LiveHeap& heap_;
    std::vector<Analysis*> stepping_;
    LiveChanges changes_;
    Progress progress_;
};

}  // namespace

void replay(TraceReader& reader, LiveHeap& heap, const std::vector<Analysis*>& analyses) {
    for (Analysis* a : analyses) a->begin(reader);
    {
        Driver driver(reader, heap, analyses);
        reader.read(driver);
    }
    for (Analysis* a : analyses) a->finish(reader, heap);
}

}  // namespace pmt::analyzer
