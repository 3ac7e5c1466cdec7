#!/usr/bin/env python3
"""Accuracy and interval coverage of compartment populations on sparse new cycles (issue 15, point 4).

Issue 15 point 4 ("honest uncertainty") asks that 68 % intervals cover the truth 60-76 % of the time
and 95 % intervals 90-98 %. docs/validation.md §10 measured it for exponential populations; this script
measures it for a compartment population (`population learn --model blood_organ_linear`, then
`fit --tac NEW.csv --activity-MBq 7400 --population pop.json`, docs/population.md "Compartment models
as the structural model").

Patients are drawn here from the closed form of models/files/blood_organ_linear.json (the e2e cases'
blood_organ_tacs, tests/e2e/test_population.py, does the same): ln k ~ N(ln k_file, SD^2) for k_b, k_in,
k_out (SD 0.25; in the `full` configuration ln k_out's deviate is RHO ln k_in's plus sqrt(1 - RHO^2) of
its own, a correlated truth), blood A0 e^-(k_b+lp)t, organ A0 k_in/(k_out-k_b) (e^-(k_b+lp)t -
e^-(k_out+lp)t), A0 = 7400 MBq; true TIAs A0/(k_b+lp) (blood) and A0 k_in/(k_out-k_b) (1/(k_b+lp) -
1/(k_out+lp)) (organ). Noise: proportional, y = f e^(B z); or combined, y = f + (SIGMA0^2 + (B f)^2)^(1/2) z
with a reading below 0 written as 0 (a TAC table refuses negative activities, docs/population.md).

Per configuration and learning size: a learning cohort (rich schedule: organ at 1, 4, 24, 48, 96,
168 h, blood at 1, 4, 24 h) learned with `population learn --model blood_organ_linear` (its options
in CONFIGS), then --test-seeds test cohorts of --test-patients sparse cycles (organ at 24, 96 h,
blood at 1, 4, 24 h), each fitted with the population (MAP) and individually (`fit --model
blood_organ_linear`, the joint fit of the same points without a population). The test cohorts of
a configuration are the same for every learning size. Per row: median and p95 of |organ TIA
error| (every TAC: a cycle whose MAP is not used gets its individual fit, as a user would), 68 %
and 95 % coverage of the organ and blood TIA (population rows: over the cycles fitted by the MAP
with a known u; individual rows: over the fits with a known interval), the number of cycles whose
MAP was not used and of VOIs whose u is unknown. A pooled row per configuration and size sums the
seeds (binomial SD of a coverage of 800 TACs: 1.6 points at 68 %, 0.8 at 95 %); where test cycles have
a reading written as 0, two more pooled rows split them into the cycles with such a reading and those
without.

Configurations (--configs, comma-separated; default the first three):
  proportional        log-normal noise, --error-model proportional, Omega diagonal
  combined            combined noise (SIGMA0 2 MBq, readings clipped at 0), --error-model combined
  full                proportional noise, ln k_in and ln k_out correlated (RHO 0.8), --omega full
  combined-low-floor  combined noise with SIGMA0 0.02 MBq (far below nearly every reading: only a few
                      fast blood clearances at 24 h clipped)
  combined-on-lognormal  log-normal noise (as `proportional`), learned and fitted with --error-model combined

Usage: compartment_coverage.py --lutdose build/lutdose [--configs proportional,combined,full]
                               [--learn-sizes 60,200] [--test-seeds 4] [--test-patients 200]
                               [--seed 20261207] [--e-step sampled|laplace] [--oracle]

--oracle adds, per configuration, the MAP of the same test cohorts with the true population (theta,
Omega and residual error of the generator, no standard errors: taken as known) written into the
learned file: are the misses the learning's or the MAP interval's own?
Python 3 standard library only. Prints a Markdown table. The default run took 698 s on the shared
2-core machine (load 4-5; docs/validation.md §10, "Compartment populations: accuracy and coverage").
"""

import argparse
import csv
import json
import math
import os
import random
import statistics
import tempfile
import time

import population_benchmark as pb  # its run, results, covered and quantile (no copy here)

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_FILE = os.path.join(HERE, "..", "models", "files", "blood_organ_linear.json")
# Lu-177 physical decay constant [1/h]: half-life 6.647 d (data/nuclides, docs/methods.md §1)
LAMBDA_P_PER_H = math.log(2) / (6.647 * 24)
A0_MBQ = 7400  # administered activity of every patient (lutdose synth's default, docs/synth.md)
LOG_SD = 0.25  # SD of ln k in the population (a CV of about 25 %, as the reviewer's cohorts of 0.20)
B_PROPORTIONAL = 0.10  # proportional noise (10 %, as synth's and the e2e cases')
RHO = 0.8  # correlation of ln k_in and ln k_out in the `full` configuration (the reviewer's)
LEARN_ORGAN_H, LEARN_BLOOD_H = (1, 4, 24, 48, 96, 168), (1, 4, 24)
TEST_ORGAN_H, TEST_BLOOD_H = (24, 96), (1, 4, 24)

# name: (noise sigma0 [MBq] or None for log-normal noise, correlation of ln k_in and ln k_out, learn options)
CONFIGS = {
    "proportional": (None, 0.0, ()),
    "combined": (2.0, 0.0, ("--error-model", "combined")),
    "full": (None, RHO, ("--omega", "full")),
    "combined-low-floor": (0.02, 0.0, ("--error-model", "combined")),
    "combined-on-lognormal": (None, 0.0, ("--error-model", "combined")),
}
DEFAULT_CONFIGS = "proportional,combined,full"


def rates(file_path):
    with open(file_path) as f:
        p = json.load(f)["parameters"]
    return p["k_b"]["value"], p["k_in"]["value"], p["k_out"]["value"]


def draw_patient(rng, k_file, rho):
    z = [rng.gauss(0, 1) for _ in range(3)]
    z[2] = rho * z[1] + math.sqrt(1 - rho * rho) * z[2]
    return tuple(k * math.exp(LOG_SD * zz) for k, zz in zip(k_file, z))


def curves(k):
    """(organ, blood) activity [MBq] at t [h] and their true TIAs [MBq h]."""
    kb, kin, kout = k
    amp = A0_MBQ * kin / (kout - kb)
    organ = lambda t: amp * (math.exp(-(kb + LAMBDA_P_PER_H) * t) - math.exp(-(kout + LAMBDA_P_PER_H) * t))
    blood = lambda t: A0_MBQ * math.exp(-(kb + LAMBDA_P_PER_H) * t)
    tia = {"organ": amp * (1 / (kb + LAMBDA_P_PER_H) - 1 / (kout + LAMBDA_P_PER_H)),
           "blood": A0_MBQ / (kb + LAMBDA_P_PER_H)}
    return organ, blood, tia


def cohort(path, n, seed, config, organ_h, blood_h, k_file):
    """Writes PATH_tacs.csv and PATH_patients.csv; returns their paths, the number of readings written
    as 0 and {(patient, voi): true TIA}."""
    sigma0, rho, _ = CONFIGS[config]
    rng = random.Random(seed)

    def noisy(f):
        if sigma0 is None:
            return f * math.exp(B_PROPORTIONAL * rng.gauss(0, 1))
        return max(0.0, f + math.sqrt(sigma0 ** 2 + (B_PROPORTIONAL * f) ** 2) * rng.gauss(0, 1))

    rows, pts, truth = ["patient,voi,time_h,activity_MBq"], ["patient,administered_MBq"], {}
    for i in range(n):
        p = "P%04d" % (i + 1)
        organ, blood, tia = curves(draw_patient(rng, k_file, rho))
        pts.append("%s,%d" % (p, A0_MBQ))
        truth.update({(p, v): t for v, t in tia.items()})
        rows += ["%s,organ,%g,%.9g" % (p, t, noisy(organ(t))) for t in organ_h]
        rows += ["%s,blood,%g,%.9g" % (p, t, noisy(blood(t))) for t in blood_h]
    with open(path + "_tacs.csv", "w") as f:
        f.write("\n".join(rows) + "\n")
    with open(path + "_patients.csv", "w") as f:
        f.write("\n".join(pts) + "\n")
    zeros = sum(1 for r in rows[1:] if float(r.rsplit(",", 1)[1]) == 0)
    return path + "_tacs.csv", path + "_patients.csv", zeros, truth


def fit(lutdose, tacs, *options):
    """`lutdose fit` of a test cohort: {(patient, VOI): the VOI's results}."""
    return pb.results(pb.run(lutdose, "fit", "--tac", tacs, "--activity-MBq", A0_MBQ, *options))


class Tally:
    """Errors and coverage flags of one row (one or more test cohorts)."""

    def __init__(self):
        self.err, self.cov, self.not_map, self.u_unknown = [], {}, set(), 0

    def add(self, fits, truth, population):
        for (p, voi), t in truth.items():
            v = fits[(p, voi)]
            if voi == "organ":
                self.err.append(abs(v["tia_MBq_h"] / t - 1) if v["tia_MBq_h"] is not None else float("inf"))
            if population and v["fit"]["method"] != "population MAP":
                self.not_map.add(p)
                continue  # coverage of the population's intervals: MAP cycles only
            c68, c95 = pb.covered(v["tia_ci68_MBq_h"], t), pb.covered(v["tia_ci95_MBq_h"], t)
            if c68 is None or c95 is None:
                self.u_unknown += 1
                continue
            self.cov.setdefault(voi, []).append((c68, c95))

    def merge(self, other, test_seed):
        self.err += other.err
        self.u_unknown += other.u_unknown
        self.not_map |= {(test_seed, p) for p in other.not_map}
        for voi, c in other.cov.items():
            self.cov.setdefault(voi, []).extend(c)

    def cells(self, population):
        out = ["%.1f" % (100 * statistics.median(self.err)), "%.1f" % (100 * pb.quantile(self.err, 0.95))]
        for voi in ("organ", "blood"):
            c = self.cov.get(voi, [])
            out += ["%.1f" % (100 * sum(x[k] for x in c) / len(c)) if c else "—" for k in (0, 1)]
        out += [str(len(self.not_map)) if population else "—", str(self.u_unknown)]
        return out


def row(label, tally, population):
    print("| %s | %s |" % (label, " | ".join(tally.cells(population))))


def learn(lutdose, tmp, config, n, seed, e_step, k_file):
    tacs, pts, zeros, _ = cohort(os.path.join(tmp, "learn_%s_%d" % (config, n)), n, seed, config,
                                 LEARN_ORGAN_H, LEARN_BLOOD_H, k_file)
    out = os.path.join(tmp, "pop_%s_%d.json" % (config, n))
    start = time.monotonic()
    pb.run(lutdose, "population", "learn", tacs, "--patients", pts, "--model", "blood_organ_linear",
        "--e-step", e_step, "--out", out, "--quiet", *CONFIGS[config][2])
    with open(out) as f:
        v = json.load(f)["vois"][0]
    return out, zeros, time.monotonic() - start, v


def describe(v):
    """The learned population in one line: exp(theta), Omega's diagonal, the residual error."""
    s = "k = %s 1/h, Omega_kk %s" % (", ".join("%.4g" % math.exp(t) for t in v["theta"]),
                                   ", ".join("%.3f" % v["omega"][k][k] for k in range(3)))
    if v.get("error_model") == "combined":
        s += ", sigma0 %.3g MBq, b %.3f" % (v["sigma0_MBq"], v["b_proportional"])
    else:
        s += ", b %.3f" % v.get("sigma_log", v.get("b_proportional", float("nan")))
    if len(v["omega"]) == 3 and v["omega"][1][2]:
        o = v["omega"]
        s += ", corr(ln k_in, ln k_out) %.2f" % (o[1][2] / math.sqrt(o[1][1] * o[2][2]))
    return s


def true_population(template, config, k_file, path):
    """The learned file `template` with the truth of `config` in place of theta, Omega and the residual
    error, and no standard errors (the population taken as known: u(TIA) is the posterior's alone).
    Its own checksum is removed (changed on purpose: recorded as absent, docs/population.md)."""
    sigma0, rho, _ = CONFIGS[config]
    with open(template) as f:
        d = json.load(f)
    del d["lutdose_sha256"]
    v = d["vois"][0]
    v["theta"] = [math.log(k) for k in k_file]
    v["theta_se"] = [None] * 3
    v["omega"] = [[LOG_SD ** 2 * (1 if i == j else 0) for j in range(3)] for i in range(3)]
    if rho:
        v["omega"][1][2] = v["omega"][2][1] = rho * LOG_SD ** 2
    for k in ("log_omega_se", "log_sigma_log_se", "log_b_proportional_se", "log_sigma0_se"):
        v.pop(k, None)
    if sigma0 is None:
        v["sigma_log"] = B_PROPORTIONAL
    else:
        v["sigma0_MBq"], v["b_proportional"] = sigma0, B_PROPORTIONAL
    with open(path, "w") as f:
        json.dump(d, f)
    return path


def zero_patients(tacs):
    """The patients of a TAC table with a reading written as 0 (clipped: the drawn value was <= 0)."""
    with open(tacs, newline="") as f:
        return {r["patient"] for r in csv.DictReader(f) if float(r["activity_MBq"]) == 0}


def population_rows(lutdose, config, label, pop, tests):
    """Rows of the MAP with population file `pop` per test cohort and pooled; where test cycles have a
    reading at 0, the pooled figures also split into the cycles with one and those without."""
    pooled, split = Tally(), {True: Tally(), False: Tally()}
    for test_seed, tacs, zeros, truth in tests:
        t = Tally()
        fits = fit(lutdose, tacs, "--population", pop)
        t.add(fits, truth, True)
        pooled.merge(t, test_seed)
        row("%s | %s | %d (%d at 0) | population MAP" % (config, label, test_seed, zeros), t, True)
        clipped = zero_patients(tacs)
        for has_zero in (True, False):
            part = Tally()
            part.add(fits, {k: v for k, v in truth.items() if (k[0] in clipped) == has_zero}, True)
            split[has_zero].merge(part, test_seed)
    row("%s | %s | pooled | population MAP" % (config, label), pooled, True)
    if split[True].err:
        for has_zero, name in ((True, "cycles with a reading at 0"), (False, "cycles without")):
            row("%s | %s | pooled, %d %s | population MAP" % (config, label, len(split[has_zero].err), name),
                split[has_zero], True)


def config_report(lutdose, tmp, config, sizes, seeds, n_test, seed, e_step, k_file, oracle):
    base = seed + 1000 * list(CONFIGS).index(config)
    tests = []
    for j in range(seeds):
        tacs, _, zeros, truth = cohort(os.path.join(tmp, "test_%s_%d" % (config, j)), n_test, base + 500 + j,
                                       config, TEST_ORGAN_H, TEST_BLOOD_H, k_file)
        tests.append((base + 500 + j, tacs, zeros, truth))
    pooled_ind = Tally()
    for test_seed, tacs, zeros, truth in tests:
        t = Tally()
        t.add(fit(lutdose, tacs, "--model", "blood_organ_linear"), truth, False)
        pooled_ind.merge(t, test_seed)
        row("%s | — | %d (%d at 0) | individual" % (config, test_seed, zeros), t, False)
    row("%s | — | pooled | individual" % config, pooled_ind, False)
    notes = []
    for n in sizes:
        pop, zeros, wall, v = learn(lutdose, tmp, config, n, base + n, e_step, k_file)
        notes.append("%s, %d patients (seed %d, %d readings at 0): %s; learned in %.0f s"
                     % (config, n, base + n, zeros, describe(v), wall))
        population_rows(lutdose, config, str(n), pop, tests)
    if oracle and config != "combined-on-lognormal":  # its truth is not of its error model
        population_rows(lutdose, config, "truth (known)",
                        true_population(pop, config, k_file, os.path.join(tmp, "true_%s.json" % config)), tests)
    return notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lutdose", required=True, help="the lutdose program (e.g. build/lutdose)")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated, of: " + ", ".join(CONFIGS))
    ap.add_argument("--learn-sizes", default="60,200", help="patients of the learning cohorts (comma-separated)")
    ap.add_argument("--test-seeds", type=int, default=4, help="test cohorts per configuration")
    ap.add_argument("--test-patients", type=int, default=200, help="sparse cycles per test cohort")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--e-step", choices=["sampled", "laplace"], default="sampled",
                    help="population learn's E-step (default sampled, lutdose's default)")
    ap.add_argument("--oracle", action="store_true",
                    help="also fit the test cohorts with the true population taken as known (rows 'truth (known)')")
    a = ap.parse_args()
    configs = [c.strip() for c in a.configs.split(",")]
    for c in configs:
        if c not in CONFIGS:
            ap.error("--configs: %r is not one of %s" % (c, ", ".join(CONFIGS)))
    sizes = [int(s) for s in a.learn_sizes.split(",")]
    lutdose = os.path.abspath(a.lutdose)
    k_file = rates(MODEL_FILE)
    print("| configuration | learned from | test seed (readings at 0) | method | organ median \\|TIA error\\| % | "
          "organ p95 % | organ 68 % cov. | organ 95 % cov. | blood 68 % cov. | blood 95 % cov. | MAP not used | "
          "u unknown |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    notes = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lutdose-compartment-coverage-") as tmp:
        for c in configs:
            notes += config_report(lutdose, tmp, c, sizes, a.test_seeds, a.test_patients, a.seed, a.e_step, k_file,
                                    a.oracle)
    print("\nLearned populations (%s E-step; truth: k = %s 1/h, Omega_kk %.4f, b %.2f):\n"
          % (a.e_step, ", ".join("%.4g" % k for k in k_file), LOG_SD ** 2, B_PROPORTIONAL))
    print("\n".join("* " + n for n in notes))
    print("\nTotal wall time %.0f s." % (time.monotonic() - start))


if __name__ == "__main__":
    main()
