// Human-readable sizes, times and counts used by the text report (analyzer/format_util.hpp).
#include <catch2/catch.hpp>

#include "format_util.hpp"

using namespace pmt::analyzer;

TEST_CASE("sizes are decimal with one or two decimals", "[analyzer][format]") {
    CHECK(human_bytes(0) == "0 B");
    CHECK(human_bytes(999) == "999 B");
    CHECK(human_bytes(1000) == "1.0 kB");
    CHECK(human_bytes(12345) == "12.3 kB");
    CHECK(human_bytes(401200000) == "401.2 MB");
    CHECK(human_bytes(999940000) == "999.9 MB");
    CHECK(human_bytes(999960000) == "1.00 GB");
    CHECK(human_bytes(1310000000) == "1.31 GB");
    CHECK(human_bytes_delta(-1310000000) == "-1.31 GB");
    CHECK(human_bytes_delta(12300000) == "+12.3 MB");
    CHECK(human_bytes_delta(0) == "0 B");
}

TEST_CASE("times are seconds since the trace start", "[analyzer][format]") {
    CHECK(human_seconds(0) == "0.000 s");
    CHECK(human_seconds(42000000) == "0.042 s");
    CHECK(human_seconds(2410000000ull) == "2.41 s");
    CHECK(human_seconds(125300000000ull) == "125.3 s");
}

TEST_CASE("counts get thousands separators", "[analyzer][format]") {
    CHECK(human_count(0) == "0");
    CHECK(human_count(999) == "999");
    CHECK(human_count(1000) == "1,000");
    CHECK(human_count(1234567) == "1,234,567");
}

TEST_CASE("a long path keeps its last components", "[analyzer][format]") {
    CHECK(short_path("/usr/lib/python3/dist-packages/numpy/core/numeric.py", 2) ==
          "…/core/numeric.py");
    CHECK(short_path("job.py", 2) == "job.py");
}

TEST_CASE("source lines are read when the file exists", "[analyzer][format]") {
    const std::string path = "/tmp/pmt-test-source.py";
    {
        FILE* f = std::fopen(path.c_str(), "w");
        REQUIRE(f);
        std::fputs("import numpy as np\n\n    data = step(data)   \n", f);
        std::fclose(f);
    }
    CHECK(source_line(path, 1) == "import numpy as np");
    CHECK(source_line(path, 2) == "");
    CHECK(source_line(path, 3) == "data = step(data)");
    CHECK(source_line(path, 9) == "");
    CHECK(source_line(path, 3, 10) == "data = ...");
    CHECK(source_line("/nonexistent/x.py", 1) == "");
    CHECK(source_line("<frozen importlib._bootstrap>", 1) == "");
    std::remove(path.c_str());
}
