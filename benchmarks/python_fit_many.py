#!/usr/bin/env python3
"""fit_many throughput against the Python peer (../shared/peers, lmfit), in one run on the same TACs.

The peer's seeded synthetic cohort (make_cohort.py) is fitted by the peer's own fit loop
(tac_peer.run_all, one process: TAC fits per second per core) on its first --peer-patients
patients, and by lutdose.fit_many on the whole cohort with 1 thread and with every core. Prints the
TAC fits per second of each (lutdose: the median of five calls after a warm-up call on the whole
table; fit_many.last_seconds, the fits and their result rows, and the whole call with the DataFrame
read and the result DataFrame made) and the ratio per core (target >= 1000, issue 14). Run it also with
LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 (docs/python.md, "Speed").

    PYTHONPATH=build/python /usr/bin/python3 benchmarks/python_fit_many.py [--patients 2000]
        [--peer-patients 40] [--seed 20261124]

Needs Debian's python3-numpy, python3-scipy, python3-lmfit, python3-pandas (install-deps.sh --peer).
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd

import lutdose

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "peers")


def load_peer():
    spec = importlib.util.spec_from_file_location("tac_peer", os.path.join(SHARED, "tac_peer.py"))
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    return peer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--peer-patients", type=int, default=40)
    ap.add_argument("--seed", type=int, default=20261124)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cohort.csv")
        subprocess.run(["/usr/bin/python3", os.path.join(SHARED, "make_cohort.py"), str(args.patients), "--seed",
                        str(args.seed), "--out", path], check=True, capture_output=True)
        peer = load_peer()
        groups = peer.load_groups(path)
        cohort = pd.read_csv(path, float_precision="round_trip")
    df = cohort.rename(columns={"roi": "voi", "time_h_post_injection": "time_h"})
    df = df[["patient", "voi", "time_h", "activity_MBq"]]
    n = df.groupby(["patient", "voi"], sort=False).ngroups

    keep = set(sorted({g["patient"] for g in groups})[: args.peer_patients])
    sub = [g for g in groups if g["patient"] in keep]
    start = time.perf_counter()
    peer.run_all(sub, ["mono", "uptake", "biexp"], "lmfit", "none", 4, 1)
    peer_rate = len(sub) / (time.perf_counter() - start)

    lutdose.fit_many(df, threads=1)  # warm-up: reference data loaded, the process's heap grown
    rates, whole = {}, {}
    for threads in (1, 0):
        runs, calls = [], []
        for _ in range(5):  # the median of five calls: the steady state of a notebook session
            start = time.perf_counter()
            lutdose.fit_many(df, threads=threads)
            calls.append(n / (time.perf_counter() - start))
            runs.append(n / lutdose.fit_many.last_seconds)
        rates[lutdose.fit_many.last_threads] = sorted(runs)[2]
        whole[lutdose.fit_many.last_threads] = sorted(calls)[2]
    cores = max(rates)
    print(f"TACs: lutdose {n}, peer {len(sub)} (its first {len(keep)} patients)")
    print(f"peer (lmfit, 1 process):        {peer_rate:10.1f} TAC fits/s")
    for t, r in sorted(rates.items()):
        print(f"lutdose.fit_many, {t} thread(s):  {r:10.0f} TAC fits/s (fits and result rows; "
              f"whole call with DataFrame in and out: {whole[t]:.0f}/s)")
    print(f"ratio per core (1 thread / peer): {rates[1] / peer_rate:.0f}x (whole call {whole[1] / peer_rate:.0f}x); "
          f"speed-up {cores} threads / 1: {rates[cores] / rates[1]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
