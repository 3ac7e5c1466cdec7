#!/usr/bin/env python3
"""The marginal likelihood of a cohort's tumour TACs around the learned population (issue 15).

docs/validation.md §10, "Which coverage misses are real": is the population's Omega of a tumour's
slow rate determined by scans to 48 h, and did the EM reach its maximum? For the E1 tumour TACs of a
`lutdose synth` cohort (DIR/tacs.csv) and a population file learned from them, this computes
ln p(y) = sum_i ln integral p(y_i | phi) N(phi; theta, Omega) dphi by 2-D quadrature per TAC (ln A/A0
on 61 points over +-6 learned SDs, ln lambda_bio on 141 points over [-9.5, -2.5]), with the amplitude
prior fixed at the learned one, on a grid of theta and Omega of ln lambda_bio, and prints the grid's
maximum and the value at the learned point. --noise log: the population's error model (ln y normal,
SD the learned sigma_log); --noise normal: synth's tumour noise (y normal, SD 0.15 f; docs/synth.md).

Usage: population_profile_likelihood.py DIR POPULATION.json [--noise log|normal]
Needs numpy (Debian python3-numpy; run it with /usr/bin/python3).
"""

import argparse
import csv
import json
import math
import os

import numpy as np

LAMBDA_P_PER_H = math.log(2) / 159.528  # 177Lu, 6.647 d (ICRP-107; docs/methods.md §0)
A0_MBQ = 7400.0  # synth's default administered activity (docs/synth.md)
SYNTH_TUMOUR_B = 0.15  # synth's default tumour noise, sigma = 0.15 f (docs/synth.md, "Noise")
OMEGAS = (0.08, 0.12, 0.16, 0.20, 0.25, 0.30, 0.35, 0.40, 0.50)
THETA_STEPS = np.arange(-16, 17) * 0.025  # theta of ln lambda_bio: the learned one +- 0.4 in steps of 0.025


def tumour_tacs(path):
    tacs = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["voi"].startswith(("tumour_", "tumor_", "lesion_")):
                tacs.setdefault((r["patient"], r["voi"]), []).append((float(r["time_h"]), float(r["activity_MBq"]) / A0_MBQ))
    return list(tacs.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("population")
    ap.add_argument("--noise", choices=["log", "normal"], default="log")
    ap.add_argument("--omegas", default=",".join("%g" % o for o in OMEGAS),
                    help="the Omega values of ln lambda_bio tried (commas)")
    a = ap.parse_args()
    with open(a.population) as f:
        pop = next(v for v in json.load(f)["vois"] if v["voi_kind"] == "tumour" and v["function"] == "E1")
    theta, omega_a = pop["theta"], pop["omega"][0][0]
    omegas = [float(x) for x in a.omegas.split(",")]
    b = pop["sigma_log"] if a.noise == "log" else SYNTH_TUMOUR_B
    tacs = tumour_tacs(os.path.join(a.dir, "tacs.csv"))
    la = np.linspace(theta[0] - 6 * math.sqrt(omega_a), theta[0] + 6 * math.sqrt(omega_a), 61)
    ll = np.linspace(-9.5, -2.5, 141)
    grid_a, grid_l = np.meshgrid(la, ll, indexing="ij")
    # per TAC: ln p(y_i | phi) on the grid (constants dropped: the same for every theta, Omega)
    log_lik = np.empty((len(tacs),) + grid_a.shape)
    for i, points in enumerate(tacs):
        s = np.zeros_like(grid_a)
        for t, y in points:
            log_f = grid_a - (LAMBDA_P_PER_H + np.exp(grid_l)) * t
            s -= 0.5 * ((math.log(y) - log_f) / b) ** 2 if a.noise == "log" else \
                0.5 * ((y - np.exp(log_f)) / (b * np.exp(log_f))) ** 2 + log_f
        log_lik[i] = s
    top = log_lik.max(axis=(1, 2), keepdims=True)
    prior_a = np.exp(-0.5 * (la - theta[0]) ** 2 / omega_a) / math.sqrt(2 * math.pi * omega_a) * (la[1] - la[0])
    lik_l = np.einsum("i,nij->nj", prior_a, np.exp(log_lik - top))  # the amplitude integrated out
    top = top.ravel()

    def log_p(theta_l, omega_l):
        prior_l = np.exp(-0.5 * (ll - theta_l) ** 2 / omega_l) / math.sqrt(2 * math.pi * omega_l) * (ll[1] - ll[0])
        return float(np.sum(np.log(lik_l @ prior_l) + top))
    print("%d tumour TACs; learned theta of ln lambda_bio %.3f, Omega %.3f, sigma_log %.4f; noise model %s"
          % (len(tacs), theta[1], pop["omega"][1][1], pop["sigma_log"], a.noise))
    at_learned = log_p(theta[1], pop["omega"][1][1])
    best = max(((log_p(theta[1] + d, o), theta[1] + d, o) for o in omegas for d in THETA_STEPS))
    for o in omegas:
        print("Omega %.2f: max over theta of ln p(y) - ln p(y) at the learned point: %+.2f"
              % (o, max(log_p(theta[1] + d, o) for d in THETA_STEPS) - at_learned))
    print("grid maximum at theta %.3f, Omega %.2f: %+.2f above the learned point" % (best[1], best[2], best[0] - at_learned))


if __name__ == "__main__":
    main()
