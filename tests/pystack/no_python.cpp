// The stack walker in a process with no Python at all (this C++ program): python_init() says
// so, the version is empty and every thread gets stack id 0 without any definition.
#include <cstdio>
#include <cstring>

#include "python_stack.hpp"

using namespace pmt::preload;

namespace {

class CountingSink final : public DefinitionSink {
public:
    int definitions = 0;
    void define_string(uint64_t, const char*, size_t) override { ++definitions; }
    void define_location(uint64_t, uint64_t, uint64_t, uint64_t) override { ++definitions; }
    void define_stack(uint64_t, uint64_t, uint64_t) override { ++definitions; }
};

int failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FAIL: %s\n", what);
        ++failures;
    }
}

}  // namespace

int main() {
    PyStackCache* cache = pystack_cache_new();
    CountingSink sink;
    // Asking before python_init() must be just as safe: it resolves lazily.
    check(python_stack_id(cache, sink) == 0, "stack id before python_init() is 0");
    check(!python_init(), "python_init() is false without Python");
    check(!python_init(), "python_init() stays false when called again");
    check(std::strcmp(python_version(), "") == 0, "python_version() is empty");
    check(python_stack_id(cache, sink) == 0, "stack id is 0");
    check(python_stack_id(nullptr, sink) == 0, "a null cache gives stack id 0");
    check(sink.definitions == 0, "nothing is defined");
    python_after_fork_child();
    check(python_stack_id(cache, sink) == 0, "stack id after a fork is 0");
    pystack_cache_free(cache);
    if (failures) return 1;
    std::puts("no-python stack walker: ok");
    return 0;
}
