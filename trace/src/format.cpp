// Small pieces of the format shared by writer and reader: allocation-kind names and the
// CRC-32C that guards the file header and every chunk (FORMAT.md). Runs on the interposer's
// writer thread and in the analyzer; uses the SSE4.2 crc32 instruction when the CPU has it.
#include "pmt/format.hpp"

#include <array>
#include <cstring>

#include "pmt/chunk.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

namespace pmt {

const char* alloc_kind_name(AllocKind k) {
    switch (k) {
        case AllocKind::Malloc:
            return "malloc";
        case AllocKind::Calloc:
            return "calloc";
        case AllocKind::Realloc:
            return "realloc";
        case AllocKind::ReallocArray:
            return "reallocarray";
        case AllocKind::PosixMemalign:
            return "posix_memalign";
        case AllocKind::AlignedAlloc:
            return "aligned_alloc";
        case AllocKind::Memalign:
            return "memalign";
        case AllocKind::Valloc:
            return "valloc";
        case AllocKind::Pvalloc:
            return "pvalloc";
        case AllocKind::PyMemMalloc:
            return "PyMem_Malloc";
        case AllocKind::PyMemCalloc:
            return "PyMem_Calloc";
        case AllocKind::PyMemRealloc:
            return "PyMem_Realloc";
        case AllocKind::PyObjectMalloc:
            return "PyObject_Malloc";
        case AllocKind::PyObjectCalloc:
            return "PyObject_Calloc";
        case AllocKind::PyObjectRealloc:
            return "PyObject_Realloc";
    }
    return "unknown";
}

namespace {

constexpr uint32_t kCrc32cPoly = 0x82F63B78u;  // Castagnoli, bit-reflected

// Slicing-by-8 tables, built at compile time so no constructor runs inside the interposer.
struct CrcTables {
    uint32_t t[8][256];
};
constexpr CrcTables make_tables() {
    CrcTables r{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kCrc32cPoly : 0);
        r.t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
        for (int s = 1; s < 8; ++s) r.t[s][i] = (r.t[s - 1][i] >> 8) ^ r.t[0][r.t[s - 1][i] & 0xff];
    return r;
}
constexpr CrcTables kTables = make_tables();

uint32_t crc_table(uint32_t c, const uint8_t* p, size_t n) {
    const auto& t = kTables.t;
    while (n >= 8) {
        uint32_t lo, hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
            t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc_sse42(uint32_t c, const uint8_t* p, size_t n) {
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = static_cast<uint32_t>(c64);
    while (n--) c = _mm_crc32_u8(c, *p++);
    return c;
}

bool have_sse42() {
    // Evaluated once, valid even before constructors ran. One CPUID (leaf 1, ECX bit 20):
    // __builtin_cpu_supports links libgcc's constructor, which runs a dozen of them in every
    // process that loads us, each a trap to the hypervisor on a VM (~5 us here).
    static const bool yes = [] {
        unsigned a = 0, b = 0, c = 0, d = 0;
        return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & bit_SSE4_2) != 0;
    }();
    return yes;
}
#endif

}  // namespace

uint32_t crc32c(const uint8_t* data, size_t n, uint32_t seed) {
    uint32_t c = ~seed;
#if defined(__x86_64__)
    if (have_sse42()) return ~crc_sse42(c, data, n);
#endif
    return ~crc_table(c, data, n);
}

namespace detail {
// Shared by the decoding code in chunk.cpp and reader.cpp (declared in varint.hpp).
void throw_format(const char* what) { throw TraceError(what); }
}  // namespace detail

}  // namespace pmt
