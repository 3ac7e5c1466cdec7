#!/usr/bin/env python3
"""Population (NLME) kinetics against individual fits on seeded synthetic cohorts (issue 15).

For each schedule, `lutdose synth` makes a cohort with known truth; `lutdose fit` fits it one TAC at
a time (individual) and with `--kinetics population` (the population learned from the same TACs,
then MAP per TAC), and with `--population` learned from a second cohort of the same schedule.
Reported per VOI kind: median and 95th percentile of |TIA error| and how often the 68 % and 95 %
intervals cover the true TIA. Then one scan per VOI (issue 15: "one scan with a population learned
from another cohort: better than the Hanscheid and Madsen estimators on the same data"): a
population learned from a seeded multi-scan cohort, applied by MAP (`fit --population`) to a second
cohort (another seed) imaged once, against `fit --reduced hanscheid` and `--reduced madsen` on the
same one-scan TACs (Madsen with the rates of data/kinetics/population_kinetics.csv, as the
estimator ships). Then the time of `lutdose population learn` on 1000 patients x 5 VOIs.

Usage: population_benchmark.py --lutdose build/lutdose [--patients 200] [--seed 20261206]
                               [--only schedules|one-scan|timing]
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
# One-scan section: the schedule the population is learned from (synth's default, docs/synth.md) and
# the single scan times compared (24 h: day 1; 96 h: K23's single SPECT/CT; 168 h: day 7).
LEARN_TIMES = "4,24,48,96,168"
ONE_SCAN_TIMES = ("24", "96", "168")


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


def covered(interval, t):
    """True/False whether the interval holds t; None when the interval is unknown (never 'not covered')."""
    if not interval or interval[0] is None or interval[1] is None:
        return None
    return interval[0] <= t <= interval[1]


def coverage(flags):
    """Share of known intervals that cover; None when no interval is known; with the count known."""
    known = [c for c in flags if c is not None]
    return (sum(known) / len(known) if known else None, len(known), len(flags))


def summary(fits, truth):
    by_kind = {}
    for key, t in truth.items():
        v = fits[key]
        e = abs(v["tia_MBq_h"] / t - 1) if v["tia_MBq_h"] is not None else float("inf")
        by_kind.setdefault(kind(key[1]), []).append(
            (e, covered(v["tia_ci68_MBq_h"], t), covered(v["tia_ci95_MBq_h"], t)))
    return {k: (statistics.median([e for e, _, _ in r]), quantile([e for e, _, _ in r], 0.95),
                coverage([c for _, c, _ in r]), coverage([c for _, _, c in r])) for k, r in by_kind.items()}


def cov_cell(c):
    """A coverage cell: unknown intervals are '—' (never 0); a partial count is stated."""
    share, known, total = c
    if share is None:
        return "—"
    return pct(share) if known == total else "%s (%d of %d known)" % (pct(share), known, total)


def print_table(methods):
    print("| VOI kind | method | median abs TIA error % | p95 % | 68 % coverage % | 95 % coverage % |")
    print("|---|---|---|---|---|---|")
    first = next(iter(methods.values()))
    for k in sorted(first):
        for m, s in methods.items():
            med, p95, c68, c95 = s[k]
            print("| %s | %s | %s | %s | %s | %s |" % (k, m, pct(med), pct(p95), cov_cell(c68), cov_cell(c95)))


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
    print_table(methods)


def one_scan_report(lutdose, tmp, patients, seed):
    """MAP with a population learned from another cohort against Hanscheid and Madsen, one scan per VOI.

    The population is learned from a cohort of seed + 2 imaged at LEARN_TIMES; the one-scan cohorts
    are drawn with synth's --times-h T (one time point per VOI), seed + 3 + i for the i-th time, so
    no TAC of the learning cohort is fitted. Every cohort has synth's default activity, A0.
    """
    learn_tac, _ = cohort(lutdose, tmp, "learn", patients, seed + 2, LEARN_TIMES)
    pop_file = os.path.join(tmp, "pop_one_scan.json")
    run(lutdose, "population", "learn", learn_tac, "--patients", patients_of(learn_tac), "--out", pop_file, "--quiet")
    for i, t in enumerate(ONE_SCAN_TIMES):
        one_seed = seed + 3 + i
        tac, truth = cohort(lutdose, tmp, "one" + t, patients, one_seed, t)
        methods = {"population MAP (other cohort)": summary(results(run(lutdose, "fit", "--tac", tac, "--population",
                                                                         pop_file, *A0)), truth),
                   "Hänscheid": summary(results(run(lutdose, "fit", "--tac", tac, "--reduced", "hanscheid")), truth),
                   "Madsen": summary(results(run(lutdose, "fit", "--tac", tac, "--reduced", "madsen")), truth)}
        print("\n### One scan at %s h, %d patients, seed %d (population learned at %s h, %d patients, seed %d)\n"
              % (t, patients, one_seed, LEARN_TIMES, patients, seed + 2))
        print_table(methods)


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
    ap.add_argument("--only", choices=["schedules", "one-scan", "timing"],
                    help="run one section (default: all three)")
    a = ap.parse_args()
    lutdose = os.path.abspath(a.lutdose)
    with tempfile.TemporaryDirectory(prefix="lutdose-population-bench-") as tmp:
        if a.only in (None, "schedules"):
            for label, times in SCHEDULES.items():
                schedule_report(lutdose, tmp, label, times, a.patients, a.seed)
        if a.only in (None, "one-scan"):
            one_scan_report(lutdose, tmp, a.patients, a.seed)
        if a.only in (None, "timing"):
            timing(lutdose, tmp, a.seed)


if __name__ == "__main__":
    main()
