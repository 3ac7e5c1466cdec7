#!/usr/bin/env bash
# Builds the engine and the thread-safety unit test (tests/unit/pipeline/test_threads.cpp: several
# patients from 6 threads on one shared ReferenceData; target lutdose_thread_tests) with
# ThreadSanitizer (clang, -fsanitize=thread, -O1 -g) in ./build-tsan and runs it. Any data race report fails (halt_on_error). Not part of
# .ci/run (CI time budget): run it after changes to the pipeline or the reference data, and record
# the result in docs/validation.md. Usage: scripts/tsan.sh [extra doctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
san="-fsanitize=thread -fno-omit-frame-pointer"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g $san" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g $san" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
  -DLUTDOSE_BUILD_TESTS=ON -DLUTDOSE_BUILD_BENCHMARKS=OFF -DLUTDOSE_BUILD_PYTHON=OFF \
  >build-tsan.configure.log 2>&1 || { cat build-tsan.configure.log; exit 1; }
cmake --build build-tsan -j "$(nproc)" --target lutdose_thread_tests
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
build-tsan/tests/lutdose_thread_tests "$@"
echo "tsan.sh: the thread-safety test passed under ThreadSanitizer, no report"
