// TraceBuilder: writes synthetic traces for unit tests through the real encoder and framing
// (RecordEncoder, append_chunk, encode_file_header), so tests state ground truth by
// construction. Definitions are emitted lazily into the stream of the first thread using them.
// Below it, the fixtures the analyzer tests share: replaying a built trace through the
// analyzer's one pass, and the scenarios several tests build (rebinding, arena populations).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "analysis.hpp"
#include "pmt/chunk.hpp"
#include "pmt/encoder.hpp"
#include "pmt/format.hpp"

namespace pmt::testing {

constexpr uint64_t ms(uint64_t v) { return v * 1000000; }  // trace times are nanoseconds
constexpr uint64_t MB(uint64_t v) { return v * 1000000; }
constexpr uint64_t kArena = uint64_t{1} << 20;  // a pymalloc arena: 1 MiB, one anonymous mmap

// Usage:
//   TraceBuilder b;
//   auto s = b.stack({{"job.py", "step", 13}, {"job.py", "<module>", 21}});  // innermost first
//   b.thread(1).alloc(ms(1), 0x1000, MB(8), s).rss(ms(2), MB(30)).free(ms(3), 0x1000);
//   TempTrace f(b.bytes());   // f.path() is a trace file; removed when f goes out of scope
class TraceBuilder {
public:
    struct F {
        std::string file;
        std::string function;
        uint32_t line = 0;
    };

    TraceBuilder() {
        header_.pid = 4242;
        header_.ppid = 1;
        header_.argv = {"/usr/bin/python3", "job.py"};
        header_.start_wall_ns = 1700000000000000000ull;
        header_.python_version = "3.11.2";
        header_.allocator = "glibc";
        header_.exe = "/usr/bin/python3.11";
    }
    TraceHeader& header() { return header_; }
    EndSummary& end_summary() { return end_; }
    TraceBuilder& codec(Codec c) {
        codec_ = c;
        return *this;
    }

    uint64_t string(const std::string& s) {
        auto [it, fresh] = strings_.emplace(s, strings_.size() + 1);
        if (fresh) string_text_.push_back(s);
        return it->second;
    }
    uint64_t location(const std::string& file, const std::string& function, uint32_t line) {
        const auto key = std::make_tuple(string(file), string(function), line);
        auto [it, fresh] = locations_.emplace(key, location_keys_.size() + 1);
        if (fresh) location_keys_.push_back(key);
        return it->second;
    }
    // A stack from location ids, innermost first.
    uint64_t stack_of(const std::vector<uint64_t>& locations_innermost_first) {
        uint64_t parent = 0;
        for (auto it = locations_innermost_first.rbegin(); it != locations_innermost_first.rend();
             ++it) {
            auto [pos, fresh] =
                stacks_.emplace(std::make_pair(parent, *it), stack_keys_.size() + 1);
            if (fresh) stack_keys_.push_back({parent, *it});
            parent = pos->second;
        }
        return parent;
    }
    // A stack from frames, innermost first.
    uint64_t stack(const std::vector<F>& frames_innermost_first) {
        std::vector<uint64_t> locs;
        for (const F& f : frames_innermost_first)
            locs.push_back(location(f.file, f.function, f.line));
        return stack_of(locs);
    }
    // A one-frame stack: job.py line n, at module level unless a function is named.
    uint64_t line(uint32_t n, const std::string& function = "<module>") {
        return stack({{"job.py", function, n}});
    }
    // A list comprehension on job.py's module-level line n (its own frame has the same line).
    uint64_t listcomp(uint32_t n) {
        return stack({{"job.py", "<listcomp>", n}, {"job.py", "<module>", n}});
    }

    // Records go to this thread until the next thread() call. Switching threads closes the
    // previous thread's chunk, so chunks appear in the file in the order records were made.
    TraceBuilder& thread(uint32_t tid) {
        if (tid != tid_) close_chunk();
        tid_ = tid;
        return *this;
    }

    TraceBuilder& alloc(uint64_t t, uint64_t addr, uint64_t size, uint64_t stack = 0,
                        AllocKind kind = AllocKind::Malloc) {
        open(t, stack);
        check(enc_.alloc(kind, t, addr, size, stack));
        return event(t);
    }
    TraceBuilder& free(uint64_t t, uint64_t addr) {
        open(t, 0);
        check(enc_.free(t, addr));
        return event(t);
    }
    TraceBuilder& realloc(uint64_t t, uint64_t old_addr, uint64_t new_addr, uint64_t size,
                          uint64_t stack = 0) {
        open(t, stack);
        check(enc_.realloc(AllocKind::Realloc, t, t, old_addr, new_addr, size, stack));
        return event(t);
    }
    TraceBuilder& mmap(uint64_t t, uint64_t addr, uint64_t length, uint64_t stack = 0,
                       bool anonymous = true) {
        open(t, stack);
        const uint64_t flags = 0x02 /*MAP_PRIVATE*/ | (anonymous ? kMapAnonymous : 0);
        check(enc_.mmap(t, addr, length, 3 /*PROT_READ|PROT_WRITE*/, flags, anonymous ? -1 : 7,
                        stack));
        return event(t);
    }
    TraceBuilder& munmap(uint64_t t, uint64_t addr, uint64_t length) {
        open(t, 0);
        check(enc_.munmap(t, addr, length));
        return event(t);
    }
    TraceBuilder& mremap(uint64_t t, uint64_t old_addr, uint64_t old_length, uint64_t new_addr,
                         uint64_t new_length, uint64_t stack = 0) {
        open(t, stack);
        check(enc_.mremap(t, t, old_addr, old_length, new_addr, new_length, stack));
        return event(t);
    }
    TraceBuilder& rss(uint64_t t, uint64_t rss_bytes) {
        open(t, 0);
        check(enc_.rss(t, rss_bytes));
        return event(t);
    }
    // n pymalloc arenas mapped at base, base + kArena, ..., one per `step`: the first at
    // now + step; now is left at the last one's time.
    TraceBuilder& arenas(uint64_t& now, uint64_t base, int n, uint64_t stack,
                         uint64_t step = ms(1)) {
        for (int i = 0; i < n; ++i) mmap(now += step, base + i * kArena, kArena, stack);
        return *this;
    }
    TraceBuilder& thread_name(uint64_t t, const std::string& name) {
        const uint64_t id = string(name);
        open(t, 0);
        emit_string(id);
        check(enc_.thread_name(id));
        return *this;
    }
    // Closes every open chunk and writes an epoch chunk promising no event before t follows.
    TraceBuilder& epoch(uint64_t t) {
        close_chunk();
        const auto p = epoch_payload(t);
        append_chunk(file_, ChunkType::Epoch, codec_, p.data(), p.size());
        return *this;
    }

    // The trace file: header and chunks; complete = a final epoch and the end chunk, as a
    // clean exit writes them. Without them the trace reads as truncated.
    std::vector<uint8_t> bytes(bool complete = true) {
        close_chunk();
        header_.time_shift = 0;  // times are the exact nanoseconds the test states
        std::vector<uint8_t> out = encode_file_header(header_);
        out.insert(out.end(), file_.begin(), file_.end());
        if (complete) {
            const auto e = epoch_payload(last_t_ + 1);
            append_chunk(out, ChunkType::Epoch, codec_, e.data(), e.size());
            EndSummary s = end_;
            if (s.end_time_ns == 0) s.end_time_ns = last_t_;
            if (s.events == 0) s.events = events_;
            const auto p = end_payload(s);
            append_chunk(out, ChunkType::End, codec_, p.data(), p.size());
        }
        return out;
    }

private:
    static void check(bool ok) {
        if (!ok) throw std::logic_error("TraceBuilder: chunk buffer full");
    }
    TraceBuilder& event(uint64_t t) {
        if (t > last_t_) last_t_ = t;
        ++events_;
        // Keep chunks small, as the writer does, so multi-chunk reading is exercised.
        if (enc_.size() > kChunkLimit) close_chunk();
        return *this;
    }
    void open(uint64_t t, uint64_t stack) {
        if (!open_) {
            buf_.assign(kChunkLimit + 64 * 1024, 0);
            enc_.reset(buf_.data(), buf_.size(), tid_, t, 0);  // exact ns, see bytes()
            open_ = true;
        }
        emit_stack(stack);
    }
    void close_chunk() {
        if (!open_) return;
        append_chunk(file_, ChunkType::ThreadEvents, codec_, enc_.data(), enc_.size());
        open_ = false;
    }
    void emit_string(uint64_t id) {
        if (id == 0 || emitted_strings_.count(id)) return;
        const std::string& s = string_text_[id - 1];
        check(enc_.string(id, s.data(), s.size()));
        emitted_strings_.insert({id, true});
    }
    void emit_location(uint64_t id) {
        if (id == 0 || emitted_locations_.count(id)) return;
        const auto& [file, function, line] = location_keys_[id - 1];
        emit_string(file);
        emit_string(function);
        check(enc_.location(id, file, function, line));
        emitted_locations_.insert({id, true});
    }
    void emit_stack(uint64_t id) {
        if (id == 0 || emitted_stacks_.count(id)) return;
        const auto [parent, loc] = stack_keys_[id - 1];
        emit_stack(parent);
        emit_location(loc);
        check(enc_.stack(id, parent, loc));
        emitted_stacks_.insert({id, true});
    }

    static constexpr size_t kChunkLimit = 16 * 1024;
    TraceHeader header_;
    EndSummary end_;
    Codec codec_ = Codec::None;
    std::map<std::string, uint64_t> strings_;
    std::vector<std::string> string_text_;
    std::map<std::tuple<uint64_t, uint64_t, uint32_t>, uint64_t> locations_;
    std::vector<std::tuple<uint64_t, uint64_t, uint32_t>> location_keys_;
    std::map<std::pair<uint64_t, uint64_t>, uint64_t> stacks_;
    std::vector<std::pair<uint64_t, uint64_t>> stack_keys_;
    std::map<uint64_t, bool> emitted_strings_, emitted_locations_, emitted_stacks_;
    uint32_t tid_ = 1;
    bool open_ = false;
    std::vector<uint8_t> buf_;
    RecordEncoder enc_;
    std::vector<uint8_t> file_;
    uint64_t last_t_ = 0;
    uint64_t events_ = 0;
};

// A trace written to a fresh temporary file, removed on destruction.
class TempTrace {
public:
    explicit TempTrace(const std::vector<uint8_t>& bytes) {
        char tmpl[] = "/tmp/pmt-test-XXXXXX";
        const int fd = mkstemp(tmpl);
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        close(fd);
        path_ = tmpl;
        std::ofstream out(path_, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(bytes.data()),
                  static_cast<std::streamsize>(bytes.size()));
        if (!out) throw std::runtime_error("cannot write " + path_);
    }
    ~TempTrace() { std::remove(path_.c_str()); }
    TempTrace(const TempTrace&) = delete;
    TempTrace& operator=(const TempTrace&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// The analyzer's one pass over b's trace (written to a temporary file and read back), as
// `pymemtrace report` drives it: heap and analyses see every event.
inline void replay_built(TraceBuilder& b, LiveHeap& heap,
                         const std::vector<analyzer::Analysis*>& analyses) {
    TempTrace f(b.bytes());
    TraceReader reader(f.path());
    analyzer::replay(reader, heap, analyses);
}

// `data = step(data)` on thread 1: `bytes` made at old_stack (10 ms), as many again at
// new_stack (20 ms) while the old buffer is live, the old one freed (30 ms), then 1000 B at
// tail (40 ms) so the script goes on past the rebinding. One window of `bytes`, open
// 20..30 ms, costing bytes - 1000; the peak is 2 * bytes at 20 ms.
inline TraceBuilder& rebind(TraceBuilder& b, uint64_t bytes, uint64_t old_stack, uint64_t new_stack,
                            uint64_t tail) {
    return b.thread(1)
        .alloc(ms(10), 0x10000, bytes, old_stack)
        .alloc(ms(20), 0x20000, bytes, new_stack)
        .free(ms(30), 0x10000)
        .alloc(ms(40), 0x30000, 1000, tail);
}

// A list comprehension at module level rebuilt: line 4 made the old list, line 5 makes the new
// one, line 6 follows. Records go to thread 1; `now` (from 1 ms) is the test's clock.
struct ListRebuild : TraceBuilder {
    uint64_t old_lc = listcomp(4), new_lc = listcomp(5), tail = line(6);
    uint64_t now = ms(1);
};

// rebind() at module level, 400 MB (issue 3's first example):
//   9   (in load)   the old buffer          20  data = load()
//   13  (in step)   the new buffer          21  data = step(data)
//                                           22  the next line: 1000 B
inline TraceBuilder& module_rebind(TraceBuilder& b) {
    const auto load = b.stack({{"job.py", "load", 9}, {"job.py", "<module>", 20}});
    const auto step = b.stack({{"job.py", "step", 13}, {"job.py", "<module>", 21}});
    return rebind(b, MB(400), load, step, b.line(22));
}

}  // namespace pmt::testing
