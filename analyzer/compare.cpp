// `pymemtrace compare`: runs one command under each allocator backend, interleaved (A B C A B C)
// so that drift in the machine's load spreads over all backends, keeps every trace and stdout in
// one directory, then measures (compare_measure.cpp) and renders (compare_render/_html.cpp).
#include "compare.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.hpp"

namespace pmt::analyzer {
namespace fs = std::filesystem;

namespace {

std::vector<Backend> parse_backends(const std::string& list) {
    std::vector<Backend> out;
    std::istringstream in(list);
    std::string name;
    while (std::getline(in, name, ',')) {
        if (name.empty()) continue;
        const auto b = parse_backend(name);
        if (!b)
            throw UsageError("unknown allocator '" + name +
                             "' (choose from glibc, jemalloc, mimalloc)");
        for (Backend seen : out)
            if (seen == *b) throw UsageError("allocator '" + name + "' is listed twice");
        out.push_back(*b);
    }
    if (out.empty()) throw UsageError("--allocators names no allocator");
    return out;
}

// Proves the directory takes new files by making one, rather than trusting access(): root passes
// access() checks on read-only file systems too.
void require_writable(const fs::path& dir) {
    std::string probe = (dir / ".pymemtrace-probe-XXXXXX").string();
    const int fd = mkstemp(probe.data());
    if (fd < 0) throw UsageError("cannot write to " + dir.string() + ": " + std::strerror(errno));
    close(fd);
    unlink(probe.c_str());
}

fs::path prepare_directory(const std::string& requested) {
    fs::path dir;
    if (!requested.empty()) {
        dir = requested;
    } else {
        char stamp[32];
        const std::time_t now = std::time(nullptr);
        std::tm tm{};
        localtime_r(&now, &tm);
        std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        dir = std::string("pymemtrace-compare-") + stamp;
        for (int n = 2; fs::exists(dir); ++n)
            dir = std::string("pymemtrace-compare-") + stamp + "-" + std::to_string(n);
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir))
        throw UsageError("cannot use " + dir.string() + " as the output directory: " +
                         (ec ? ec.message() : std::string("not a directory")));
    require_writable(dir);
    return dir;
}

uint64_t file_size_or_zero(const std::string& path) {
    std::error_code ec;
    const auto n = fs::file_size(path, ec);
    return ec ? 0 : static_cast<uint64_t>(n);
}

RunRecord run_once(const std::vector<std::string>& command, Backend b, int round,
                   const fs::path& dir) {
    RunRecord rec;
    rec.backend = b;
    rec.round = round;
    // A directory per run: a wrapper that execs the job (env, sh -c) or child processes leave
    // several traces, each named by the interposer.
    const fs::path run_dir = dir / (std::string(backend_name(b)) + "-" + std::to_string(round));
    std::error_code ec;
    fs::remove_all(run_dir, ec);
    if (!fs::create_directory(run_dir, ec))
        throw UsageError("cannot create " + run_dir.string() + ": " + ec.message());
    rec.directory = run_dir.string();
    rec.stdout_path = (run_dir / "stdout.txt").string();

    LaunchSpec spec;
    spec.argv = command;
    spec.backend = b;
    spec.output = rec.directory;  // exists, so the interposer names the files inside
    spec.quiet = true;            // compare prints its own progress; one exit line per run is noise
    spec.stdout_path = rec.stdout_path;
    // Every run must see the same input: ours would be consumed by the first one.
    spec.stdin_path = "/dev/null";
    const LaunchResult r = launch(spec);
    rec.exit_code = r.exit_code;
    rec.wall_s = r.wall_s;
    rec.max_rss_bytes = static_cast<uint64_t>(r.usage.ru_maxrss) * 1024;  // Linux reports KiB
    rec.minor_faults = static_cast<uint64_t>(r.usage.ru_minflt);
    rec.output_bytes = file_size_or_zero(rec.stdout_path);
    return rec;
}

std::string render(const CompareResult& r, const std::string& format) {
    if (format == "json")
        return render_json(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    if (format == "markdown") return render_markdown(r);
    if (format == "html") return render_html(r);
    return render_table(r);
}

}  // namespace

void add_compare_command(CLI::App& app) {
    struct Options {
        std::string allocators = "glibc,jemalloc,mimalloc";
        int repeat = 3;
        std::string directory;
        std::string format = "table";
        std::vector<std::string> command;
    };
    auto opt = std::make_shared<Options>();
    CLI::App* sub = app.add_subcommand(
        "compare",
        "Run a command under several allocators (interleaved) and compare wall time, peak live\n"
        "bytes, peak RSS, RSS/live at the peak, page faults and allocation calls.");
    sub->add_option("--allocators", opt->allocators, "comma-separated: glibc,jemalloc,mimalloc")
        ->capture_default_str();
    sub->add_option("--repeat", opt->repeat, "runs per allocator")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    sub->add_option("-o,--output", opt->directory,
                    "directory for the traces and each run's stdout "
                    "(default: a new ./pymemtrace-compare-<timestamp>)");
    sub->add_option("--format", opt->format, "output format")
        ->check(CLI::IsMember({"table", "json", "markdown", "html"}))
        ->capture_default_str();
    sub->add_option("command", opt->command, "the command and its arguments (after --)")
        ->required();
    sub->positionals_at_end();
    sub->callback([opt] {
        const std::vector<Backend> backends = parse_backends(opt->allocators);
        // Every library must be there before the first run starts, not after the first backend.
        preload_library();
        for (Backend b : backends) backend_library(b);
        const fs::path dir = prepare_directory(opt->directory);

        std::vector<RunRecord> runs;
        const int total = opt->repeat * static_cast<int>(backends.size());
        for (int round = 1; round <= opt->repeat; ++round) {
            for (Backend b : backends) {
                RunRecord rec;
                try {
                    rec = run_once(opt->command, b, round, dir);
                } catch (const CommandNotRunnable& e) {
                    std::cerr << "pymemtrace: " << e.message << '\n';
                    throw ExitStatus{e.exit_code};
                }
                std::fprintf(stderr, "pymemtrace compare: [%zu/%d] %s run %d: %.2f s, exit %d\n",
                             runs.size() + 1, total, backend_name(b), round, rec.wall_s,
                             rec.exit_code);
                runs.push_back(std::move(rec));
            }
        }
        std::fprintf(stderr, "pymemtrace compare: reading %zu traces\n", runs.size());
        // Only the first run of each backend draws the HTML timelines.
        for (RunRecord& rec : runs) {
            RunTraces t = measure_run_directory(rec.directory, rec.round == 1);
            rec.traces = std::move(t.all);
            rec.trace = std::move(t.main);
            rec.measure = std::move(t.measure);
        }

        const CompareResult result =
            summarize(opt->command, opt->repeat, dir.string(), backends, std::move(runs));
        // A record next to the traces, whatever format was asked for on stdout.
        std::ofstream((dir / "compare.json").string())
            << render_json(result).dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
            << "\n";
        std::cout << render(result, opt->format) << std::flush;
    });
}

}  // namespace pmt::analyzer
