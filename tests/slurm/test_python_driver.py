#!/usr/bin/env python3
"""The Python driver of docs/cluster.md (examples/python/batch_shards.py), without Slurm.

Synthesises a cohort of 20 patients plus one broken case file, runs the driver with 3 shards in 2
worker processes, and checks its exit status (3: the broken patient failed, the rest is done), then
that the export of its merged store equals, file by file and byte for byte, the export of a
one-process `lutdose batch` of the same cohort, with failures.csv listing just the broken case.
A second run on the same directory refuses (cohort.h5 exists); with the merged outputs moved away,
a third run resumes the finished shards and merges them to the same export.

    test_python_driver.py --lutdose PATH --source REPO_ROOT
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cohort_check import TestFailure, compare_exports, make_cohort, one_process_export, run  # noqa: E402

PATIENTS = 20
SHARDS = 3


def driver_test(args, tmp):
    lutdose = os.path.abspath(args.lutdose)
    driver = os.path.join(args.source, "examples/python/batch_shards.py")
    cases = os.path.join(tmp, "cases")
    make_cohort(lutdose, cases, PATIENTS)
    work = os.path.join(tmp, "work")
    argv = [sys.executable, driver, "--work", work, "--shards", str(SHARDS), "--workers", "2",
            "--lutdose", lutdose, "--csv", "--", cases]
    # Exit 3: the broken patient failed and is recorded; every shard and the merge succeeded.
    r = run(argv, expect=(3,))
    print(r.stdout.rstrip())
    shards = sorted(os.listdir(os.path.join(work, "shards")))
    if shards != ["shard-%04d.h5" % i for i in range(1, SHARDS + 1)]:
        raise TestFailure("expected exactly %d finished shard stores, found %s" % (SHARDS, shards))

    expected = one_process_export(lutdose, cases, tmp)
    names = compare_exports(expected, os.path.join(work, "csv"))
    print("merged export of %d shards equals the one-process batch: %s" % (SHARDS, ", ".join(names)))

    # Run again on the same directory: the driver refuses before doing anything (cohort.h5
    # exists, lutdose never overwrites), exit 2, and the merged store is unchanged.
    with open(os.path.join(work, "cohort.h5"), "rb") as f:
        before = f.read()
    r = run(argv, expect=(2,))
    with open(os.path.join(work, "cohort.h5"), "rb") as f:
        if f.read() != before:
            raise TestFailure("a second run of the driver changed cohort.h5")
    if "cohort.h5 exists" not in r.stderr:
        raise TestFailure("the second run should refuse because cohort.h5 exists, it said:\n" + r.stderr)

    # Without the merged outputs, a run resumes the finished shards (nothing is redone) and merges
    # them again: the same export.
    os.rename(os.path.join(work, "cohort.h5"), os.path.join(tmp, "first-cohort.h5"))
    os.rename(os.path.join(work, "csv"), os.path.join(tmp, "first-csv"))
    run(argv, expect=(3,))
    compare_exports(expected, os.path.join(work, "csv"))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lutdose", required=True)
    p.add_argument("--source", required=True, help="the repository's root")
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="lutdose-driver-")
    try:
        driver_test(args, tmp)
    except TestFailure as e:
        print("FAILED: " + str(e), file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
