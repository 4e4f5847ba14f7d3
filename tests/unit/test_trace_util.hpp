// Helpers for the trace unit tests: build a trace in memory from encoder calls, write it to a
// temporary file, and collect what TraceReader delivers.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "pmt/chunk.hpp"
#include "pmt/encoder.hpp"
#include "pmt/reader.hpp"

namespace pmt::test {

// Builds a trace: header, then chunks appended in call order. Times are exact nanoseconds
// unless time_shift says otherwise (the header declares it). With a stream codec (3 or 4) the
// thread chunks go through one ChunkStream, as the interposer writes them.
class TraceBuilder {
public:
    explicit TraceBuilder(Codec codec = Codec::Zstd, TraceHeader h = {}, unsigned time_shift = 0)
        : codec_(codec), time_shift_(time_shift) {
        h.time_shift = time_shift;
        bytes = encode_file_header(h);
        header_bytes = bytes.size();
    }
    // Starts a thread-events payload; records go through enc(); finish with end_thread().
    RecordEncoder& thread(uint64_t tid, uint64_t base_time) {
        buf_.assign(1 << 20, 0);
        enc_.reset(buf_.data(), buf_.size(), tid, base_time, time_shift_);
        return enc_;
    }
    void end_thread() {
        chunk_offsets.push_back(bytes.size());
        if (codec_ == Codec::ZstdStreamStart || codec_ == Codec::ZstdStream)
            stream().append_thread_chunk(bytes, enc_.data(), enc_.size());
        else
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
    ChunkStream& stream() {
        if (!stream_) stream_ = std::make_shared<ChunkStream>(1, time_shift_);
        return *stream_;
    }
    unsigned time_shift_;
    std::shared_ptr<ChunkStream> stream_;  // shared by copies (builders are returned by value)
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
