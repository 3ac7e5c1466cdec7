#!/usr/bin/env bash
# Configures and builds lutdose (Release) in ./build. Extra arguments go to CMake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLUTDOSE_WERROR=ON -DLUTDOSE_BUILD_TESTS=ON -DLUTDOSE_BUILD_BENCHMARKS=ON "$@" >build-configure.log 2>&1 \
  || { cat build-configure.log; exit 1; }
cmake --build build -j "$(nproc)"
