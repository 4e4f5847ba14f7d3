// Entry point of the `pymemtrace` command: registers the subcommands and hands over to
// run_cli() (commands.hpp), which parses, dispatches and maps errors to exit statuses.
// A new subcommand is one add_X_command() in its own file and one line below.
#include <iostream>

#include "commands.hpp"

int main(int argc, char** argv) {
    using namespace pmt::analyzer;
    CLI::App app;
    configure_root(app);
    add_report_command(app);
    add_timeline_command(app);
    add_html_command(app);
    add_export_command(app);
    add_run_command(app);
    add_compare_command(app);
    return run_cli(app, argc, argv, std::cout, std::cerr);
}
