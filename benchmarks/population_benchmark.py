#!/usr/bin/env python3
"""Population (NLME) kinetics against individual fits on seeded synthetic cohorts (issue 15).

For each schedule, `lutdose synth` makes a cohort with known truth; `lutdose fit` fits it one TAC at
a time (individual) and with `--kinetics population` (the population learned from the same TACs,
then MAP per TAC), and with `--population` learned from a second cohort of the same schedule.
Reported per VOI kind: median and 95th percentile of |TIA error| and how often the 68 % and 95 %
intervals cover the true TIA. Then the time of `lutdose population learn` on 1000 patients x 5 VOIs.

Usage: population_benchmark.py --lutdose build/lutdose [--patients 200] [--seed 20261206]
Python 3 standard library only. Prints a Markdown report (docs/validation.md, "Population kinetics").
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import tempfile
import time

SCHEDULES = {"3 scans (4, 24, 48 h)": "4,24,48", "6 scans (1, 4, 24, 48, 96, 168 h)": "1,4,24,48,96,168"}


def run(lutdose, *args):
    cp = subprocess.run([lutdose] + [str(a) for a in args], capture_output=True, text=True)
    if cp.returncode != 0:
        raise SystemExit("lutdose %s failed:\n%s" % (" ".join(map(str, args)), cp.stderr))
    return cp.stdout


def kind(voi):
    return "tumour" if voi.startswith(("tumour_", "tumor_", "lesion_")) else voi


def results(fit_json):
    out = {}
    for p in json.loads(fit_json)["patients"]:
        for c in p["cycles"]:
            for v in c["vois"]:
                out[(p["id"], v["name"])] = v
    return out


def pct(x):
    return "%.1f" % (100 * x)


def quantile(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def summary(fits, truth):
    by_kind = {}
    for key, t in truth.items():
        v = fits[key]
        e = abs(v["tia_MBq_h"] / t - 1) if v["tia_MBq_h"] is not None else float("inf")
        c68 = v["tia_ci68_MBq_h"] and v["tia_ci68_MBq_h"][0] is not None and v["tia_ci68_MBq_h"][0] <= t <= v["tia_ci68_MBq_h"][1]
        c95 = v["tia_ci95_MBq_h"] and v["tia_ci95_MBq_h"][0] is not None and v["tia_ci95_MBq_h"][0] <= t <= v["tia_ci95_MBq_h"][1]
        by_kind.setdefault(kind(key[1]), []).append((e, bool(c68), bool(c95)))
    return {k: (statistics.median([e for e, _, _ in r]), quantile([e for e, _, _ in r], 0.95),
                sum(c for _, c, _ in r) / len(r), sum(c for _, _, c in r) / len(r)) for k, r in by_kind.items()}


# `lutdose synth`'s default administered activity (docs/synth.md): fit takes one for the whole table
A0 = ("--activity-MBq", 7400)


def patients_of(tac):
    """The patients table (administered_MBq per patient and cycle) synth writes beside tacs.csv."""
    return os.path.join(os.path.dirname(tac), "patients.csv")


def cohort(lutdose, tmp, name, patients, seed, times, vois=None):
    out = os.path.join(tmp, name)
    args = ["synth", "--out", out, "--quiet", "--patients", patients, "--seed", seed, "--times-h", times]
    if vois:
        args += ["--vois", vois]
    run(lutdose, *args)
    with open(os.path.join(out, "truth.csv"), newline="") as f:
        truth = {(r["patient"], r["voi"]): float(r["tia_MBq_h"]) for r in csv.DictReader(f)}
    return os.path.join(out, "tacs.csv"), truth


def schedule_report(lutdose, tmp, label, times, patients, seed):
    tac, truth = cohort(lutdose, tmp, "a" + times, patients, seed, times)
    other, _ = cohort(lutdose, tmp, "b" + times, patients, seed + 1, times)
    pop_file = os.path.join(tmp, "pop%s.json" % times.replace(",", "_"))
    run(lutdose, "population", "learn", other, "--patients", patients_of(other), "--out", pop_file, "--quiet")
    methods = {"individual": summary(results(run(lutdose, "fit", "--tac", tac)), truth),
               "population (same TACs)": summary(results(run(lutdose, "fit", "--tac", tac, "--kinetics", "population",
                                                             *A0)), truth),
               "population (other cohort)": summary(results(run(lutdose, "fit", "--tac", tac, "--population", pop_file,
                                                                *A0)), truth)}
    print("\n### %s, %d patients, seed %d\n" % (label, patients, seed))
    print("| VOI kind | method | median abs TIA error % | p95 % | 68 % coverage % | 95 % coverage % |")
    print("|---|---|---|---|---|---|")
    for k in sorted(methods["individual"]):
        for m, s in methods.items():
            med, p95, c68, c95 = s[k]
            print("| %s | %s | %s | %s | %s | %s |" % (k, m, pct(med), pct(p95), pct(c68), pct(c95)))


def timing(lutdose, tmp, seed):
    tac, _ = cohort(lutdose, tmp, "big", 1000, seed, "4,24,48,96,168", "kidney_left,kidney_right,liver,spleen,tumour_1")
    start = time.monotonic()
    run(lutdose, "population", "learn", tac, "--patients", patients_of(tac), "--out", os.path.join(tmp, "big.json"),
        "--quiet", "--threads", 2)
    wall = time.monotonic() - start
    print("\n`lutdose population learn`, 1000 patients x 5 VOIs x 5 scans, candidates E1, E2u, E2, 2 threads: "
          "%.1f s wall (target < 30 s)" % wall)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lutdose", required=True)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20261206)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lutdose-population-bench-") as tmp:
        for label, times in SCHEDULES.items():
            schedule_report(os.path.abspath(a.lutdose), tmp, label, times, a.patients, a.seed)
        timing(os.path.abspath(a.lutdose), tmp, a.seed)


if __name__ == "__main__":
    main()
