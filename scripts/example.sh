#!/usr/bin/env bash
# Quick start 1: install what is missing, build, and run the bundled example (SNMMI challenge
# Patient_004, one 177Lu-DOTATATE cycle, as SPECT counts with their calibration) end to end:
# prints the table of TIAs and doses and writes out/patient004/results.{json,csv,h5}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/lutdose run examples/snmmi-patient004/case.json --out out/patient004
