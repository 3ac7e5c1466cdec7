#!/usr/bin/env python3
"""Why the population MAP's intervals miss their coverage on 200-TAC cohorts (issue 15).

docs/validation.md §10 judges coverage on one 200-TAC cohort per row. Its spread is not only the
binomial one of 200 TACs (3.3 points at 68 %): the population learned from 200 TACs is itself an
estimate, and where shrinkage is high (a tumour's slow rate scanned to 48 h) its theta and Omega of
that rate are poorly determined, so every TAC of the cohort shares the same too-narrow (or too-wide)
prior. Per seed this script draws a cohort (`lutdose synth`), learns its population
(`population learn`, as `fit --kinetics population` does on the same TACs) and fits the same TACs
with `fit --population` under:
  * learned          the learned population file as written (the "same TACs" rows of §10)
  * + theta_se^2     the same with theta_se^2 added to Omega's diagonal (the predictive prior of a new
                     TAC when theta is uncertain: phi ~ N(theta_hat, Omega + Var theta_hat) in the
                     linear-Gaussian model; Omega's own uncertainty is not in the file)
  * true Omega       the learned theta and b with Omega replaced by the variances of the cohort's true
                     ln fraction and ln lambda_bio (truth.csv): is the learned Omega the cause?
  * true theta, Omega  both from the truth (b learned): the oracle prior
  * as known         the learned file without log_omega_se and log_sigma_log_se (every kind): the
                     population taken as known, as lutdose 0.16 did (the MAP's u without the
                     population's own estimation error; docs/methods.md §10)
--variants picks some of them (comma-separated names, default all).
Per VOI kind it prints the learned and true Omega of ln lambda_bio, the 68 % and 95 % coverage
(population_benchmark.py's own way) and the median |TIA error|. Only E1 kinds are edited (synth's
truth is E1; another chosen function is printed with '—' in the edited columns).

Usage: population_coverage_spread.py --lutdose build/lutdose [--patients 200] [--seeds 4]
                                     [--seed 20261206] [--times-h 4,24,48]
                                     [--variants "learned,as known"]
Python 3 standard library only. Prints a Markdown table.
"""

import argparse
import copy
import csv
import json
import math
import os
import statistics
import tempfile

import population_benchmark as pb

VARIANTS = ("learned", "+ theta_se^2", "true Omega", "true theta, Omega", "as known")


def true_population(out_dir):
    """Per VOI kind: means and variances of (ln fraction, ln lambda_bio) over the cohort's truth.csv."""
    by = {}
    with open(os.path.join(out_dir, "truth.csv"), newline="") as f:
        for r in csv.DictReader(f):
            by.setdefault(pb.kind(r["voi"]), []).append(
                (math.log(float(r["fraction"])), math.log(float(r["lambda_bio_per_h"]))))
    return {k: ([statistics.mean(c) for c in zip(*v)], [statistics.pvariance(c) for c in zip(*v)])
            for k, v in by.items()}


def variant(doc, name, truth_pop):
    """A copy of the population document with the E1 kinds' theta / Omega replaced as `name` says."""
    d = copy.deepcopy(doc)
    if name != "learned":
        del d["lutdose_sha256"]  # changed on purpose: recorded as not verified (docs/population.md)
    for v in d["vois"]:
        if name == "as known":
            v.pop("log_omega_se", None)
            v.pop("log_sigma_log_se", None)
            continue
        if v["function"] != "E1" or name == "learned":
            continue
        mean, var = truth_pop[v["voi_kind"]]
        for k in range(2):
            if name == "+ theta_se^2":
                v["omega"][k][k] += v["theta_se"][k] ** 2
            else:
                v["omega"][k][k] = var[k]
                if name == "true theta, Omega":
                    v["theta"][k] = mean[k]
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lutdose", required=True)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--times-h", default="4,24,48")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    a = ap.parse_args()
    variants = [n.strip() for n in a.variants.split(",")]
    for n in variants:
        if n not in VARIANTS:
            ap.error("--variants: %r is not one of %s" % (n, ", ".join(VARIANTS)))
    lutdose = os.path.abspath(a.lutdose)
    print("| seed | VOI kind | learned Omega ln lambda | true var ln lambda | "
          + " | ".join("%s: 68 / 95 %% coverage, median %%" % n for n in variants) + " |")
    print("|---|---|---|---|" + "---|" * len(variants))
    with tempfile.TemporaryDirectory(prefix="lutdose-coverage-spread-") as tmp:
        for i in range(a.seeds):
            seed = a.seed + i
            name = "c%d" % seed
            tac, truth = pb.cohort(lutdose, tmp, name, a.patients, seed, a.times_h)
            pop_file = os.path.join(tmp, name + ".json")
            pb.run(lutdose, "population", "learn", tac, "--patients", pb.patients_of(tac), "--out", pop_file, "--quiet")
            with open(pop_file) as f:
                doc = json.load(f)
            truth_pop = true_population(os.path.join(tmp, name))
            cells = {}
            for n in variants:
                path = os.path.join(tmp, "%s_%d.json" % (name, VARIANTS.index(n)))
                if n == "learned":
                    path = pop_file  # as written, its checksum intact
                else:
                    with open(path, "w") as f:
                        json.dump(variant(doc, n, truth_pop), f)
                s = pb.summary(pb.results(pb.run(lutdose, "fit", "--tac", tac, "--population", path, *pb.A0)), truth)
                for k, (med, _, c68, c95) in s.items():
                    cells.setdefault(k, []).append("%s / %s, %s" % (pb.cov_cell(c68), pb.cov_cell(c95), pb.pct(med)))
            for v in sorted(doc["vois"], key=lambda v: v["voi_kind"]):
                k = v["voi_kind"]
                edited = v["function"] == "E1"
                print("| %d | %s | %s | %.3f | %s |" % (
                    seed, k, ("%.3f" % v["omega"][1][1]) if edited else v["function"], truth_pop[k][1][1],
                    " | ".join(c if edited or n in ("learned", "as known") else "—"
                               for n, c in zip(variants, cells[k]))))


if __name__ == "__main__":
    main()
