#!/usr/bin/env python3
"""How much the coverage of the population MAP's intervals varies from cohort to cohort (issue 15).

docs/validation.md §10 judges coverage on one 200-TAC cohort per row. Its spread is not only the
binomial one of 200 TACs (3.3 points at 68 %): the population learned from 200 TACs is itself an
estimate, and where shrinkage is high (a tumour's slow rate scanned to 48 h) its Omega of that rate
is poorly determined, so every TAC of the cohort shares the same too-narrow or too-wide prior. Per
seed this script draws a cohort (`lutdose synth`), fits it with `fit --kinetics population` (the
population learned from the same TACs), and prints per VOI kind the 68 % and 95 % coverage
(population_benchmark.py's own way) and the learned Omega of the last parameter (ln lambda_bio of
E1) beside the cohort's own variance of the true ln lambda_bio.

Usage: population_coverage_spread.py --lutdose build/lutdose [--patients 200] [--seeds 8]
                                     [--seed 20261206] [--times-h 4,24,48]
Python 3 standard library only. Prints a Markdown table.
"""

import argparse
import csv
import json
import math
import os
import statistics
import tempfile

import population_benchmark as pb


def true_log_rate_variance(out_dir):
    """Per VOI kind, the variance of ln lambda_bio over the cohort's truth.csv."""
    by = {}
    with open(os.path.join(out_dir, "truth.csv"), newline="") as f:
        for r in csv.DictReader(f):
            by.setdefault(pb.kind(r["voi"]), []).append(math.log(float(r["lambda_bio_per_h"])))
    return {k: statistics.pvariance(v) for k, v in by.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lutdose", required=True)
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--times-h", default="4,24,48")
    a = ap.parse_args()
    lutdose = os.path.abspath(a.lutdose)
    print("| seed | VOI kind | function | learned Omega of the last parameter | true var ln lambda_bio | "
          "68 % coverage % | 95 % coverage % | median abs TIA error % |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="lutdose-coverage-spread-") as tmp:
        for i in range(a.seeds):
            seed = a.seed + i
            name = "c%d" % seed
            tac, truth = pb.cohort(lutdose, tmp, name, a.patients, seed, a.times_h)
            pop_file = os.path.join(tmp, name + ".json")
            pb.run(lutdose, "population", "learn", tac, "--patients", pb.patients_of(tac), "--out", pop_file, "--quiet")
            with open(pop_file) as f:
                learned = {v["voi_kind"]: v for v in json.load(f)["vois"]}
            true_var = true_log_rate_variance(os.path.join(tmp, name))
            s = pb.summary(pb.results(pb.run(lutdose, "fit", "--tac", tac, "--kinetics", "population", *pb.A0)), truth)
            for k in sorted(s):
                med, _, c68, c95 = s[k]
                v = learned[k]
                print("| %d | %s | %s | %.3f | %.3f | %s | %s | %s |" % (seed, k, v["function"], v["omega"][-1][-1],
                                                                  true_var[k], pb.cov_cell(c68), pb.cov_cell(c95),
                                                                  pb.pct(med)))


if __name__ == "__main__":
    main()
