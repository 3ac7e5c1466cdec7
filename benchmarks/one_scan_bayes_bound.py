#!/usr/bin/env python3
"""One scan per VOI: how much better than Madsen can any estimator be? (issue 15, docs/validation.md §10)

The one-scan section of population_benchmark.py compares the population MAP with Hanscheid and Madsen
on 200 TACs per VOI kind. This script asks what the best possible estimator would give on the same
kind of data: the exact Bayes posterior of each TAC under the TRUE population (synth's own
distributions) and synth's own noise model, computed on a grid (no Laplace approximation, no
learning). Its posterior median of the TIA is the point estimate with the least expected absolute
error; if it is not better than Madsen, no MAP, prior or point estimate can be (beyond noise).

Per VOI kind it reports median and p95 of |TIA error| and the coverage of the equal-tailed 68 % and
95 % posterior intervals for:
  * engine MAP        `lutdose fit --population` with a population learned from another cohort
  * grid, learned     the grid posterior under that learned population and its error model (ln y
                      normal with sd sigma_log): mode (= the engine's MAP up to the grid) and median
  * grid, true        the grid posterior under the true population: mean and variance of ln
                      fraction and ln lambda_bio over the test cohort's own truth.csv (--patients
                      draws) and synth's noise, y ~ N(f, (B f)^2) with B of synth's defaults
                      (docs/synth.md: organs 0.10, tumours 0.15): mode, median, and the median of
                      the posterior weighted by 1/TIA (the estimate of least expected relative
                      |error|, the tables' measure; not a clinical estimate: it is biased low)
  * Madsen            `lutdose fit --reduced madsen` (the shipped mean rates, synth's generating means)

The posterior is exact for any number of scans, so --time-h 4,24,48 (with --learn-times 4,24,48)
asks the same of 3-scan TACs: do the intervals miss because of the Laplace approximation or because
of the learned population? (docs/validation.md §10, "Which coverage misses are real").

Usage: one_scan_bayes_bound.py --lutdose build/lutdose [--patients 3000] [--seed 20261209]
                               [--learn-seed 20261208] [--learn-patients 200] [--time-h 24]
                               [--learn-times 4,24,48,96,168]
Needs numpy (Debian python3-numpy; run it with /usr/bin/python3). Prints a Markdown table.
"""

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import tempfile

import numpy as np

LAMBDA_P_PER_H = math.log(2) / 159.528  # 177Lu, 6.647 d (ICRP-107; docs/methods.md §0)
A0_MBQ = 7400.0  # synth's default administered activity (docs/synth.md)
# synth's default noise, sigma = B f(t) (docs/synth.md, "Noise"): organs 10 %, tumours 15 %
NOISE_B = {"organ": 0.10, "tumour": 0.15}
LEARN_TIMES = "4,24,48,96,168"  # as population_benchmark.py's one-scan section
GRID_SD = 6.0  # grid half-width in prior SDs: the prior mass beyond is 2e-9 per axis
GRID_N = 161  # grid points per axis: a step of 0.075 prior SD


def run(lutdose, *args):
    cp = subprocess.run([lutdose] + [str(a) for a in args], capture_output=True, text=True)
    if cp.returncode != 0:
        raise SystemExit("lutdose %s failed:\n%s" % (" ".join(map(str, args)), cp.stderr))
    return cp.stdout


def kind(voi):
    return "tumour" if voi.startswith(("tumour_", "tumor_", "lesion_")) else voi


def synth(lutdose, out, patients, seed, times):
    run(lutdose, "synth", "--out", out, "--quiet", "--patients", patients, "--seed", seed, "--times-h", times)
    with open(os.path.join(out, "truth.csv"), newline="") as f:
        truth = {(r["patient"], r["voi"]): r for r in csv.DictReader(f)}
    tacs = {}
    with open(os.path.join(out, "tacs.csv"), newline="") as f:
        for r in csv.DictReader(f):
            tacs.setdefault((r["patient"], r["voi"]), []).append((float(r["time_h"]), float(r["activity_MBq"])))
    return truth, tacs


def true_population(truth):
    """Per VOI kind: mean and variance of (ln fraction, ln lambda_bio) over the cohort's truth."""
    by = {}
    for (_, voi), r in truth.items():
        by.setdefault(kind(voi), []).append((math.log(float(r["fraction"])), math.log(float(r["lambda_bio_per_h"]))))
    return {k: (np.mean(v, axis=0), np.var(v, axis=0)) for k, v in by.items()}


def learned_population(path):
    with open(path) as f:
        doc = json.load(f)
    return {v["voi_kind"]: (np.array(v["theta"]), np.array([v["omega"][0][0], v["omega"][1][1]]), v["sigma_log"])
            for v in doc["vois"] if v["function"] == "E1"}


def posterior(points, theta, omega, b, likelihood):
    """Grid posterior of an E1 TAC, parameters (ln A/A0, ln lambda_bio) ~ N(theta, diag(omega)).
    likelihood 'log': ln y ~ N(ln f, b^2) (the population's error model); 'normal': y ~ N(f, (b f)^2)
    (synth's noise). Returns the TIA at the mode and the posterior quantiles of the TIA."""
    axes = [theta[i] + np.linspace(-GRID_SD, GRID_SD, GRID_N) * math.sqrt(omega[i]) for i in range(2)]
    a, l = np.meshgrid(*axes, indexing="ij")
    logp = -0.5 * ((a - theta[0]) ** 2 / omega[0] + (l - theta[1]) ** 2 / omega[1])
    for t, y in points:
        f = A0_MBQ * np.exp(a - (LAMBDA_P_PER_H + np.exp(l)) * t)
        if likelihood == "log":
            logp -= 0.5 * ((math.log(y) - np.log(f)) / b) ** 2
        else:
            logp -= 0.5 * ((y - f) / (b * f)) ** 2 + np.log(f)
    tia = (A0_MBQ * np.exp(a) / (LAMBDA_P_PER_H + np.exp(l))).ravel()
    w = np.exp(logp - logp.max()).ravel()
    order = np.argsort(tia)
    cum = np.cumsum(w[order]) / w.sum()

    # The median of the posterior weighted by 1/TIA: the estimate x of least expected |x / TIA - 1|
    # (the relative error the tables report), below the median by about the posterior's log-variance.
    cum_rel = np.cumsum((w / tia)[order])
    cum_rel /= cum_rel[-1]

    def q(p, c=cum):
        return float(tia[order][min(len(tia) - 1, np.searchsorted(c, p))])
    return {"mode": float(tia[np.argmax(logp)]), "median": q(0.5), "relative_median": q(0.5, cum_rel),
            "ci68": (q(0.158655), q(0.841345)), "ci95": (q(0.025), q(0.975))}


def engine(fit_json):
    out = {}
    for p in json.loads(fit_json)["patients"]:
        for c in p["cycles"]:
            for v in c["vois"]:
                out[(p["id"], v["name"])] = (v["tia_MBq_h"], v["tia_ci68_MBq_h"], v["tia_ci95_MBq_h"])
    return out


def quantile(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lutdose", required=True)
    ap.add_argument("--patients", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=20261209)
    ap.add_argument("--learn-seed", type=int, default=20261208)
    ap.add_argument("--learn-patients", type=int, default=200)
    ap.add_argument("--time-h", default="24", help="the test cohort's scan times (commas: several scans)")
    ap.add_argument("--learn-times", default=LEARN_TIMES, help="the learning cohort's scan times")
    a = ap.parse_args()
    lutdose = os.path.abspath(a.lutdose)
    with tempfile.TemporaryDirectory(prefix="lutdose-bayes-bound-") as tmp:
        synth(lutdose, os.path.join(tmp, "learn"), a.learn_patients, a.learn_seed, a.learn_times)
        pop_file = os.path.join(tmp, "pop.json")
        run(lutdose, "population", "learn", os.path.join(tmp, "learn", "tacs.csv"), "--patients",
            os.path.join(tmp, "learn", "patients.csv"), "--out", pop_file, "--quiet")
        truth, tacs = synth(lutdose, os.path.join(tmp, "test"), a.patients, a.seed, a.time_h)
        tac = os.path.join(tmp, "test", "tacs.csv")
        learned, true = learned_population(pop_file), true_population(truth)
        fits = {"engine MAP (learned population)": engine(run(lutdose, "fit", "--tac", tac, "--population", pop_file,
                                                             "--activity-MBq", A0_MBQ)),
                "Madsen": engine(run(lutdose, "fit", "--tac", tac, "--reduced", "madsen"))}
        rows = {}
        for key, points in sorted(tacs.items()):
            k, t = kind(key[1]), float(truth[key]["tia_MBq_h"])
            th, om, b = learned[k]
            gl = posterior(points, th, om, b, "log")
            gt = posterior(points, true[k][0], true[k][1], NOISE_B["tumour" if k == "tumour" else "organ"], "normal")
            est = {"engine MAP (learned population)": fits["engine MAP (learned population)"][key],
                   "grid mode, learned population": (gl["mode"], None, None),
                   "grid median, learned population": (gl["median"], gl["ci68"], gl["ci95"]),
                   "grid mode, true population": (gt["mode"], None, None),
                   "grid median, true population": (gt["median"], gt["ci68"], gt["ci95"]),
                   "grid 1/TIA-weighted median, true population": (gt["relative_median"], None, None),
                   "Madsen": fits["Madsen"][key]}
            for m, (x, c68, c95) in est.items():
                rows.setdefault(k, {}).setdefault(m, []).append(
                    (abs(x / t - 1), (c68[0] <= t <= c68[1]) if c68 else None,
                     (c95[0] <= t <= c95[1]) if c95 else None))
    print("\n#### One scan at %s h, %d patients, seed %d (population learned at %s h, %d patients, seed %d)\n"
          % (a.time_h, a.patients, a.seed, a.learn_times, a.learn_patients, a.learn_seed))
    print("| VOI kind | estimate | median abs TIA error % | p95 % | 68 % coverage % | 95 % coverage % |")
    print("|---|---|---|---|---|---|")

    def cov(flags):
        known = [c for c in flags if c is not None]
        return "%.1f" % (100 * sum(known) / len(known)) if known else "—"
    for k in sorted(rows):
        for m, r in rows[k].items():
            e = [x[0] for x in r]
            print("| %s | %s | %.1f | %.1f | %s | %s |" % (k, m, 100 * statistics.median(e), 100 * quantile(e, 0.95),
                                                        cov([x[1] for x in r]), cov([x[2] for x in r])))


if __name__ == "__main__":
    main()
