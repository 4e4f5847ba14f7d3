// Constants of the trace format (trace/FORMAT.md is the description; this mirrors it).
// Shared by the interposer (writer side) and the analyzer (reader side). No dependencies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pmt {

inline constexpr char kFileMagic[8] = {'P', 'Y', 'M', 'T', 'R', 'A', 'C', 'E'};
inline constexpr uint16_t kFormatVersion = 2;
inline constexpr uint16_t kOldestReadableVersion = 1;  // version 1 is version 2 minus codecs 3/4
inline constexpr char kChunkMagic[4] = {'P', 'M', 'C', 'K'};
inline constexpr size_t kFileHeaderFixedBytes = 16;  // magic, version, flags, payload length
inline constexpr size_t kChunkHeaderBytes = 20;
inline constexpr uint32_t kMaxHeaderPayload = 1u << 20;
inline constexpr uint32_t kMaxChunkPayload = 64u << 20;
// Largest encoded record other than a string definition (opcode + 7 fields of ≤10 bytes).
inline constexpr size_t kMaxRecordBytes = 80;

enum class ChunkType : uint8_t { ThreadEvents = 1, Epoch = 2, End = 3 };
// ZstdStreamStart/ZstdStream: column form (FORMAT.md, "Column form") compressed as one zstd
// stream per file, each chunk a flushed block of it; the reader keeps its context across them.
enum class Codec : uint8_t { None = 0, Zstd = 1, Lz4 = 2, ZstdStreamStart = 3, ZstdStream = 4 };

// Event times are multiples of 2^kTimeShift ns, rounded down by the encoder (the interposer's
// buffers keep nanoseconds). The file's resolution is declared in the header (key 13;
// FORMAT.md): the interposer's writer re-times events to units of 2^kWriterTimeShift ns so
// that events of different threads never share a unit (FORMAT.md, "Event times").
inline constexpr unsigned kTimeShift = 0;
inline constexpr unsigned kWriterTimeShift = 10;
inline constexpr uint64_t quantize_time(uint64_t t_ns, unsigned shift = kTimeShift) {
    return t_ns & ~((uint64_t(1) << shift) - 1);
}

enum class Op : uint8_t {
    Alloc = 1,
    Free = 2,
    Realloc = 3,
    Mmap = 4,
    Munmap = 5,
    Mremap = 6,
    Rss = 7,
    String = 8,
    Location = 9,
    Stack = 10,
    ThreadName = 11,
};

enum class AllocKind : uint8_t {
    Malloc = 0,
    Calloc = 1,
    Realloc = 2,
    ReallocArray = 3,
    PosixMemalign = 4,
    AlignedAlloc = 5,
    Memalign = 6,
    Valloc = 7,
    Pvalloc = 8,
};
const char* alloc_kind_name(AllocKind k);

inline constexpr uint64_t kMapAnonymous = 0x20;  // MAP_ANONYMOUS on Linux

// Everything the file header holds (FORMAT.md, "File header").
struct TraceHeader {
    uint16_t version = kFormatVersion;
    uint64_t pid = 0;
    uint64_t ppid = 0;
    std::vector<std::string> argv;
    uint64_t start_wall_ns = 0;
    std::string python_version;  // empty: no Python in the process
    std::string allocator;       // "glibc", "jemalloc", "mimalloc", ...
    uint64_t page_size = 4096;
    uint64_t rss_interval_ms = 10;
    uint64_t flush_interval_ms = 100;
    uint64_t flags = 0;
    std::string exe;
    bool forked = false;
    uint64_t time_shift = kTimeShift;  // times are multiples of 2^time_shift ns (v1: 0)
};

// The end chunk's payload.
struct EndSummary {
    uint64_t end_time_ns = 0;
    uint64_t events = 0;
    uint64_t peak_live_bytes = 0;
    uint64_t peak_time_ns = 0;
    uint64_t lost_events = 0;  // events the interposer could not record (FORMAT.md, End chunk)
};

}  // namespace pmt
