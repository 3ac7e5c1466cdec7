#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (scripts/asan-build.sh: clang, ASan + UBSan,
# assertions on, in ./build-asan, the tree scripts/sanitize.sh tests) and runs each for
# SECONDS_PER_TARGET seconds (default 60), up to one target per core at once (LUTDOSE_FUZZ_JOBS).
#   Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
#   Targets: tac_table case_file svalue_table compartment_model dose_history (default: all).
# Each target starts from its checked-in seeds (tests/fuzz/corpus/TARGET) and the inputs earlier
# runs found (build-fuzz/corpus/TARGET, kept between runs). A crash, hang (> 10 s for one input),
# out-of-memory, sanitizer report or unexpected exception stops that target, saves the input in
# build-fuzz/findings/ and makes the script exit 1. Extra libFuzzer flags: LUTDOSE_FUZZ_FLAGS.
# A longer campaign (docs/validation.md, "Fuzzing"): e.g. scripts/fuzz.sh 3600.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
[[ $# -gt 0 ]] && shift
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: SECONDS_PER_TARGET must be a positive integer, got '$secs'" >&2; exit 2; }
all_targets=(tac_table case_file svalue_table compartment_model dose_history)
targets=("${@:-${all_targets[@]}}")

# After scripts/sanitize.sh (as in .ci/run) the targets are already built: nothing to do.
bash scripts/asan-build.sh "${targets[@]/#/fuzz_}"

mkdir -p build-fuzz/findings build-fuzz/logs
# The targets write each input to a file of their own directory under TMPDIR: a tmpfs (/dev/shm)
# when there is one (2-3 times faster than a disk), in a directory of this run, removed at the end.
tmp_base="$PWD/build-fuzz"
[[ -d /dev/shm && -w /dev/shm ]] && tmp_base=/dev/shm
TMPDIR="$(mktemp -d "$tmp_base/lutdose-fuzz-run.XXXXXX")"
export TMPDIR
# Up to one target per core at once (LUTDOSE_FUZZ_JOBS overrides): each target is one process, and
# on 2 cores five targets of 20 s take 60 s instead of 100 s of the CI's budget.
jobs="${LUTDOSE_FUZZ_JOBS:-$(nproc)}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: LUTDOSE_FUZZ_JOBS must be a positive integer, got '$jobs'" >&2; exit 2; }
# Stopped early (Ctrl-C, kill): the running targets are stopped first (SIGINT: they print their
# final statistics), then their working directory is removed; removing it under a running target
# would make the target abort on its next input, which would look like a finding.
declare -A running=()  # pid -> target
cleanup() {
  local pid
  for pid in "${!running[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${!running[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMPDIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export UBSAN_OPTIONS="print_stacktrace=1"
failed=()
declare -A summary=()  # target -> its line of the summary
# Starts target $1 in the background (so that a signal to this script reaches cleanup() at once).
start_target() {
  local t="$1" dict
  case "$t" in
    case_file|compartment_model) dict=tests/fuzz/json.dict ;;
    *) dict=tests/fuzz/csv.dict ;;
  esac
  mkdir -p "build-fuzz/corpus/$t"
  echo "fuzz.sh: $t for $secs s (log build-fuzz/logs/$t.log)"
  # -max_len covers the largest seed (an 18 kB case file); -timeout: one input may take 10 s.
  # shellcheck disable=SC2086
  ./build-asan/tests/fuzz/"fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -max_len=32768 -dict="$dict" -artifact_prefix="build-fuzz/findings/$t-" -print_final_stats=1 \
      ${LUTDOSE_FUZZ_FLAGS:-} "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"build-fuzz/logs/$t.log" 2>&1 &
  running[$!]="$t"
}
# Waits for one running target to end and records its outcome.
finish_one() {
  local pid="" fuzz_status=0 t log status execs rate
  wait -n -p pid "${!running[@]}" || fuzz_status=$?
  t="${running[$pid]}"
  unset "running[$pid]"
  log="build-fuzz/logs/$t.log"
  if [[ $fuzz_status -eq 0 ]]; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    grep -E "FINDING|ERROR: |SUMMARY: |runtime error|Test unit written" "$log" | head -20 >&2 || true
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  summary[$t]="$(printf '%-18s %-7s %12s execs %8s execs/s' "$t" "$status" "${execs:-?}" "${rate:-?}")"
}
for t in "${targets[@]}"; do
  [[ ${#running[@]} -ge $jobs ]] && finish_one
  start_target "$t"
done
while [[ ${#running[@]} -gt 0 ]]; do finish_one; done
echo "fuzz.sh: $secs s per target"
for t in "${targets[@]}"; do printf '  %s\n' "${summary[$t]}"; done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs in build-fuzz/findings/, logs in build-fuzz/logs/)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran $secs s each without a finding"
