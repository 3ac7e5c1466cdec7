"""Shared fixtures of the Python module's tests: the lutdose program and the source tree, given by
CTest (LUTDOSE_EXE, LUTDOSE_SOURCE_DIR); the module comes from PYTHONPATH=build/python."""
import json
import os
import subprocess

import pytest

SOURCE = os.environ.get("LUTDOSE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
EXE = os.environ.get("LUTDOSE_EXE", os.path.join(SOURCE, "build", "lutdose"))


@pytest.fixture
def source():
    return SOURCE


def cli(*args, check=True):
    """Runs the lutdose program; returns the completed process (text)."""
    p = subprocess.run([EXE, *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"lutdose {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}")
    return p


def cli_error(*args):
    """The message of a failing lutdose command (exit status 2), without its 'lutdose: error: '."""
    p = cli(*args, check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    prefix = "lutdose: error: "
    assert p.stderr.startswith(prefix), p.stderr
    return p.stderr[len(prefix):].rstrip("\n")


def run_json(*args, tmp):
    """results.json of `lutdose run ARGS --out tmp/cli` as text."""
    out = os.path.join(tmp, "cli")
    cli("run", *args, "--out", out, "--quiet")
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        return f.read()


def pytest_sessionfinish(session, exitstatus):
    """A file whose tests were all skipped (an optional package missing) exits 77, which CTest
    reports as skipped (SKIP_RETURN_CODE); under CI=true it fails instead, as the e2e tests do."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    passed, skipped = len(reporter.stats.get("passed", [])), len(reporter.stats.get("skipped", []))
    if skipped and not passed:
        session.exitstatus = 1 if os.environ.get("CI") == "true" else 77
