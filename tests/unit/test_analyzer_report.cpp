// `pymemtrace report`: JSON schema pymemtrace-report/1, the text sections, truncated and
// corrupt traces, and the command line's exit statuses (analyzer/report.hpp, commands.hpp).
#include <catch2/catch.hpp>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "peak.hpp"
#include "report.hpp"
#include "trace_builder.hpp"

using namespace pmt;
using namespace pmt::analyzer;
using namespace pmt::testing;
using nlohmann::json;

namespace {

// Three arrays on known lines, one freed before the peak, one RSS series, a native block.
TraceBuilder sample_trace() {
    TraceBuilder b;
    const auto a = b.stack({{"job.py", "load", 5}, {"job.py", "<module>", 20}});
    const auto s = b.stack({{"job.py", "step", 13}, {"job.py", "<module>", 21}});
    b.thread(1)
        .rss(ms(1), MB(20))
        .alloc(ms(2), 0x1000, MB(100), a)
        .alloc(ms(3), 0x2000, MB(200), s)
        .alloc(ms(4), 0x3000, 4096, 0)
        .rss(ms(5), MB(330))
        .free(ms(6), 0x1000)
        .rss(ms(7), MB(230))
        .free(ms(8), 0x2000);
    return b;
}

AnalyzedTrace analyze(const std::string& path, size_t top = 10) {
    ReportOptions o;
    o.path = path;
    o.top = top;
    return analyze_trace(o);
}

struct Cli {
    int code = 0;
    std::string out, err;
};

Cli run_command(std::vector<std::string> args) {
    CLI::App app;
    configure_root(app);
    add_report_command(app);
    args.insert(args.begin(), "pymemtrace");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    std::ostringstream out, err, cout_capture;
    auto* old = std::cout.rdbuf(cout_capture.rdbuf());  // report writes to std::cout
    Cli r;
    r.code = run_cli(app, static_cast<int>(argv.size()), argv.data(), out, err);
    std::cout.rdbuf(old);
    r.out = out.str() + cout_capture.str();
    r.err = err.str();
    return r;
}

}  // namespace

TEST_CASE("JSON report follows pymemtrace-report/1", "[analyzer][report]") {
    TraceBuilder b = sample_trace();
    b.header().argv = {"python3", "job.py", "--n", "3"};
    TempTrace f(b.bytes());
    const json j = render_json(analyze(f.path()));
    CHECK(j["schema"] == "pymemtrace-report/1");

    const json& t = j["trace"];
    CHECK(t["path"] == f.path());
    CHECK(t["truncated"] == false);
    CHECK(t["pid"] == 4242);
    CHECK(t["ppid"] == 1);
    CHECK(t["argv"] == json({"python3", "job.py", "--n", "3"}));
    CHECK(t["python"] == "3.11.2");
    CHECK(t["allocator"] == "glibc");
    CHECK(t["duration_s"].get<double>() == Approx(0.008));
    CHECK(t["events"] == 8);

    const json& p = j["peak"];
    CHECK(p["bytes"] == MB(300) + 4096);
    CHECK(p["time_s"].get<double>() == Approx(0.004));
    CHECK(p["rss_bytes"] == MB(330));
    CHECK(p["rss_time_s"].get<double>() == Approx(0.005));

    CHECK(j["totals"]["allocations"] == 3);
    CHECK(j["totals"]["frees"] == 2);
    CHECK(j["totals"]["allocated_bytes"] == MB(300) + 4096);

    const json& at = j["at_peak"];
    REQUIRE(at.size() == 3);
    CHECK(at[0]["file"] == "job.py");
    CHECK(at[0]["line"] == 13);
    CHECK(at[0]["function"] == "step");
    CHECK(at[0]["bytes"] == MB(200));
    CHECK(at[0]["blocks"] == 1);
    REQUIRE(at[0]["stack"].size() == 2);
    CHECK(at[0]["stack"][0] == json({{"file", "job.py"}, {"line", 13}, {"function", "step"}}));
    CHECK(at[0]["stack"][1] == json({{"file", "job.py"}, {"line", 21}, {"function", "<module>"}}));
    CHECK(at[1]["function"] == "load");
    CHECK(at[2]["function"] == "<native>");
    CHECK(at[2]["file"].is_null());
    CHECK(at[2]["line"].is_null());
    CHECK(at[2]["stack"].empty());
}

TEST_CASE("--top limits the lines at the peak", "[analyzer][report]") {
    TraceBuilder b = sample_trace();
    TempTrace f(b.bytes());
    CHECK(render_json(analyze(f.path(), 1))["at_peak"].size() == 1);
    CHECK(render_json(analyze(f.path(), 0))["at_peak"].size() == 3);
}

TEST_CASE("a process without Python reports python as null", "[analyzer][report]") {
    TraceBuilder b;
    b.header().python_version.clear();
    b.header().argv = {"/bin/ls"};
    b.thread(1).alloc(ms(1), 0x1000, 64, 0);
    TempTrace f(b.bytes());
    const json j = render_json(analyze(f.path()));
    CHECK(j["trace"]["python"].is_null());
    CHECK(j["at_peak"][0]["function"] == "<native>");
}

TEST_CASE("text report has the headline, trace info, lines at the peak and totals",
          "[analyzer][report]") {
    TraceBuilder b = sample_trace();
    TempTrace f(b.bytes());
    const std::string text = render_text(analyze(f.path()));
    INFO(text);
    CHECK(text.rfind("Peak 300.0 MB at 0.004 s (RSS 330.0 MB at 0.005 s)\n", 0) == 0);
    CHECK(text.find("pid 4242") != std::string::npos);
    CHECK(text.find("python    3.11.2, allocator glibc") != std::string::npos);
    CHECK(text.find("job.py:13 in step") != std::string::npos);
    CHECK(text.find("called from job.py:21 in <module>") != std::string::npos);
    CHECK(text.find("<native> (no Python frame)") != std::string::npos);
    CHECK(text.find("Totals: 3 allocations") != std::string::npos);
    CHECK(text.find("truncated") == std::string::npos);
    CHECK(text.find("job.py:13") < text.find("job.py:5 "));
}

TEST_CASE("a truncated trace still reports its peak, with a note", "[analyzer][report]") {
    TraceBuilder b = sample_trace();
    SECTION("no end chunk") {
        TempTrace f(b.bytes(/*complete=*/false));
        const AnalyzedTrace t = analyze(f.path());
        const json j = render_json(t);
        CHECK(j["trace"]["truncated"] == true);
        CHECK(j["peak"]["bytes"] == MB(300) + 4096);
        const std::string text = render_text(t);
        CHECK(text.find("trace truncated at t=0.008 s") != std::string::npos);
    }
    SECTION("last chunk cut in the middle") {
        TraceBuilder c = sample_trace();
        c.thread(2).alloc(ms(9), 0x9000, MB(1), 0);  // lands in a chunk of its own
        std::vector<uint8_t> bytes = c.bytes(/*complete=*/false);
        bytes.resize(bytes.size() - 3);
        TempTrace f(bytes);
        const json j = render_json(analyze(f.path()));
        CHECK(j["trace"]["truncated"] == true);
        CHECK(j["peak"]["bytes"] == MB(300) + 4096);
    }
}

TEST_CASE("a corrupt or foreign file is one line naming the file, exit 2", "[analyzer][report]") {
    std::vector<uint8_t> bytes = sample_trace().bytes();
    SECTION("flipped byte in a chunk") {
        bytes[bytes.size() / 2] ^= 0x40;
        TempTrace f(bytes);
        try {
            analyze(f.path());
            FAIL("no error for a corrupt trace");
        } catch (...) {
            const ErrorReport r = describe_error(std::current_exception());
            CHECK(r.exit_code == 2);
            CHECK(r.message.rfind(f.path() + ": ", 0) == 0);
            CHECK(r.message.find('\n') == std::string::npos);
        }
    }
    SECTION("not a trace") {
        const std::string text = "hello, this is not a trace at all\n";
        TempTrace f(std::vector<uint8_t>(text.begin(), text.end()));
        const Cli r = run_command({"report", f.path()});
        CHECK(r.code == 2);
        CHECK(r.err.rfind("pymemtrace: " + f.path() + ": ", 0) == 0);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
    SECTION("missing file") {
        const Cli r = run_command({"report", "/nonexistent/trace.pmt"});
        CHECK(r.code == 2);
        CHECK(r.err.rfind("pymemtrace: /nonexistent/trace.pmt: ", 0) == 0);
    }
}

TEST_CASE("errors map to exit statuses", "[analyzer][cli]") {
    auto code = [](auto&& thrower) {
        try {
            thrower();
        } catch (...) {
            return describe_error(std::current_exception());
        }
        return ErrorReport{-1, ""};
    };
    CHECK(code([] { throw InputError("t.pmt", "bad checksum at offset 20"); }).message ==
          "t.pmt: bad checksum at offset 20");
    CHECK(code([] { throw InputError("t.pmt", "t.pmt: bad magic"); }).message ==
          "t.pmt: bad magic");
    CHECK(code([] { throw TraceError("t.pmt: unknown version 9"); }).exit_code == 2);
    CHECK(code([] { throw UsageError("--top must be a number"); }).exit_code == 2);
    CHECK(code([] { throw ExitStatus{7}; }).exit_code == 7);
    CHECK(code([] { throw std::logic_error("oops"); }).exit_code == 1);
    CHECK(code([] { throw std::logic_error("oops"); }).message == "internal error: oops");
    CHECK(code([] { throw std::bad_alloc(); }).exit_code == 1);
}

TEST_CASE("the command line: help, version, wrong flags", "[analyzer][cli]") {
    const Cli help = run_command({"--help"});
    CHECK(help.code == 0);
    CHECK(help.out.find("report") != std::string::npos);
    CHECK(help.out.find("1 MB = 1,000,000 bytes") != std::string::npos);
    const Cli version = run_command({"--version"});
    CHECK(version.code == 0);
    CHECK(version.out.find("pymemtrace 0.1.0") != std::string::npos);

    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--bogus"}, {}, {"report"}, {"report", "x.pmt", "--top", "many"}, {"nosuch"}}) {
        const Cli r = run_command(args);
        CHECK(r.code == 2);
        CHECK(r.err.rfind("pymemtrace: ", 0) == 0);
        CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    }
}

TEST_CASE("report --json on the command line prints the schema", "[analyzer][cli]") {
    TempTrace f(sample_trace().bytes());
    const Cli r = run_command({"report", "--json", f.path()});
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    const json j = json::parse(r.out);
    CHECK(j["schema"] == "pymemtrace-report/1");
    CHECK(j["peak"]["bytes"] == MB(300) + 4096);
}

TEST_CASE("any flipped byte gives a report or a one-line input error, never a crash",
          "[analyzer][report]") {
    const std::vector<uint8_t> good = sample_trace().bytes();
    size_t reports = 0, errors = 0;
    for (size_t i = 0; i < good.size(); ++i) {
        std::vector<uint8_t> bad = good;
        bad[i] ^= 0x5a;
        TempTrace f(bad);
        try {
            const AnalyzedTrace t = analyze(f.path());
            render_text(t);
            render_json(t).dump(-1, ' ', false, json::error_handler_t::replace);
            ++reports;
        } catch (...) {
            const ErrorReport r = describe_error(std::current_exception());
            INFO("byte " << i << ": " << r.message);
            CHECK(r.exit_code == 2);
            ++errors;
        }
    }
    CHECK(errors > 0);
    CHECK(reports + errors == good.size());
}

TEST_CASE("absurd stack ids cost no memory and read as <unknown>", "[analyzer][peak]") {
    TraceBuilder b;
    b.thread(1).alloc(ms(1), 0x1000, 10, 0);
    TempTrace f(b.bytes());
    TraceReader reader(f.path());
    LiveHeap heap;
    PeakAnalysis peak(0);
    replay(reader, heap, {&peak});
    Block huge{0x2000, 1000, uint64_t{1} << 40, ms(2), false};
    peak.on_live(huge);
    peak.finish(reader, heap);
    CHECK(peak.peak_bytes() == 1010);
    REQUIRE(peak.sites().size() == 2);
    CHECK(peak.sites()[0].function == "<unknown>");
    CHECK(peak.sites()[0].bytes == 1000);
}

TEST_CASE("report on several traces gives the process tree", "[analyzer][cli]") {
    TraceBuilder parent = sample_trace();
    TraceBuilder child;
    child.header().pid = 4243;
    child.header().ppid = 4242;
    child.header().forked = true;
    const auto w = child.stack({{"job.py", "worker", 40}});
    child.thread(1).alloc(ms(1), 0x1000, MB(50), w).free(ms(9), 0x1000);
    TempTrace a(parent.bytes()), b(child.bytes());
    const Cli text = run_command({"report", a.path(), b.path()});
    CHECK(text.code == 0);
    CHECK(text.out.find("Process tree: 2 processes") != std::string::npos);
    CHECK(text.out.find("job.py:40") != std::string::npos);
    const Cli js = run_command({"report", "--json", a.path(), b.path()});
    REQUIRE(js.code == 0);
    const json j = json::parse(js.out);
    CHECK(j["schema"] == "pymemtrace-report/1");
    CHECK(j["process_tree"]["processes"].size() == 2);
    CHECK(j["processes"][1]["at_peak"][0]["line"] == 40);
}
