#!/usr/bin/env bash
# Configures and builds ./build-asan: clang, AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer (any report aborts), libFuzzer's coverage instrumentation, -O1 with
# line tables only as debug information (-gline-tables-only: reports still name file, line and
# inlined frames; full -g took nearly twice the compile time of a numerical file, measured on
# engine/src/kinetics/fitting.cpp, and this build is most of the CI's sanitizer step), and
# assertions on (RelWithDebInfo without NDEBUG, so Eigen's index checks stay on); the test suite
# and the libFuzzer targets of tests/fuzz in one tree (benchmarks and the Python module excluded).
# scripts/sanitize.sh runs the tests from it and scripts/fuzz.sh the fuzz targets: one build of the
# engine serves both. Usage: scripts/asan-build.sh [TARGET ...]   (default: everything)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --fuzz   # clang and its sanitizer/libFuzzer runtimes
# A tree configured by an earlier version of this script with gcc: CMake cannot switch compilers
# in place, so its cache goes (the objects are rebuilt anyway).
if [[ -f build-asan/CMakeCache.txt ]] && ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++' build-asan/CMakeCache.txt; then
  rm -rf build-asan/CMakeCache.txt build-asan/CMakeFiles
fi
# LUTDOSE_BUILD_FUZZERS adds -fsanitize=fuzzer-no-link,address,undefined to every target.
generator=()   # Ninja for a new tree, as scripts/build.sh
if [[ ! -f build-asan/CMakeCache.txt ]] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
CC=clang CXX=clang++ cmake -S . -B build-asan "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DLUTDOSE_BUILD_FUZZERS=ON -DLUTDOSE_BUILD_TESTS=ON -DLUTDOSE_BUILD_BENCHMARKS=OFF -DLUTDOSE_BUILD_PYTHON=OFF \
  >build-asan.configure.log 2>&1 || { cat build-asan.configure.log; exit 1; }
if [[ $# -gt 0 ]]; then
  cmake --build build-asan -j "$(nproc)" --target "$@"
else
  cmake --build build-asan -j "$(nproc)"
fi
