// Human-readable numbers for the analyzer's text output: decimal sizes ("401.2 MB"), times
// since the trace start ("2.41 s"), counts with thousands separators, and the text of a
// source line when the file is readable. No dependencies beyond the standard library.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace pmt::analyzer {

// Decimal units (1 MB = 10^6 bytes): "0 B", "999 B", "12.3 kB", "401.2 MB", "1.31 GB".
std::string human_bytes(uint64_t bytes);
// Signed differences ("+12.3 MB", "-1.31 GB"; "0 B" for zero).
std::string human_bytes_delta(int64_t bytes);
// Nanoseconds as seconds: "0.000 s", "0.042 s", "2.41 s", "125.3 s".
std::string human_seconds(uint64_t ns);
// 1234567 -> "1,234,567".
std::string human_count(uint64_t n);
inline double seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

// Text of line `line` (1-based) of `file`, trimmed, at most max_chars (cut with "..."), or ""
// when the file cannot be read or is too short. Re-reads the file per call: for the few lines a
// report shows, not for hot loops.
std::string source_line(const std::string& file, uint32_t line, size_t max_chars = 60);

// Shortens a path for display: keeps the last `keep` components ("…/pkg/mod.py").
std::string short_path(std::string_view path, int keep = 2);

}  // namespace pmt::analyzer
