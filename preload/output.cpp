// The trace file: choosing its name (PYMEMTRACE_OUTPUT, a file or a directory), creating it
// safely (O_EXCL|O_NOFOLLOW, 0600, never clobbering: exec keeps the pid, so names get a
// numeric suffix), opening it again for each write cycle (by absolute path, checked to be the
// same file) and writing the file header (FORMAT.md, "File header").
#include "output.hpp"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "pmt/chunk.hpp"
#include "pyalloc.hpp"
#include "python_stack.hpp"
#include "runtime.hpp"

namespace pmt::preload {

namespace {

char g_path[PATH_MAX];
// g_path made absolute when the file was created: the program may chdir while we trace.
char g_abs_path[PATH_MAX];

void remember_absolute_path() {
    char cwd[PATH_MAX];
    if (g_path[0] == '/' || !getcwd(cwd, sizeof(cwd)) ||
        snprintf(g_abs_path, sizeof(g_abs_path), "%s/%s", cwd, g_path) >= PATH_MAX)
        snprintf(g_abs_path, sizeof(g_abs_path), "%s", g_path);
}

int create_exclusive(const char* path) {
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

// Tries stem + ext, then stem.1 + ext, stem.2 + ext ... while the name is taken.
int create_numbered(const char* stem, const char* ext, char* path_out) {
    for (int i = 0; i < 1000; ++i) {
        if (i == 0)
            snprintf(path_out, PATH_MAX, "%s%s", stem, ext);
        else
            snprintf(path_out, PATH_MAX, "%s.%d%s", stem, i, ext);
        int fd = create_exclusive(path_out);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

std::string read_small_file(const char* path) {
    std::string s;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return s;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0 && s.size() < (512u << 10))
        s.append(buf, static_cast<size_t>(n));
    close(fd);
    return s;
}

std::vector<std::string> read_argv() {
    std::vector<std::string> argv;
    std::string all = read_small_file("/proc/self/cmdline");
    size_t start = 0;
    while (start < all.size()) {
        size_t end = all.find('\0', start);
        if (end == std::string::npos) end = all.size();
        argv.emplace_back(all, start, end - start);
        start = end + 1;
    }
    return argv;
}

struct ObjectSearch {
    uintptr_t addr;
    const char* name;
};

int find_object(dl_phdr_info* info, size_t, void* data) {
    auto* search = static_cast<ObjectSearch*>(data);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph.p_vaddr;
        if (ph.p_type == PT_LOAD && search->addr - start < ph.p_memsz) {
            search->name = info->dlpi_name;
            return 1;
        }
    }
    return 0;
}

// The file of the object that holds addr, or "" when unknown. dl_iterate_phdr only compares
// segment bounds: dladdr also looks for the nearest symbol through all of libc's ~3,000
// (89 K instructions, a fifth of what the interposer adds to /bin/true, callgrind).
std::string object_file(const void* addr) {
    ObjectSearch search{reinterpret_cast<uintptr_t>(addr), nullptr};
    if (dl_iterate_phdr(find_object, &search) && search.name && *search.name) return search.name;
    Dl_info info{};  // the executable has no name there
    if (dladdr(addr, &info) && info.dli_fname) return info.dli_fname;
    return std::string();
}

// Which library serves malloc for us: the one dlsym(RTLD_NEXT) found. Worked out once: a fork
// child has the same (and must not walk the loader's lists, whose lock another thread of the
// parent may have held at the fork).
char g_allocator[64];

std::string detect_allocator() {
    if (g_allocator[0]) return g_allocator;
    std::string lib = g_real.malloc ? object_file(reinterpret_cast<void*>(g_real.malloc)) : "";
    std::string name;
    if (lib.empty())
        name = "unknown";
    else if (lib.find("jemalloc") != std::string::npos)
        name = "jemalloc";
    else if (lib.find("mimalloc") != std::string::npos)
        name = "mimalloc";
    else {
        std::string base = lib.substr(lib.rfind('/') + 1);
        name = base.rfind("libc.so", 0) == 0 || base.rfind("libc-", 0) == 0 ? "glibc" : base;
    }
    if (name.size() < sizeof(g_allocator)) memcpy(g_allocator, name.c_str(), name.size() + 1);
    return name;
}

}  // namespace

int open_trace_output(pid_t pid) {
    const char* env = secure_getenv("PYMEMTRACE_OUTPUT");
    std::string dir = ".";
    struct stat st;
    int fd = -1;
    if (env && *env && !(stat(env, &st) == 0 && S_ISDIR(st.st_mode))) {
        // A file name: the first process takes it; children and exec'd programs, which
        // inherit the variable, take <stem>.<pid>[.N].pmt next to it.
        std::string path = env;
        snprintf(g_path, sizeof(g_path), "%s", path.c_str());
        fd = create_exclusive(g_path);
        if (fd < 0 && errno == EEXIST) {
            bool has_ext = path.size() > 4 && path.compare(path.size() - 4, 4, ".pmt") == 0;
            std::string stem = has_ext ? path.substr(0, path.size() - 4) : path;
            stem += "." + std::to_string(pid);
            fd = create_numbered(stem.c_str(), ".pmt", g_path);
        }
    } else {
        if (env && *env) dir = env;
        std::string stem = dir + "/pymemtrace-" + std::to_string(pid);
        fd = create_numbered(stem.c_str(), ".pmt", g_path);
    }
    if (fd < 0) {
        say("pymemtrace: cannot create the trace file %s (%s); running untraced", g_path,
            strerror(errno));
        return fd;
    }
    remember_absolute_path();
    return fd;
}

// O_NONBLOCK: a FIFO put in place of our file must not block the writer (it fails with ENXIO
// or opens, and then is not our file); it is cleared again for our regular file.
int reopen_trace_output(const FileId& id) {
    int fd = open(g_abs_path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return -1;
    if (!(file_id(fd) == id)) {
        close(fd);
        errno = ESTALE;
        return -1;
    }
    fcntl(fd, F_SETFL, O_APPEND);
    return fd;
}

bool trace_path_names(const FileId& id) {
    struct stat st;
    return lstat(g_abs_path, &st) == 0 && S_ISREG(st.st_mode) &&
           FileId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)} == id;
}

FileId file_id(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return FileId{};
    return FileId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

const char* trace_path() { return g_path; }

bool write_header(int fd, pid_t pid, pid_t ppid, bool forked, uint64_t start_wall_ns) {
    TraceHeader h;
    h.pid = static_cast<uint64_t>(pid);
    h.ppid = static_cast<uint64_t>(ppid);
    h.argv = read_argv();
    h.start_wall_ns = start_wall_ns;
    h.python_version = python_version();
    h.allocator = detect_allocator();
    h.page_size = g_settings.page_size;
    h.rss_interval_ms = g_settings.rss_interval_ms;
    h.flush_interval_ms = g_settings.flush_interval_ms;
    h.flags = pyalloc_active() ? kFlagPythonAllocators : 0;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    h.exe = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string();
    h.forked = forked;
    h.version = kStreamFormatVersion;  // one event stream (FORMAT.md, "Version 3", "Version 4")
    h.time_shift = kWriterTimeShift;
    h.tick_shift = kTickShift;
    std::vector<uint8_t> bytes = encode_file_header(h);
    const uint8_t* p = bytes.data();
    size_t left = bytes.size();
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            say("pymemtrace: cannot write the trace file %s (%s); running untraced", g_path,
                strerror(errno));
            return false;
        }
        p += w;
        left -= static_cast<size_t>(w);
    }
    return true;
}

}  // namespace pmt::preload
