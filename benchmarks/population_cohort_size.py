#!/usr/bin/env python3
"""Coverage of the population MAP's intervals against the learning cohort's size (issue 15).

docs/population.md "Cohort size and honest intervals": per size N and seed, `lutdose synth` draws N
patients (3 scans at 4, 24, 48 h by default), `population learn` learns their population (as
`fit --kinetics population` does on the same TACs) and `fit --population` fits the same TACs twice:
  * propagated   the file as written: u(TIA) with the population's own estimation error (lutdose
                 0.17: theta_se, log_omega_se, log_sigma_log_se; docs/methods.md §10)
  * as known     the same file without log_omega_se and log_sigma_log_se: the population taken as
                 known, as lutdose 0.16 did
Per VOI kind it prints the 68 % and 95 % coverage pooled over the seeds (N x seeds TACs per kind;
population_benchmark.py's own coverage count) and the warnings population_below_50_tacs seen.

Usage: population_cohort_size.py --lutdose build/lutdose [--sizes 20,50,200] [--seeds 1,2,3,4,5]
                                 [--times-h 4,24,48]
Python 3 standard library only. Prints a Markdown table.
"""

import argparse
import json
import os
import tempfile

import population_benchmark as pb

VARIANTS = ("propagated", "as known")


def as_known(doc):
    d = json.loads(json.dumps(doc))
    del d["lutdose_sha256"]  # changed on purpose: recorded as not verified (docs/population.md)
    for v in d["vois"]:
        v.pop("log_omega_se", None)
        v.pop("log_sigma_log_se", None)
    return d


def pooled(cells):
    """Pool (share, known, total) coverage counts of several cohorts into one."""
    hit = sum(s * k for s, k, _ in cells if s is not None)
    known = sum(k for _, k, _ in cells)
    return (hit / known if known else None, known, sum(t for _, _, t in cells))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lutdose", required=True)
    ap.add_argument("--sizes", default="20,50,200")
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--times-h", default="4,24,48")
    a = ap.parse_args()
    lutdose = os.path.abspath(a.lutdose)
    sizes = [int(x) for x in a.sizes.split(",")]
    seeds = [int(x) for x in a.seeds.split(",")]
    print("| patients | VOI kind | " + " | ".join("%s: 68 / 95 %% coverage" % n for n in VARIANTS) + " |")
    print("|---|---|" + "---|" * len(VARIANTS))
    with tempfile.TemporaryDirectory(prefix="lutdose-cohort-size-") as tmp:
        for n in sizes:
            cells = {}
            for seed in seeds:
                name = "n%d_s%d" % (n, seed)
                tac, truth = pb.cohort(lutdose, tmp, name, n, seed, a.times_h)
                pop_file = os.path.join(tmp, name + ".json")
                pb.run(lutdose, "population", "learn", tac, "--patients", pb.patients_of(tac), "--out", pop_file,
                       "--quiet")
                known_file = os.path.join(tmp, name + "_known.json")
                with open(pop_file) as f, open(known_file, "w") as g:
                    json.dump(as_known(json.load(f)), g)
                for variant, path in zip(VARIANTS, (pop_file, known_file)):
                    s = pb.summary(pb.results(pb.run(lutdose, "fit", "--tac", tac, "--population", path, *pb.A0)),
                                   truth)
                    for k, (_, _, c68, c95) in s.items():
                        cells.setdefault((k, variant), []).append((c68, c95))
            for k in sorted({k for k, _ in cells}):
                row = []
                for variant in VARIANTS:
                    c = cells[(k, variant)]
                    row.append("%s / %s" % (pb.cov_cell(pooled([x for x, _ in c])), pb.cov_cell(pooled([y for _, y in c]))))
                print("| %d | %s | %s |" % (n, k, " | ".join(row)))


if __name__ == "__main__":
    main()
