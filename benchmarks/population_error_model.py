#!/usr/bin/env python3
"""The population error models on a cohort with a camera noise floor (docs/validation.md §10,
"Error models"; issue 15). Python standard library only.

A seeded cohort of E1 TACs (amplitude about 50 MBq per 7400 MBq administered, CV 30 %; lambda_bio
about LAMBDA /h, CV 40 %) is measured at 4, 24, 48, 96 and 168 h with combined noise
A = f + e, e ~ N(0, sigma0^2 + (b f)^2) [MBq], and activities below 0 are written as 0 (a TAC
table's activities are >= 0; a scatter-corrected activity below 0 is reported as 0). Then:
  * proportional: `population learn` of the points > 0 (the proportional model refuses 0), and
    `fit --population` of each TAC (its points > 0; the MAP leaves out a 0 anyway);
  * combined: `population learn --error-model combined` of every point, and `fit --population`;
and the MAP TIAs are compared with the true TIAs (median and 95th percentile of |TIA / true - 1|),
with the learned sigma0 and b against the truth, and -2 log L / BIC of both models learned on the
same points (those > 0).

Usage: population_error_model.py --lutdose build/lutdose [--patients 100] [--seed 20261207]
"""

import argparse
import csv
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile

LP = math.log(2) / (6.647 * 24)  # Lu-177, ICRP-107
A0 = 7400.0
TIMES = (4, 24, 48, 96, 168)


def cohort(n, seed, sigma0, b, lam):
    rng = random.Random(seed)
    rows, truth = [], {}
    for i in range(n):
        a = math.exp(math.log(50) + 0.3 * rng.gauss(0, 1))
        l = math.exp(math.log(lam) + 0.4 * rng.gauss(0, 1))
        pid = "P%05d" % (i + 1)
        truth[pid] = a / (l + LP)
        for t in TIMES:
            f = a * math.exp(-(l + LP) * t)
            y = f + math.sqrt(sigma0 ** 2 + (b * f) ** 2) * rng.gauss(0, 1)
            rows.append((pid, "kidneys", t, max(y, 0.0)))
    return rows, truth


def write_tables(d, rows, positive_only):
    tac = os.path.join(d, "tacs_pos.csv" if positive_only else "tacs.csv")
    with open(tac, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patient", "voi", "time_h", "activity_MBq"])
        for r in rows:
            if not positive_only or r[3] > 0:
                w.writerow([r[0], r[1], r[2], repr(r[3])])
    pat = os.path.join(d, "patients.csv")
    with open(pat, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["patient", "administered_MBq"])
        for p in sorted({r[0] for r in rows}):
            w.writerow([p, A0])
    return tac, pat


def run(lutdose, *args):
    cp = subprocess.run([lutdose] + [str(a) for a in args], capture_output=True, text=True)
    if cp.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(str(a) for a in args), cp.stderr))
    return cp.stdout


def learn(lutdose, d, tac, pat, name, model):
    out = os.path.join(d, name)
    run(lutdose, "population", "learn", tac, "--patients", pat, "--out", out, "--quiet", "--functions", "E1",
        "--error-model", model)
    return out, json.load(open(out))["vois"][0]


def map_tias(lutdose, tac, pop):
    res = json.loads(run(lutdose, "fit", "--tac", tac, "--population", pop, "--activity-MBq", A0))
    return {p["id"]: c["vois"][0]["tia_MBq_h"] for p in res["patients"] for c in p["cycles"]}


def errors(tias, truth):
    e = sorted(abs(tias[p] / truth[p] - 1) for p in truth)
    return statistics.median(e), e[int(0.95 * (len(e) - 1) + 0.5)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lutdose", required=True)
    ap.add_argument("--patients", type=int, default=100)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--sigma0-MBq", type=float, default=1.0)
    ap.add_argument("--b", type=float, default=0.05)
    ap.add_argument("--lambda-bio", type=float, default=0.03)
    a = ap.parse_args()
    rows, truth = cohort(a.patients, a.seed, a.sigma0_MBq, a.b, a.lambda_bio)
    with tempfile.TemporaryDirectory() as d:
        tac, pat = write_tables(d, rows, False)
        tac_pos, _ = write_tables(d, rows, True)
        zeros = sum(1 for r in rows if r[3] <= 0)
        print("cohort: %d TACs x %d scans, sigma0 %.3g MBq, b %.3g, lambda_bio %.3g /h, seed %d: %d points at 0"
              % (a.patients, len(TIMES), a.sigma0_MBq, a.b, a.lambda_bio, a.seed, zeros))
        pop_p, vp = learn(a.lutdose, d, tac_pos, pat, "prop.json", "proportional")
        pop_c, vc = learn(a.lutdose, d, tac, pat, "comb.json", "combined")
        _, vcp = learn(a.lutdose, d, tac_pos, pat, "comb_pos.json", "combined")
        print("proportional (points > 0): sigma_log %.4g, -2logL %.1f, BIC %.1f" %
              (vp["sigma_log"], vp["minus2_log_likelihood"], vp["bic"]))
        print("combined (points > 0):     sigma0 %.4g MBq, b %.4g, -2logL %.1f, BIC %.1f" %
              (vcp["sigma0_MBq"], vcp["b_proportional"], vcp["minus2_log_likelihood"], vcp["bic"]))
        print("combined (every point):    sigma0 %.4g MBq, b %.4g, theta %s, omega diag %s" %
              (vc["sigma0_MBq"], vc["b_proportional"], ["%.4g" % x for x in vc["theta"]],
               ["%.4g" % vc["omega"][k][k] for k in range(len(vc["theta"]))]))
        for name, t, pop in (("proportional", tac_pos, pop_p), ("combined", tac, pop_c)):
            med, p95 = errors(map_tias(a.lutdose, t, pop), truth)
            print("MAP |TIA error| %-12s median %.4f, p95 %.4f" % (name, med, p95))


if __name__ == "__main__":
    main()
