# Entry points for people (README) and CI (.ci/run): make demo, make test, make build.
# The CMake build lives in build/; everything else is driven from here so the two set-up
# commands work on a fresh Debian 12 machine as root.

BUILD_DIR ?= build
JOBS ?= 2
CMAKE_BUILD_TYPE ?= Release
PYTHON ?= /usr/bin/python3
DEMO_TRACE ?= $(BUILD_DIR)/demo.pmt
DEMO_HTML ?= $(BUILD_DIR)/demo.html
PMT := $(BUILD_DIR)/bin/pymemtrace

.PHONY: all deps configure build test demo bench sanitize clean

all: build

deps:
	bash scripts/setup-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(CMAKE_BUILD_TYPE)

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)

# Runs the bundled example under the interposer, then prints the report. The HTML page is
# written as well when this build of the command has the `html` subcommand.
demo: build
	rm -f $(DEMO_TRACE)
	$(PMT) run -o $(DEMO_TRACE) -- $(PYTHON) examples/demo.py
	$(PMT) report $(DEMO_TRACE)
	@if $(PMT) html --help >/dev/null 2>&1; then \
	    $(PMT) html $(DEMO_TRACE) -o $(DEMO_HTML) && echo "HTML report: $(DEMO_HTML)"; \
	fi

bench: build
	bench/run

# The whole suite under ASan+UBSan (build-asan/) and the interposer's concurrency under TSan
# (build-tsan/); not part of `make test`: see scripts/sanitize.sh.
sanitize: deps
	JOBS=$(JOBS) bash scripts/sanitize.sh

clean:
	rm -rf $(BUILD_DIR)
