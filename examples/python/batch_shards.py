#!/usr/bin/env python3
"""Runs a lutdose cohort as N shards in parallel processes on one machine, then merges them.

The same scheme as the Slurm job scripts (examples/slurm, docs/cluster.md) without a cluster: a
multiprocessing pool runs `lutdose batch ... --shard I/N` for I = 1..N, then `lutdose merge` joins
the shards in order, so the merged store equals a one-process `lutdose batch` of the cohort.

    batch_shards.py --work WORK [--shards N] [--workers W] [--threads T] [--lutdose PATH]
                    [--csv] -- COHORT [BATCH OPTIONS]

COHORT is what `lutdose batch` takes besides --shard/--out/--threads: a case directory, or
--tac TACS.csv --patients PATIENTS.csv and fit/dose options. Writes WORK/shards/shard-IIII.h5,
WORK/logs/shard-IIII.log, WORK/cohort.h5 and, with --csv, WORK/csv/. Run it again after an
interruption: shards whose store exists are resumed (--resume), finished ones are kept. An
existing WORK/cohort.h5 (or WORK/csv with --csv) stops the driver before any work (exit 2).

Exit status as `lutdose batch`: 0 every patient done, 3 some patients failed (recorded in the
store and in the export's failures.csv), 2 bad invocation; 1 when a shard or the merge failed
(the message names its log; run again to resume).
"""
import argparse
import multiprocessing
import os
import subprocess
import sys


def shard_path(work, i):
    return os.path.join(work, "shards", "shard-%04d.h5" % i)


def run_shard(job):
    """Runs shard I of N as a `lutdose batch` process; returns (I, exit status, log path)."""
    args, i = job
    out = shard_path(args.work, i)
    log = os.path.join(args.work, "logs", "shard-%04d.log" % i)
    # A store (or PATH.parts) left by an interrupted run is resumed: its committed patients are kept.
    resume = ["--resume"] if os.path.exists(out) or os.path.exists(out + ".parts") else []
    argv = ([args.lutdose, "batch"] + args.cohort +
            ["--shard", "%d/%d" % (i, args.shards), "--out", out,
             "--threads", str(args.threads), "--progress", "never"] + resume)
    with open(log, "w") as f:
        status = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT).returncode
    return i, status, log


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, help="directory for shards/, logs/, cohort.h5, csv/")
    p.add_argument("--shards", type=int, default=4, help="number of shards (default 4)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="shards run at the same time (default: all cores)")
    p.add_argument("--threads", type=int, default=1, help="lutdose threads per shard (default 1)")
    p.add_argument("--lutdose", default="lutdose", help="the lutdose binary (default: on PATH)")
    p.add_argument("--csv", action="store_true", help="also export WORK/cohort.h5 to WORK/csv/")
    p.add_argument("cohort", nargs=argparse.REMAINDER, help="-- then the cohort for lutdose batch")
    args = p.parse_args(argv)
    if args.cohort[:1] == ["--"]:
        args.cohort = args.cohort[1:]
    if not args.cohort:
        p.error("no cohort: give it after --, e.g. -- cases/")
    if args.shards < 1 or args.workers < 1 or args.threads < 1:
        p.error("--shards, --workers and --threads must be at least 1")
    return args


def main(argv):
    args = parse_args(argv)
    merged = os.path.join(args.work, "cohort.h5")
    outputs = [merged] + ([os.path.join(args.work, "csv")] if args.csv else [])
    for path in outputs:
        if os.path.exists(path):  # lutdose never overwrites: say so before any work is done
            print("batch_shards: %s exists; remove it or choose another --work" % path, file=sys.stderr)
            return 2
    os.makedirs(os.path.join(args.work, "shards"), exist_ok=True)
    os.makedirs(os.path.join(args.work, "logs"), exist_ok=True)
    jobs = [(args, i) for i in range(1, args.shards + 1)]
    with multiprocessing.Pool(min(args.workers, args.shards)) as pool:
        results = pool.map(run_shard, jobs)

    # Exit 3 is a complete shard with some failed patients (recorded in it); any other non-zero
    # status leaves the shard unfinished, and the merge would refuse it.
    bad = [(i, s, log) for i, s, log in results if s not in (0, 3)]
    for i, s, log in bad:
        print("batch_shards: shard %d/%d failed with exit status %d, see %s"
              % (i, args.shards, s, log), file=sys.stderr)
    if bad:
        print("batch_shards: run again to resume the failed shards", file=sys.stderr)
        return 2 if all(s == 2 for _, s, _ in bad) else 1

    steps = [[args.lutdose, "merge", merged] + [shard_path(args.work, i) for i in range(1, args.shards + 1)]]
    if args.csv:
        steps.append([args.lutdose, "export", merged, "--csv", os.path.join(args.work, "csv")])
    for step in steps:
        status = subprocess.run(step).returncode
        if status != 0:
            print("batch_shards: `%s` failed with exit status %d" % (" ".join(step), status),
                  file=sys.stderr)
            return 1
    some_failed = any(s == 3 for _, s, _ in results)
    print("batch_shards: %d shards merged into %s%s" % (
        args.shards, merged, "; some patients failed (see failures.csv of the export)" if some_failed else ""))
    return 3 if some_failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
