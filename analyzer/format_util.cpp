// Human-readable sizes, times and counts, and source-line lookup for the text report.
// Sizes are decimal (kB/MB/GB = 10^3/10^6/10^9 bytes), as --help says.
#include "format_util.hpp"

#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>

namespace pmt::analyzer {

std::string human_bytes(uint64_t bytes) {
    char buf[32];
    const double b = static_cast<double>(bytes);
    if (bytes < 1000) {
        std::snprintf(buf, sizeof buf, "%" PRIu64 " B", bytes);
    } else if (bytes < 999950) {
        std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
    } else if (bytes < 999950000) {
        std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
    } else if (bytes < 999995000000ull) {
        std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
    } else {
        std::snprintf(buf, sizeof buf, "%.2f TB", b / 1e12);
    }
    return buf;
}

std::string human_bytes_delta(int64_t bytes) {
    if (bytes == 0) return "0 B";
    const uint64_t mag =
        bytes < 0 ? 0 - static_cast<uint64_t>(bytes) : static_cast<uint64_t>(bytes);
    return (bytes < 0 ? "-" : "+") + human_bytes(mag);
}

std::string human_seconds(uint64_t ns) {
    char buf[32];
    const double s = seconds(ns);
    if (s < 1.0) {
        std::snprintf(buf, sizeof buf, "%.3f s", s);
    } else if (s < 100.0) {
        std::snprintf(buf, sizeof buf, "%.2f s", s);
    } else {
        std::snprintf(buf, sizeof buf, "%.1f s", s);
    }
    return buf;
}

std::string human_count(uint64_t n) {
    std::string digits = std::to_string(n);
    std::string out;
    out.reserve(digits.size() + digits.size() / 3);
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i != 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
        out.push_back(digits[i]);
    }
    return out;
}

std::string source_line(const std::string& file, uint32_t line, size_t max_chars) {
    if (line == 0 || file.empty() || file[0] == '<') return "";  // "<string>", "<frozen ...>"
    // The name comes from the trace: only a regular file is read (a FIFO would block, a
    // device such as /dev/zero would never end a line).
    struct stat st;
    if (stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
    std::ifstream in(file);
    if (!in) return "";
    std::string text;
    for (uint32_t i = 0; i < line; ++i) {
        if (!std::getline(in, text)) return "";
    }
    const size_t b = text.find_first_not_of(" \t\r");
    if (b == std::string::npos) return "";
    const size_t e = text.find_last_not_of(" \t\r");
    text = text.substr(b, e - b + 1);
    // A trailing comment is noise next to a size; "  #" rarely occurs inside a string.
    const size_t comment = text.find("  #");
    if (comment != std::string::npos)
        text = text.substr(0, text.find_last_not_of(" \t", comment) + 1);
    if (text.size() > max_chars && max_chars > 3) text = text.substr(0, max_chars - 3) + "...";
    return text;
}

std::string short_path(std::string_view path, int keep) {
    size_t pos = path.size();
    for (int i = 0; i < keep; ++i) {
        const size_t slash = path.rfind('/', pos == 0 ? 0 : pos - 1);
        if (slash == std::string_view::npos || slash == 0) return std::string(path);
        pos = slash;
    }
    return "…" + std::string(path.substr(pos));
}

}  // namespace pmt::analyzer
