"""Shared by the scale-out tests (test_slurm.py, test_python_driver.py): a synthetic cohort with one
broken patient, the export of a one-process `lutdose batch` of it, and the comparison of two
exports.  Expected values come from lutdose itself run the plain way (one process, one thread),
never from the sharded code under test."""
import json
import os
import shlex
import shutil
import subprocess

# Exit status of a skipped test (CTest's SKIP_RETURN_CODE in tests/CMakeLists.txt).
SKIP_EXIT = 77

# The broken patient: a case file that is not JSON. lutdose batch records it as a failure and goes
# on (exit status 3). Its name sorts inside the cohort (between P00014 and P00015), so it falls in
# a middle shard, not at a shard boundary chosen by the test.
BROKEN_CASE = "case-P00014-broken.json"


class TestFailure(Exception):
    pass


class TestSkipped(Exception):
    pass


def skip(reason):
    """Skips the test; under CI (CI=true) a skip is a failure instead (.ci/run allows none)."""
    if os.environ.get("CI") == "true":
        raise TestFailure("CI=true forbids skipped tests, and this one would be skipped: " + reason)
    raise TestSkipped(reason)


def run(argv, expect=(0,), **kwargs):
    """Runs argv; TestFailure with its output when the exit status is not in `expect`."""
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    if r.returncode not in expect:
        raise TestFailure("`%s` exited %d (expected %s)\nstdout:\n%s\nstderr:\n%s"
                          % (shlex.join(argv), r.returncode, expect, r.stdout[-4000:], r.stderr[-4000:]))
    return r


def make_cohort(lutdose, cases_dir, patients):
    """A synthetic cohort of case files (lutdose synth, seed 7) plus BROKEN_CASE, in cases_dir.
    Only the case files are copied there from synth's output (not its manifest.json, synth.json
    and truth.csv), so that the directory is a plain cohort of case files."""
    synth = cases_dir + "-synth"
    run([lutdose, "synth", "--patients", str(patients), "--seed", "7", "--format", "cases",
         "--out", synth, "--quiet"])
    names = sorted(f for f in os.listdir(synth) if f.startswith("case-") and f.endswith(".json"))
    if len(names) != patients:
        raise TestFailure("lutdose synth wrote %d case files in %s, expected %d" % (len(names), synth, patients))
    os.mkdir(cases_dir)
    for name in names:
        shutil.copyfile(os.path.join(synth, name), os.path.join(cases_dir, name))
    with open(os.path.join(cases_dir, BROKEN_CASE), "w") as f:
        f.write("{ this is not JSON\n")


def one_process_export(lutdose, cases_dir, tmp):
    """The reference: `lutdose batch` of the whole cohort in one process and one thread, exported."""
    store = os.path.join(tmp, "one-process.h5")
    csv = os.path.join(tmp, "one-process-csv")
    # Exit 3: the broken patient failed, the others are done.
    run([lutdose, "batch", cases_dir, "--out", store, "--threads", "1", "--progress", "never"], expect=(3,))
    run([lutdose, "export", store, "--csv", csv])
    return csv


def compare_exports(expected_dir, actual_dir):
    """Every CSV of the two exports is identical, byte for byte (same rows in the same order: the
    merged shards must equal the one-process batch exactly, not within a tolerance). Of the
    exports' manifest.json, the file list (names, sizes, SHA-256) must be equal; its run_id and
    created_utc differ by design."""
    names = sorted(os.listdir(expected_dir))
    if sorted(os.listdir(actual_dir)) != names:
        raise TestFailure("exports differ in their files: %s has %s, %s has %s"
                          % (expected_dir, names, actual_dir, sorted(os.listdir(actual_dir))))
    for name in names:
        if name == "manifest.json":
            continue
        with open(os.path.join(expected_dir, name)) as f:
            want = f.read().splitlines()
        with open(os.path.join(actual_dir, name)) as f:
            got = f.read().splitlines()
        if got == want:
            continue
        for k, (w, g) in enumerate(zip(want, got)):
            if w != g:
                raise TestFailure("%s differs at line %d:\n  one process: %s\n  sharded:     %s"
                                  % (name, k + 1, w, g))
        raise TestFailure("%s: %d lines in one process, %d sharded" % (name, len(want), len(got)))
    manifests = []
    for d in (expected_dir, actual_dir):
        with open(os.path.join(d, "manifest.json")) as f:
            manifests.append(json.load(f)["files"])
    if manifests[0] != manifests[1]:
        raise TestFailure("manifest.json file lists differ:\n  one process: %s\n  sharded:     %s" % tuple(manifests))
    check_failures(actual_dir)
    return [n for n in names if n != "manifest.json"]


def check_failures(csv_dir):
    """failures.csv holds exactly the broken patient (so the exit-3 path was exercised)."""
    with open(os.path.join(csv_dir, "failures.csv")) as f:
        rows = f.read().splitlines()[1:]
    if len(rows) != 1 or "P00014-broken" not in rows[0]:
        raise TestFailure("failures.csv should list only the broken case %s, it has: %s" % (BROKEN_CASE, rows))
