// Event stream encoder (pmt/stream_encoder.hpp; FORMAT.md, "Version 4" and "Version 3").
#include "pmt/stream_encoder.hpp"

#include <cstring>

#include "pmt/varint.hpp"

namespace pmt {

namespace {

constexpr size_t kInitialColumn = 4096;

using detail::varint_len;

}  // namespace

StreamEncoder::StreamEncoder(unsigned time_shift, unsigned tick_shift, uint16_t version,
                             bool check_frees)
    : time_shift_(time_shift > 40 ? 40 : time_shift),
      tick_(uint64_t(1) << (tick_shift > kMaxTickShift ? kMaxTickShift : tick_shift)),
      v3_(version == kFirstStreamFormatVersion),
      check_frees_(check_frees || v3_) {
    set_tick_at();
}

void StreamEncoder::set_tick_at() {
    // c = t_ns >> k ticks iff c >= t_ and c - t_ >= 2^m, i.e. c >= t_ + 2^m (when that sum
    // does not wrap), i.e. t_ns >= (t_ + 2^m) << k (when that fits).
    const uint64_t c = t_ + tick_;
    tick_at_ns_ = c < t_ || c > (UINT64_MAX >> time_shift_) ? UINT64_MAX : c << time_shift_;
}

void StreamEncoder::time_slow(uint64_t t_ns) {
    const uint64_t c = t_ns >> time_shift_;
    if (c >= t_ && c - t_ >= tick_) tick(c);
}

StreamEncoder::~StreamEncoder() = default;

void StreamEncoder::grow(Column& c, size_t need) {
    const size_t used = c.size();
    size_t n = c.capacity() < kInitialColumn ? kInitialColumn : c.capacity() * 2;
    while (n - used < need) n *= 2;
    set_capacity(c, n);
}

void StreamEncoder::reserve(size_t bytes) {
    for (Column& c : cols_)
        if (c.capacity() < bytes) set_capacity(c, bytes < kInitialColumn ? kInitialColumn : bytes);
}

// The column's bytes moved to a new array of n >= kInitialColumn bytes (not zero-filled).
void StreamEncoder::set_capacity(Column& c, size_t n) {
    const size_t used = c.size();
    std::unique_ptr<uint8_t[]> b(new uint8_t[n]);
    if (used) std::memcpy(b.get(), c.buf.get(), used);
    c.buf = std::move(b);
    c.w = c.buf.get() + used;
    c.end = c.buf.get() + n;
    c.lim = c.end - (kVarintMax - 1);
}

void StreamEncoder::address(uint64_t addr) {
    put(kAddrs, detail::zigzag(static_cast<int64_t>(addr - a_)));
    a_ = addr;
}

uint32_t StreamEncoder::switch_thread(uint32_t tid) {
    confirm();
    uint32_t index = tids_.find(tid);
    op(uint8_t(Op3::Thread));
    if (index == detail::TidTable::kNone) {
        index = static_cast<uint32_t>(threads_.size());
        tids_.insert(tid, index);  // before the push: a failure leaves no half-made thread
        threads_.emplace_back();
        threads_.back().tid = tid;
        n_threads_ = static_cast<uint32_t>(threads_.size());
        put(kOther, index);
        put(kOther, tid);
    } else {
        put(kOther, index);
    }
    cur_ = index;
    cur_key_ = tid;
    return index;
}

void StreamEncoder::tick(uint64_t c) {
    confirm();
    op(uint8_t(Op3::Tick));
    put(kTimes, c - t_);
    t_ = c;
    set_tick_at();
}

void StreamEncoder::write_alloc() { write_pending(); }

void StreamEncoder::alloc_checked(uint64_t seq) {
    if (!has_cur()) return;  // without a thread: the caller's bug
    Thread& th = threads_[cur_];
    if (v3_) {
        th.live.add(seq);
        return;
    }
    if (check_frees_) live_.add(seq);
    th.next_alloc = seq + 1;
    ++th.live_count;
}

bool StreamEncoder::free_checked(Thread& th, uint64_t seq, uint64_t* r) {
    if (v3_) {
        *r = rank_code(th, seq);
        return *r != LiveRank::kNotLive;
    }
    if (!live_.remove(seq)) return false;
    *r = free_code(th, seq);
    return true;
}

void StreamEncoder::free_unknown(uint64_t addr, AllocKind kind) {
    confirm();
    op(op3_free(Op3::FreeUnknown, kind));
    address(addr);
}

void StreamEncoder::mmap(uint64_t addr, uint64_t length, uint64_t prot, uint64_t flags, int64_t fd,
                         uint64_t stack) {
    confirm();
    op(uint8_t(Op3::Mmap));
    address(addr);
    put(kSizes, length);
    put(kOther, prot);
    put(kOther, flags);
    put(kOther, detail::zigzag(fd));
    put(kStacks, stack);
}

void StreamEncoder::munmap(uint64_t addr, uint64_t length) {
    confirm();
    op(uint8_t(Op3::Munmap));
    address(addr);
    put(kSizes, length);
}

void StreamEncoder::mremap(uint64_t old_addr, uint64_t old_length, uint64_t new_addr,
                           uint64_t new_length, uint64_t stack) {
    confirm();
    op(uint8_t(Op3::Mremap));
    address(old_addr);
    put(kSizes, old_length);
    address(new_addr);
    put(kSizes, new_length);
    put(kStacks, stack);
}

void StreamEncoder::rss(uint64_t bytes) {
    confirm();
    op(uint8_t(Op3::Rss));
    put(kOther, bytes);
}

void StreamEncoder::string(uint64_t id, const char* s, size_t n) {
    confirm();
    op(uint8_t(Op3::String));
    put(kOther, id);
    put(kOther, n);
    uint8_t* p = room(kOther, n);
    if (n) std::memcpy(p, s, n);
    cols_[kOther].w = p + n;
}

void StreamEncoder::location(uint64_t id, uint64_t file_id, uint64_t function_id, uint64_t line) {
    confirm();
    op(uint8_t(Op3::Location));
    put(kOther, id);
    put(kOther, file_id);
    put(kOther, function_id);
    put(kOther, line);
}

void StreamEncoder::stack(uint64_t id, uint64_t parent, uint64_t location) {
    confirm();
    op(uint8_t(Op3::Stack));
    put(kOther, id);
    put(kOther, parent);
    put(kOther, location);
}

void StreamEncoder::thread_name(uint64_t string_id) {
    confirm();
    op(uint8_t(Op3::ThreadName));
    put(kOther, string_id);
}

uint64_t StreamEncoder::rank_code(Thread& owner, uint64_t seq) {
    const uint64_t n = owner.live.size();
    const uint64_t i = owner.live.remove(seq);
    if (i == LiveRank::kNotLive) return i;
    const uint64_t j = n - 1 - i;
    return i <= j ? 2 * i : 2 * j + 1;
}

uint64_t StreamEncoder::live_blocks(uint32_t thread) const {
    if (thread >= threads_.size()) return 0;
    return v3_ ? threads_[thread].live.size() : threads_[thread].live_count;
}

size_t StreamEncoder::pending_bytes() const {
    size_t lens[kCols];
    for (size_t i = 0; i < kCols; ++i) lens[i] = cols_[i].size();
    if (pending_) {
        lens[kOps] += 1;
        lens[kSizes] += varint_len(pend_.size);
        lens[kStacks] += varint_len(pend_.stack);
    }
    if (lens[kOps] == 0) return 0;
    size_t total = 0;
    for (size_t l : lens) total += varint_len(l) + l;
    return total;
}

size_t StreamEncoder::finish(ByteSpan* out) {
    confirm();
    if (cols_[kOps].size() == 0) return 0;  // every record has an opcode
    uint8_t* h = head_;
    for (size_t i = 0; i < kCols; ++i) h = detail::put_varint(h, cols_[i].size());
    out[0] = ByteSpan{head_, static_cast<size_t>(h - head_)};
    for (size_t i = 0; i < kCols; ++i) {
        out[1 + i] = ByteSpan{cols_[i].buf.get(), cols_[i].size()};
        cols_[i].w = cols_[i].buf.get();  // the bytes stay valid until the next write
    }
    return kPieces;
}

}  // namespace pmt
