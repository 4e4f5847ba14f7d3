// Helpers for the trace unit tests: build a trace in memory from encoder calls, write it to a
// temporary file, and collect what TraceReader delivers.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "pmt/chunk.hpp"
#include "pmt/encoder.hpp"
#include "pmt/reader.hpp"

namespace pmt::test {

// Builds a trace: header, then chunks appended in call order.
class TraceBuilder {
public:
    explicit TraceBuilder(Codec codec = Codec::Zstd, TraceHeader h = {}) : codec_(codec) {
        bytes = encode_file_header(h);
        header_bytes = bytes.size();
    }
    // Starts a thread-events payload; records go through enc(); finish with end_thread().
    RecordEncoder& thread(uint64_t tid, uint64_t base_time) {
        buf_.assign(1 << 20, 0);
        enc_.reset(buf_.data(), buf_.size(), tid, base_time);
        return enc_;
    }
    void end_thread() {
        chunk_offsets.push_back(bytes.size());
        append_chunk(bytes, ChunkType::ThreadEvents, codec_, enc_.data(), enc_.size());
    }
    void epoch(uint64_t t) {
        chunk_offsets.push_back(bytes.size());
        auto p = epoch_payload(t);
        append_chunk(bytes, ChunkType::Epoch, codec_, p.data(), p.size());
    }
    void end(const EndSummary& s) {
        chunk_offsets.push_back(bytes.size());
        auto p = end_payload(s);
        append_chunk(bytes, ChunkType::End, codec_, p.data(), p.size());
    }

    std::vector<uint8_t> bytes;
    size_t header_bytes = 0;
    std::vector<size_t> chunk_offsets;

private:
    Codec codec_;
    std::vector<uint8_t> buf_;
    RecordEncoder enc_;
};

// A file under /tmp removed when the object goes away.
class TempFile {
public:
    TempFile() {
        char tmpl[] = "/tmp/pmt_trace_test_XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        ::close(fd);
        path = tmpl;
    }
    ~TempFile() { std::remove(path.c_str()); }
    void write(const uint8_t* p, size_t n) const {
        FILE* f = std::fopen(path.c_str(), "wb");
        if (n) std::fwrite(p, 1, n, f);
        std::fclose(f);
    }
    void write(const std::vector<uint8_t>& b) const { write(b.data(), b.size()); }
    std::string path;
};

struct Collect : EventVisitor {
    std::vector<Event> events;
    void on_event(const Event& e) override { events.push_back(e); }
};

}  // namespace pmt::test
