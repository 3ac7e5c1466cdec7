#!/usr/bin/env bash
# Quick start 1: install what is missing, build, and run the bundled example (SNMMI challenge
# Patient_004, one 177Lu-DOTATATE cycle) end to end: prints the table of TIAs and doses and
# writes out/patient004/results.json and results.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/lutdose run --tac examples/snmmi-patient004/tac.csv --activity-MBq 7210.4 \
  --phantom icrp110-am --out out/patient004
