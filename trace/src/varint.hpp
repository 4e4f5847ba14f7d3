// Private to trace/: fixed-width little-endian fields; varints and the byte cursor are in
// pmt/varint.hpp (the interposer's writer uses them too).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pmt/chunk.hpp"
#include "pmt/varint.hpp"

namespace pmt::detail {

inline void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }  // little-endian host
inline void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline uint16_t get_u16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
inline uint32_t get_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

}  // namespace pmt::detail
