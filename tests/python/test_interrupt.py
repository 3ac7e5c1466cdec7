"""Ctrl-C during the module's long calls (docs/python.md): fit_many and batch raise
KeyboardInterrupt soon after the signal, not when the whole call would have ended; an interrupted
batch leaves a resumable store (docs/batch.md) that --resume finishes to the uninterrupted store."""
import os
import signal
import threading
import time

import pandas as pd
import pytest

import lutdose


def interrupt_after(seconds):
    """Sends SIGINT to this process after `seconds` (Python's handler raises KeyboardInterrupt in the
    main thread)."""
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.fixture(scope="module")
def big_cohort(tmp_path_factory):
    """1500 synthetic patients (6 000 TACs), as files and DataFrames."""
    tmp = tmp_path_factory.mktemp("interrupt")
    return tmp / "c", lutdose.synth(1500, seed=17, out=tmp / "c")


def test_fit_many_stops_soon_after_ctrl_c(big_cohort):
    _, c = big_cohort
    df = pd.concat([c.tacs] * 5, keys=range(5), names=["copy"]).reset_index(level=0)
    df["patient"] = df["patient"] + "-" + df.pop("copy").astype(str)  # 30 000 TACs, 7 500 patients
    start = time.perf_counter()
    lutdose.fit_many(df, threads=1)
    whole_s = time.perf_counter() - start
    timer = interrupt_after(0.2 * whole_s)
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        lutdose.fit_many(df, threads=1)
    stopped_s = time.perf_counter() - start
    timer.join()
    # The signal comes at 20 % of the whole call's time; the call must end well before the whole
    # time (it sees the signal within 0.1 s and stops after the block of at most ~256 TACs in
    # work). 60 % leaves room for the machine's load and for the column conversion before the fits.
    assert stopped_s < 0.6 * whole_s, (stopped_s, whole_s)


def interrupt_after_start(parts, delay_s, timeout_s=120):
    """Sends SIGINT to this process `delay_s` after the batch's store folder `parts` (created when the
    batch starts writing, before its first commit) appears. Timed from the batch's own start, not from
    the call (a SIGINT at a share of an earlier whole call's time came after the end when the second
    call was faster: flaky under a changing load)."""
    def watch():
        end = time.monotonic() + timeout_s
        while not parts.is_dir():
            if time.monotonic() > end:
                return  # the batch never started: its own error fails the test, no stray SIGINT later
            time.sleep(0.002)
        time.sleep(delay_s)
        os.kill(os.getpid(), signal.SIGINT)
    watcher = threading.Thread(target=watch)
    watcher.start()
    return watcher


def test_batch_stops_at_a_commit_and_resumes_to_the_whole_store(big_cohort, tmp_path):
    path, _ = big_cohort
    tac, patients = path / "tacs.csv", path / "patients.csv"
    done, whole = lutdose.batch(tac=tac, patients=patients, out=tmp_path / "whole.h5", threads=1)
    # at 10 % of the uninterrupted batch's time after the start: the rest, 90 %, is the margin for a
    # faster second run (the worker computes ahead of the commits, so near the end the commit under
    # way may already be the last one)
    watcher = interrupt_after_start(tmp_path / "stopped.h5.parts", 0.1 * done["elapsed_s"])
    with pytest.raises(KeyboardInterrupt):
        lutdose.batch(tac=tac, patients=patients, out=tmp_path / "stopped.h5", threads=1)
    watcher.join()
    # Stopped before the end: the store is not finished (a finished store is a file without its
    # .parts folder of segments), so the interrupt did stop the batch rather than arrive after it.
    finished = (tmp_path / "stopped.h5").is_file() and not (tmp_path / "stopped.h5.parts").exists()
    assert not finished
    progress, resumed = lutdose.batch(tac=tac, patients=patients, out=tmp_path / "stopped.h5", threads=1,
                                      resume=True)
    assert progress["resumed"] < 1500 and progress["committed"] == 1500, progress
    assert not (tmp_path / "stopped.h5.parts").exists()
    for name in ("patients", "vois", "targets", "budget"):
        pd.testing.assert_frame_equal(getattr(resumed, name), getattr(whole, name), obj=name)
