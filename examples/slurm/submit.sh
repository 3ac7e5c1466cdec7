#!/bin/bash
# Submits a lutdose cohort to Slurm as N shards (an array job) and one merge job that starts when
# every shard has succeeded (docs/cluster.md).
#
#   submit.sh [--shards N] [--cpus C] [--tasks LIST] WORK COHORT [BATCH OPTIONS]
#
#   --shards N    number of shards (default 8): array tasks 1..N, one lutdose batch each
#   --cpus C      CPUs (= lutdose threads) per shard (default 4)
#   --tasks LIST  submit only these array tasks (Slurm's --array syntax, e.g. 3,5 or 2-4), to
#                 re-run failed shards: they resume; N must stay the same. Default 1-N.
#   WORK          directory of the job: shards/, logs/, then cohort.h5 and csv/ (created)
#   COHORT ...    what `lutdose batch` takes besides --shard/--out/--threads: a case directory,
#                 or --tac TACS.csv --patients PATIENTS.csv and fit/dose options
#
# Prints "shards_job=ID" and "merge_job=ID". The lutdose binary: $LUTDOSE, else `lutdose` on PATH.
# Other sbatch settings (partition, account, time limit) through SBATCH_PARTITION, SBATCH_ACCOUNT,
# SBATCH_TIMELIMIT, ... in the environment.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")

usage() { echo "usage: $0 [--shards N] [--cpus C] [--tasks LIST] WORK COHORT [BATCH OPTIONS]" >&2; exit 2; }
shards=8 cpus=4 tasks=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --shards) [[ $# -ge 2 ]] || usage; shards=$2; shift 2 ;;
    --cpus) [[ $# -ge 2 ]] || usage; cpus=$2; shift 2 ;;
    --tasks) [[ $# -ge 2 ]] || usage; tasks=$2; shift 2 ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
  esac
done
[[ $# -ge 2 ]] || usage
[[ $shards =~ ^[1-9][0-9]*$ && $cpus =~ ^[1-9][0-9]*$ ]] || usage
work=$1
shift
mkdir -p "$work/shards" "$work/logs"

# --parsable prints "JOBID" or "JOBID;CLUSTER".
array=$(sbatch --parsable --array="${tasks:-1-$shards}" --cpus-per-task="$cpus" \
               --output="$work/logs/shard-%A_%a.out" \
               "$here/lutdose-shards.sbatch" "$shards" "$work" "$@")
array=${array%%;*}
# afterok: the merge starts only when every array task has exited 0 (exit 3, patients failed, is
# turned into 0 by the shard script). --kill-on-invalid-dep: if a task fails, Slurm cancels the
# merge instead of leaving it pending for ever; re-submit the failed tasks with --tasks.
merge=$(sbatch --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes \
               --output="$work/logs/merge-%j.out" \
               "$here/lutdose-merge.sbatch" "$shards" "$work")
merge=${merge%%;*}
echo "shards_job=$array"
echo "merge_job=$merge"
