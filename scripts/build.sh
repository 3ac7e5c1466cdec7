#!/usr/bin/env bash
# Configures and builds lutdose (Release) in ./build. Extra arguments go to CMake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
# A new build tree uses Ninja when it is installed (scripts/install-deps.sh): it compiles a target's
# sources while the libraries it links are still being built, where Make waits for them (the engine's
# 61 files waited on the models' compartment.cpp, ~40 s on one core). A tree made with another
# generator keeps it (CMake refuses to switch generators in place).
generator=()
if [[ ! -f build/CMakeCache.txt ]] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DLUTDOSE_WERROR=ON -DLUTDOSE_BUILD_TESTS=ON -DLUTDOSE_BUILD_BENCHMARKS=ON "$@" >build-configure.log 2>&1 \
  || { cat build-configure.log; exit 1; }
cmake --build build -j "$(nproc)"
