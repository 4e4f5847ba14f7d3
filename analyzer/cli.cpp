// Root of the command line: description, --version, dispatch, and the mapping from exceptions
// to one stderr line plus exit status (2 bad input/usage, 1 internal error). Kept out of
// main.cpp so unit tests can drive the real parser and error paths in-process.
#include <exception>
#include <new>
#include <ostream>

#include "commands.hpp"
#include "pmt/chunk.hpp"

namespace pmt::analyzer {
namespace {

// Keep in step with project(VERSION) in the top CMakeLists.txt.
constexpr const char* kVersion = "0.1.0";

std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

}  // namespace

InputError::InputError(const std::string& path, const std::string& what)
    // The trace reader may already name the file; never say it twice.
    : std::runtime_error(what.compare(0, path.size() + 1, path + ":") == 0 ? what
                                                                           : path + ": " + what) {}

void configure_root(CLI::App& app) {
    app.name("pymemtrace");
    app.description(
        "pymemtrace: memory profiler for Python jobs. Capture with\n"
        "  LD_PRELOAD=libpymemtrace.so python3 job.py   (or: pymemtrace run -- python3 job.py)\n"
        "then analyse the trace it writes (pymemtrace-<pid>.pmt) with the subcommands below.\n"
        "Sizes are decimal: 1 MB = 1,000,000 bytes, 1 GB = 1,000,000,000 bytes.");
    app.set_version_flag("--version", std::string("pymemtrace ") + kVersion);
    app.require_subcommand(1);
    app.fallthrough(false);
}

ErrorReport describe_error(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const ExitStatus& s) {
        return {s.code, ""};
    } catch (const InputError& x) {
        return {2, one_line(x.what())};
    } catch (const UsageError& x) {
        return {2, one_line(x.what())};
    } catch (const TraceError& x) {
        return {2, one_line(x.what())};
    } catch (const CLI::ParseError& x) {
        return {2, one_line(x.what()) + " (see pymemtrace --help)"};
    } catch (const std::bad_alloc&) {
        return {1, "out of memory"};
    } catch (const std::exception& x) {
        return {1, "internal error: " + one_line(x.what())};
    } catch (...) {
        return {1, "internal error: unknown exception"};
    }
}

int run_cli(CLI::App& app, int argc, const char* const* argv, std::ostream& out,
            std::ostream& err) {
    try {
        app.parse(argc, argv);
        return 0;
    } catch (const CLI::ParseError& e) {
        // --help and --version arrive as "errors" with exit code 0; CLI11 prints them.
        if (e.get_exit_code() == 0) return app.exit(e, out, err);
        const ErrorReport r = describe_error(std::current_exception());
        err << "pymemtrace: " << r.message << '\n';
        return r.exit_code;
    } catch (...) {
        const ErrorReport r = describe_error(std::current_exception());
        if (!r.message.empty()) err << "pymemtrace: " << r.message << '\n';
        return r.exit_code;
    }
}

}  // namespace pmt::analyzer
