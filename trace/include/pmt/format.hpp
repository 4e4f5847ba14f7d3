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
// Versions 3 and 4 (FORMAT.md, "Version 3", "Version 4"): one event stream per file; version 4
// names the block a free releases by a prediction from its owner thread's last free and last
// allocation instead of its rank. TraceHeader still defaults to kFormatVersion (2): the tests'
// builders write version-2 files with it; a writer of stream payloads sets version =
// kStreamFormatVersion (what StreamEncoder writes by default) and tick_shift.
inline constexpr uint16_t kFirstStreamFormatVersion = 3;  // versions >= 3 are event streams
inline constexpr uint16_t kStreamFormatVersion = 4;
inline constexpr uint16_t kNewestReadableVersion = 4;
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
// Versions 3 and 4: the writer emits a TICK whenever time moves 2^kTickShift units of 2^k ns or
// more past the running time (header key 14), so event times are within 2^(k+m) ns below the truth.
inline constexpr unsigned kTickShift = 10;
inline constexpr unsigned kMaxTickShift = 40;  // k + m must stay below 64 as well
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

// Stream opcodes of versions 3 and 4 (FORMAT.md, "Version 3", ops table; version 4 keeps them),
// shared by StreamEncoder and the reader's stream decoder. ALLOC and PAIR carry the allocation kind
// in the opcode (base + kind); the three free records come in three groups (plain, realloc,
// reallocarray).
enum class Op3 : uint8_t {
    Alloc = 0x01,  // 0x01 + AllocKind (0x01..0x0f)
    Pair = 0x11,   // 0x11 + AllocKind (0x11..0x1f)
    Free = 0x20,
    FreeOther = 0x21,
    FreeUnknown = 0x22,
    ReallocFree = 0x23,
    ReallocFreeOther = 0x24,
    ReallocFreeUnknown = 0x25,
    ReallocArrayFree = 0x26,
    ReallocArrayFreeOther = 0x27,
    ReallocArrayFreeUnknown = 0x28,
    Mmap = 0x30,
    Munmap = 0x31,
    Mremap = 0x32,
    Rss = 0x33,
    Tick = 0x40,
    Thread = 0x41,
    String = 0x50,
    Location = 0x51,
    Stack = 0x52,
    ThreadName = 0x53,
};
inline constexpr unsigned kAllocKindCount = 15;  // AllocKind 0..14
// Free-record variants: Op3::Free (plain free, owner = cur), FreeOther or FreeUnknown, plus
// this stride times the group (0 free, 1 realloc, 2 reallocarray).
inline constexpr uint8_t kOp3FreeGroupStride = 3;

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
    // Python's allocator domains (PYMEMTRACE_PYTHON_ALLOCATORS=1, header flag
    // kFlagPythonAllocators): PyMem_* is PYMEM_DOMAIN_MEM, PyObject_* PYMEM_DOMAIN_OBJ.
    PyMemMalloc = 9,
    PyMemCalloc = 10,
    PyMemRealloc = 11,
    PyObjectMalloc = 12,
    PyObjectCalloc = 13,
    PyObjectRealloc = 14,
};
inline constexpr AllocKind kLastAllocKind = AllocKind::PyObjectRealloc;
static_assert(kAllocKindCount == static_cast<unsigned>(kLastAllocKind) + 1);
const char* alloc_kind_name(AllocKind k);
// The kinds whose allocation is the second half of a realloc (its free half is delivered with
// kind Realloc or ReallocArray).
inline constexpr bool is_realloc_kind(AllocKind k) {
    return k == AllocKind::Realloc || k == AllocKind::ReallocArray ||
           k == AllocKind::PyMemRealloc || k == AllocKind::PyObjectRealloc;
}

// Header key 10 (flags). Bit 0: native stacks (reserved, never set). Bit 1: Python's allocator
// domains MEM and OBJ were traced (objects, not pymalloc's arenas: FORMAT.md, kinds 9-14).
inline constexpr uint64_t kFlagPythonAllocators = 2;

// Version-3 opcode helpers. op3_free_group: 0 for Malloc (free()), 1 for Realloc and the
// domains' PyMemRealloc and PyObjectRealloc, 2 for ReallocArray (the free half of a realloc
// call); any other kind is a plain free (0).
inline constexpr uint8_t op3_alloc(AllocKind k) { return uint8_t(Op3::Alloc) + uint8_t(k); }
inline constexpr uint8_t op3_pair(AllocKind k) { return uint8_t(Op3::Pair) + uint8_t(k); }
inline constexpr unsigned op3_free_group(AllocKind k) {
    return k == AllocKind::ReallocArray ? 2 : is_realloc_kind(k) ? 1 : 0;
}
// base is Op3::Free, Op3::FreeOther or Op3::FreeUnknown.
inline constexpr uint8_t op3_free(Op3 base, AllocKind k) {
    return uint8_t(uint8_t(base) + kOp3FreeGroupStride * op3_free_group(k));
}
// The free kind a free-record opcode (0x20..0x28) delivers.
inline constexpr AllocKind op3_free_kind(uint8_t op) {
    return (op - uint8_t(Op3::Free)) / kOp3FreeGroupStride == 1   ? AllocKind::Realloc
           : (op - uint8_t(Op3::Free)) / kOp3FreeGroupStride == 2 ? AllocKind::ReallocArray
                                                                  : AllocKind::Malloc;
}

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
    uint64_t tick_shift = 0;           // key 14 (version 3): tick threshold 2^m units; absent 0
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
