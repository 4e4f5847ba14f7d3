// Attribution frame: memory goes to the innermost line of the program's own code, passing over
// the standard library, installed packages and frozen modules (analyzer/frames.hpp).
#include <catch2/catch.hpp>

#include "frames.hpp"
#include "peak.hpp"
#include "trace_builder.hpp"

using namespace pmt;
using namespace pmt::analyzer;
using namespace pmt::testing;

TEST_CASE("library files are recognised by path", "[analyzer][frames]") {
    CHECK(is_library_file("<frozen importlib._bootstrap>"));
    CHECK(is_library_file("/usr/lib/python3/dist-packages/numpy/core/numeric.py"));
    CHECK(is_library_file("/venv/lib/python3.11/site-packages/pandas/core/frame.py"));
    CHECK(is_library_file("/usr/lib/python3.11/json/decoder.py"));
    CHECK(is_library_file("/root/.pyenv/versions/3.11.7/lib/python3.11/collections/__init__.py"));
    CHECK_FALSE(is_library_file("job.py"));
    CHECK_FALSE(is_library_file("/home/me/lib/python3.x/tool.py"));
    CHECK_FALSE(is_library_file("/srv/app/pipeline/steps.py"));
    CHECK_FALSE(is_library_file("<string>"));
}

TEST_CASE("the attribution frame is the innermost frame of the program's code",
          "[analyzer][frames]") {
    std::vector<Frame> f = {{"/usr/lib/python3/dist-packages/numpy/core/numeric.py", "ones", 205},
                            {"job.py", "load", 4},
                            {"job.py", "<module>", 10}};
    CHECK(attribution_index(f) == 1);
    f.erase(f.begin() + 1, f.end());
    CHECK(attribution_index(f) == 0);  // all library: the innermost frame
    CHECK(attribution_index({}) == 0);
}

TEST_CASE("code run from a string belongs to whoever ran it", "[analyzer][frames]") {
    // site.py executing a .pth line: library.
    CHECK(attribution_index({{"<string>", "<module>", 2},
                             {"<frozen site>", "addpackage", 186},
                             {"job.py", "<module>", 1}}) == 2);
    // `python -c "..."`: the user's.
    CHECK(attribution_index({{"<string>", "<module>", 1}}) == 0);
    CHECK(attribution_index({{"/usr/lib/python3.11/json/decoder.py", "decode", 3},
                             {"<string>", "<module>", 1}}) == 1);
}

TEST_CASE("np.ones on two lines gives two sites, not numpy's line", "[analyzer][frames]") {
    TraceBuilder b;
    const std::string numeric = "/usr/lib/python3/dist-packages/numpy/core/numeric.py";
    const auto a = b.stack({{numeric, "ones", 205}, {"job.py", "<module>", 3}});
    const auto c = b.stack({{numeric, "ones", 205}, {"job.py", "<module>", 4}});
    const auto imp = b.stack({{"<frozen importlib._bootstrap>", "_load", 690},
                              {"/usr/lib/python3.11/json/__init__.py", "<module>", 1}});
    b.thread(1)
        .alloc(ms(1), 0x1000, MB(40), a)
        .alloc(ms(2), 0x2000, MB(24), c)
        .alloc(ms(3), 0x3000, MB(1), imp);
    TempTrace f(b.bytes());
    TraceReader reader(f.path());
    LiveHeap heap;
    PeakAnalysis peak(0);
    replay(reader, heap, {&peak});
    REQUIRE(peak.sites().size() == 3);
    CHECK(peak.sites()[0].file == "job.py");
    CHECK(peak.sites()[0].line == 3);
    CHECK(peak.sites()[0].function == "<module>");
    CHECK(peak.sites()[0].frame == 1);
    CHECK(peak.sites()[0].stack.at(0).function == "ones");
    CHECK(peak.sites()[1].line == 4);
    CHECK(peak.sites()[1].bytes == MB(24));
    CHECK(peak.sites()[2].file == "<frozen importlib._bootstrap>");
    CHECK(peak.sites()[2].frame == 0);
}
