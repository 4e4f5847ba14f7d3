// The side ring (side_ring.hpp): events of signal handlers that interrupted a hook.
#include "side_ring.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <sys/auxv.h>

#include "recorder.hpp"

namespace pmt::preload {

__thread SideRing t_side __attribute__((tls_model("initial-exec")));

namespace {

std::atomic<uint64_t> g_lost{0};

// Executable segments of the objects whose nested calls are ours or the allocator's.
struct Range {
    uintptr_t lo, hi;
};
constexpr int kMaxRanges = 24;
Range g_ranges[kMaxRanges];
std::atomic<int> g_range_count{-1};  // -1: not known yet (then nothing goes to the ring)

struct Wanted {
    uintptr_t addr[6];
    int n = 0;
    int count = 0;
};

int add_object(dl_phdr_info* info, size_t, void* arg) {
    auto* w = static_cast<Wanted*>(arg);
    bool ours = false;
    for (int i = 0; i < info->dlpi_phnum && !ours; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD) continue;
        uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
        for (int k = 0; k < w->n; ++k)
            if (w->addr[k] >= lo && w->addr[k] < hi) ours = true;
    }
    if (!ours) return 0;
    for (int i = 0; i < info->dlpi_phnum && w->count < kMaxRanges; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
        uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
        g_ranges[w->count++] = Range{lo, lo + ph.p_memsz};
    }
    return 0;
}

bool is_ours(uintptr_t a) {
    int n = g_range_count.load(std::memory_order_acquire);
    for (int i = 0; i < n; ++i)
        if (a >= g_ranges[i].lo && a < g_ranges[i].hi) return true;
    return false;
}

// Drained events are timed when they enter the buffer: the flag is taken before the clock is
// read (FORMAT.md, the Epoch promise), and a thread's times never decrease. The handler ran
// between the hook's start and now: a few microseconds at most.
void emit_one(ThreadState* s, const SideEvent& e, uint64_t t) {
    switch (e.op) {
        case SideOp::Alloc:
            emit(s, [&](RecordWriter& enc) { return enc.alloc(e.kind, t, e.addr, e.size, 0); });
            break;
        case SideOp::Free:
            emit(s, [&](RecordWriter& enc) { return enc.free(t, e.addr); });
            break;
        case SideOp::Realloc:
            emit(s, [&](RecordWriter& enc) {
                return enc.realloc(e.kind, t, t, e.old_addr, e.addr, e.size, 0);
            });
            break;
        case SideOp::Mmap:
            emit(s, [&](RecordWriter& enc) {
                return enc.mmap(t, e.addr, e.size, e.prot, e.flags, e.fd, 0);
            });
            break;
        case SideOp::Munmap:
            emit(s, [&](RecordWriter& enc) { return enc.munmap(t, e.addr, e.size); });
            break;
        case SideOp::Mremap:
            emit(s, [&](RecordWriter& enc) {
                return enc.mremap(t, t, e.old_addr, e.old_size, e.addr, e.size, 0);
            });
            break;
    }
}

}  // namespace

void side_init() {
    Wanted w;
    w.addr[w.n++] = reinterpret_cast<uintptr_t>(&side_init);     // this library
    w.addr[w.n++] = reinterpret_cast<uintptr_t>(g_real.execve);  // libc
    w.addr[w.n++] = reinterpret_cast<uintptr_t>(g_real.malloc);  // the allocator
    w.addr[w.n++] = reinterpret_cast<uintptr_t>(g_real.mmap);    // whoever maps for us
    w.addr[w.n++] = static_cast<uintptr_t>(getauxval(AT_BASE));  // ld.so
    w.addr[w.n++] = reinterpret_cast<uintptr_t>(dlsym(RTLD_DEFAULT, "_Znwm"));  // libstdc++
    dl_iterate_phdr(add_object, &w);
    g_range_count.store(w.count, std::memory_order_release);
}

bool side_wanted(const void* caller) {
    return t_in_hook == kGuardHook && tracing() &&
           g_range_count.load(std::memory_order_relaxed) > 0 &&
           !is_ours(reinterpret_cast<uintptr_t>(caller));
}

void side_push(const SideEvent& e) {
    SideRing& r = t_side;
    uint32_t head = r.head;
    if (head - __atomic_load_n(&r.tail, __ATOMIC_RELAXED) >= SideRing::kSlots) {
        g_lost.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    r.slot[head % SideRing::kSlots] = e;
    __atomic_signal_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&r.head, head + 1, __ATOMIC_RELAXED);
}

void side_drain() {
    ErrnoGuard keep;
    SideRing& r = t_side;
    do {
        t_in_hook = kGuardHook;  // a handler interrupting the drain pushes too
        ThreadState* s = tracing() ? thread_state() : nullptr;
        if (s) acquire(s);
        uint64_t t = s ? now_ns() : 0;
        uint32_t head;
        while ((head = __atomic_load_n(&r.head, __ATOMIC_RELAXED)) != r.tail) {
            __atomic_signal_fence(__ATOMIC_ACQUIRE);
            // Tracing stopped meanwhile: nothing is recorded any more, nothing is lost.
            if (s) emit_one(s, r.slot[r.tail % SideRing::kSlots], t);
            __atomic_signal_fence(__ATOMIC_RELEASE);
            __atomic_store_n(&r.tail, r.tail + 1, __ATOMIC_RELAXED);
        }
        if (s) release(s);
        t_in_hook = 0;
    } while (PMT_UNLIKELY(side_pending()));  // a handler between the last look and here
}

uint64_t side_lost() { return g_lost.load(std::memory_order_relaxed); }

void side_fork_child() { g_lost.store(0); }

}  // namespace pmt::preload
