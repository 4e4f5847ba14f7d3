// libFuzzer target for everything that reads a trace: pmt::TraceReader (framing, decoding,
// merging), LiveHeap and the analyzer's replay with every report section, the timeline, the
// flame graph and folded stacks (analyze_process), then the report's JSON and the process
// tree's text.
// Checksums are repaired before reading so that mutations reach the decoder instead of
// stopping at a CRC mismatch; the first input byte chooses whether they are. An input that is
// not a trace is a version-2 thread payload for the raw decoder, or (bit 1 of the first byte)
// a stream payload, read as the one chunk of a version-4 file (bit 2 set: version 3).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "commands.hpp"
#include "pmt/chunk.hpp"
#include "pmt/live.hpp"
#include "pmt/reader.hpp"
#include "process_tree.hpp"

namespace {

uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

void store_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Rewrites the header CRC and every complete chunk's CRC so that they match the bytes.
void repair_checksums(std::vector<uint8_t>& b) {
    if (b.size() < pmt::kFileHeaderFixedBytes ||
        std::memcmp(b.data(), pmt::kFileMagic, sizeof pmt::kFileMagic) != 0)
        return;
    size_t n = load_u32(b.data() + 12);
    size_t pos = pmt::kFileHeaderFixedBytes + n;
    if (n > pmt::kMaxHeaderPayload || pos + 4 > b.size()) return;
    store_u32(b.data() + pos, pmt::crc32c(b.data(), pos));
    pos += 4;
    while (pos + pmt::kChunkHeaderBytes <= b.size()) {
        uint32_t stored = load_u32(b.data() + pos + 8);
        if (stored > b.size() - pos - pmt::kChunkHeaderBytes) return;
        const uint8_t* payload = b.data() + pos + pmt::kChunkHeaderBytes;
        store_u32(b.data() + pos + 16, pmt::chunk_crc(b.data() + pos, payload, stored));
        pos += pmt::kChunkHeaderBytes + stored;
    }
}

// The input as a file the reader can open by path: a memfd, seen through /proc/self/fd.
class MemFile {
public:
    MemFile() {
        fd_ = memfd_create("pmt-fuzz", 0);
        if (fd_ < 0) std::abort();
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    void set(const std::vector<uint8_t>& b) {
        if (ftruncate(fd_, 0) != 0 || pwrite(fd_, b.data(), b.size(), 0) != ssize_t(b.size()))
            std::abort();
    }
    const std::string& path() const { return path_; }

private:
    int fd_ = -1;
    std::string path_;
};

// The raw payload decoder on its own (the interposer's exit-line replay uses it this way).
class CountingVisitor : public pmt::EventVisitor {
public:
    explicit CountingVisitor(pmt::LiveHeap& heap) : heap_(heap) {}
    void on_event(const pmt::Event& e) override { heap_.apply(e); }

private:
    pmt::LiveHeap& heap_;
};

void fuzz_payload(const uint8_t* data, size_t size) {
    pmt::EventMerger merger;
    pmt::LiveHeap heap;
    CountingVisitor v(heap);
    try {
        merger.add_thread_payload(data, size);
        merger.release_before(UINT64_MAX, v);
    } catch (const pmt::TraceError&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const bool repair = (data[0] & 1) == 0;
    const bool stream_payload = (data[0] & 2) != 0;
    const uint16_t stream_version = (data[0] & 4) ? 3 : pmt::kStreamFormatVersion;
    ++data, --size;
    std::vector<uint8_t> bytes;
    if (size < sizeof pmt::kFileMagic ||
        std::memcmp(data, pmt::kFileMagic, sizeof pmt::kFileMagic) != 0) {
        if (!stream_payload || size > pmt::kMaxChunkPayload) {
            fuzz_payload(data, size);
            return 0;
        }
        pmt::TraceHeader h;
        h.version = stream_version;
        h.time_shift = pmt::kWriterTimeShift;
        h.tick_shift = pmt::kTickShift;
        bytes = pmt::encode_file_header(h);
        pmt::append_chunk(bytes, pmt::ChunkType::ThreadEvents, pmt::Codec::None, data, size);
    } else {
        bytes.assign(data, data + size);
    }
    static MemFile file;
    if (repair) repair_checksums(bytes);
    file.set(bytes);
    using namespace pmt::analyzer;
    try {
        ProcessOptions po;
        po.want_folded = true;
        po.timeline.max_points = 64;
        ProcessResult r = analyze_process(file.path(), po);
        std::string text = r.report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        std::vector<ProcessResult> procs;
        procs.push_back(std::move(r));
        MergedTimeline m = merge_timelines(procs, 64);
        text += process_tree_text(procs, m);
    } catch (const InputError&) {
        // Malformed input: the one-line error the command prints with exit status 2.
    }
    return 0;
}
