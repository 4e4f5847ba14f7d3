// Streaming trace reader: validates framing, decodes records, applies definitions as they
// arrive and hands events to a visitor in global time order (versions 1-2: merging threads at
// epochs; versions 3-4: the file's one event stream as it is decoded). Memory is bounded by one
// flush interval's events (versions 3-4: one payload and the live blocks' rank structures or
// bitmap) plus the definition tables, never by the length of the trace.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pmt/chunk.hpp"
#include "pmt/format.hpp"

namespace pmt {

enum class EventType : uint8_t { Alloc, Free, Mmap, Munmap, Mremap, Rss };

// One decoded event. A realloc record becomes a Free of the old block at t_before and an
// Alloc of the new one at t_after, both with kind Realloc (or ReallocArray); an mremap stays
// one Mremap event at t_after (old_addr/old_size -> addr/size). Versions 3-4 name heap blocks by
// sequence number: an Alloc and the Free of its block carry addr (1 << 63) | seq; mappings
// and frees of unknown blocks keep their real addresses.
struct Event {
    EventType type = EventType::Alloc;
    AllocKind kind = AllocKind::Malloc;  // for Alloc/Free
    uint32_t tid = 0;
    uint64_t time_ns = 0;
    uint64_t addr = 0;
    uint64_t size = 0;      // Alloc: requested bytes; Mmap/Munmap/Mremap: length; Rss: rss bytes
    uint64_t stack_id = 0;  // Alloc, Mmap, Mremap
    uint64_t old_addr = 0;  // Mremap
    uint64_t old_size = 0;  // Mremap
    uint64_t prot = 0, flags = 0;  // Mmap
    int64_t fd = -1;               // Mmap
    uint64_t seq = 0;              // order of the event in the trace (0-based, after merging)
};

struct Location {
    uint32_t file = 0;      // string id
    uint32_t function = 0;  // string id
    uint32_t line = 0;
};

struct StackNode {
    uint64_t parent = 0;    // stack id of the outer frames, 0 = none
    uint64_t location = 0;  // location id of the innermost frame
};

// A resolved frame, for renderers.
struct Frame {
    std::string_view file;
    std::string_view function;
    uint32_t line = 0;
};

class EventVisitor {
public:
    virtual ~EventVisitor() = default;
    virtual void on_event(const Event& e) = 0;
    // n consecutive events of the stream, in order (already numbered). The reader delivers
    // through this one; override it to save a virtual call per event.
    virtual void on_events(const Event* e, size_t n) {
        for (size_t i = 0; i < n; ++i) on_event(e[i]);
    }
};

// The decoding and merging core of TraceReader, usable on raw thread-events payloads (the
// interposer's writer thread replays with it for the exit line, keeping no definitions).
class EventMerger {
public:
    explicit EventMerger(bool keep_definitions = true);
    ~EventMerger();
    EventMerger(const EventMerger&) = delete;
    EventMerger& operator=(const EventMerger&) = delete;

    // Decodes one raw thread-events payload: applies its definitions, queues its events.
    // Throws TraceError on a malformed record.
    void add_thread_payload(const uint8_t* raw, size_t n);
    // The same for a payload in column form (FORMAT.md, "Column form"; what a codec-3/4
    // chunk decompresses to), decoded straight into events: the same events, definitions
    // and errors as add_thread_payload on the records the column form rebuilds.
    void add_thread_columns(const uint8_t* cols, size_t n);
    // Delivers queued events with time < t in time order (ties: tid, then record order) and
    // numbers them (Event::seq). t = UINT64_MAX delivers everything queued.
    void release_before(uint64_t t, EventVisitor& v);
    size_t queued() const;
    uint64_t delivered() const;
    uint64_t last_time_ns() const;  // time of the last event delivered (0 before any)

    std::string_view string(uint64_t id) const;
    const Location* location(uint64_t id) const;
    const StackNode* stack(uint64_t id) const;
    std::string_view thread_name(uint32_t tid) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

class TraceReader {
public:
    // Opens the trace and reads its header. Throws TraceError for a file that cannot be
    // opened, is not a pymemtrace trace, has a bad header checksum or an unknown version.
    explicit TraceReader(const std::string& path);
    ~TraceReader();
    TraceReader(const TraceReader&) = delete;
    TraceReader& operator=(const TraceReader&) = delete;

    const TraceHeader& header() const;
    const std::string& path() const;

    // Reads the whole trace, calling v.on_events for runs of events in time order (ties broken by
    // thread id, then record order; versions 3-4: the stream's order). Throws TraceError on
    // corruption (bad checksum, bad record); a trace that simply ends early is not an error:
    // see truncated().
    // May be called once.
    void read(EventVisitor& v);

    // After read(): whether the trace lacks its end chunk, and why / where it stopped.
    bool truncated() const;
    const std::string& truncation_reason() const;
    uint64_t last_time_ns() const;  // time of the last event delivered
    uint64_t events() const;        // events delivered
    bool has_end() const;
    const EndSummary& end() const;  // valid when has_end()
    uint64_t file_bytes() const;

    // Definition tables (complete after read(); growing during it).
    std::string_view string(uint64_t id) const;   // "" for unknown ids
    const Location* location(uint64_t id) const;  // nullptr for unknown ids
    const StackNode* stack(uint64_t id) const;    // nullptr for unknown ids / 0
    // Frames of a stack, innermost first (empty for stack 0). At most max_depth frames.
    std::vector<Frame> frames(uint64_t stack_id, size_t max_depth = 256) const;
    std::string_view thread_name(uint32_t tid) const;

    // Progress: bytes of the file consumed so far (for progress displays).
    uint64_t bytes_read() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace pmt
