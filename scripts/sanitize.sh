#!/usr/bin/env bash
# Builds lutdose and the whole test suite with AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer in ./build-asan (scripts/asan-build.sh: clang, -O1 with assertions on,
# the fuzz targets in the same tree) and runs every CTest test but the source checks (label
# quality), the installed-package one (label install) and the Slurm one (label slurm). Any
# sanitizer report fails: UBSan does not recover, ASan aborts, and every report is also written to
# build-asan/sanitizer-logs/, which must stay empty (so a report from a run whose exit status a
# test expected to be non-zero still fails).
# Usage: scripts/sanitize.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/asan-build.sh

logs="$PWD/build-asan/sanitizer-logs"
rm -rf "$logs" && mkdir -p "$logs"
# verify_asan_link_order=0: tests may LD_PRELOAD a fault injector in front of the ASan runtime.
# quarantine_size_mb=16 (default 256): freed memory waits in a 16 MB quarantine before reuse, which
# still spans a test's heap, and a process touches half the memory (batch of 60 patients: 233 -> 127
# MB resident, some 15 % less CPU: fresh pages cost a fault each on the CI's VM). malloc_context_size=8
# (default 30): a report's allocation and free stacks show 8 frames; rerun with the default for more.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:verify_asan_link_order=0:quarantine_size_mb=16:malloc_context_size=8:log_path=$logs/asan:log_exe_name=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan:log_exe_name=1"
# The 200-kill test has run in the release pass; here 12 kills exercise the same code under the
# sanitizers (each run is several times slower with ASan: 40 kills took 51 s of the CI budget).
export LUTDOSE_KILL_RUNS="${LUTDOSE_KILL_RUNS:-12}"
status=0
# -LE quality: the function-length check reads the sources, not the instrumented binaries.
# -LE install: the installed-package test builds examples/cpp against the instrumented libraries
# without the sanitizer flags. -LE slurm: the Slurm test runs the same lutdose batch and merge code
# as the shard and Python-driver tests that do run here; what it adds is the job scripts and the
# Slurm daemons, which the sanitizers do not instrument, and it costs a minute of daemons and
# scheduling. All three run in the release pass (scripts/test.sh).
# Twice as many tests as cores at once: most end-to-end tests wait on lutdose processes, their
# kills and their fsyncs; under ASan the pass is mostly such waiting.
# -E: the 20-patient statistics of the compartment fit (160 s under ASan, the longest test) repeat
# the code of its one-patient noisy and noise-free joint fits, which run here; the 20 patients add
# statistics, not code paths, and run in the release pass. Likewise the 1000-TAC high-shrinkage
# recovery of the population estimator (9 s in Release, the longest unit test): the smaller
# population tests run its code here. And the address-space-limited run of a file of blank lines
# (ASan reserves terabytes of address space: no run under a 600 MB limit), and the export's peak
# memory against the CSV size (ASan's quarantine keeps freed memory: 383 MB for a streamed export
# that peaks at 56 MB in Release; the export's code runs here in the other export tests). And the
# three report cases that screenshot whole reports in Chromium (e2e.report.*_browser, 165 s of the
# pass on a loaded machine, mostly Chromium, which is not instrumented): the lutdose commands they
# run (run, batch, report --pdf, plot --png) run here in the other report and batch cases. And
# e2e.population.individual_fit_options_refused: 72 refused invocations (12 options x 3 commands x 2
# kinds of population), each a comparison of option values before anything is read; 77 s of the pass
# under ASan for that; e2e.population.case_file_fit_options_refused runs the case files' like refusals here.
# And e2e.population.round_trip: it learns from 120 patients to compare the MAP's errors with the
# individual fits' (61 s under ASan, the second longest test of the pass); learning, writing and
# reading a population file and fitting with it run here in the other population cases
# (run_and_batch_kinetics_population learns eight times), so the 120 patients add statistics.
# And e2e.batch.population_option_with_case_files (34 s under ASan): a population file named for
# every case of a folder; e2e.batch.kinetics_population_with_case_files runs here the same batch of
# case files with MAP fits, learning the population first. And e2e.cluster.python_driver (22 s): a
# Python multiprocessing driver of `lutdose batch --shard` and `merge`, whose lutdose code the shard
# and merge cases run here. (0.16's local CI run took 1832 s of the 1800 s budget.) And the full-Omega
# statistics (0.17: the rejection rate over 2000 MAPs 32 s, one scan at 24 h 23 s, BIC's choice 19 s,
# the correlations' recovery 10 s and the marginal SEs 10 s under ASan: each learns 200-TAC
# populations): learning and MAPs with a full Omega run here in the combined-noise full-Omega case,
# the file round trip, the gradient test and e2e.population.omega_full. And the compartment
# population's recovery (0.18: 9 s in Release, about 250 000 ODE solutions of 120 patients with the
# sampled E-step): learning a compartment population with the sampled E-step runs here in
# e2e.population.compartment_population (60 patients), the Laplace EM and the MAPs in the other
# compartment population cases. Of those, each unit test learns its 120-patient prior again in its own
# process (about 2 s in Release, 20 s under ASan): the MAP of a rich cycle, the refusals and the
# negative rate run here (learning, MAP, the failed-evaluation path); the sparse cycles against the
# individual fit, the cycle far from the population and the blood points of 1e-15 add statistics and
# inputs to the same code and run in the release pass (0.17's CI landed at 1872 s of the 1800 s).
# The full-Omega compartment recovery (0.20, 80 patients, 2 s in Release) is matched by "compartment
# population: (recovery" too: its learning and MAP code runs here in the other full-Omega cases.
# And two e2e cases of 0.20 (271 s and 257 s under ASan, the tail of the pass: its clean-clone CI took
# 1718 s of the 1800 s budget): e2e.population.kinetics_population_compartment (learning inline with
# --kinetics population --model on fit, batch --tac and batch CASES_DIR against learn then --population,
# each learning 30 patients again) and e2e.population.compartment_population_combined (a combined
# population learned three times); the inline learning runs here in
# e2e.population.compartment_population_unobserved_voi, the combined model's learning and MAP in the
# unit tests "compartment population: the combined error model ...", "a MAP under the combined model
# ..." and "the constant and input error models ...". Both run in the release pass.
(cd build-asan && ctest --output-on-failure -j "$((2 * $(nproc)))" -LE 'quality|install|slurm' \
  -E 'compartment: 20 seeded noisy patients|compartment population: (recovery|the MAP of sparse|a cycle far|blood points)|population: high shrinkage|input_blank_lines_bounded_memory|export_streams_with_bounded_memory|e2e\.report\.[a-z0-9_]*_browser$|e2e\.population\.individual_fit_options_refused$|e2e\.population\.round_trip$|e2e\.batch\.population_option_with_case_files$|e2e\.cluster\.python_driver$|e2e\.population\.(kinetics_population_compartment|compartment_population_combined)$|full Omega: (MAPs of TACs drawn|one scan at 24 h|BIC prefers|corr|the SEs of ln Omega)') || status=$?
if compgen -G "$logs/*" >/dev/null; then
  echo "sanitize.sh: sanitizer reports (build-asan/sanitizer-logs):" >&2
  for f in "$logs"/*; do echo "--- $f" >&2; head -60 "$f" >&2; done
  status=1
fi
if [[ $status -ne 0 ]]; then
  echo "sanitize.sh: FAILED (tests or sanitizer reports above)" >&2
  exit 1
fi
echo "sanitize.sh: all tests passed under ASan+UBSan, no sanitizer report"
