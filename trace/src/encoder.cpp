// RecordEncoder: writes thread-events records (FORMAT.md, "Thread events chunk") into a buffer
// the caller owns. Runs inside the interposer's malloc hooks: no allocation, no lock, no
// syscall, no exception. A record that does not fit leaves the buffer untouched.
#include "pmt/encoder.hpp"

#include <cstring>

#include "varint.hpp"

namespace pmt {

using detail::put_varint;
using detail::zigzag;

namespace {

// Where a record is built when the buffer may be too short for it.
struct Scratch {
    uint8_t bytes[kMaxRecordBytes];
};

// Builds one record, then commits it only if it fits. Records are at most kMaxRecordBytes,
// so when that much room is left it is written straight into the buffer. The scratch area
// is the caller's local, not a member: a member array written through uint8_t* would alias
// this object and keep its running time and address out of registers (2x slower).
class Rec {
public:
    Rec(uint8_t* pos, uint8_t* end, uint64_t t, uint64_t a, uint64_t time_mask, Scratch& scratch)
        : direct_(static_cast<size_t>(end - pos) >= kMaxRecordBytes),
          scratch_(scratch.bytes),
          out_(direct_ ? pos : scratch_),
          p_(out_),
          t_(t),
          a_(a),
          time_mask_(time_mask) {}

    void op(Op o) { *p_++ = static_cast<uint8_t>(o); }
    void u8(uint8_t v) { *p_++ = v; }
    void v(uint64_t x) { p_ = put_varint(p_, x); }
    // Times are rounded down to the trace's resolution (FORMAT.md): t_ is always a multiple.
    // A time going backwards would wrap to a huge delta and reorder the stream: clamp it.
    void dt(uint64_t t) {
        t &= time_mask_;
        uint64_t d = t > t_ ? t - t_ : 0;
        t_ += d;
        v(d);
    }
    void addr(uint64_t a) {
        v(zigzag(static_cast<int64_t>(a - a_)));
        a_ = a;
    }
    size_t size() const { return static_cast<size_t>(p_ - out_); }

    // Returns false (buffer unchanged) when the record does not fit.
    bool commit(uint8_t*& pos, uint8_t* end, uint64_t& t, uint64_t& a) {
        size_t n = size();
        if (!direct_) {
            if (n > static_cast<size_t>(end - pos)) return false;
            std::memcpy(pos, scratch_, n);
        }
        pos += n;
        t = t_;
        a = a_;
        return true;
    }

private:
    bool direct_;
    uint8_t* scratch_;
    uint8_t* out_;
    uint8_t* p_;
    uint64_t t_;
    uint64_t a_;
    uint64_t time_mask_;
};

}  // namespace

void RecordEncoder::reset(uint8_t* buf, size_t capacity, uint64_t tid, uint64_t base_time_ns,
                          unsigned time_shift) {
    begin_ = pos_ = buf;
    end_ = buf + capacity;
    if (time_shift > 40) time_shift = 40;  // FORMAT.md's limit; also keeps the shift defined
    time_mask_ = ~((uint64_t(1) << time_shift) - 1);
    base_time_ns &= time_mask_;
    last_t_ = base_time_ns;
    last_addr_ = 0;
    if (capacity < 20) {  // no room even for tid and base time: every record will fail
        end_ = pos_;
        records_begin_ = pos_;
        return;
    }
    pos_ = put_varint(pos_, tid);
    pos_ = put_varint(pos_, base_time_ns);
    records_begin_ = pos_;
}

bool RecordEncoder::alloc_near_end(AllocKind kind, uint64_t t, uint64_t addr, uint64_t size,
                                   uint64_t stack) {
    Scratch scratch;
    Rec r(pos_, end_, last_t_, last_addr_, time_mask_, scratch);
    r.op(Op::Alloc);
    r.u8(static_cast<uint8_t>(kind));
    r.dt(t);
    r.addr(addr);
    r.v(size);
    r.v(stack);
    return r.commit(pos_, end_, last_t_, last_addr_);
}

bool RecordEncoder::free_near_end(uint64_t t, uint64_t addr) {
    Scratch scratch;
    Rec r(pos_, end_, last_t_, last_addr_, time_mask_, scratch);
    r.op(Op::Free);
    r.dt(t);
    r.addr(addr);
    return r.commit(pos_, end_, last_t_, last_addr_);
}

bool RecordEncoder::realloc(AllocKind kind, uint64_t t_before, uint64_t t_after, uint64_t old_addr,
                            uint64_t new_addr, uint64_t size, uint64_t stack) {
    Scratch scratch;
    Rec r(pos_, end_, last_t_, last_addr_, time_mask_, scratch);
    r.op(Op::Realloc);
    r.u8(static_cast<uint8_t>(kind));
    r.dt(t_before);
    r.dt(t_after);
    r.addr(old_addr);
    r.addr(new_addr);
    r.v(size);
    r.v(stack);
    return r.commit(pos_, end_, last_t_, last_addr_);
}

bool RecordEncoder::mmap(uint64_t t, uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags,
                         int64_t fd, uint64_t stack) {
    Scratch scratch;
    Rec r(pos_, end_, last_t_, last_addr_, time_mask_, scratch);
    r.op(Op::Mmap);
    r.dt(t);
    r.addr(addr);
    r.v(length);
    r.v(prot);
    r.v(flags);
    r.v(zigzag(fd));
    r.v(stack);
    return r.commit(pos_, end_, last_t_, last_addr_);
}

bool RecordEncoder::munmap(uint64_t t, uint64_t addr, uint64_t length) {
    Scratch scratch;
    Rec r(pos_, end_, last_t_, last_addr_, time_mask_, scratch);
    r.op(Op::Munmap);
    r.dt(t);
    r.addr(addr);
    r.v(length);
    return r.commit(pos_, end_, last_t_, last_addr_);
}

bool RecordEncoder::mremap(uint64_t t_before, uint64_t t_after, uint64_t old_addr,
                           uint64_t old_length, uint64_t new_addr, uint64_t new_length,
                           uint64_t stack) {
    Scratch scratch;
    Rec r(pos_, end_, last_t_, last_addr_, time_mask_, scratch);
    r.op(Op::Mremap);
    r.dt(t_before);
    r.dt(t_after);
    r.addr(old_addr);
    r.v(old_length);
    r.addr(new_addr);
    r.v(new_length);
    r.v(stack);
    return r.commit(pos_, end_, last_t_, last_addr_);
}

bool RecordEncoder::rss(uint64_t t, uint64_t rss_bytes) {
    Scratch scratch;
    Rec r(pos_, end_, last_t_, last_addr_, time_mask_, scratch);
    r.op(Op::Rss);
    r.dt(t);
    r.v(rss_bytes);
    return r.commit(pos_, end_, last_t_, last_addr_);
}

bool RecordEncoder::string(uint64_t id, const char* s, size_t n) {
    // Variable length: check the exact size before writing anything.
    uint8_t head[1 + 10 + 10];
    uint8_t* h = head;
    *h++ = static_cast<uint8_t>(Op::String);
    h = put_varint(h, id);
    h = put_varint(h, n);
    size_t hn = static_cast<size_t>(h - head);
    size_t room = static_cast<size_t>(end_ - pos_);
    if (hn > room || n > room - hn) return false;
    std::memcpy(pos_, head, hn);
    if (n) std::memcpy(pos_ + hn, s, n);
    pos_ += hn + n;
    return true;
}

bool RecordEncoder::location(uint64_t id, uint64_t file_id, uint64_t function_id, uint64_t line) {
    Scratch scratch;
    Rec r(pos_, end_, last_t_, last_addr_, time_mask_, scratch);
    r.op(Op::Location);
    r.v(id);
    r.v(file_id);
    r.v(function_id);
    r.v(line);
    return r.commit(pos_, end_, last_t_, last_addr_);
}

bool RecordEncoder::stack(uint64_t id, uint64_t parent_id, uint64_t location_id) {
    Scratch scratch;
    Rec r(pos_, end_, last_t_, last_addr_, time_mask_, scratch);
    r.op(Op::Stack);
    r.v(id);
    r.v(parent_id);
    r.v(location_id);
    return r.commit(pos_, end_, last_t_, last_addr_);
}

bool RecordEncoder::thread_name(uint64_t string_id) {
    Scratch scratch;
    Rec r(pos_, end_, last_t_, last_addr_, time_mask_, scratch);
    r.op(Op::ThreadName);
    r.v(string_id);
    return r.commit(pos_, end_, last_t_, last_addr_);
}

}  // namespace pmt
