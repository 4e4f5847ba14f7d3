// Hot-path microbenchmark (issue 6): the cost of one malloc+free pair as seen by C code, with no
// Python frames and with an embedded Python stack of depth 5, 20 and 50 above the loop. Run it
// plain and under LD_PRELOAD=libpymemtrace.so (bench/micro does both): the difference is the
// interposer's extra cost per pair (an allocation event with its stack, and a free event).
#include <Python.h>
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

// The benchmark state of the running case, reached from the Python callback below.
benchmark::State* g_state = nullptr;

void alloc_free_loop(benchmark::State& state) {
    for (auto _ : state) {
        void* p = malloc(static_cast<size_t>(state.range(0)));
        benchmark::DoNotOptimize(p);
        free(p);
    }
}

// bench_loop(): called by Python code at the wanted depth; runs the timed loop there, so every
// malloc inside it is attributed to a Python stack of that depth.
PyObject* bench_loop(PyObject*, PyObject*) {
    alloc_free_loop(*g_state);
    Py_RETURN_NONE;
}

PyMethodDef g_methods[] = {{"loop", bench_loop, METH_NOARGS, "run the benchmark loop"},
                           {nullptr, nullptr, 0, nullptr}};
PyModuleDef g_module = {
    PyModuleDef_HEAD_INIT, "hotpath", nullptr, -1, g_methods, nullptr, nullptr, nullptr, nullptr};
PyObject* init_module() { return PyModule_Create(&g_module); }

PyObject* g_descend = nullptr;  // descend(depth): recurses, then calls hotpath.loop()

void BM_MallocFree(benchmark::State& state) { alloc_free_loop(state); }

void BM_MallocFreePython(benchmark::State& state) {
    g_state = &state;
    // descend() itself is one frame and <module> is not on this stack: depth-1 recursions
    // give exactly `depth` Python frames above the loop.
    PyObject* r = PyObject_CallFunction(g_descend, "l", static_cast<long>(state.range(1)) - 1);
    if (!r) {
        PyErr_Print();
        state.SkipWithError("python call failed");
        return;
    }
    Py_DECREF(r);
}

void init_python() {
    PyImport_AppendInittab("hotpath", init_module);
    Py_InitializeEx(0);
    const char* src =
        "import hotpath\n"
        "def descend(n):\n"
        "    if n > 0:\n"
        "        return descend(n - 1)\n"
        "    hotpath.loop()\n";
    PyObject* globals = PyDict_New();
    PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
    PyObject* r = PyRun_String(src, Py_file_input, globals, globals);
    if (!r) {
        PyErr_Print();
        std::exit(2);
    }
    Py_DECREF(r);
    g_descend = PyDict_GetItemString(globals, "descend");
    Py_INCREF(g_descend);
}

}  // namespace

BENCHMARK(BM_MallocFree)->Arg(64)->Arg(1024)->MeasureProcessCPUTime();
BENCHMARK(BM_MallocFreePython)
    ->Args({64, 5})
    ->Args({64, 20})
    ->Args({64, 50})
    ->MeasureProcessCPUTime();

int main(int argc, char** argv) {
    init_python();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
