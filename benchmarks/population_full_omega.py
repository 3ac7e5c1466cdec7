#!/usr/bin/env python3
"""One scan at 24 h: what a full Omega is worth when amplitude and rate are correlated (issue 15,
docs/validation.md §10 "Full Omega").

NLME single-time-point dosimetry can beat Madsen's method where the population's amplitude and
clearance are correlated: one activity then tells about both (Hardiansyah et al.). lutdose's synth
draws the fraction and lambda_bio of a VOI independently (engine/src/cohort/synth.cpp,
synth_patient: two separate log-normal factors), so its cohorts have no such correlation. This
script draws its own kidney cohorts with synth's kidney distributions (fraction 0.020, CV 30 %;
lambda_bio 0.00803 1/h, CV 35.8 %: `lutdose synth`'s synth.json; mean-1 log-normal factors as
synth's) and a correlation rho between the two normal deviates, synth's noise (y ~ N(f, (0.10 f)^2),
docs/synth.md), the administered activity 7400 MBq.

Per rho: a population is learned from a cohort of --learn-patients imaged at 4, 24, 48, 96, 168 h
(`lutdose population learn --functions E1 --omega diagonal|full`), and a second cohort of
--patients TACs with one scan at 24 h is fitted with the population MAP (each Omega) and Madsen
(`lutdose fit --reduced madsen`, whose mean rate is synth's generating mean). Prints a Markdown
table: median and p95 of |TIA error|, and the learned correlation and BIC of each population.

Usage: population_full_omega.py --lutdose build/lutdose [--patients 3000] [--learn-patients 200]
                                [--seed 20261207] [--rho -0.7,0,0.7]
Needs numpy (Debian python3-numpy; run it with /usr/bin/python3).
"""

import argparse
import json
import math
import os
import statistics
import tempfile

import numpy as np

from population_benchmark import quantile, results, run  # noqa: E402 (same folder: benchmarks/)

LAMBDA_P_PER_H = math.log(2) / 159.528  # 177Lu, 6.647 d (ICRP-107; docs/methods.md §0)
A0_MBQ = 7400.0  # synth's default administered activity (docs/synth.md)
FRACTION_MEAN, CV_FRACTION = 0.02, 0.3  # synth's kidneys (methods.md §9.3)
LAMBDA_MEAN, CV_LAMBDA = 0.00803264, 0.3577130308341965  # synth's kidneys (population_kinetics.csv:30)
NOISE_B = 0.10  # synth's default organ noise (docs/synth.md)
LEARN_TIMES = (4, 24, 48, 96, 168)  # as population_benchmark.py
MASS_G = 309.994  # synth's kidneys


def lognormal(z, cv):
    """synth's mean-1 log-normal factor exp(s z - s^2 / 2), s^2 = ln(1 + cv^2)."""
    s = math.sqrt(math.log1p(cv * cv))
    return np.exp(s * z - s * s / 2)


def cohort(folder, n, rho, times, seed):
    """Writes tacs.csv and patients.csv of n kidney TACs; returns {(patient, voi): true TIA}."""
    rng = np.random.default_rng(seed)
    z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
    fraction = FRACTION_MEAN * lognormal(z1, CV_FRACTION)
    lam = LAMBDA_MEAN * lognormal(rho * z1 + math.sqrt(1 - rho * rho) * z2, CV_LAMBDA)
    amplitude = fraction * A0_MBQ
    os.makedirs(folder, exist_ok=True)
    truth = {}
    with open(os.path.join(folder, "tacs.csv"), "w") as tacs, open(os.path.join(folder, "patients.csv"), "w") as pts:
        tacs.write("patient,cycle,voi,time_h,activity_MBq,mass_g\n")
        pts.write("patient,cycle,administered_MBq\n")
        for i in range(n):
            pid = "P%05d" % (i + 1)
            pts.write("%s,1,%r\n" % (pid, A0_MBQ))
            for t in times:
                f = amplitude[i] * math.exp(-(lam[i] + LAMBDA_P_PER_H) * t)
                y = f + NOISE_B * f * rng.standard_normal()
                tacs.write("%s,1,kidneys,%r,%r,%r\n" % (pid, t, y, MASS_G))
            truth[(pid, "kidneys")] = amplitude[i] / (lam[i] + LAMBDA_P_PER_H)
    return os.path.join(folder, "tacs.csv"), truth


def errors(fits, truth):
    e = [abs(fits[k]["tia_MBq_h"] / t - 1) if fits[k]["tia_MBq_h"] is not None else float("inf")
         for k, t in truth.items()]
    return statistics.median(e), quantile(e, 0.95)


def learned(pop_file):
    with open(pop_file) as f:
        v = json.load(f)["vois"][0]
    om = v["omega"]
    return om[0][1] / math.sqrt(om[0][0] * om[1][1]), v["bic"]


def one_rho(lutdose, tmp, rho, args, index):
    learn_seed, test_seed = args.seed + 2 * index, args.seed + 2 * index + 1
    learn_tac, _ = cohort(os.path.join(tmp, "learn%d" % index), args.learn_patients, rho, LEARN_TIMES, learn_seed)
    test_tac, truth = cohort(os.path.join(tmp, "test%d" % index), args.patients, rho, (24,), test_seed)
    rows = []
    for omega in ("diagonal", "full"):
        pop = os.path.join(tmp, "pop_%d_%s.json" % (index, omega))
        run(lutdose, "population", "learn", learn_tac, "--patients", os.path.join(os.path.dirname(learn_tac),
            "patients.csv"), "--functions", "E1", "--omega", omega, "--out", pop, "--quiet")
        r, bic = learned(pop)
        fits = results(run(lutdose, "fit", "--tac", test_tac, "--population", pop, "--activity-MBq", A0_MBQ))
        rows.append(("population MAP, Omega %s" % omega, errors(fits, truth), r, bic))
    fits = results(run(lutdose, "fit", "--tac", test_tac, "--reduced", "madsen"))
    rows.append(("Madsen", errors(fits, truth), None, None))
    print("\n### rho = %g: learned from %d TACs (seed %d), %d one-scan TACs at 24 h (seed %d)\n"
          % (rho, args.learn_patients, learn_seed, args.patients, test_seed))
    print("| method | median abs TIA error % | p95 % | learned corr(ln A, ln lambda) | BIC |")
    print("|---|---|---|---|---|")
    for name, (med, p95), r, bic in rows:
        print("| %s | %.1f | %.1f | %s | %s |" % (name, 100 * med, 100 * p95, "—" if r is None else "%.3f" % r,
                                               "—" if bic is None else "%.1f" % bic))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lutdose", required=True)
    ap.add_argument("--patients", type=int, default=3000)
    ap.add_argument("--learn-patients", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--rho", default="-0.7,0,0.7")
    args = ap.parse_args()
    lutdose = os.path.abspath(args.lutdose)
    with tempfile.TemporaryDirectory() as tmp:
        for i, rho in enumerate(float(x) for x in args.rho.split(",")):
            one_rho(lutdose, tmp, rho, args, i)


if __name__ == "__main__":
    main()
