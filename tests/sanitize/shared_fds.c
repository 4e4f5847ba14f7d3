/* The sanitized stress program runs the interposer's threads on the process's descriptor table
   (preload/private_fds.cpp then keeps them there, as on a kernel that refuses both ways to
   unshare it). A sanitizer assumes one table per process: its log file and its symbolizer's
   pipe are descriptors of that table, so a report made on a thread with a table of its own is
   lost (seen: every write EBADF) or lands in whatever file that table has under the same
   number, and TSan, which tracks descriptors by number, reports the writer's write() and the
   sampler's close() of their own, different, descriptor 3 as a data race.
   The interposer's objects call these instead of syscall and unshare (objcopy renames them). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/close_range.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

long pmt_san_syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; ++i) a[i] = va_arg(ap, long); /* as glibc's syscall() reads them */
    va_end(ap);
#ifdef SYS_close_range
    if (number == SYS_close_range && (a[2] & CLOSE_RANGE_UNSHARE)) {
        errno = ENOSYS;
        return -1;
    }
#endif
    return syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int pmt_san_unshare(int flags) {
    if (flags & CLONE_FILES) {
        errno = EPERM;
        return -1;
    }
    return unshare(flags);
}
