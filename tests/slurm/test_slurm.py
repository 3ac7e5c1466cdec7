#!/usr/bin/env python3
"""The Slurm job scripts of docs/cluster.md on a real single-node Slurm (issue 13 item 6).

Starts a private Slurm (tests/slurm/start_slurm.sh: its own munged, slurmctld and slurmd, own
munge key, slurm.conf and ports, all under a temporary directory), synthesises a cohort of 30
patients plus one broken case file, and submits it with examples/slurm/submit.sh: 3 shards as an
array job, then the merge job with afterok.  The first attempt of shard 2 fails after its batch
(a wrapper around lutdose, as a node dying at the end of the task); the test checks that
  * tasks 1 and 3 complete, task 2 fails, and Slurm cancels the merge (no cohort.h5);
  * the documented re-submission (submit.sh --tasks 2) resumes the finished shard 2 and exits 0
    (lutdose exits 3 for the broken patient, which the shard script turns into success), and the
    new merge job completes;
  * the export of the merged store equals, file by file and byte for byte, the export of a
    one-process `lutdose batch` of the same cohort, and failures.csv lists just the broken case.
Slurm is stopped at the end whatever happens (tests/slurm/stop_slurm.sh), and the temporary
directory removed; on failure the job logs and daemon logs are printed first.

Needs root and the Debian packages slurm-wlm and munge (scripts/install-deps.sh --slurm). Without
them the test is skipped (exit 77) with the reason, except under CI=true where it fails.

    test_slurm.py --lutdose PATH --source REPO_ROOT
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cohort_check import (SKIP_EXIT, TestFailure, TestSkipped, compare_exports, make_cohort,  # noqa: E402
                          one_process_export, run, skip)

PATIENTS = 30
SHARDS = 3
# Waiting for the jobs: 31 patients take well under a second per shard; the rest is Slurm's
# scheduling (a few seconds per job; the dependent merge starts at the controller's next
# scheduling pass, about 10 s here). 600 s leaves room for a loaded machine.
JOB_TIMEOUT_S = 600
SLURM_TOOLS = ["munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "scancel"]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


def preconditions():
    if os.geteuid() != 0:
        skip("needs root to start munged and slurmd (CI runs as root)")
    missing = [t for t in SLURM_TOOLS if shutil.which(t) is None]
    if missing:
        skip("Slurm or MUNGE not installed (missing %s): scripts/install-deps.sh --slurm" % ", ".join(missing))


def job_records(job_id, env):
    """{JobId: (JobState, ExitCode)} of a job, one record per array task (scontrol -o show job)."""
    r = run(["scontrol", "-o", "show", "job", job_id], env=env)
    records = {}
    for line in r.stdout.splitlines():
        fields = dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", line))
        name = fields.get("JobId")
        if fields.get("ArrayTaskId"):  # an array task: named JOB_TASK as in squeue
            name = "%s_%s" % (fields.get("ArrayJobId"), fields.get("ArrayTaskId"))
        records[name] = (fields.get("JobState"), fields.get("ExitCode"))
    return records


def wait_for_jobs(job_ids, env):
    """Waits until every record of every job is in a terminal state; returns all records."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        records = {}
        for job_id in job_ids:
            records.update(job_records(job_id, env))
        if records and all(state in TERMINAL for state, _ in records.values()):
            return records
        if time.monotonic() > deadline:
            raise TestFailure("jobs not finished after %d s: %s" % (JOB_TIMEOUT_S, records))
        time.sleep(1)


def print_logs(tmp):
    """The job and daemon logs, for the diagnosis of a failure."""
    for sub in ("work/logs", "slurm/log"):
        d = os.path.join(tmp, sub)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), errors="replace") as f:
                text = f.read()
            print("--- %s/%s (last 3000 characters)\n%s" % (sub, name, text[-3000:]), file=sys.stderr)


# The LUTDOSE the jobs run in the first submission: the real lutdose, but the first attempt of
# shard 2 then fails (exit 1) after its batch has finished, as when a node dies or the time limit
# strikes just before the task ends. The re-submitted task must resume the finished store.
FLAKY_LUTDOSE = """#!/bin/bash
status=0
"$REAL_LUTDOSE" "$@" || status=$?
if [[ " $* " == *" --shard 2/3 "* && ! -e "$FLAKY_MARK" ]]; then
  touch "$FLAKY_MARK"
  echo "test: simulated failure of the task after its batch (exit status $status)" >&2
  exit 1
fi
exit $status
"""


def submit(args, env, tmp, work, cases, extra=()):
    """examples/slurm/submit.sh itself; returns (shards job id, merge job id)."""
    # --cpus 1: 3 shards on a node of 2 CPUs.
    r = run(["bash", os.path.join(args.source, "examples/slurm/submit.sh"), "--shards", str(SHARDS),
             "--cpus", "1"] + list(extra) + [work, cases], env=env, cwd=tmp)
    ids = dict(re.findall(r"^(shards_job|merge_job)=(\d+)$", r.stdout, re.M))
    if set(ids) != {"shards_job", "merge_job"}:
        raise TestFailure("submit.sh printed no job ids:\n" + r.stdout)
    print("submitted: shards job %s, merge job %s" % (ids["shards_job"], ids["merge_job"]))
    return ids["shards_job"], ids["merge_job"]


def check_states(records, want):
    """Every job record has the (JobState, ExitCode) that `want` gives for its name."""
    print("jobs: " + ", ".join("%s %s %s" % (k, s, e) for k, (s, e) in sorted(records.items())))
    if sorted(records) != sorted(want):
        raise TestFailure("expected the jobs %s, Slurm lists %s" % (sorted(want), records))
    bad = {k: (v, want[k]) for k, v in records.items() if v != want[k]}
    if bad:
        raise TestFailure("jobs not in the expected state (got, expected): %s" % bad)


def slurm_test(args, tmp):
    lutdose = os.path.abspath(args.lutdose)
    slurm_dir = os.path.join(tmp, "slurm")
    r = run(["bash", os.path.join(args.source, "tests/slurm/start_slurm.sh"), slurm_dir])
    conf = re.search(r"^SLURM_CONF=(.*)$", r.stdout, re.M).group(1)
    # Slurm settings of the caller's environment (a partition, an account; SLURM_* when the tests
    # themselves run inside a Slurm job) are not the private cluster's: left out.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SALLOC_", "SRUN_"))}
    env.update(SLURM_CONF=conf, LUTDOSE=lutdose)
    print(run(["sinfo"], env=env).stdout.rstrip())

    cases = os.path.join(tmp, "cases")
    make_cohort(lutdose, cases, PATIENTS)
    work = os.path.join(tmp, "work")
    ok, failed, cancelled = ("COMPLETED", "0:0"), ("FAILED", "1:0"), ("CANCELLED", "0:0")

    # 1. Shard 2's task fails: tasks 1 and 3 complete, and Slurm cancels the merge
    #    (afterok can no longer be satisfied; --kill-on-invalid-dep).
    flaky = os.path.join(tmp, "flaky-lutdose")
    with open(flaky, "w") as f:
        f.write(FLAKY_LUTDOSE)
    os.chmod(flaky, 0o755)
    flaky_env = dict(env, LUTDOSE=flaky, REAL_LUTDOSE=lutdose, FLAKY_MARK=os.path.join(tmp, "flaky-mark"))
    array, merge = submit(args, flaky_env, tmp, work, cases)
    check_states(wait_for_jobs([array, merge], env),
                 {array + "_1": ok, array + "_2": failed, array + "_3": ok, merge: cancelled})
    if os.path.exists(os.path.join(work, "cohort.h5")):
        raise TestFailure("the merge ran although a shard task failed")

    # 2. The documented re-submission of the failed task (--tasks 2, real lutdose): it resumes its
    #    finished shard, exits 0, and the new merge joins the three shards.
    array, merge = submit(args, env, tmp, work, cases, ["--tasks", "2"])
    check_states(wait_for_jobs([array, merge], env), {array + "_2": ok, merge: ok})
    with open(os.path.join(work, "logs", "shard-%s_2.out" % array)) as f:
        if "--resume" not in f.read():
            raise TestFailure("the re-submitted task 2 did not resume its shard (log shard-%s_2.out)" % array)

    # The exit-3 path of the shard script ran: shard 2 holds the broken patient and said so.
    logs = os.path.join(work, "logs")
    if not any("some patients failed" in open(os.path.join(logs, f)).read() for f in os.listdir(logs)):
        raise TestFailure("no shard log reports failed patients, yet the cohort has a broken case")

    expected = one_process_export(lutdose, cases, tmp)
    names = compare_exports(expected, os.path.join(work, "csv"))
    print("merged export of %d shards equals the one-process batch: %s" % (SHARDS, ", ".join(names)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lutdose", required=True)
    p.add_argument("--source", required=True, help="the repository's root")
    args = p.parse_args()
    tmp = None
    try:
        preconditions()
        tmp = tempfile.mkdtemp(prefix="lutdose-slurm-")
        os.chmod(tmp, 0o755)  # munged needs execute permission for all on its socket's parents
        slurm_test(args, tmp)
    except TestSkipped as e:
        print("SKIPPED: " + str(e))
        return SKIP_EXIT
    except TestFailure as e:
        if tmp:
            print_logs(tmp)
        print("FAILED: " + str(e), file=sys.stderr)
        return 1
    finally:
        if tmp:
            subprocess.run(["bash", os.path.join(args.source, "tests/slurm/stop_slurm.sh"),
                            os.path.join(tmp, "slurm")])
            shutil.rmtree(tmp, ignore_errors=True)
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
