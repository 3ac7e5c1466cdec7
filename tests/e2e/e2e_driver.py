"""The command line shared by the case-based end-to-end drivers (test_batch.py, test_synth.py,
test_population.py, test_report.py): `--list` prints the case names (CTest registers one test
per case), `--case NAME --lutdose EXE [--source DIR] [--artifacts DIR]` runs one case in a new
temporary folder, removed afterwards. Exit status: 0 passed, 1 failed, 77 skipped (CTest's
SKIP_RETURN_CODE), or 1 for a skip under CI=true (no test may be skipped in CI)."""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


class CaseFailure(Exception):
    """A case's expectation was not met (the message says what was expected and what happened)."""


class Cli:
    """Runs the lutdose program of a case in its temporary folder: `run` gives (argv, process),
    `ok` requires exit 0, `fails` exit 2 with a text in the message (the drivers' shared part)."""
    timeout_s = 300

    def __init__(self, lutdose, tmp, source=None):
        self.lutdose, self.tmp, self.source = lutdose, tmp, source

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def run(self, *args):
        argv = [self.lutdose] + [str(a) for a in args]
        cp = subprocess.run(argv, cwd=self.tmp, capture_output=True, text=True, timeout=self.timeout_s)
        return argv, cp

    def ok(self, *args):
        argv, cp = self.run(*args)
        if cp.returncode != 0:
            raise CaseFailure("expected exit 0: %s\nexit %d\n%s" % (shlex.join(argv), cp.returncode, cp.stderr))
        return cp

    def fails(self, expected_text, *args):
        argv, cp = self.run(*args)
        if cp.returncode != 2 or expected_text not in cp.stderr:
            raise CaseFailure("expected exit 2 with %r: %s\nexit %d\n%s" %
                              (expected_text, shlex.join(argv), cp.returncode, cp.stderr))


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
