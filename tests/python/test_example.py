"""examples/python/cohort_study.py runs end to end (a small cohort) and writes its figure; needs
matplotlib (scripts/install-deps.sh --plots), else skipped."""
import os
import subprocess
import sys

import pytest

from conftest import SOURCE


def test_cohort_study_example(tmp_path):
    pytest.importorskip("matplotlib", reason="python3-matplotlib (scripts/install-deps.sh --plots)")
    out = tmp_path / "figure.png"
    p = subprocess.run([sys.executable, os.path.join(SOURCE, "examples", "python", "cohort_study.py"),
                        "--patients", "20", "--seed", "3", "--out", str(out)],
                       capture_output=True, text=True, env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    assert "batch: 20 patients done, 0 failed" in p.stdout
    assert out.stat().st_size > 10000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
