// Test probe for preload/python_stack.cpp: a shared library Python loads with ctypes. Each call
// takes the calling thread's stack with python_stack_id(), checks the definition contract
// (every id defined once per process, before its first use, in the using thread) and resolves
// the id back into "file\tfunction\tline" lines, innermost first.
#include <x86intrin.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "pystack_tables.hpp"
#include "python_stack.hpp"

using namespace pmt::preload;

namespace {

struct Location {
    uint64_t file, function, line;
};
struct Node {
    uint64_t parent, location;
};

// Ids defined anywhere in the process, per kind: a second definition of one id is an error.
std::mutex g_mutex;
std::unordered_set<uint64_t> g_defined[3];

class RecordingSink final : public DefinitionSink {
public:
    std::unordered_map<uint64_t, std::string> strings;
    std::unordered_map<uint64_t, Location> locations;
    std::unordered_map<uint64_t, Node> stacks;
    std::string error;
    uint64_t definitions = 0;

    void define_string(uint64_t id, const char* s, size_t n) override {
        claim(0, id, "string");
        strings[id] = std::string(s, n);
    }
    void define_location(uint64_t id, uint64_t file, uint64_t function, uint64_t line) override {
        claim(1, id, "location");
        if (!strings.count(file) || !strings.count(function))
            fail("location uses undefined string", id);
        locations[id] = Location{file, function, line};
    }
    void define_stack(uint64_t id, uint64_t parent, uint64_t location) override {
        claim(2, id, "stack");
        if (parent && !stacks.count(parent)) fail("stack uses undefined parent", id);
        if (!locations.count(location)) fail("stack uses undefined location", id);
        stacks[id] = Node{parent, location};
    }

    void fail(const char* what, uint64_t id) {
        if (error.empty()) error = std::string(what) + " (id " + std::to_string(id) + ")";
    }

private:
    void claim(int kind, uint64_t id, const char* name) {
        ++definitions;
        if (id == 0) fail((std::string(name) + " id 0").c_str(), id);
        std::lock_guard<std::mutex> lock(g_mutex);
        if (!g_defined[kind].insert(id).second)
            fail((std::string(name) + " defined twice").c_str(), id);
    }
};

struct ThreadProbe {
    PyStackCache* cache = pystack_cache_new();
    RecordingSink sink;
    uint64_t last_id = 0;
    ~ThreadProbe() { pystack_cache_free(cache); }
};
thread_local ThreadProbe* t_probe = nullptr;

ThreadProbe& probe() {
    if (!t_probe) t_probe = new ThreadProbe();  // freed with the process: threads are few
    return *t_probe;
}

double thread_cpu_ns() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

int copy_out(const std::string& s, char* out, size_t cap) {
    if (cap == 0) return -1;
    size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
    std::memcpy(out, s.data(), n);
    out[n] = '\0';
    return s.size() < cap ? 0 : -1;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int pmt_probe_init() { return python_init() ? 1 : 0; }

__attribute__((visibility("default"))) int pmt_probe_watched() {
    return python_watches_code_creation() ? 1 : 0;
}

__attribute__((visibility("default"))) const char* pmt_probe_version() { return python_version(); }

// Number of frames written to out, or -1 with a one-line error in out.
__attribute__((visibility("default"))) int pmt_probe_stack(char* out, size_t cap) {
    ThreadProbe& p = probe();
    uint64_t id = python_stack_id(p.cache, p.sink);
    p.last_id = id;
    if (!p.sink.error.empty()) return copy_out(p.sink.error, out, cap), -1;
    std::string text;
    int frames = 0;
    for (uint64_t s = id; s; ++frames) {
        auto node = p.sink.stacks.find(s);
        if (node == p.sink.stacks.end()) {
            copy_out("stack id " + std::to_string(s) + " used before its definition", out, cap);
            return -1;
        }
        const Location& l = p.sink.locations.at(node->second.location);
        text += p.sink.strings.at(l.file) + "\t" + p.sink.strings.at(l.function) + "\t" +
                std::to_string(l.line) + "\n";
        s = node->second.parent;
    }
    if (copy_out(text, out, cap) != 0) return copy_out("output buffer too small", out, cap), -1;
    return frames;
}

__attribute__((visibility("default"))) uint64_t pmt_probe_last_id() { return probe().last_id; }

__attribute__((visibility("default"))) uint64_t pmt_probe_definitions() {
    return probe().sink.definitions;
}

// The stack id seen by a thread that C code created and Python never saw (expected: 0).
__attribute__((visibility("default"))) uint64_t pmt_probe_native_thread() {
    uint64_t id = ~uint64_t(0);
    std::thread([&id] {
        PyStackCache* cache = pystack_cache_new();
        RecordingSink sink;
        id = python_stack_id(cache, sink);
        pystack_cache_free(cache);
    }).join();
    return id;
}

// Runs callback on a thread C created: a ctypes callback, so ctypes gives the thread a Python
// state (PyGILState_Ensure) for the call and takes it away afterwards.
__attribute__((visibility("default"))) void pmt_probe_in_native_thread(void (*callback)()) {
    std::thread(callback).join();
}

// Mean ns per python_stack_id call at the caller's depth. forget_walk != 0 makes every call
// resolve each frame through the hash tables instead of reusing the previous walk.
__attribute__((visibility("default"))) double pmt_probe_bench(int iterations, int forget_walk) {
    ThreadProbe& p = probe();
    python_stack_id(p.cache, p.sink);  // definitions happen here, outside the timing
    uint64_t sum = 0;
    // Thread CPU time: the machine is shared, wall time would count other processes' turns.
    double start = thread_cpu_ns();
    for (int i = 0; i < iterations; ++i) {
        if (forget_walk) pystack_cache_forget_walk(p.cache);
        sum += python_stack_id(p.cache, p.sink);
    }
    double ns = thread_cpu_ns() - start;
    if (sum == 0) return -1;  // no Python frames: nothing was measured
    return ns / iterations;
}

// Takes stacks without pause for ms milliseconds (called through ctypes.CDLL: the GIL is
// released, so the interpreter may finalize meanwhile). Returns how many calls saw frames.
__attribute__((visibility("default"))) int pmt_probe_spin(int ms) {
    ThreadProbe& p = probe();
    timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int with_frames = 0;
    do {
        for (int i = 0; i < 64; ++i) with_frames += python_stack_id(p.cache, p.sink) != 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
    return with_frames;
}

// One timed python_stack_id call (TSC cycles summed into the thread's total), for call
// patterns only Python can make, such as alternating call sites.
thread_local uint64_t t_timed_cycles = 0, t_timed_calls = 0;
__attribute__((visibility("default"))) void pmt_probe_timed() {
    ThreadProbe& p = probe();
    uint64_t start = __rdtsc();
    python_stack_id(p.cache, p.sink);
    t_timed_cycles += __rdtsc() - start;
    ++t_timed_calls;
}

// Mean ns per pmt_probe_timed() call since the last result; the TSC is calibrated against
// CLOCK_MONOTONIC over 20 ms.
__attribute__((visibility("default"))) double pmt_probe_timed_result() {
    timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t c0 = __rdtsc();
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec) < 20000000);
    double ns = double((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
    double cycles_per_ns = double(__rdtsc() - c0) / ns;
    double result = t_timed_calls ? double(t_timed_cycles) / cycles_per_ns / t_timed_calls : -1;
    t_timed_cycles = t_timed_calls = 0;
    return result;
}

// What the recorder does in a forked child: drop every cache, then tell the walker.
__attribute__((visibility("default"))) void pmt_probe_after_fork() {
    t_probe = nullptr;  // the parent's probe is abandoned, not freed: its ids belong to the parent
    for (auto& ids : g_defined) ids.clear();
    python_after_fork_child();
}

// The walker's line-table decoder (pystack_tables.hpp) on a co_linetable: out[i] is the line of
// code unit offsets[i], asked in that order through one cursor, as the walker asks them.
__attribute__((visibility("default"))) void pmt_probe_lines(const char* table, size_t len,
                                                            int firstlineno, const int* offsets,
                                                            int n, int* out) {
    pmt::preload::pystack::LineCursor cursor{};
    for (int i = 0; i < n; ++i) {
        out[i] = pmt::preload::pystack::linetable_line(
            reinterpret_cast<const unsigned char*>(table), static_cast<uint32_t>(len), firstlineno,
            cursor, offsets[i]);
    }
}

}  // extern "C"
