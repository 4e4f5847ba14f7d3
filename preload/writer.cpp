// The writer thread (see writer.hpp). All compression, I/O and replay happen here or in the
// synchronous flushes at exit/exec, never on an allocating thread. Its state is allocated
// once and never destroyed: static destructors run before our library destructor at exit.
#include "writer.hpp"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "exit_replay.hpp"
#include "futex_lock.hpp"
#include "output.hpp"
#include "own_heap.hpp"
#include "pmt/chunk.hpp"
#include "pmt/live.hpp"
#include "pmt/reader.hpp"
#include "private_fds.hpp"
#include "recorder.hpp"
#include "runtime.hpp"
#include "side_ring.hpp"

namespace pmt::preload {

namespace {

struct WriterState {
    int fd = -1;  // open only during a write cycle (open_trace_fd .. release_trace_fd)
    // The writer thread's descriptor, kept between its cycles when the thread has a table of
    // its own (private_fds.hpp): a number there, never one of the program's.
    int kept_fd = -1;
    FileId id;  // the file we created; every reopen must find the same one
    bool io_failed = false;
    off_t end_offset = -1;  // where the End chunk starts (exec may take it back)
    uint64_t file_bytes = 0;
    std::vector<uint8_t> out;
    ChunkStream* stream = nullptr;  // the file's zstd stream; made by the first write_chunk
    std::vector<Buffer*> collected;
    WriterCycle* cycle = nullptr;  // orders, encodes and replays; never throws
    std::vector<PayloadRef> payloads;
};

WriterState* g_w = nullptr;
// One cycle at a time: the writer thread's, or a synchronous flush at exit/exec/fork.
FutexLock g_cycle_mutex;
pthread_t g_thread;
bool g_thread_running = false;
std::atomic<bool> g_stop{false};
std::atomic<uint32_t> g_wake_seq{0};

// Set on the writer thread.
__thread bool t_writer_thread __attribute__((tls_model("initial-exec"))) = false;

// Whether this thread keeps its descriptor between cycles: the writer thread on a table of its
// own, where the program can neither see nor close it.
bool keeps_fd() { return t_writer_thread && private_fds_active(); }

// No descriptor of ours stays open in the program's table between write cycles: a program
// listing its descriptors (CPython's fd_status.py after close_fds) must see only its own. There
// the file is opened again for each cycle (the synchronous flushes at exit, exec and fork; the
// writer thread when it shares the program's table). Our descriptor may still be closed under
// us during one (close_fds in a program thread, a daemon closing everything) and its number
// reused: it is checked before each write, never closed unless it is still ours, and opened
// again if it was lost. The writer thread on a table of its own keeps its descriptor and only
// checks, at a cycle's first write, that the path still names the file (one lstat instead of
// open, fstat, fcntl, fstat and close each cycle): a file removed or replaced ends the trace
// just as a failed reopen does.
bool open_trace_fd(WriterState& w) {
    if (keeps_fd()) {
        if (w.fd >= 0) return true;  // checked at this cycle's first write
        if (w.kept_fd >= 0) {
            if (trace_path_names(w.id)) {
                w.fd = w.kept_fd;
                return true;
            }
            close(w.kept_fd);  // the reopen below says what became of the path
            w.kept_fd = -1;
        }
    } else if (w.fd >= 0 && file_id(w.fd) == w.id) {
        return true;
    }
    w.fd = reopen_trace_output(w.id);
    if (w.fd >= 0) {
        if (keeps_fd()) w.kept_fd = w.fd;
        return true;
    }
    w.io_failed = true;
    // Removed or replaced by someone else: stop without a word (the program's stderr may be
    // captured). Anything else (out of descriptors) deserves its one line.
    if (errno == ENOENT || errno == ESTALE || errno == ELOOP || errno == ENXIO) {
        stop_tracing_silently();
    } else {
        char what[160];
        snprintf(what, sizeof(what), "cannot open the trace again (%s)", strerror(errno));
        fail_tracing(what);
    }
    return false;
}

void release_trace_fd(WriterState& w) {
    if (w.fd >= 0 && !(w.fd == w.kept_fd && keeps_fd()) && file_id(w.fd) == w.id) close(w.fd);
    w.fd = -1;
}

bool write_all(const uint8_t* p, size_t n) {
    WriterState& w = *g_w;
    if (w.io_failed || !open_trace_fd(w)) return false;
    int lost = 0;  // O_APPEND: after a lost descriptor the rest goes on at the file's end
    while (n > 0) {
        ssize_t r = write(w.fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EBADF && ++lost < 3) {
            if (w.fd == w.kept_fd) w.kept_fd = -1;
            w.fd = -1;  // closed under us: not ours any more
            if (!open_trace_fd(w)) return false;
            continue;
        }
        if (r <= 0) {
            w.io_failed = true;
            char what[160];
            snprintf(what, sizeof(what), "cannot write the trace (%s)", strerror(errno));
            fail_tracing(what);
            return false;
        }
        p += r;
        n -= static_cast<size_t>(r);
        w.file_bytes += static_cast<uint64_t>(r);
    }
    return true;
}

// The End chunk (the event stream goes through StreamSink).
void write_chunk(ChunkType type, const uint8_t* raw, size_t n) {
    WriterState& w = *g_w;
    w.out.clear();
    append_chunk(w.out, type, Codec::None, raw, n, 1);
    write_all(w.out.data(), w.out.size());
}

// Where WriterCycle's stream payloads go: the file's zstd stream (FORMAT.md, codecs 3 and 4).
struct StreamSink final : ChunkSink {
    void stream_chunk(const ByteSpan* pieces, size_t n) override {
        WriterState& w = *g_w;
        if (!w.stream) w.stream = new ChunkStream;
        ByteSpan chunk = w.stream->stream_chunk(pieces, n);
        write_all(chunk.data, chunk.size);
    }
    // The cycle failed (out of memory, a malformed buffer): the encoder's state went with it,
    // so nothing more can be written. The trace ends at its last complete chunk (no End
    // chunk: read as truncated) and the program goes on untraced.
    void fail() override {
        WriterState& w = *g_w;
        if (w.io_failed) return;
        w.io_failed = true;
        fail_tracing(
            "out of memory in the trace writer; the trace ends at the last complete chunk");
    }
};

// T is taken before any buffer is collected (a cycle between flushes, flush false, that
// collect_handed can serve uses its cut instead): the cycle writes the events timed before it
// and holds the rest back. The last cycle (exit, exec) holds nothing. Returns the time up to
// which events are written, or 0 when there was nothing to do.
uint64_t run_cycle(bool last = false, bool flush = true) {
    WriterState& w = *g_w;
    uint64_t t = 0;
    const Handed h = flush || last ? Handed::Full : collect_handed(w.collected, &t);
    if (h == Handed::Nothing) return 0;
    if (h == Handed::Full) {
        t = now_ns();
        collect_buffers(w.collected);
    }
    if (w.collected.empty() && !w.cycle->holding() && !last) return 0;
    w.payloads.clear();
    for (Buffer* b : w.collected) w.payloads.push_back(PayloadRef{b->data, b->words});
    StreamSink sink;
    uint64_t end = w.cycle->cycle(w.payloads.data(), w.payloads.size(), t, last, sink);
    return_buffers(w.collected);
    throttle_release();
    return end;
}

EndSummary write_end() {
    WriterState& w = *g_w;
    EndSummary s;
    s.end_time_ns = run_cycle(true);
    WriterCycle& r = *w.cycle;
    s.events = r.events();
    s.peak_live_bytes = r.peak_bytes();
    s.peak_time_ns = r.peak_time_ns();
    s.lost_events = side_lost();  // signal handlers' events a full side ring could not keep
    w.end_offset = static_cast<off_t>(w.file_bytes);
    std::vector<uint8_t> end = end_payload(s);
    write_chunk(ChunkType::End, end.data(), end.size());
    return s;
}

void* writer_main(void*) {
    t_writer_thread = true;
    uint64_t interval_ns = g_settings.flush_interval_ms * 1000000u;
    uint64_t next = mono_ns() + interval_ns;
    while (!g_stop.load()) {
        uint32_t seq = g_wake_seq.load();
        uint64_t now = mono_ns();
        bool flush = now >= next;
        // Awake for the clock's switch too (runtime.hpp, TraceClock), ~50 ms after start.
        const uint64_t due = std::min(next, clock_switch_due());
        if (now < due) {
            timespec ts{static_cast<time_t>((due - now) / 1000000000u),
                        static_cast<long>((due - now) % 1000000000u)};
            syscall(SYS_futex, &g_wake_seq, FUTEX_WAIT_PRIVATE, seq, &ts, nullptr, 0);
            if (g_stop.load()) break;
            flush = mono_ns() >= next;  // else woken early: recording threads have full buffers
        }
        {
            std::lock_guard<FutexLock> lock(g_cycle_mutex);
            if (!g_w->io_failed) run_cycle(false, flush);
            release_trace_fd(*g_w);
        }
        clock_writer_tick();
        if (flush) next = mono_ns() + interval_ns;
    }
    if (g_w->kept_fd >= 0) close(g_w->kept_fd);  // in our own table (the exit flush opens its own)
    g_w->kept_fd = -1;
    return nullptr;
}

void stop_thread() {
    if (!g_thread_running) return;
    g_stop.store(true);
    writer_wake();
    pthread_join(g_thread, nullptr);
    g_thread_running = false;
}

}  // namespace

namespace {
std::atomic<int> g_internal_alive{0};
}

int internal_threads_alive() { return g_internal_alive.load(); }

bool spawn_internal_thread(void* (*fn)(void*), pthread_t* thread_out) {
    auto trampoline = [](void* arg) -> void* {
        t_in_hook = true;  // our threads are never traced
        t_internal_thread = true;
        private_fds_enter();  // and see none of the program's descriptors (private_fds.hpp)
        g_internal_alive.fetch_add(1);
        void* r = reinterpret_cast<void* (*)(void*)>(arg)(nullptr);
        g_internal_alive.fetch_sub(1);
        return r;
    };
    pthread_t th;
    if (start_thread_of_ours(&th, trampoline, reinterpret_cast<void*>(fn)) != 0) return false;
    *thread_out = th;
    return true;
}

bool writer_start(int fd) {
    if (!g_w) g_w = new WriterState;
    g_w->fd = -1;
    g_w->kept_fd = -1;
    g_w->id = file_id(fd);
    g_w->io_failed = false;
    g_w->end_offset = -1;
    g_w->file_bytes = static_cast<uint64_t>(lseek(fd, 0, SEEK_CUR));
    close(fd);  // opened again for each cycle
    g_w->cycle = new WriterCycle;
    // Half the flush interval: a killed process still loses at most about one interval.
    g_w->cycle->set_payload_interval(g_settings.flush_interval_ms * 1000000u / 2);
    g_stop.store(false);
    if (!spawn_internal_thread(writer_main, &g_thread)) {
        say("pymemtrace: cannot start the writer thread; tracing stopped");
        return false;
    }
    g_thread_running = true;
    return true;
}

void writer_wake() {
    g_wake_seq.fetch_add(1);
    syscall(SYS_futex, &g_wake_seq, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

bool writer_replay_failed() { return g_w && g_w->cycle && g_w->cycle->failed(); }

EndSummary writer_finish(bool write_end_chunk) {
    stop_thread();
    if (!g_w || !write_end_chunk) return EndSummary{};
    std::lock_guard<FutexLock> lock(g_cycle_mutex);
    EndSummary s = write_end();
    release_trace_fd(*g_w);
    return s;
}

void writer_pause_for_exec() {
    g_cycle_mutex.lock();
    if (!g_w) return;
    write_end();
    release_trace_fd(*g_w);
}

void writer_resume_after_exec() {
    if (!g_w) {
        g_cycle_mutex.unlock();
        return;
    }
    WriterState& w = *g_w;
    // O_APPEND: the next chunk goes where the End chunk was.
    if (w.end_offset >= 0 && !w.io_failed && open_trace_fd(w) && ftruncate(w.fd, w.end_offset) == 0)
        w.file_bytes = static_cast<uint64_t>(w.end_offset);
    release_trace_fd(w);
    w.end_offset = -1;
    g_cycle_mutex.unlock();
}

// Fork: nothing to lock. The writer may be mid-cycle (inside zstd, a vector, the replay's
// hash tables); the child never touches that state: it abandons the parent's WriterState
// (copy-on-write pages, never freed) and re-creates the cycle mutex the thread may have held.
void writer_fork_child() {
    new (&g_cycle_mutex) FutexLock;
    g_thread_running = false;  // the thread did not survive the fork
    // Nor did the sampler: the child counts only the threads it starts (a count kept from
    // the parent made the last-thread check fail, and a child forked from a non-main thread
    // hung when that thread returned: CPython's test_main_thread_after_fork_from_nonmain_thread).
    g_internal_alive.store(0);
    if (g_w) {
        release_trace_fd(*g_w);  // the parent's writer may have been mid-cycle
        g_w = nullptr;           // abandoned, see above; writer_start makes a new one
    }
}

}  // namespace pmt::preload
