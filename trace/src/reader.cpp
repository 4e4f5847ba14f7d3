// TraceReader: streams a trace file chunk by chunk (FORMAT.md), checking the header, every
// chunk's checksum and the end record. Versions 1 and 2: feeds thread payloads to an
// EventMerger that releases events in time order at each epoch. Versions 3 and 4: feed the stream
// payloads, in file order, to a StreamDecoder that hands their events over as it decodes them.
// Never loads the whole file.
#include "pmt/reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "column_stream_reader.hpp"
#include "stream_decoder.hpp"
#include "varint.hpp"

namespace pmt {

using detail::get_u16;
using detail::get_u32;

namespace {

struct FileCloser {
    void operator()(FILE* f) const { std::fclose(f); }
};

}  // namespace

struct TraceReader::Impl {
    std::string path;
    std::unique_ptr<FILE, FileCloser> file;
    TraceHeader header;
    EventMerger merger{true};                       // versions 1 and 2
    std::unique_ptr<detail::StreamDecoder> stream;  // versions 3 and 4
    uint64_t file_bytes = 0;
    bool regular = true;  // a pipe has no size to check lengths against (64 MiB cap only)
    std::atomic<uint64_t> offset{0};  // bytes consumed; read by progress displays
    bool read_called = false;
    bool has_end = false;
    bool truncated = false;
    std::string reason;
    EndSummary end;

    [[noreturn]] void fail(const std::string& what) const { throw TraceError(path + ": " + what); }
    [[noreturn]] void fail_at(uint64_t at, const std::string& what) const {
        fail("chunk at byte offset " + std::to_string(at) + ": " + what);
    }

    // Reads exactly n bytes unless the file ends first; returns how many were read.
    size_t read_some(uint8_t* dst, size_t n) {
        size_t got = n ? std::fread(dst, 1, n, file.get()) : 0;
        if (got < n && std::ferror(file.get()))
            fail(std::string("read error: ") + std::strerror(errno));
        offset += got;
        return got;
    }

    void open();
    void read_header();
};

void TraceReader::Impl::open() {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail(std::string("cannot open: ") + std::strerror(errno));
    file.reset(f);
    struct stat st;
    if (fstat(fileno(f), &st) == 0) {
        if (S_ISDIR(st.st_mode)) fail("is a directory, not a trace file");
        file_bytes = static_cast<uint64_t>(st.st_size);
        regular = S_ISREG(st.st_mode);
    }
    // Large stdio buffer: chunk headers and small chunks are read without a syscall each.
    std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
}

void TraceReader::Impl::read_header() {
    uint8_t fixed[kFileHeaderFixedBytes];
    size_t got = read_some(fixed, sizeof fixed);
    if (got < sizeof kFileMagic || std::memcmp(fixed, kFileMagic, sizeof kFileMagic) != 0)
        fail("not a pymemtrace trace");
    if (got < sizeof fixed)
        fail("trace header is incomplete (the process stopped while it was starting)");
    uint16_t version = get_u16(fixed + 8);
    if (version < kOldestReadableVersion || version > kNewestReadableVersion)
        fail("unsupported trace format version " + std::to_string(version) +
             " (this pymemtrace reads versions " + std::to_string(kOldestReadableVersion) + " to " +
             std::to_string(kNewestReadableVersion) + ")");
    uint32_t n = get_u32(fixed + 12);
    if (n > kMaxHeaderPayload)
        fail("corrupt header: payload length " + std::to_string(n) + " over the 1 MiB limit");
    std::vector<uint8_t> buf(kFileHeaderFixedBytes + n + 4);
    std::memcpy(buf.data(), fixed, sizeof fixed);
    if (read_some(buf.data() + sizeof fixed, n + 4) < n + 4)
        fail("trace header is incomplete (the process stopped while it was starting)");
    if (crc32c(buf.data(), kFileHeaderFixedBytes + n) !=
        get_u32(buf.data() + kFileHeaderFixedBytes + n))
        fail("header checksum mismatch (corrupt trace)");
    try {
        header = decode_header_payload(buf.data() + kFileHeaderFixedBytes, n);
    } catch (const TraceError& e) {
        fail(e.what());
    }
    header.version = version;
    // (decode_header_payload has refused a time resolution over 2^40 ns.)
    if (version >= kFirstStreamFormatVersion)
        stream = std::make_unique<detail::StreamDecoder>(static_cast<unsigned>(header.time_shift),
                                                         version);
}

TraceReader::TraceReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
    impl_->path = path;
    impl_->open();
    impl_->read_header();
}

TraceReader::~TraceReader() = default;

void TraceReader::read(EventVisitor& v) {
    Impl& m = *impl_;
    if (m.read_called) m.fail("read() called twice");
    m.read_called = true;
    std::vector<uint8_t> stored, raw;
    detail::ColumnStreamReader decoder;  // zstd stream context carried from chunk to chunk
    bool cut = false;                    // the last chunk was incomplete
    for (;;) {
        uint64_t at = m.offset;
        uint8_t head[kChunkHeaderBytes];
        size_t got = m.read_some(head, sizeof head);
        if (got == 0) break;
        if (got < sizeof head) {
            cut = true;
            break;
        }
        ChunkHeader h;
        try {
            h = parse_chunk_header(head);
        } catch (const TraceError& e) {
            m.fail_at(at, e.what());
        }
        // Allocate only what the file can hold: a chunk running past the end is a cut, and
        // a hostile length must not reserve memory the file does not back.
        uint64_t end = at + kChunkHeaderBytes + h.stored_len;
        if (m.regular && end > m.file_bytes) {
            struct stat st;  // the file may still be growing (a live process)
            if (fstat(fileno(m.file.get()), &st) == 0)
                m.file_bytes = static_cast<uint64_t>(st.st_size);
        }
        if (m.regular && end > m.file_bytes) {
            cut = true;
            break;
        }
        stored.resize(h.stored_len);
        if (m.read_some(stored.data(), h.stored_len) < h.stored_len) {
            cut = true;
            break;
        }
        if (chunk_crc(head, stored.data(), h.stored_len) != h.crc)
            m.fail_at(at, "checksum mismatch (corrupt trace)");
        try {
            // A stream chunk comes as its column form, decoded straight into events.
            if (m.stream) {
                // Versions 3 and 4: a thread-events chunk is the next piece of the one event stream
                // (whatever its codec); epochs mean nothing (file order is event order).
                if (h.type == ChunkType::ThreadEvents) {
                    const bool columns = decoder.decode(h, stored.data(), raw);
                    m.stream->decode(raw.data(), raw.size(), v);
                    if (columns) decoder.end_stream_chunk();
                } else if (h.type == ChunkType::End) {
                    decoder.decode(h, stored.data(), raw);
                    m.end = decode_end_payload(raw.data(), raw.size());
                    m.has_end = true;
                }
                continue;
            }
            const bool columns = decoder.decode(h, stored.data(), raw);
            switch (h.type) {
                case ChunkType::ThreadEvents:
                    if (columns) {
                        m.merger.add_thread_columns(raw.data(), raw.size());
                        decoder.end_stream_chunk();
                    } else {
                        m.merger.add_thread_payload(raw.data(), raw.size());
                    }
                    break;
                case ChunkType::Epoch:
                    m.merger.release_before(decode_epoch_payload(raw.data(), raw.size()), v);
                    break;
                case ChunkType::End:
                    m.end = decode_end_payload(raw.data(), raw.size());
                    m.has_end = true;
                    break;
            }
        } catch (const TraceError& e) {
            m.fail_at(at, e.what());
        }
    }
    m.merger.release_before(UINT64_MAX, v);
    if (!m.regular) m.file_bytes = m.offset;
    if (cut) {
        char msg[160];
        std::snprintf(msg, sizeof msg,
                      "trace truncated at t=%.3f s: the process stopped before its last chunk "
                      "was complete",
                      static_cast<double>(last_time_ns()) / 1e9);
        m.truncated = true;
        m.reason = msg;
    } else if (!m.has_end) {
        m.truncated = true;
        m.reason = "no end record: the process was killed or is still running";
    }
}

const TraceHeader& TraceReader::header() const { return impl_->header; }
const std::string& TraceReader::path() const { return impl_->path; }
bool TraceReader::truncated() const { return impl_->truncated; }
const std::string& TraceReader::truncation_reason() const { return impl_->reason; }
uint64_t TraceReader::last_time_ns() const {
    return impl_->stream ? impl_->stream->last_time_ns() : impl_->merger.last_time_ns();
}
uint64_t TraceReader::events() const {
    return impl_->stream ? impl_->stream->delivered() : impl_->merger.delivered();
}
bool TraceReader::has_end() const { return impl_->has_end; }
const EndSummary& TraceReader::end() const { return impl_->end; }
uint64_t TraceReader::file_bytes() const { return impl_->file_bytes; }
uint64_t TraceReader::bytes_read() const { return impl_->offset; }

std::string_view TraceReader::string(uint64_t id) const {
    return impl_->stream ? impl_->stream->definitions().string(id) : impl_->merger.string(id);
}
const Location* TraceReader::location(uint64_t id) const {
    return impl_->stream ? impl_->stream->definitions().location(id) : impl_->merger.location(id);
}
const StackNode* TraceReader::stack(uint64_t id) const {
    return impl_->stream ? impl_->stream->definitions().stack(id) : impl_->merger.stack(id);
}
std::string_view TraceReader::thread_name(uint32_t tid) const {
    return impl_->stream ? impl_->stream->definitions().thread_name(tid)
                         : impl_->merger.thread_name(tid);
}

std::vector<Frame> TraceReader::frames(uint64_t stack_id, size_t max_depth) const {
    std::vector<Frame> out;
    // max_depth also ends a cycle in a corrupt trace's parent links.
    for (const StackNode* s = stack(stack_id); s && out.size() < max_depth; s = stack(s->parent)) {
        Frame f;
        if (const Location* l = location(s->location)) {
            f.file = string(l->file);
            f.function = string(l->function);
            f.line = l->line;
        }
        out.push_back(f);
    }
    return out;
}

}  // namespace pmt
