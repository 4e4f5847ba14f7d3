#!/usr/bin/env bash
# Installs the Debian packages pymemtrace needs to build, test and demo (Debian 12, as root).
# Only what is missing is installed; apt-get update runs only when something is missing, so a
# machine that already has everything is left untouched and needs no network.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config
    catch2 libzstd-dev liblz4-dev libunwind-dev libcli11-dev nlohmann-json3-dev libspdlog-dev
    libjemalloc-dev libmimalloc-dev libbenchmark-dev
    python3-numpy python3-dev
    heaptrack valgrind
    chromium  # the HTML report's browser test (tests/browser)
    clang libclang-rt-14-dev  # the libFuzzer target (tests/fuzz)
    clang-16 libclang-rt-16-dev  # scripts/sanitize.sh tsan (clang 14's TSan aborts our fork child)
    libpython3.11-testsuite python3-pytest python3-hypothesis  # real suites under the preload
)

missing=()
for p in "${PACKAGES[@]}"; do
    # dpkg-query prints "install ok installed" only for a fully installed package.
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

echo "setup-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "setup-deps: missing packages (${missing[*]}) and not root; run as root" >&2
        exit 1
    fi
else
    SUDO=()
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
