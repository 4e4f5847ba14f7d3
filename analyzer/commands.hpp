// The subcommands of `pymemtrace`: one registration function each (defined in the file that
// implements the command), and run_cli(), the one place that turns errors into an exit status:
// 2 for bad input or usage (one line on stderr), 1 for internal errors, else the command's own.
#pragma once
#include <CLI/CLI.hpp>
#include <stdexcept>
#include <string>

namespace pmt::analyzer {

// Bad input that is not a malformed trace: an unreadable or foreign file, a bad option value,
// an output path that cannot be written. Exit 2. The message is one line.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A problem with one input file: printed as "pymemtrace: <path>: <what>", exit 2.
struct InputError : std::runtime_error {
    InputError(const std::string& path, const std::string& what);
};

// Thrown by a command callback that finished with a status other than 0 and has already said
// what it had to say (e.g. `run` passes its child's exit status through). Nothing is printed.
struct ExitStatus {
    int code = 0;
};

// Each adds one subcommand to app; its callback does the work and throws the types above.
void add_report_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_compare_command(CLI::App& app);
// timeline, html, export (render_commands.cpp)
void add_timeline_command(CLI::App& app);
void add_html_command(CLI::App& app);
void add_export_command(CLI::App& app);

// Sets the root command's description, --version and the rule that a subcommand is required.
void configure_root(CLI::App& app);

// Parses argv and runs the chosen subcommand's callback. Never throws: every error becomes one
// line on err ("pymemtrace: ...") and an exit status (see the top of this file).
int run_cli(CLI::App& app, int argc, const char* const* argv, std::ostream& out, std::ostream& err);

// The status and the one line (without "pymemtrace: " and newline) for an exception caught
// while running a command. Used by run_cli; exposed for tests.
struct ErrorReport {
    int exit_code = 1;
    std::string message;
};
ErrorReport describe_error(std::exception_ptr e);

}  // namespace pmt::analyzer
