#!/usr/bin/env bash
# Quick start 2: install what is missing, build, and run every test (doctest unit tests and the
# end-to-end tests of the lutdose binary, all through CTest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd build
# Twice as many tests as cores: many end-to-end tests mostly wait on lutdose processes, kills and
# fsyncs (tests that need both cores say so with PROCESSORS, which CTest honours).
ctest --output-on-failure -j "$((2 * $(nproc)))"
