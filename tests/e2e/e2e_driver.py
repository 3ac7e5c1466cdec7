"""The command line shared by the case-based end-to-end drivers (test_batch.py, test_synth.py,
test_population.py, test_report.py): `--list` prints the case names (CTest registers one test
per case), `--case NAME --lutdose EXE [--source DIR] [--artifacts DIR]` runs one case in a new
temporary folder, removed afterwards. Exit status: 0 passed, 1 failed, 77 skipped (CTest's
SKIP_RETURN_CODE), or 1 for a skip under CI=true (no test may be skipped in CI)."""
import argparse
import os
import shutil
import sys
import tempfile

SKIP = 77


def main(argv, name, cases, make_ctx, failure, skip=None):
    """Runs the case of argv. make_ctx(args, tmp) builds the case's context; `failure` and `skip`
    are the driver's exception classes for a failed and a skipped case."""
    ap = argparse.ArgumentParser(description="lutdose %s end-to-end tests" % name)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--lutdose")
    ap.add_argument("--source")
    ap.add_argument("--artifacts")
    ap.add_argument("--case")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(cases))
        return 0
    if a.case not in cases or not a.lutdose:
        ap.error("--lutdose and a known --case are required (or --list)")
    tmp = tempfile.mkdtemp(prefix="lutdose-%s-e2e-" % name)
    try:
        cases[a.case](make_ctx(a, tmp))
    except failure as e:
        print("FAIL %s: %s" % (a.case, e), file=sys.stderr)
        return 1
    except Exception as e:
        if skip is None or not isinstance(e, skip):
            raise
        if os.environ.get("CI") == "true":
            print("FAIL %s: %s (CI=true: no skipping)" % (a.case, e), file=sys.stderr)
            return 1
        print("SKIP %s: %s" % (a.case, e), file=sys.stderr)
        return SKIP
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
