// replay() (analysis.hpp): one pass over a trace in time order. The reader delivers events,
// LiveHeap keeps the exact live set and tells every Analysis what became live or dead, then
// each Analysis sees the event itself. Progress goes to stderr only for a terminal, after 1 s.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "analysis.hpp"

namespace pmt::analyzer {
namespace {

// Shows "pymemtrace: reading trace  42%" on a terminal once a pass has run for a second; the
// clock is read every 64 Ki events so the check costs nothing per event.
class Progress {
public:
    explicit Progress(const TraceReader& reader)
        : reader_(reader), enabled_(isatty(STDERR_FILENO) == 1), start_(Clock::now()) {}
    ~Progress() {
        if (shown_) std::fputs("\r\033[K", stderr);
    }
    void tick() {
        if (!enabled_ || (++count_ & 0xFFFF) != 0) return;
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

// Forwards LiveHeap's notifications to every analysis; a single analysis skips the loop.
class Fanout : public LiveListener {
public:
    explicit Fanout(const std::vector<Analysis*>& a) : analyses_(a) {}
    void on_live(const Block& b) override {
        for (Analysis* a : analyses_) a->on_live(b);
    }
    void on_dead(const Block& b, uint64_t t) override {
        for (Analysis* a : analyses_) a->on_dead(b, t);
    }

private:
    const std::vector<Analysis*>& analyses_;
};

class Driver : public EventVisitor {
public:
    Driver(const TraceReader& reader, LiveHeap& heap, const std::vector<Analysis*>& analyses)
        : heap_(heap),
          analyses_(analyses),
          fanout_(analyses),
          listener_(analyses.size() == 1 ? static_cast<LiveListener*>(analyses[0]) : &fanout_),
          progress_(reader) {}

    void on_event(const Event& e) override {
        heap_.apply(e, listener_);
        for (Analysis* a : analyses_) a->on_event(e, heap_);
        progress_.tick();
    }

private:
    LiveHeap& heap_;
    const std::vector<Analysis*>& analyses_;
    Fanout fanout_;
    LiveListener* listener_;
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
