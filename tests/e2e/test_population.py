#!/usr/bin/env python3
"""End-to-end tests of population kinetics (`lutdose population learn`, `lutdose fit
--population`, `--kinetics population`; docs/population.md), python3 standard library only.

Usage:
  test_population.py --list
  test_population.py --lutdose PATH/TO/lutdose --source SOURCE_DIR --case NAME

Every case runs the real binary in a fresh temporary directory (removed at the end). The case
that reads a results store (run_and_batch_provenance) needs h5py: without it it exits 77
(skipped), or fails under CI=true.
"""

import e2e_driver
import csv
import glob
import hashlib
import json
import math
import os
import random
import shutil
import statistics
import sys



CaseFailure = e2e_driver.CaseFailure


class Skip(Exception):
    pass


def store_provenance(path):
    """The provenance_json root attribute of a results store (docs/store.md), parsed."""
    try:
        import h5py
    except ImportError:
        raise Skip("python3-h5py is not installed")
    with h5py.File(path, "r") as f:
        text = f.attrs["provenance_json"]
    return json.loads(text.decode() if isinstance(text, bytes) else text)


def store_population(path):
    """The /population table of a results store (docs/store.md) as {(voi_kind, parameter): row}."""
    try:
        import h5py
    except ImportError:
        raise Skip("python3-h5py is not installed")
    out = {}
    with h5py.File(path, "r") as f:
        for r in f["population"][()]:
            row = {n: (r[n].decode("utf-8").rstrip("\0") if isinstance(r[n], bytes) else r[n].item())
                   for n in r.dtype.names}
            out[(row["voi_kind"], row["parameter"])] = row
    return out


def same_number(a, b):
    """a (a JSON number of a population file, None for null: not known) equals b (read from the
    store or a CSV): NaN for None. JSON text (17 significant digits, exact for doubles) on one side,
    HDF5 binary or the shortest round-trip text on the other: equal to 1e-12 relative."""
    return (a is None and b != b) or (a is not None and abs(a - b) <= 1e-12 * max(abs(a), 1e-300))


def check_population_table(table, vois, where):
    """`table` (store_population) holds exactly the models `vois` (the `vois` of a population file
    or of results.json): one row per parameter with theta, theta_se, the diagonal of omega,
    shrinkage, sigma_log, the TACs and points, and (store format 5, lutdose 0.18) the residual
    error model with sigma0_MBq and b_proportional, omega_structure and the standard errors
    log_omega_se and log_sigma_log_se (the file's members; absent ones are the file format's
    defaults: proportional, diagonal, not known), and (format 6, lutdose 0.19) log_sigma0_se and
    log_b_proportional_se of an additive model that has them."""
    expected = set()
    for v in vois:
        # sigma_log: the proportional model's; NaN for an additive model, which has none (review of 0.17:
        # its b was written as sigma_log); the additive models' sigma0_MBq and b_proportional have their
        # own columns (format 5), NaN where the model has none
        omega_se = v.get("log_omega_se") or [None] * len(v["parameters"])
        for k, name in enumerate(v["parameters"]):
            expected.add((v["voi_kind"], name))
            row = table.get((v["voi_kind"], name))
            if row is None or row["function"] != v["function"] or row["n_tacs"] != v["n_patients"] or \
                    row["n_observations"] != v["n_observations"] or \
                    row.get("error_model") != v.get("error_model", "proportional") or \
                    row.get("omega_structure") != v.get("omega_structure", "diagonal") or not all(
                        b in row and same_number(a, row[b]) for a, b in (
                            (v["theta"][k], "theta"), (v["theta_se"][k], "theta_se"),
                            (v["omega"][k][k], "omega_diag"), (v["shrinkage"][k], "shrinkage"),
                            (v.get("sigma_log"), "sigma_log"), (v.get("sigma0_MBq"), "sigma0_MBq"),
                            (v.get("b_proportional"), "b_proportional"), (omega_se[k], "log_omega_se"),
                            (v.get("log_sigma_log_se"), "log_sigma_log_se")) + (
                            # format 6 (0.19): the additive models' SEs of ln sigma0 and ln b
                            ((v.get("log_sigma0_se"), "log_sigma0_se"),
                             (v.get("log_b_proportional_se"), "log_b_proportional_se"))
                            if "log_sigma0_se" in v else ())):
                raise CaseFailure("%s: /population row %s %s is %r; expected the model %s" %
                                  (where, v["voi_kind"], name, row, json.dumps(v)[:600]))
    if set(table) != expected:
        raise CaseFailure("%s: /population has rows %s; expected %s" % (where, sorted(table), sorted(expected)))


def store_omega(path):
    """The /population_omega table of a results store (format 5) as {(voi_kind, parameter_i, parameter_j): row}."""
    import h5py  # store_population, called first, skips the case without it
    out = {}
    with h5py.File(path, "r") as f:
        if "population_omega" not in f:
            raise CaseFailure("%s: no /population_omega" % path)
        for r in f["population_omega"][()]:
            row = {n: (r[n].decode("utf-8").rstrip("\0") if isinstance(r[n], bytes) else r[n].item())
                   for n in r.dtype.names}
            out[(row["voi_kind"], row["parameter_i"], row["parameter_j"])] = row
    return out


def check_omega_table(table, vois, where):
    """`table` (store_omega, or population_omega.csv's rows with numbers) holds each model's Omega as
    the population file has it: a row per element i >= j that the model has (the variances of a
    diagonal Omega; the lower triangle of a full one), its covariance the file's omega[i][j] and
    the correlation omega[i][j] / (omega[i][i] omega[j][j])^(1/2) computed here from the file's
    numbers (to 1e-12 relative: a product, a square root and a division, a few ulp each), and
    (format 7) the correlation's SE the file's omega_correlation_se[i][j] (0 when i = j), NaN where
    the file has none (a diagonal Omega)."""
    expected = set()
    for v in vois:
        om, names = v["omega"], v["parameters"]
        full = v.get("omega_structure", "diagonal") == "full"
        for i, pi in enumerate(names):
            for j in range(0 if full else i, i + 1):
                pj = names[j]
                expected.add((v["voi_kind"], pi, pj))
                row = table.get((v["voi_kind"], pi, pj))
                corr = om[i][j] / math.sqrt(om[i][i] * om[j][j])
                se = v.get("omega_correlation_se")
                se = se[i][j] if full and se else None
                if row is None or row["function"] != v["function"] or not same_number(om[i][j], row["covariance"]) \
                        or not same_number(corr, row["correlation"]) or not same_number(se, row["correlation_se"]):
                    raise CaseFailure("%s: /population_omega %s %s %s is %r; expected covariance %r, correlation %r" %
                                      (where, v["voi_kind"], pi, pj, row, om[i][j], corr))
    if set(table) != expected:
        raise CaseFailure("%s: /population_omega has rows %s; expected %s" % (where, sorted(table), sorted(expected)))


def csv_number(row, column):
    """The number of a CSV cell (NaN for an empty cell, lutdose's unknown); CaseFailure without the column."""
    if column not in row:
        raise CaseFailure("no column %s in %s" % (column, sorted(row)))
    return float(row[column]) if row[column] != "" else float("nan")


def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Ctx(e2e_driver.Cli):
    def cohort(self, out, patients, seed, times):
        self.ok("synth", "--out", self.path(out), "--quiet", "--patients", patients, "--seed", seed,
                "--times-h", times)
        return self.path(out, "tacs.csv")


# The administered activity of every patient of a `lutdose synth` cohort (its default, docs/synth.md),
# for `fit`, which takes one activity for the whole table.
A0 = ("--activity-MBq", 7400)


def patients(tac):
    """The patients table `lutdose synth` writes beside tacs.csv (patient, cycle, administered_MBq)."""
    return os.path.join(os.path.dirname(tac), "patients.csv")


def run_first_patient(ctx, tac):
    """`run --tac` of the cohort's first patient (P00001) with the population pop.json, into run/."""
    one = ctx.path("one.csv")
    with open(tac) as f, open(one, "w") as g:
        lines = f.readlines()
        g.write(lines[0] + "".join(l for l in lines[1:] if l.startswith("P00001,")))
    ctx.ok("run", "--tac", one, "--activity-MBq", 7400, "--phantom", "icrp110-am", "--population",
           ctx.path("pop.json"), "--out", ctx.path("run"))


def truth(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["patient"], r["voi"]): float(r["tia_MBq_h"]) for r in csv.DictReader(f)}


def tias(fit_json):
    out = {}
    for p in fit_json["patients"]:
        for c in p["cycles"]:
            for v in c["vois"]:
                out[(p["id"], v["name"])] = v
    return out


def case_round_trip(ctx):
    """learn on one cohort, then --population on another cohort's 3-scan TACs: same fields, a note,
    and errors below the individual fits'."""
    learn = ctx.cohort("learn", 120, 1, "4,24,48,96,168")
    ctx.ok("population", "learn", learn, "--patients", patients(learn), "--out", ctx.path("pop.json"), "--quiet")
    pop = json.load(open(ctx.path("pop.json")))
    if pop["format"] != "lutdose-population" or {v["voi_kind"] for v in pop["vois"]} != {
            "kidneys", "liver", "spleen", "tumour"}:
        raise CaseFailure("population file: %s" % json.dumps(pop)[:500])
    new = ctx.cohort("new", 60, 2, "4,24,48")
    ind = tias(json.loads(ctx.ok("fit", "--tac", new).stdout))
    res = json.loads(ctx.ok("fit", "--tac", new, "--population", ctx.path("pop.json"), *A0).stdout)
    popfit = tias(res)
    if res.get("population", {}).get("source") != ctx.path("pop.json"):
        raise CaseFailure("results without the population: %s" % list(res))
    t = truth(ctx.path("new", "truth.csv"))
    e_ind = [abs(ind[k]["tia_MBq_h"] / t[k] - 1) for k in t]
    e_pop = [abs(popfit[k]["tia_MBq_h"] / t[k] - 1) for k in t]
    some = next(iter(popfit.values()))
    if set(some) != set(next(iter(ind.values()))):
        raise CaseFailure("the VOI fields differ from the individual fit's")
    if not any("population-based" in n for n in some["fit"]["notes"]):
        raise CaseFailure("no population note: %s" % some["fit"]["notes"])
    # 240 TACs at 3 scans to 48 h: the population prior must help the median error clearly
    if not statistics.median(e_pop) < statistics.median(e_ind):
        raise CaseFailure("median |TIA error| population %.4f not below individual %.4f" %
                          (statistics.median(e_pop), statistics.median(e_ind)))
    # learning again replaces the file lutdose wrote (its own checksum), a foreign file is kept;
    # from a small cohort (20 patients, 5 scans: enough to learn) to keep the test short under ASan
    small = ctx.cohort("small", 20, 3, "4,24,48,96,168")
    ctx.ok("population", "learn", small, "--patients", patients(small), "--out", ctx.path("pop.json"), "--quiet")
    with open(ctx.path("other.json"), "w") as f:
        f.write("{}")
    ctx.fails("other.json", "population", "learn", small, "--patients", patients(small), "--out", ctx.path("other.json"))
    if open(ctx.path("other.json")).read() != "{}":
        raise CaseFailure("a file lutdose did not write was overwritten")
    # --out is checked before the learning: with a table that cannot be learned (one scan per TAC)
    # the error is still the output's (regression: the whole fit ran before --out was refused)
    one = ctx.cohort("one", 20, 4, "24")
    ctx.fails("other.json", "population", "learn", one, "--patients", patients(one), "--out", ctx.path("other.json"))


def case_kinetics_population(ctx):
    """--kinetics population learns from the input and fits by MAP."""
    tac = ctx.cohort("c", 40, 3, "4,24,48,96")
    res = json.loads(ctx.ok("fit", "--tac", tac, "--kinetics", "population", *A0).stdout)
    if "learned from the input" not in res["population"]["source"]:
        raise CaseFailure("population source: %s" % res["population"]["source"])
    v = next(iter(tias(res).values()))
    if v["fit"]["method"] != "population MAP" or not v["tia_u_MBq_h"] > 0:
        raise CaseFailure("fit: %s" % json.dumps(v["fit"])[:400])


def write(ctx, name, text):
    with open(ctx.path(name), "w") as f:
        f.write(text)
    return ctx.path(name)


def case_bad_population_files(ctx):
    """Missing, not JSON, wrong format or version, non-finite numbers, Omega not positive-definite,
    VOI kinds not covered: exit 2 naming the file, the field and the value."""
    tac = ctx.cohort("c", 30, 4, "4,24,48,96")
    # an empty path (an unset $POP in a script) is refused, not read as "no population" (0.14's review)
    ctx.fails("--population", "fit", "--tac", tac, *A0, "--population", "")
    ctx.fails("--population", "batch", "--tac", tac, "--patients", patients(tac), "--population", "",
              "--out", ctx.path("empty.h5"))
    if os.path.exists(ctx.path("empty.h5")):
        raise CaseFailure("a store written with --population ''")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    good = json.load(open(ctx.path("pop.json")))
    good.pop("lutdose_sha256", None)
    ctx.fails("missing.json", "fit", "--tac", tac, *A0, "--population", ctx.path("missing.json"))
    ctx.fails("not a JSON object", "fit", "--tac", tac, *A0, "--population", write(ctx, "a.json", "[1]"))
    # a syntax error is reported with its position: "[1" ends at line 1 (nlohmann::json counts the
    # column after the last character read: 3)
    ctx.fails("line 1, column 3", "fit", "--tac", tac, *A0, "--population", write(ctx, "a2.json", "[1"))

    def variant(name, change, expected):
        doc = json.loads(json.dumps(good))
        change(doc)
        path = write(ctx, name, json.dumps(doc).replace("NaN", "NaN"))
        ctx.fails(expected, "fit", "--tac", tac, *A0, "--population", path)

    variant("b.json", lambda d: d.update(format_version=4), "format_version is '4'")
    # version 1 had amplitudes in MBq: refused, with what to do
    variant("b1.json", lambda d: d.update(format_version=1), "learn the population again")
    variant("c.json", lambda d: d.update(format="other"), "format is '\"other\"'")
    variant("d.json", lambda d: d["vois"][0]["theta"].__setitem__(0, None), "theta[0] is 'null'")
    variant("e.json", lambda d: d["vois"][0]["omega"][0].__setitem__(0, -1.0), "symmetric positive-definite")
    variant("f.json", lambda d: d["vois"][0].update(sigma_log=0), "sigma_log is '0'")
    variant("g.json", lambda d: d.update(vois=[v for v in d["vois"] if v["voi_kind"] != "liver"]),
            "the VOI kind of liver (")
    variant("h.json", lambda d: d["vois"][0].update(function="E2b"), "function is '\"E2b\"'")
    variant("i.json", lambda d: d["vois"][0].update(theta=[1.0]), "an array of 2 numbers")
    variant("j.json", lambda d: d["vois"][0]["candidates"].append(dict(d["vois"][0]["candidates"][0])),
            "candidates[1].function is '\"E1\"'")
    # regression (review): parameters and amplitudes were not read, so a file with amplitudes in
    # MBq (a hand-made or converted version 1) was read as per administered activity
    variant("k.json", lambda d: d["vois"][0]["parameters"].__setitem__(0, "log_A1_MBq"),
            "parameters is '[\"log_A1_MBq\"")
    variant("l.json", lambda d: d.pop("amplitudes"), "amplitudes is 'missing'")


def case_edited_file_refused(ctx):
    """A population file changed after `population learn` wrote it (a number edited by hand) does
    not match its own lutdose_sha256: exit 2 naming the file and the field, and saying how to go
    on; with the member deleted (a deliberate edit) the file is read, and recorded as not verified."""
    tac = ctx.cohort("c", 12, 6, "4,24,48,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    text = open(ctx.path("pop.json")).read()
    at = text.index('"sigma_log": ') + len('"sigma_log": ')
    edited = text[:at] + "0.5" + text[text.index(",", at):]  # the residual SD typed by hand
    write(ctx, "edited.json", edited)
    for expected in ("edited.json", "lutdose_sha256", "population learn", "delete its lutdose_sha256"):
        ctx.fails(expected, "fit", "--tac", tac, *A0, "--population", ctx.path("edited.json"))
    ctx.fails("lutdose_sha256", "run", "--tac", tac, "--activity-MBq", 7400, "--phantom", "icrp110-am",
              "--population", ctx.path("edited.json"), "--out", ctx.path("run"))
    if os.path.exists(ctx.path("run")):
        raise CaseFailure("run wrote results with an edited population file")
    doc = json.loads(edited)
    del doc["lutdose_sha256"]
    res = json.loads(ctx.ok("fit", "--tac", tac, *A0, "--population",
                          write(ctx, "hand.json", json.dumps(doc))).stdout)
    if res["options"]["fit"]["population"]["own_checksum"] != "absent":
        raise CaseFailure("a file without lutdose_sha256: %s" % res["options"]["fit"]["population"])


def case_run_and_batch_provenance(ctx):
    """run --tac and batch --tac with --population record the file (path, SHA-256 of its bytes
    computed here with hashlib, its own checksum verified) and the fit options that applied
    (population MAP), not the options of individual fits (functions, AICc, error model by kind):
    in results.json, results.h5 and the batch store."""
    tac = ctx.cohort("c", 12, 7, "4,24,48,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    with open(ctx.path("pop.json"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()

    def check(fit_options, where):
        pop = fit_options.get("population", {})
        if (fit_options.get("method") != "population MAP" or pop.get("source") != ctx.path("pop.json")
                or pop.get("sha256") != digest or pop.get("own_checksum") != "verified"):
            raise CaseFailure("%s: options.fit %s (expected population MAP with %s, sha256 %s)" %
                              (where, json.dumps(fit_options)[:600], ctx.path("pop.json"), digest))
        for individual in ("functions", "aicc_parameter_count", "error_model_tumours", "model_averaging"):
            if individual in fit_options:
                raise CaseFailure("%s: options.fit records %r of individual fits: %s" %
                                  (where, individual, json.dumps(fit_options)[:600]))

    run_first_patient(ctx, tac)
    check(json.load(open(ctx.path("run", "results.json")))["options"]["fit"], "run results.json")
    ctx.ok("batch", "--tac", tac, "--patients", ctx.path("c", "patients.csv"), "--population",
           ctx.path("pop.json"), "--out", ctx.path("store.h5"))
    check(store_provenance(ctx.path("run", "results.h5"))["options"]["fit"], "run results.h5")
    check(store_provenance(ctx.path("store.h5"))["options"]["fit"], "batch store")


def case_batch_population_coverage(ctx):
    """A population file without a VOI kind of the cohort is a bad invocation of `batch --tac`
    (as for fit and run): exit 2 before the batch starts, no store written, naming the file, the
    VOI kind and the patients that have it."""
    tac = ctx.cohort("c", 12, 8, "4,24,48,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    doc = json.load(open(ctx.path("pop.json")))
    del doc["lutdose_sha256"]
    doc["vois"] = [v for v in doc["vois"] if v["voi_kind"] != "spleen"]
    partial = write(ctx, "partial.json", json.dumps(doc, indent=2))
    args = ("batch", "--tac", tac, "--patients", ctx.path("c", "patients.csv"), "--population", partial,
            "--out", ctx.path("store.h5"))
    for expected in ("partial.json", "is 'spleen'", "P00001", "12 patients"):
        ctx.fails(expected, *args)
    if os.path.exists(ctx.path("store.h5")):
        raise CaseFailure("batch wrote a store with a population file that lacks a VOI kind")


def case_run_and_batch_tac(ctx):
    """--population on `run --tac` and `batch --tac`: MAP fits with doses."""
    tac = ctx.cohort("c", 30, 5, "4,24,48,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    run_first_patient(ctx, tac)
    res = json.load(open(ctx.path("run", "results.json")))
    v = res["patients"][0]["cycles"][0]["vois"][0]
    if v["fit"]["method"] != "population MAP" or not v["tia_MBq_h"] > 0:
        raise CaseFailure("run --tac --population: %s" % json.dumps(v)[:400])
    ctx.ok("batch", "--tac", tac, "--patients", ctx.path("c", "patients.csv"), "--population",
           ctx.path("pop.json"), "--out", ctx.path("store.h5"))
    case = os.path.join(ctx.tmp, "case.json")
    with open(case, "w") as f:
        f.write("{}")
    # a case file takes --population since 0.13 (case_file_population); this empty one is refused as a case
    ctx.fails("case.json", "run", case, "--population", ctx.path("pop.json"), "--out", ctx.path("r2"))
    # regression (review): NaN is lutdose's "not given", so --activity-MBq nan was reported as missing
    for cmd in (("fit", "--tac", tac), ("run", "--tac", tac, "--phantom", "icrp110-am", "--out", ctx.path("r3"))):
        ctx.fails("--activity-MBq: 'nan'; expected a finite activity in MBq", *cmd, "--activity-MBq", "nan",
                  "--population", ctx.path("pop.json"))
    # regression (review): run named the TAC table but not the population file lacking a VOI kind
    doc = json.load(open(ctx.path("pop.json")))
    del doc["lutdose_sha256"]
    doc["vois"] = [v for v in doc["vois"] if v["voi_kind"] != "spleen"]
    nospleen = write(ctx, "nospleen.json", json.dumps(doc, indent=2))
    ctx.fails("nospleen.json: the VOI kind of spleen", "run", "--tac", ctx.path("one.csv"), "--activity-MBq",
              7400, "--phantom", "icrp110-am", "--population", nospleen, "--out", ctx.path("r4"))
    if os.path.exists(ctx.path("r4")) or os.path.exists(ctx.path("r3")):
        raise CaseFailure("run wrote results on bad input")


def case_one_scan_refused(ctx):
    """One scan per TAC: no candidate is identifiable; exit 2 naming the table and the VOI kind,
    and no population file is written."""
    tac = ctx.cohort("c", 60, 1, "24")
    ctx.fails("tacs.csv: VOI kind kidneys", "population", "learn", tac, "--patients", patients(tac), "--out",
              ctx.path("pop.json"))
    ctx.fails("at most 1 distinct time points", "fit", "--tac", tac, "--kinetics", "population", *A0)
    if os.path.exists(ctx.path("pop.json")):
        raise CaseFailure("a population file was written from one-scan TACs")


def case_population_provenance(ctx):
    """fit --population records the file used: its path and the SHA-256 of its bytes (computed here
    with hashlib, not by lutdose)."""
    tac = ctx.cohort("c", 6, 3, "4,24,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    with open(ctx.path("pop.json"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    res = json.loads(ctx.ok("fit", "--tac", tac, "--population", ctx.path("pop.json"), *A0).stdout)
    got = res.get("population", {})
    if got.get("source") != ctx.path("pop.json") or got.get("sha256") != digest:
        raise CaseFailure("population provenance: %s (expected sha256 %s)" %
                          ({k: got.get(k) for k in ("source", "sha256")}, digest))


def case_half_life_checked(ctx):
    """The file's half_life_h must be a positive number equal to the run's half-life: a file learned
    at 159.53 h against --half-life-h 6.65 (days typed as hours), or a negative half_life_h, is
    refused with exit 2 naming the file, the field, the value and the expected value."""
    tac = ctx.cohort("c", 12, 5, "4,24,48,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    good = json.load(open(ctx.path("pop.json")))
    good.pop("lutdose_sha256", None)
    ctx.fails("half_life_h is '159.", "fit", "--tac", tac, "--population", ctx.path("pop.json"), *A0,
              "--half-life-h", 6.65)
    ctx.fails("expected 6.65", "fit", "--tac", tac, "--population", ctx.path("pop.json"), *A0, "--half-life-h", 6.65)
    for name, value in (("neg.json", -1.0), ("zero.json", 0.0)):
        doc = json.loads(json.dumps(good))
        doc["half_life_h"] = value
        ctx.fails("half_life_h is '%s'" % ("-1" if value < 0 else "0"), "fit", "--tac", tac, *A0, "--population",
                  write(ctx, name, json.dumps(doc)))
    # the same half-life given explicitly is accepted
    ctx.ok("fit", "--tac", tac, "--population", ctx.path("pop.json"), *A0, "--half-life-h", good["half_life_h"])


def scaled_table(src, dst, factor):
    """The TAC table `src` with every activity_MBq times `factor` (a power of 2: exact in binary)."""
    with open(src, newline="") as f, open(dst, "w", newline="") as g:
        rows = list(csv.DictReader(f))
        w = csv.DictWriter(g, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            r["activity_MBq"] = repr(float(r["activity_MBq"]) * factor)
            w.writerow(r)
    return dst


def case_per_administered_activity(ctx):
    """Amplitudes are per administered activity: the MAP TIA of a table halved with half the activity
    is half (regression: 0.52-0.57 with an amplitude prior in MBq); the file says so (format 2,
    log_A1_per_administered); learn needs every TAC's activity (--patients), fit needs
    --activity-MBq; batch --tac takes each patient's from its patients table."""
    tac = ctx.cohort("c", 20, 6, "4,24,48")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    pop = json.load(open(ctx.path("pop.json")))
    if pop["format_version"] != 2 or pop["vois"][0]["parameters"][0] != "log_A1_per_administered" or \
            "per administered activity" not in pop.get("amplitudes", ""):
        raise CaseFailure("population file: %s" % json.dumps({k: pop.get(k) for k in ("format_version", "amplitudes")}))
    half = scaled_table(tac, ctx.path("half.csv"), 0.5)
    full = tias(json.loads(ctx.ok("fit", "--tac", tac, "--population", ctx.path("pop.json"), *A0).stdout))
    halved = tias(json.loads(ctx.ok("fit", "--tac", half, "--population", ctx.path("pop.json"),
                                    "--activity-MBq", 3700).stdout))
    for k, v in full.items():
        # data and activity halved exactly (powers of 2): the same data per administered activity,
        # so the same MAP; 1e-9 covers the printed digits of the JSON numbers
        if abs(halved[k]["tia_MBq_h"] / v["tia_MBq_h"] - 0.5) > 1e-9:
            raise CaseFailure("%s: MAP TIA %r at 3700 MBq vs %r at 7400 MBq: ratio not 0.5" %
                              (k, halved[k]["tia_MBq_h"], v["tia_MBq_h"]))
    # batch --tac takes each patient's activity from its patients table: the halved table with
    # 3700 MBq in the table gives half the TIAs (read back with lutdose export)
    with open(patients(tac), newline="") as f:
        prow = list(csv.DictReader(f))
    with open(ctx.path("half_patients.csv"), "w", newline="") as g:
        w = csv.DictWriter(g, fieldnames=list(prow[0]))
        w.writeheader()
        w.writerows(dict(r, administered_MBq="3700") for r in prow)
    stored = {}
    for name, table, pt in (("full", tac, patients(tac)), ("half", half, ctx.path("half_patients.csv"))):
        ctx.ok("batch", "--tac", table, "--patients", pt, "--population", ctx.path("pop.json"),
               "--out", ctx.path(name + ".h5"))
        ctx.ok("export", ctx.path(name + ".h5"), "--csv", ctx.path(name + "_csv"))
        with open(ctx.path(name + "_csv", "vois.csv"), newline="") as f:
            stored[name] = {(r["patient"], r["voi"]): float(r["tia_MBq_h"]) for r in csv.DictReader(f)}
    if len(stored["full"]) != 80:  # 20 patients x 4 VOIs of lutdose synth
        raise CaseFailure("batch stores: %d VOIs, expected 80" % len(stored["full"]))
    for k, v in stored["full"].items():
        if abs(stored["half"][k] / v - 0.5) > 1e-9:  # as above: the same MAP, printed digits
            raise CaseFailure("batch %s: MAP TIA %r at 3700 MBq vs %r at 7400 MBq: ratio not 0.5" %
                              (k, stored["half"][k], v))
    ctx.fails("--activity-MBq is 'missing'", "fit", "--tac", tac, "--population", ctx.path("pop.json"))
    ctx.fails("--activity-MBq is 'missing'", "fit", "--tac", tac, "--kinetics", "population")
    # a patient without a row in the patients table: exit 2 naming the file, the patient and the field
    with open(patients(tac)) as f:
        lines = f.readlines()
    short = write(ctx, "short.csv", "".join(l for l in lines if not l.startswith("P00002,")))
    ctx.fails("short.csv: administered_MBq of patient P00002, cycle 1 is 'missing'", "population", "learn", tac,
              "--patients", short, "--out", ctx.path("p2.json"))
    with open(patients(tac), newline="") as f:
        rows = list(csv.DictReader(f))
    with open(ctx.path("empty.csv"), "w", newline="") as g:
        w = csv.DictWriter(g, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(dict(r, administered_MBq="") if r["patient"] == "P00003" else r for r in rows)
    ctx.fails("empty.csv:4: administered_MBq of patient P00003, cycle 1 is ''", "population", "learn", tac,
              "--patients", ctx.path("empty.csv"), "--out", ctx.path("p2.json"))
    if os.path.exists(ctx.path("p2.json")):
        raise CaseFailure("a population file was written without every activity")


def case_zero_tac_not_accepted(ctx):
    """A TAC of only zeros gets no accepted MAP fit (regression: the population mean was accepted);
    its flags say why."""
    tac = ctx.cohort("c", 12, 7, "4,24,48,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    with open(tac, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["patient"] == "P00001"]
    for r in rows:
        r["activity_MBq"] = "0"
    with open(ctx.path("zeros.csv"), "w", newline="") as g:
        w = csv.DictWriter(g, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = json.loads(ctx.ok("fit", "--tac", ctx.path("zeros.csv"), "--population", ctx.path("pop.json"), *A0).stdout)
    for k, v in tias(res).items():
        # the MAP is not used (regression, review: its TIA, the population mean, went on to the
        # dose); the TAC gets what lutdose gives without a population: TIA 0, "all activities are zero"
        notes = " ".join(v["fit"]["notes"])
        if v["fit"]["accepted"] or v["fit"]["method"] == "population MAP" or v["tia_MBq_h"] != 0 or \
                "no_positive_points" not in notes or "no point with activity > 0" not in notes or \
                "all activities are zero" not in notes:
            raise CaseFailure("%s: a TAC of zeros: %s" % (k, json.dumps(v["fit"])[:600]))


def case_map_far_from_data_not_used(ctx):
    """A hand-edited population (the file's own checksum deleted) whose amplitudes are 100 times the
    cohort's with 1 % spread between patients: the MAP curves lie far above the TAC's points, and
    `run` must not use them (regression, review of 0.14: a curve 60x above the points and a TIA 16x
    too large were accepted). Every VOI falls back to its individual fit with the note
    `population MAP not used: ...` naming the residual criterion; the same TAC with the file as
    learned keeps its MAP."""
    tac = ctx.cohort("c", 12, 9, "4,24,48,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    run_first_patient(ctx, tac)
    learned = json.load(open(ctx.path("run", "results.json")))["patients"][0]["cycles"][0]["vois"]
    if any(v["fit"]["method"] != "population MAP" for v in learned):
        raise CaseFailure("the learned population's MAPs were not used: %s" %
                          [(v["name"], v["fit"]["method"], v["fit"]["notes"]) for v in learned])
    doc = json.load(open(ctx.path("pop.json")))
    del doc["lutdose_sha256"]
    for v in doc["vois"]:
        v["theta"][0] += math.log(100.0)  # ln(A1 / A0): amplitudes 100 times the cohort's
        v["omega"][0][0] = 1e-4           # SD 1 %: the prior outweighs the four points
    edited = write(ctx, "edited.json", json.dumps(doc, indent=2))
    ctx.ok("run", "--tac", ctx.path("one.csv"), "--activity-MBq", 7400, "--phantom", "icrp110-am", "--population",
           edited, "--out", ctx.path("run_edited"))
    vois = json.load(open(ctx.path("run_edited", "results.json")))["patients"][0]["cycles"][0]["vois"]
    if not vois:
        raise CaseFailure("no VOI in the results of the edited population")
    for v in vois:
        notes = " ".join(v["fit"]["notes"])
        if v["fit"]["method"] == "population MAP" or "population MAP not used: " not in notes or \
                "map_residuals_exceed_population_model" not in notes:
            raise CaseFailure("%s: a MAP far from its data was used or not explained: method %s, notes %s" %
                              (v["name"], v["fit"]["method"], notes[:600]))
    # batch says so in its summary, not only in each VOI's notes (review of 0.15: 800 of 800 MAPs
    # rejected gave only "fits flagged in N patient-cycles"); the learned file's batch has no such line.
    n_vois = sum(1 for _ in csv.DictReader(open(tac, newline=""))) // 4  # 4 scans per TAC
    for pop, rejected in ((edited, n_vois), (ctx.path("pop.json"), 0)):
        out = ctx.ok("batch", "--tac", tac, "--patients", patients(tac), "--population", pop, "--out",
                     ctx.path("b%d.h5" % rejected)).stdout
        line = "batch: the MAP was not used in %d of %d VOIs" % (rejected, n_vois)
        if (line in out) != (rejected > 0) or (rejected == 0 and "the MAP was not used" in out):
            raise CaseFailure("batch summary with %s: expected %s: %s" %
                              (pop, repr(line) if rejected else "no such line", out[-600:]))


def case_population_in_outputs(ctx):
    """run --tac and batch --tac with --population FILE write the file's models: results.json's
    population.vois equals the file's vois, and the /population table of results.h5 and of the
    batch store (read with h5py) holds its numbers; lutdose export writes population.csv."""
    tac = ctx.cohort("c", 12, 7, "4,24,48,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1,E2u")
    pop = json.load(open(ctx.path("pop.json")))
    run_first_patient(ctx, tac)
    res = json.load(open(ctx.path("run", "results.json")))
    if res.get("population", {}).get("vois") != pop["vois"] or res["population"].get("source") != ctx.path("pop.json"):
        raise CaseFailure("run results.json population: %s" % json.dumps(res.get("population"))[:600])
    check_population_table(store_population(ctx.path("run", "results.h5")), pop["vois"], "run results.h5")
    ctx.ok("batch", "--tac", tac, "--patients", patients(tac), "--population", ctx.path("pop.json"),
           "--out", ctx.path("store.h5"), "--threads", 2)
    check_population_table(store_population(ctx.path("store.h5")), pop["vois"], "batch store")
    ctx.ok("export", ctx.path("store.h5"), "--csv", ctx.path("csv"))
    with open(ctx.path("csv", "population.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    n = sum(len(v["parameters"]) for v in pop["vois"])
    if len(rows) != n or float(rows[0]["theta"]) != pop["vois"][0]["theta"][0]:
        raise CaseFailure("population.csv: %d rows (expected %d): %s" % (len(rows), n, rows[:2]))
    # without population kinetics the table is there and empty
    ctx.ok("batch", "--tac", tac, "--patients", patients(tac), "--out", ctx.path("plain.h5"))
    if store_population(ctx.path("plain.h5")):
        raise CaseFailure("a store of individual fits has /population rows")


def case_store_e_step(ctx):
    """The store's /population and export's population.csv record each VOI kind's e_step (the
    population file's): "sampled" for batch --tac --kinetics population (learned with population
    learn's default, the sampled E-step, docs/population.md), "laplace" for a file learned with
    --e-step laplace. (0.13 wrote neither; format 3 stores without the column: the unit test
    "format 3 stores ...".)"""
    tac = ctx.cohort("c", 12, 31, "4,24,48,96")
    for name, extra in (("learned", ("--kinetics", "population")), ("laplace", None)):
        if extra is None:
            ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
                   "--functions", "E1", "--e-step", "laplace")
            extra = ("--population", ctx.path("pop.json"))
        expected = "sampled" if name == "learned" else "laplace"
        store = ctx.path(name + ".h5")
        ctx.ok("batch", "--tac", tac, "--patients", patients(tac), *extra, "--out", store)
        table = store_population(store)
        if not table or {r.get("e_step") for r in table.values()} != {expected}:
            raise CaseFailure("%s: /population e_step %s; expected %r in every row" %
                              (name, sorted({str(r.get("e_step")) for r in table.values()}), expected))
        ctx.ok("export", store, "--csv", ctx.path(name + "_csv"))
        with open(ctx.path(name + "_csv", "population.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        if len(rows) != len(table) or {r.get("e_step") for r in rows} != {expected}:
            raise CaseFailure("%s: population.csv e_step %s; expected %r in its %d rows" %
                              (name, sorted({str(r.get("e_step")) for r in rows}), expected, len(table)))
    # a file changed by hand (no lutdose_sha256) without e_step: unknown, not "laplace" (only a file lutdose
    # wrote before 0.13, checksum intact, was learned by the Laplace EM; 0.14's review)
    doc = json.load(open(ctx.path("pop.json")))
    del doc["lutdose_sha256"]
    for v in doc["vois"]:
        del v["e_step"]
    write(ctx, "hand.json", json.dumps(doc, indent=2))
    ctx.ok("batch", "--tac", tac, "--patients", patients(tac), "--population", ctx.path("hand.json"),
           "--out", ctx.path("hand.h5"))
    table = store_population(ctx.path("hand.h5"))
    if not table or {r.get("e_step") for r in table.values()} != {""}:
        raise CaseFailure("hand-written file without e_step: /population e_step %s; expected unknown (empty)" %
                          sorted({str(r.get("e_step")) for r in table.values()}))


# The options of individual fits with a value other than their default (docs/population.md): a
# population MAP fit does not use them, so given with --population or --kinetics population they
# are refused (0.13 ignored them silently). (option, its arguments, the value the message names)
INDIVIDUAL_FIT_OPTIONS = (
    ("--function", ("E2",), "E2"), ("--functions", ("E1,E2u",), "E1,E2u"),
    ("--error-model", ("constant",), "constant"), ("--aicc-k", ("fit+1",), "fit+1"),
    ("--integration", ("trapezoid",), "trapezoid"), ("--trapezoid-head", ("constant",), "constant"),
    ("--trapezoid-body", ("log",), "log"), ("--trapezoid-tail", ("fit",), "fit"),
    ("--model-averaging", (), "true"), ("--combined-sigma0-MBq", ("1.5",), "1.5"),
    ("--combined-b", ("0.1",), "0.1"), ("--reject-correlated", (), "true"))


def case_individual_fit_options_refused(ctx):
    """fit, run --tac and batch --tac with --population FILE or --kinetics population refuse an
    option of individual fits given with a value other than its default (exit 2, the message names
    the option, its value and that MAP fits use the population's function; nothing written); the
    defaults given explicitly change nothing and pass."""
    tac = ctx.cohort("c", 6, 33, "4,24,48,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1", "--e-step", "laplace")
    pop = ("--population", ctx.path("pop.json"))
    learn = ("--kinetics", "population")
    commands = (
        ("fit", ("fit", "--tac", tac, *A0), None),
        ("run", ("run", "--tac", tac, *A0, "--phantom", "icrp110-am"), "run_out"),
        ("batch", ("batch", "--tac", tac, "--patients", patients(tac)), "store.h5"),
    )
    for option, args, value in INDIVIDUAL_FIT_OPTIONS:
        for name, cmd, out in commands:
            for how, given in (("--population", pop), ("--kinetics population", learn)):
                if how == "--kinetics population" and option in ("--functions", "--error-model"):
                    continue  # the learning's options there (kinetics_population_learning_options)
                argv = cmd + given + (option,) + args + (("--out", ctx.path(out)) if out else ())
                ctx.fails("%s is '%s' with %s; expected no %s" % (option, value, how, option), *argv)
                # the population's error model, which may be additive (0.17), not "(log scale)" (review of 0.17, 6)
                ctx.fails("the function and the error model of its VOI kind's population", *argv)
                if out and os.path.exists(ctx.path(out)):
                    raise CaseFailure("%s %s %s: %s written on bad input" % (name, how, option, out))
    # the defaults, given explicitly, change nothing: accepted
    defaults = ("--function", "auto", "--functions", "E1,E2u,E2", "--aicc-k", "fit", "--integration", "analytic",
                "--trapezoid-head", "linear", "--trapezoid-body", "linear", "--trapezoid-tail", "physical")
    ctx.ok("fit", "--tac", tac, *A0, *pop, *defaults)


def case_run_and_batch_kinetics_population(ctx):
    """--kinetics population on run --tac and batch --tac learns the population of the input (the
    same as fit --kinetics population and population learn: lutdose synth gives every patient
    7400 MBq), fits by MAP, records the learned models (results.json, /population) and their
    SHA-256; shards learn from the whole cohort (merge accepts them); a resumed batch learns the
    same population; a resume with another population is refused; --kinetics population with
    --population or with one case file is refused (exit 2, nothing written)."""
    # 20 patients: enough to learn (round_trip), and the case learns eight times (each about 6 s under
    # ASan; 30 patients made it the longest test of the sanitizer pass)
    tac = ctx.cohort("c", 20, 11, "4,24,48,96")
    fit = json.loads(ctx.ok("fit", "--tac", tac, "--kinetics", "population", *A0).stdout)["population"]
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet")
    if json.load(open(ctx.path("pop.json")))["vois"] != fit["vois"]:
        raise CaseFailure("fit --kinetics population learned another population than population learn")
    ctx.ok("run", "--tac", tac, *A0, "--phantom", "icrp110-am", "--kinetics", "population", "--out", ctx.path("run"))
    res = json.load(open(ctx.path("run", "results.json")))
    if res["population"]["vois"] != fit["vois"] or res["population"]["vois_sha256"] != fit["vois_sha256"] or \
            res["options"]["fit"]["population"]["vois_sha256"] != fit["vois_sha256"]:
        raise CaseFailure("run --kinetics population: %s" % json.dumps(res["population"])[:600])
    methods = {v["fit"]["method"] for p in res["patients"] for c in p["cycles"] for v in c["vois"]}
    doses = [d["dose_Gy"] for d in res["patients"][0]["cycles"][0]["doses"]]
    if "population MAP" not in methods or not doses or not all(d > 0 for d in doses):
        raise CaseFailure("run --kinetics population: methods %s, doses %s" % (methods, doses))
    check_population_table(store_population(ctx.path("run", "results.h5")), fit["vois"], "run results.h5")
    batch = ("batch", "--tac", tac, "--patients", patients(tac), "--kinetics", "population")
    ctx.ok(*batch, "--out", ctx.path("store.h5"))
    check_population_table(store_population(ctx.path("store.h5")), fit["vois"], "batch store")
    prov = store_provenance(ctx.path("store.h5"))["options"]["fit"]["population"]
    if prov.get("vois_sha256") != fit["vois_sha256"]:
        raise CaseFailure("batch store: options.fit.population %s" % prov)
    # every shard learns from the whole cohort: the same population, so merge accepts the shards
    for i in (1, 2):
        ctx.ok(*batch, "--shard", "%d/2" % i, "--out", ctx.path("s%d.h5" % i), "--threads", i)
    ctx.ok("merge", ctx.path("merged.h5"), ctx.path("s1.h5"), ctx.path("s2.h5"))
    check_population_table(store_population(ctx.path("merged.h5")), fit["vois"], "merged store")
    # a resume learns again (the same population: accepted); with another population: refused
    with open(ctx.path("store.h5"), "rb") as f:
        before = f.read()
    ctx.ok(*batch, "--out", ctx.path("store.h5"), "--resume", "--threads", 1)
    # the refusal names what differs, not only the two fingerprints (0.11)
    ctx.fails("fingerprint", "batch", "--tac", tac, "--patients", patients(tac), "--population", ctx.path("pop.json"),
              "--out", ctx.path("store.h5"), "--resume")
    ctx.fails("differing: options.fit.", "batch", "--tac", tac, "--patients", patients(tac), "--population",
              ctx.path("pop.json"), "--out", ctx.path("store.h5"), "--resume")
    with open(ctx.path("store.h5"), "rb") as f:
        if f.read() != before:
            raise CaseFailure("a resume changed a finished store")
    # refused: with --population, with one case file; nothing written
    both = ("--kinetics", "population", "--population", ctx.path("pop.json"))
    ctx.fails("--kinetics population with --population", "fit", "--tac", tac, *A0, *both)
    ctx.fails("--kinetics population with --population", "run", "--tac", tac, *A0, "--phantom", "icrp110-am",
              *both, "--out", ctx.path("r2"))
    ctx.fails("--kinetics population with --population", "batch", "--tac", tac, "--patients", patients(tac),
              *both, "--out", ctx.path("b2.h5"))
    # an explicit other kinetics with a population file contradicts it (0.11 fitted by MAP silently)
    # (previous-cycles with it: one message, validate()'s; two contradicting ones before, review of 0.12)
    for kinetics, message in (("individual", "--kinetics individual with --population: choose one"),
                              ("previous-cycles", "'previous-cycles': expected individual kinetics with")):
        for cmd in (("fit", "--tac", tac, *A0), ("batch", "--tac", tac, "--patients", patients(tac),
                                                   "--out", ctx.path("b2.h5"))):
            argv = (*cmd, "--kinetics", kinetics, "--population", ctx.path("pop.json"))
            ctx.fails(message, *argv)
            if "--kinetics previous-cycles with --population" in ctx.run(*argv)[1].stderr:
                raise CaseFailure("previous-cycles with --population: two messages\n" + ctx.run(*argv)[1].stderr)
    # a folder of case files learns from its cases (test_batch.py kinetics_population_with_case_files):
    # an empty one is refused naming it; one case file is no cohort to learn from
    os.mkdir(ctx.path("cases"))
    ctx.fails("CASES_DIR is '%s'" % ctx.path("cases"), "batch", ctx.path("cases"), "--kinetics", "population",
              "--out", ctx.path("b3.h5"))
    ctx.fails("--kinetics is 'population'; expected individual or previous-cycles with a case file", "run",
              ctx.path("case.json"), "--kinetics", "population", "--out", ctx.path("r3"))
    # a patient without an administered activity: the learning needs every TAC's (exit 2, no store)
    with open(patients(tac)) as f:
        lines = f.readlines()
    short = write(ctx, "short.csv", "".join(l for l in lines if not l.startswith("P00002,")))
    ctx.fails("short.csv: administered_MBq of patient P00002", "batch", "--tac", tac, "--patients", short,
              "--kinetics", "population", "--out", ctx.path("b4.h5"))
    # one patient: no population to learn; the message names the table and the VOI kind
    with open(tac) as f:
        rows = f.readlines()
    lone = write(ctx, "lone.csv", rows[0] + "".join(l for l in rows[1:] if l.startswith("P00001,")))
    ctx.fails("lone.csv: VOI kind kidneys: the number of TACs (patients) is '1'", "fit", "--tac", lone, *A0,
              "--kinetics", "population")
    for p in ("r2", "b2.h5", "b3.h5", "r3", "b4.h5"):
        if os.path.exists(ctx.path(p)):
            raise CaseFailure("%s written on bad input" % p)


def case_learn_from_cases(ctx):
    """population learn CASES_DIR: the TACs and administered activities of a folder of case files
    (lutdose synth --format cases of the same seed as a TAC table) give the population of the
    table; the file records the folder, each case file's SHA-256 and their digest (both computed
    here with hashlib)."""
    args = ("--patients", 16, "--seed", 12, "--times-h", "4,24,48,96", "--quiet")
    ctx.ok("synth", "--out", ctx.path("t"), *args)
    ctx.ok("synth", "--out", ctx.path("cases"), "--format", "cases", *args)
    ctx.ok("population", "learn", ctx.path("t", "tacs.csv"), "--patients", ctx.path("t", "patients.csv"),
           "--out", ctx.path("table.json"), "--quiet", "--functions", "E1,E2u")
    ctx.ok("population", "learn", ctx.path("cases"), "--out", ctx.path("cases.json"), "--quiet",
           "--functions", "E1,E2u")
    table, cases = json.load(open(ctx.path("table.json"))), json.load(open(ctx.path("cases.json")))
    for a, b in zip(table["vois"], cases["vois"]):
        for k in ("voi_kind", "function", "parameters", "n_patients", "n_observations"):
            if a[k] != b[k]:
                raise CaseFailure("%s: %s %r from the table, %r from the case files" % (a["voi_kind"], k, a[k], b[k]))
        for k in ("theta", "shrinkage"):
            for x, y in zip(a[k], b[k]):
                # the same cohort: the case files hold the table's activities; 1e-6 relative allows
                # for the digits each format prints (the estimator's own tolerance is 1e-5 on theta)
                if abs(x - y) > 1e-6 * max(abs(x), 1.0):
                    raise CaseFailure("%s: %s %r from the table, %r from the case files" % (a["voi_kind"], k, a[k], b[k]))
    if len(table["vois"]) != len(cases["vois"]):
        raise CaseFailure("VOI kinds: %d from the table, %d from the case files" % (len(table["vois"]), len(cases["vois"])))
    names = sorted(n for n in os.listdir(ctx.path("cases")) if n.startswith("case-") and n.endswith(".json"))
    files = []
    for n in names:
        with open(ctx.path("cases", n), "rb") as f:
            files.append({"name": n, "sha256": hashlib.sha256(f.read()).hexdigest()})
    lines = "".join("%s  %s\n" % (f["sha256"], f["name"]) for f in files)
    inp = cases["input"]
    if inp.get("path") != ctx.path("cases") or inp.get("case_files") != files or \
            inp.get("sha256") != hashlib.sha256(lines.encode()).hexdigest() or inp.get("kind") != "case-files":
        raise CaseFailure("input of a population learned from case files: %s" % json.dumps(inp)[:800])
    # bad invocations: exit 2, nothing written
    ctx.fails("--patients", "population", "learn", ctx.path("cases"), "--patients", ctx.path("t", "patients.csv"),
              "--out", ctx.path("bad1.json"))
    os.mkdir(ctx.path("empty"))
    ctx.fails("empty", "population", "learn", ctx.path("empty"), "--out", ctx.path("bad2.json"))
    ctx.fails("--patients is 'missing'", "population", "learn", ctx.path("t", "tacs.csv"), "--out", ctx.path("bad3.json"))
    # a patient in two case files would be learned twice: refused, naming both files
    os.mkdir(ctx.path("twice"))
    for n in ("case-P00001.json", "case-P00002.json"):
        with open(ctx.path("cases", n), "rb") as f, open(ctx.path("twice", n), "wb") as g:
            g.write(f.read())
    with open(ctx.path("cases", "case-P00001.json"), "rb") as f, open(ctx.path("twice", "copy.json"), "wb") as g:
        g.write(f.read())
    ctx.fails("patient is 'P00001'; expected one case file per patient (also in case-P00001.json)", "population",
              "learn", ctx.path("twice"), "--out", ctx.path("bad4.json"))
    # a bad case file stops the learning (batch would record it as a failed patient)
    with open(ctx.path("twice", "copy.json"), "w") as g:
        g.write("{")
    ctx.fails("copy.json", "population", "learn", ctx.path("twice"), "--out", ctx.path("bad5.json"))
    # a case of another half-life than the learning's: one population has one physical decay
    ctx.fails("the half-life of Lu-177", "population", "learn", ctx.path("cases"), "--half-life-h", 150,
              "--out", ctx.path("bad6.json"))
    for p in ("bad1.json", "bad2.json", "bad3.json", "bad4.json", "bad5.json", "bad6.json"):
        if os.path.exists(ctx.path(p)):
            raise CaseFailure("%s written on bad input" % p)


def case_population_file_in_cases(ctx):
    """A population file is no case file (issue 15): population learn CASES_DIR --out CASES_DIR/x.json
    is refused (exit 2 naming the path and why; nothing written), and a population file found in a
    folder of case files (put there by hand, or by an earlier version) is left out by batch and
    population learn with a note on standard error naming it, not read as a broken case (it was a
    failed patient of batch and stopped population learn with 15 lines of unknown keys)."""
    ctx.ok("synth", "--out", ctx.path("cases"), "--format", "cases", "--quiet", "--patients", 8, "--seed", 3,
           "--times-h", "4,24,48,96")
    for out in (ctx.path("cases", "pop.json"), os.path.join(ctx.path("cases"), ".", "pop.json"), "cases/pop.json"):
        ctx.fails("--out is '%s'" % out, "population", "learn", ctx.path("cases"), "--out", out, "--quiet",
                  "--functions", "E1")
        ctx.fails("read as a case file", "population", "learn", ctx.path("cases"), "--out", out, "--quiet",
                  "--functions", "E1")
        if os.path.exists(ctx.path("cases", "pop.json")):
            raise CaseFailure("population learn wrote %s into the folder it learned from" % out)
    # a subfolder is not read as case files: allowed
    os.mkdir(ctx.path("cases", "priors"))
    ctx.ok("population", "learn", ctx.path("cases"), "--out", ctx.path("cases", "priors", "pop.json"), "--quiet",
           "--functions", "E1")
    with open(ctx.path("cases", "priors", "pop.json"), "rb") as f, open(ctx.path("cases", "pop.json"), "wb") as g:
        g.write(f.read())  # a population file in the folder itself (copied there by hand)
    note = "cases/pop.json: a population file (format lutdose-population), not a case file: left out"
    for argv in (("population", "learn", ctx.path("cases"), "--out", ctx.path("again.json"), "--functions", "E1"),
                 ("batch", ctx.path("cases"), "--out", ctx.path("store.h5"), "--progress", "never"),
                 ("batch", ctx.path("cases"), "--kinetics", "population", "--out", ctx.path("learned.h5"),
                  "--progress", "never")):
        cp = ctx.ok(*argv)
        if note not in cp.stderr or "unknown key" in cp.stderr:
            raise CaseFailure("%s: expected the note %r on standard error; got\n%s" % (" ".join(argv), note, cp.stderr))
    # the population learned again is the one learned before (the same 8 case files)
    if json.load(open(ctx.path("again.json")))["vois"] != json.load(open(ctx.path("cases", "pop.json")))["vois"]:
        raise CaseFailure("population learn read another cohort with pop.json in the folder")


def population_and_cases(ctx):
    """A population learned from one cohort (5 scans) written into the folder cases/ of another
    cohort's case files (3 scans, `lutdose synth --format cases`); returns the first case's path."""
    learn = ctx.cohort("learn", 40, 1, "4,24,48,96,168")
    ctx.ok("synth", "--out", ctx.path("cases"), "--format", "cases", "--quiet", "--patients", 2, "--seed", 3,
           "--times-h", "4,24,48")
    ctx.ok("population", "learn", learn, "--patients", patients(learn), "--out", ctx.path("cases", "pop.json"),
           "--quiet", "--functions", "E1")
    return ctx.path("cases", "case-P00001.json")


def with_fit(ctx, case, name, fit):
    """A copy of `case` beside it, named `name`, with the fit block `fit`."""
    doc = json.load(open(case))
    doc["fit"] = fit
    return write(ctx, os.path.join("cases", name), json.dumps(doc, indent=2))


def doses_and_tias(results):
    """{(cycle, target): dose_Gy} and {(cycle, voi): (tia_MBq_h, fit.method)} of a run's results.json."""
    doses, tias_ = {}, {}
    for p in results["patients"]:
        for c in p["cycles"]:
            for d in c["doses"]:
                doses[(c["cycle"], d["target"])] = d["dose_Gy"]
            for v in c["vois"]:
                tias_[(c["cycle"], v["name"])] = (v["tia_MBq_h"], v["fit"]["method"])
    return doses, tias_


def case_case_file_population(ctx):
    """A case file's fit.population (relative to its folder) fits its VOIs by MAP as `run CASE.json
    --population FILE` does: the same TIAs and doses (the same computation: equal exactly), both
    population MAP and different from the individual fits; the results record the file and its
    SHA-256 (computed here). --population naming another file than the case's is refused, the same
    bytes pass; --kinetics individual with it is refused; the file must stay in the case's folder."""
    case = population_and_cases(ctx)
    with open(ctx.path("cases", "pop.json"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    ctx.ok("run", case, "--population", ctx.path("cases", "pop.json"), "--out", ctx.path("cli"), "--quiet")
    entry = with_fit(ctx, case, "entry.json", {"population": "pop.json"})
    ctx.ok("run", entry, "--out", ctx.path("entry"), "--quiet")
    ctx.ok("run", case, "--out", ctx.path("individual"), "--quiet")
    cli, own, ind = (json.load(open(ctx.path(d, "results.json"))) for d in ("cli", "entry", "individual"))
    if doses_and_tias(cli) != doses_and_tias(own):
        raise CaseFailure("run CASE --population %s; with fit.population %s" % (doses_and_tias(cli), doses_and_tias(own)))
    doses, tias_ = doses_and_tias(own)
    if not doses or any(m != "population MAP" for _, m in tias_.values()):
        raise CaseFailure("fit.population: not every VOI by population MAP: %s" % tias_)
    if doses == doses_and_tias(ind)[0]:
        raise CaseFailure("fit.population gives the individual fits' doses: the population was not used")
    for res, where in ((cli, "--population"), (own, "fit.population")):
        pop = res["options"]["fit"].get("population", {})
        if pop.get("sha256") != digest or pop.get("own_checksum") != "verified" or \
                os.path.realpath(pop.get("source", "")) != os.path.realpath(ctx.path("cases", "pop.json")):
            raise CaseFailure("%s: options.fit.population %s" % (where, pop))
    # both given: the same bytes (a copy) pass, another file is refused
    with open(ctx.path("cases", "pop.json"), "rb") as f, open(ctx.path("copy.json"), "wb") as g:
        g.write(f.read())
    ctx.ok("run", entry, "--population", ctx.path("copy.json"), "--out", ctx.path("same"), "--quiet")
    if doses_and_tias(json.load(open(ctx.path("same", "results.json")))) != doses_and_tias(own):
        raise CaseFailure("fit.population with --population of the same bytes: other results")
    other = json.load(open(ctx.path("cases", "pop.json")))
    del other["lutdose_sha256"]
    other["vois"][0]["sigma_log"] *= 2
    write(ctx, "other.json", json.dumps(other, indent=2))
    ctx.fails("the two files differ", "run", entry, "--population", ctx.path("other.json"), "--out", ctx.path("bad1"))
    ctx.fails("--kinetics is 'individual'", "run", entry, "--kinetics", "individual", "--out", ctx.path("bad2"))
    ctx.fails("fit.kinetics", "run", with_fit(ctx, case, "both.json", {"population": "pop.json", "kinetics": "individual"}),
              "--out", ctx.path("bad3"))
    ctx.fails("fit.kinetics", "run", entry, "--kinetics", "previous-cycles", "--out", ctx.path("bad4"))
    ctx.fails("fit.population is '../copy.json'", "run", with_fit(ctx, case, "out.json", {"population": "../copy.json"}),
              "--out", ctx.path("bad5"))
    ctx.fails("fit.population is 'missing.json'", "run", with_fit(ctx, case, "none.json", {"population": "missing.json"}),
              "--out", ctx.path("bad6"))
    ctx.fails("fit.population", "run", with_fit(ctx, case, "red.json", {"population": "pop.json", "reduced": "madsen"}),
              "--out", ctx.path("bad7"))
    for d in ("bad1", "bad2", "bad3", "bad4", "bad5", "bad6", "bad7"):
        if os.path.exists(ctx.path(d)):
            raise CaseFailure("%s written on bad input" % d)
    # batch CASES_DIR: the case is fitted by MAP with its fit.population, and --population of the
    # same bytes is accepted (0.13: 'not yet', a failed patient and an exit-2 refusal; the rows
    # equal run's: test_batch.py case_file_population_equals_run, population_option_with_case_files)
    os.makedirs(ctx.path("folder", "priors"))
    with open(ctx.path("cases", "pop.json"), "rb") as f, open(ctx.path("folder", "priors", "pop.json"), "wb") as g:
        g.write(f.read())
    doc = json.load(open(case))
    doc["fit"] = {"population": "priors/pop.json"}
    write(ctx, os.path.join("folder", "a.json"), json.dumps(doc))
    for store, extra in (("folder.h5", ()), ("folder2.h5", ("--population", ctx.path("cases", "pop.json")))):
        ctx.ok("batch", ctx.path("folder"), "--out", ctx.path(store), *extra)
        ctx.ok("export", ctx.path(store), "--csv", ctx.path(store + "-csv"))
        with open(ctx.path(store + "-csv", "vois.csv"), newline="") as f:
            methods = {r["method"] for r in csv.DictReader(f)}
        if methods != {"population MAP"}:
            raise CaseFailure("batch CASES_DIR %s with fit.population: methods %s" % (" ".join(extra), methods))


def case_plan_population(ctx):
    """`plan CASE --population FILE` runs the case as `run CASE --population FILE` does: its
    delivered doses (delivered_dose_uncertainty) are the run's doses, exactly; the plan names the
    population file (source, SHA-256 computed here); the case's own fit.population does the same;
    --population with --history is refused."""
    case = population_and_cases(ctx)
    pop = ctx.path("cases", "pop.json")
    with open(pop, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    ctx.ok("run", case, "--population", pop, "--out", ctx.path("run"), "--quiet")
    doses = doses_and_tias(json.load(open(ctx.path("run", "results.json"))))[0]
    plans = (json.loads(ctx.ok("plan", case, "--population", pop).stdout),
             json.loads(ctx.ok("plan", with_fit(ctx, case, "entry.json", {"population": "pop.json"})).stdout))
    for plan, where in zip(plans, ("plan --population", "plan with fit.population")):
        delivered = {(d["cycle"], d["target"]): d["dose_Gy"] for d in plan["delivered_dose_uncertainty"]}
        if not delivered or any(doses.get(k) != v for k, v in delivered.items()):
            raise CaseFailure("%s: delivered doses %s; run --population %s" % (where, delivered, doses))
        p = plan.get("population", {})
        if p.get("sha256") != digest or os.path.realpath(p.get("source", "")) != os.path.realpath(pop):
            raise CaseFailure("%s: population %s; expected %s with sha256 %s" % (where, p, pop, digest))
    individual = json.loads(ctx.ok("plan", case).stdout)
    if "population" in individual:
        raise CaseFailure("plan without a population names one: %s" % individual["population"])
    if individual["delivered_dose_uncertainty"] == plans[0]["delivered_dose_uncertainty"]:
        raise CaseFailure("plan --population gives the individual fits' doses")
    with open(ctx.path("doses.csv"), "w") as f:
        f.write("patient,cycle,target,dose_Gy,bed_Gy,administered_MBq\nP1,1,kidneys,4,4.5,7400\n")
    ctx.fails("--population", "plan", "--history", ctx.path("doses.csv"), "--population", pop)


def case_case_file_fit_options_refused(ctx):
    """A case file's options of individual fits (fit.function, fit.error_model, ...) beside a population
    (its fit.population, or --population) are refused as the command line's are (0.14's review: they
    were ignored by the MAP fits and used by the fallback individual fits): run and plan exit 2 naming
    the case file's field, batch CASES_DIR records that case as failed; the defaults written out pass."""
    case = population_and_cases(ctx)
    pop = ctx.path("cases", "pop.json")
    given = [({"function": "E2"}, "fit.function"), ({"error_model": "constant"}, "fit.error_model"),
             ({"functions": ["E1", "E2"]}, "fit.functions"), ({"integration": "trapezoid"}, "fit.integration"),
             ({"model_averaging": True}, "fit.model_averaging"), ({"reject_correlated": True}, "fit.reject_correlated"),
             ({"aicc_k": "fit+1"}, "fit.aicc_k"), ({"combined_b": 0.1}, "fit.combined_b")]
    for i, (fit, field) in enumerate(given):
        own = with_fit(ctx, case, "own%d.json" % i, dict(fit, population="pop.json"))
        ctx.fails(field, "run", own, "--out", ctx.path("own%d" % i))
        plain = with_fit(ctx, case, "plain%d.json" % i, fit)
        ctx.fails(field, "run", plain, "--population", pop, "--out", ctx.path("plain%d" % i))
        for d in ("own%d" % i, "plain%d" % i):
            if os.path.exists(ctx.path(d)):
                raise CaseFailure("%s written on bad input" % d)
    ctx.fails("fit.function", "plan", with_fit(ctx, case, "planned.json", {"function": "E2", "population": "pop.json"}),
              "--text")
    # the defaults written out change nothing: accepted
    ctx.ok("run", with_fit(ctx, case, "defaults.json", {"function": "auto", "population": "pop.json",
                                                         "functions": ["E1", "E2u", "E2"]}),
           "--out", ctx.path("defaults"), "--quiet")
    # batch CASES_DIR --population: that case fails alone, named in /failures (exit 3)
    ctx.ok("synth", "--out", ctx.path("folder"), "--format", "cases", "--quiet", "--patients", 12, "--seed", 8,
           "--times-h", "4,24,48,96")
    doc = json.load(open(ctx.path("folder", "case-P00002.json")))
    doc["fit"] = {"error_model": "constant"}
    write(ctx, os.path.join("folder", "case-P00002.json"), json.dumps(doc, indent=2))
    for store, how in (("store.h5", ("--population", pop)), ("learned.h5", ("--kinetics", "population"))):
        cp = ctx.run("batch", ctx.path("folder"), *how, "--out", ctx.path(store))[1]
        ctx.ok("export", ctx.path(store), "--csv", ctx.path(store + "_csv"))
        with open(ctx.path(store + "_csv", "failures.csv"), newline="") as f:
            failed = list(csv.DictReader(f))
        if cp.returncode != 3 or len(failed) != 1 or "fit.error_model" not in failed[0]["error"] or \
                "case-P00002.json" not in failed[0]["error"]:
            raise CaseFailure("batch CASES_DIR %s with a case's fit.error_model: exit %d, failures %s" %
                              (how[0], cp.returncode, failed))


def same_models(a, b, where):
    """The population files a and b hold the same models: the same VOI kinds, functions, parameters,
    TACs and points, and the same fixed effects, Omega and residual error (sigma_log; sigma0_MBq,
    b_proportional). Learned from the same points in the same order, the estimator does the same
    arithmetic: equal to 1e-12 relative (JSON's 17 digits read back exactly; the margin is for
    nothing else)."""
    if len(a["vois"]) != len(b["vois"]):
        raise CaseFailure("%s: %d and %d VOI kinds" % (where, len(a["vois"]), len(b["vois"])))
    for x, y in zip(a["vois"], b["vois"]):
        for k in ("voi_kind", "function", "parameters", "n_patients", "n_observations"):
            if x.get(k) != y.get(k):
                raise CaseFailure("%s: %s %r and %r" % (where, k, x.get(k), y.get(k)))
        numbers = list(zip(x["theta"], y["theta"])) + [
            (p, q) for rx, ry in zip(x["omega"], y["omega"]) for p, q in zip(rx, ry)] + [
            (x.get(k), y.get(k)) for k in ("sigma_log", "sigma0_MBq", "b_proportional")]
        for p, q in numbers:
            if (p is None) != (q is None) or (p is not None and abs(p - q) > 1e-12 * max(abs(p), 1e-300)):
                raise CaseFailure("%s: %s: %s and %s" % (where, x["voi_kind"], json.dumps(x)[:500], json.dumps(y)[:500]))


def check_store_input(ctx, pop, store):
    """The population file `pop` records the store it was learned from: its path and the SHA-256 of
    its bytes (computed here with hashlib), kind results-store."""
    with open(store, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    inp = pop["input"]
    if inp.get("path") != store or inp.get("sha256") != sha or inp.get("kind") != "results-store" or "patients" in inp:
        raise CaseFailure("input of a population learned from a store: %s; expected path %s, sha256 %s" %
                          (json.dumps(inp), store, sha))


def to_format5(path):
    """Rewrites the results store at `path` as lutdose 0.18 wrote it (format 5): no /points."""
    import h5py
    import numpy
    with h5py.File(path, "r+") as f:
        del f["points"]
        f.attrs.modify("format_version", numpy.int32(5))


def case_learn_from_store(ctx):
    """population learn STORE.h5 (issue 15, point 2): the TAC points the batch fitted (/points) with
    the administered activities of /patients give the population of the TAC table and its patients
    table (the same points go in: the same models); the file records the store and its SHA-256.
    export writes points.csv, the table's points (read here from tacs.csv). --patients with a
    store, a format-5 store (no /points; made here with h5py) and a store of failed patients only
    are refused (exit 2, nothing written)."""
    tac = ctx.cohort("c", 20, 9, "4,24,48,96")
    store = ctx.path("store.h5")
    ctx.ok("batch", "--tac", tac, "--patients", patients(tac), "--out", store)
    store_population(store)  # skips the case without h5py
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("table.json"), "--quiet")
    ctx.ok("population", "learn", store, "--out", ctx.path("store.json"), "--quiet")
    table, learned = json.load(open(ctx.path("table.json"))), json.load(open(ctx.path("store.json")))
    same_models(table, learned, "from the table and from the store")
    check_store_input(ctx, learned, store)
    ctx.ok("export", store, "--csv", ctx.path("csv"))
    points = [(r["patient"], r["cycle"], r["voi"], float(r["time_h"]), float(r["activity_MBq"]))
              for r in csv_rows(ctx.path("csv", "points.csv"))]
    given = [(r["patient"], r.get("cycle", "1"), r["voi"], float(r["time_h"]), float(r["activity_MBq"]))
             for r in csv_rows(tac)]
    if sorted(points) != sorted(given) or any(r["activity_u_MBq"] != "" for r in csv_rows(ctx.path("csv", "points.csv"))):
        raise CaseFailure("points.csv holds %d points, the table %d (or an activity_u_MBq the table has not)" %
                          (len(points), len(given)))
    ctx.fails("no --patients with a results store", "population", "learn", store, "--patients", patients(tac),
              "--out", ctx.path("bad1.json"))
    # review of 0.19: a store computed with another half-life (its points are not decay-corrected: the
    # learned biological rates would shift) is refused unless --half-life-h says the same; an INPUT that
    # does not exist is named as such (0.19's first build asked for --patients)
    ctx.ok("batch", "--tac", tac, "--patients", patients(tac), "--half-life-h", "150", "--out", ctx.path("hl.h5"))
    ctx.fails("half_life_h is '150'", "population", "learn", ctx.path("hl.h5"), "--out", ctx.path("bad1.json"))
    ctx.ok("population", "learn", ctx.path("hl.h5"), "--half-life-h", "150", "--out", ctx.path("hl.json"), "--quiet")
    if json.load(open(ctx.path("hl.json")))["half_life_h"] != 150:
        raise CaseFailure("the population learned from a store of half-life 150 h records %s" %
                          json.load(open(ctx.path("hl.json")))["half_life_h"])
    ctx.fails("does not exist", "population", "learn", ctx.path("nothere.h5"), "--out", ctx.path("bad1.json"))
    shutil.copyfile(store, ctx.path("v5.h5"))
    to_format5(ctx.path("v5.h5"))
    for text in ("has format_version 5", "no TAC points", "lutdose >= 0.19"):
        ctx.fails(text, "population", "learn", ctx.path("v5.h5"), "--out", ctx.path("bad2.json"))
    os.mkdir(ctx.path("broken"))
    for n in ("case-A.json", "case-B.json"):
        write(ctx, os.path.join("broken", n), "{ not json")
    argv, cp = ctx.run("batch", ctx.path("broken"), "--out", ctx.path("failed.h5"))
    if cp.returncode != 3:
        raise CaseFailure("a batch of broken case files: exit %d, expected 3\n%s" % (cp.returncode, cp.stderr))
    ctx.fails("every patient of the store failed", "population", "learn", ctx.path("failed.h5"), "--out",
              ctx.path("bad3.json"))
    for p in ("bad1.json", "bad2.json", "bad3.json"):
        if os.path.exists(ctx.path(p)):
            raise CaseFailure("%s written on bad input" % p)


def case_learn_from_case_store(ctx):
    """population learn STORE.h5 of a batch of case files gives the population of the folder (the same
    points and administered activities); a failed patient of the store (a broken case file) is left
    out with a note on standard error saying how many."""
    ctx.ok("synth", "--out", ctx.path("cases"), "--format", "cases", "--patients", 16, "--seed", 12, "--times-h",
           "4,24,48,96", "--quiet")
    ctx.ok("population", "learn", ctx.path("cases"), "--out", ctx.path("cases.json"), "--quiet", "--functions", "E1,E2u")
    write(ctx, os.path.join("cases", "case-broken.json"), "{ not json")
    argv, cp = ctx.run("batch", ctx.path("cases"), "--out", ctx.path("store.h5"))
    if cp.returncode != 3:
        raise CaseFailure("batch with one broken case file: exit %d, expected 3\n%s" % (cp.returncode, cp.stderr))
    store_population(ctx.path("store.h5"))  # skips the case without h5py
    cp = ctx.ok("population", "learn", ctx.path("store.h5"), "--out", ctx.path("store.json"), "--quiet",
                "--functions", "E1,E2u")
    if "1 failed patient" not in cp.stderr:
        raise CaseFailure("no note of the failed patient left out: %r" % cp.stderr)
    learned = json.load(open(ctx.path("store.json")))
    same_models(json.load(open(ctx.path("cases.json"))), learned, "from the case files and from their store")
    check_store_input(ctx, learned, ctx.path("store.h5"))


def case_learn_compartment_from_store(ctx):
    """population learn STORE.h5 --model blood_organ_linear: the blood and organ points of a batch
    store give the compartment population of the TAC table they came from."""
    tacs, pts, _ = blood_organ_tacs(ctx, "learn", 40, 1, (1, 4, 24, 48, 96, 168), (1, 4, 24))
    # batch computes doses: no phantom maps the VOIs organ and blood, so a user S-value table of the two
    # (made-up S-values: the doses are not what is tested)
    sv = write(ctx, "sv.csv", "target,source,s_mGy_per_MBq_s,target_mass_g,s_u_mGy_per_MBq_s\n"
               "organ,organ,1e-5,300,\norgan,blood,1e-8,300,\nblood,organ,1e-8,5000,\nblood,blood,1e-6,5000,\n")
    ctx.ok("batch", "--tac", tacs, "--patients", pts, "--svalues", sv, "--out", ctx.path("store.h5"))
    store_population(ctx.path("store.h5"))  # skips the case without h5py
    model = ("--model", "blood_organ_linear", "--quiet")
    ctx.ok("population", "learn", tacs, "--patients", pts, "--out", ctx.path("table.json"), *model)
    ctx.ok("population", "learn", ctx.path("store.h5"), "--out", ctx.path("store.json"), *model)
    table, learned = json.load(open(ctx.path("table.json"))), json.load(open(ctx.path("store.json")))
    if table.get("structural_model") != learned.get("structural_model"):
        raise CaseFailure("structural_model %s and %s" % (table.get("structural_model"), learned.get("structural_model")))
    same_models(table, learned, "compartment population from the table and from the store")
    check_store_input(ctx, learned, ctx.path("store.h5"))


def case_error_model_combined(ctx):
    """population learn --error-model combined (0.17): a format_version 3 file with each VOI kind's
    error_model, sigma0_MBq and b_proportional (no sigma_log); fit --population with it uses points
    of 0 MBq (a TAC table's activities are >= 0; the proportional model leaves them out): MAPs of
    TACs with such a point are accepted with all their points, no note of points left out; an
    unknown --error-model is refused (exit 2, nothing written). The cohort is drawn here (seeded):
    20 E1 kidney TACs, about 50 MBq of 7400 MBq, lambda_bio about 0.03 /h, scans at 4-168 h with
    a noise floor sigma0 = 1 MBq and b = 5 %, activities below 0 written as 0."""
    rng = random.Random(41)
    lp = math.log(2) / (6.647 * 24)
    with open(ctx.path("tacs.csv"), "w") as t, open(ctx.path("patients.csv"), "w") as p:
        t.write("patient,voi,time_h,activity_MBq\n")
        p.write("patient,administered_MBq\n")
        for i in range(20):
            a, lam = math.exp(math.log(50) + 0.3 * rng.gauss(0, 1)), math.exp(math.log(0.03) + 0.4 * rng.gauss(0, 1))
            p.write("P%d,7400\n" % i)
            for h in (4, 24, 48, 96, 168):
                f = a * math.exp(-(lam + lp) * h)
                t.write("P%d,kidneys,%d,%r\n" % (i, h, max(0.0, f + math.sqrt(1 + (0.05 * f) ** 2) * rng.gauss(0, 1))))
    tac = ctx.path("tacs.csv")
    ctx.ok("population", "learn", tac, "--patients", ctx.path("patients.csv"), "--out", ctx.path("pop.json"),
           "--quiet", "--functions", "E1", "--error-model", "combined")
    pop = json.load(open(ctx.path("pop.json")))
    if pop["format_version"] != 3 or pop["options"].get("error_model") != "combined":
        raise CaseFailure("population file: format_version %r, options %r" % (pop["format_version"], pop["options"]))
    v = pop["vois"][0]
    if v.get("error_model") != "combined" or "sigma_log" in v or not v["sigma0_MBq"] > 0 or \
            not v["b_proportional"] >= 0:
        raise CaseFailure("the combined population: %s" % json.dumps(v)[:400])
    res = tias(json.loads(ctx.ok("fit", "--tac", tac, "--population", ctx.path("pop.json"), *A0).stdout))
    with open(tac) as f:
        zero = {r["patient"] for r in csv.DictReader(f) if float(r["activity_MBq"]) == 0}
    used = [k for k, v in res.items() if k[0] in zero and v["fit"]["method"] == "population MAP" and
            v["fit"]["candidates"][0]["n_points"] == 5 and not any("left out" in n for n in v["fit"]["notes"])]
    if not zero or len(used) < len(zero) - 1:  # one TAC in 20 may fail the residual criterion by chance
        raise CaseFailure("TACs with a point of 0: %s; MAPs with all 5 points: %s" % (sorted(zero), used))
    # the store's /population and export's population.csv: no sigma_log for an additive model (review of
    # 0.17: its b was written there as if it were the SD of ln A)
    ctx.ok("run", "--tac", tac, "--activity-MBq", 7400, "--phantom", "icrp110-am", "--population",
           ctx.path("pop.json"), "--out", ctx.path("run"), "--quiet")
    check_population_table(store_population(ctx.path("run", "results.h5")), pop["vois"], "run results.h5")
    ctx.ok("export", ctx.path("run", "results.h5"), "--csv", ctx.path("csv"))
    with open(ctx.path("csv", "population.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or any(r["sigma_log"] != "" for r in rows):
        raise CaseFailure("population.csv of a combined population: %s" % rows)
    # format 5 (lutdose 0.18): the additive model's own numbers, the population file's, in the store and the CSV
    if any(r.get("error_model") != "combined" or not same_number(v["sigma0_MBq"], csv_number(r, "sigma0_MBq")) or
           not same_number(v["b_proportional"], csv_number(r, "b_proportional")) for r in rows):
        raise CaseFailure("population.csv of a combined population: %s; expected sigma0_MBq %r, b_proportional %r" %
                          (rows, v["sigma0_MBq"], v["b_proportional"]))
    ctx.fails("--error-model", "population", "learn", tac, "--patients", ctx.path("patients.csv"), "--out",
              ctx.path("bad.json"), "--error-model", "poisson")
    if os.path.exists(ctx.path("bad.json")):
        raise CaseFailure("a population file written on bad input")


def case_omega_full(ctx):
    """population learn --omega full writes the full omega with omega_structure "full" (symmetric, a
    covariance), says so in random_effects and options; --population with it fits by MAP; the default
    writes no omega_structure (a diagonal file as 0.16's); --omega with another value is refused."""
    small = ctx.cohort("small", 30, 1, "4,24,48,96,168")  # below 50 TACs per kind: refused (review of 0.17)
    ctx.fails("--omega diagonal", "population", "learn", small, "--patients", patients(small), "--functions", "E1",
              "--omega", "full", "--out", ctx.path("small.json"))
    if os.path.exists(ctx.path("small.json")):
        raise CaseFailure("small.json written by a refused invocation")
    learn = ctx.cohort("learn", 50, 1, "4,24,48,96,168")
    ctx.ok("population", "learn", learn, "--patients", patients(learn), "--functions", "E1", "--omega", "full",
           "--out", ctx.path("full.json"), "--quiet")
    pop = json.load(open(ctx.path("full.json")))
    for v in pop["vois"]:
        om = v["omega"]
        if v.get("omega_structure") != "full" or om[0][1] != om[1][0] or om[0][1] == 0:
            raise CaseFailure("full.json %s: omega_structure %r, omega %r" % (v["voi_kind"], v.get("omega_structure"),
                                                                              om))
    if pop["options"].get("omega_structure") != "full" or "omega full" not in pop["random_effects"]:
        raise CaseFailure("full.json: options %r, random_effects %r" % (pop["options"], pop["random_effects"]))
    new = ctx.cohort("new", 10, 2, "24")
    res = tias(json.loads(ctx.ok("fit", "--tac", new, "--population", ctx.path("full.json"), *A0).stdout))
    bad = [k for k, v in res.items() if v["fit"]["method"] != "population MAP" or not v["tia_MBq_h"] > 0]
    if bad:
        raise CaseFailure("fit --population full.json: not MAP fits: %s" % bad[:5])
    ctx.ok("population", "learn", learn, "--patients", patients(learn), "--functions", "E1",
           "--out", ctx.path("diagonal.json"), "--quiet")
    pop = json.load(open(ctx.path("diagonal.json")))
    if any("omega_structure" in v for v in pop["vois"]) or pop["options"].get("omega_structure") != "diagonal":
        raise CaseFailure("diagonal.json: %s" % json.dumps(pop)[:600])
    ctx.fails("--omega", "population", "learn", learn, "--patients", patients(learn), "--omega", "block",
              "--out", ctx.path("x.json"))
    if os.path.exists(ctx.path("x.json")):
        raise CaseFailure("x.json written by a refused invocation")


# blood_organ_linear.json's free parameters (k_b, k_in, k_out [1/h]) and Lu-177's decay constant
BLOOD_ORGAN_K = (0.3422, 0.006684, 0.008033)
LAMBDA_P = math.log(2) / (6.647 * 24)


def ctx_source():
    """The source tree (this file is tests/e2e/test_population.py)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def blood_organ_tacs(ctx, name, n, seed, organ_times, blood_times, sigma0_MBq=None):
    """A TAC table (organ and blood) and patients table of n patients of blood_organ_linear.json drawn
    here: ln k ~ N(ln k_file, 0.2^2), the model's closed form (blood A0 e^-(k_b+lp)t, organ
    A0 k_in / (k_out - k_b) (e^-(k_b+lp)t - e^-(k_out+lp)t), the file's description) times
    e^(0.1 z); with sigma0_MBq, plus the combined model's noise instead: f + (sigma0^2 + (0.1 f)^2)^(1/2) z,
    a reading below 0 written as 0 (a TAC table's activities are >= 0). Returns (tacs.csv, patients.csv,
    {patient: true organ TIA [MBq h]})."""
    rng = random.Random(seed)

    def noisy(f):
        if sigma0_MBq is None:
            return f * math.exp(0.1 * rng.gauss(0, 1))
        return max(0.0, f + math.sqrt(sigma0_MBq ** 2 + (0.1 * f) ** 2) * rng.gauss(0, 1))
    rows, pts, tia = ["patient,voi,time_h,activity_MBq"], ["patient,administered_MBq"], {}
    for i in range(n):
        kb, kin, kout = (k * math.exp(0.2 * rng.gauss(0, 1)) for k in BLOOD_ORGAN_K)
        p = "Q%03d" % (i + 1)
        pts.append("%s,7400" % p)
        amp = 7400 * kin / (kout - kb)
        tia[p] = amp * (1 / (kb + LAMBDA_P) - 1 / (kout + LAMBDA_P))
        for t in organ_times:
            a = amp * (math.exp(-(kb + LAMBDA_P) * t) - math.exp(-(kout + LAMBDA_P) * t))
            rows.append("%s,organ,%g,%.9g" % (p, t, noisy(a)))
        for t in blood_times:
            rows.append("%s,blood,%g,%.9g" % (p, t, noisy(7400 * math.exp(-(kb + LAMBDA_P) * t))))
    return (write(ctx, name + "_tacs.csv", "\n".join(rows) + "\n"), write(ctx, name + "_patients.csv", "\n".join(pts) + "\n"),
            tia)


def case_compartment_population(ctx):
    """population learn --model blood_organ_linear, then fit --population on sparse new patients: the
    file names the model with its SHA-256 (computed here with hashlib), the MAP fits are the
    population's; a changed model file, an edited SHA-256 or an unknown free parameter is refused
    (exit 2, naming the member). batch, plan and case files with a compartment population (0.18 refused
    them, exit 2 naming structural_model): compartment_population_batch_tac, compartment_population_cases."""
    tacs, pts, _ = blood_organ_tacs(ctx, "learn", 60, 1, (1, 4, 24, 48, 96, 168), (1, 4, 24))
    ctx.ok("population", "learn", tacs, "--patients", pts, "--model", "blood_organ_linear", "--out",
           ctx.path("pop.json"), "--quiet")
    pop = json.load(open(ctx.path("pop.json")))
    model_file = os.path.join(ctx_source(), "models", "files", "blood_organ_linear.json")
    sha = hashlib.sha256(open(model_file, "rb").read()).hexdigest()
    sm = pop.get("structural_model", {})
    if pop["format_version"] != 4 or sm.get("model") != "blood_organ_linear" or sm.get("model_sha256") != sha or \
            sm.get("free_parameters") != ["k_b", "k_in", "k_out"] or pop["vois"][0]["voi_kind"] != "compartment":
        raise CaseFailure("compartment population file: %s" % json.dumps(pop)[:600])
    new, _, truth_tia = blood_organ_tacs(ctx, "new", 8, 2, (24, 96), (1, 4))
    res = json.loads(ctx.ok("fit", "--tac", new, "--population", ctx.path("pop.json"), *A0).stdout)
    # the results record the population file and its model as for an exponential population (review of
    # 0.18: no trace of the file, options.fit as if individual)
    used = res["options"]["fit"].get("population", {})
    file_sha = hashlib.sha256(open(ctx.path("pop.json"), "rb").read()).hexdigest()
    if res["options"]["fit"].get("method") != "population MAP" or used.get("sha256") != file_sha or \
            res.get("population", {}).get("vois") != pop["vois"] or \
            res["population"].get("structural_model") != pop["structural_model"]:
        raise CaseFailure("fit --population compartment: options.fit %s, population %s" %
                          (json.dumps(res["options"]["fit"])[:400], json.dumps(res.get("population"))[:400]))
    fits = tias(res)
    errors = []
    for (p, voi), v in fits.items():
        if v["fit"]["method"] != "population MAP" or v["fit"]["function"] != "compartment:blood_organ_linear" or \
                not v["tia_u_MBq_h"] > 0:
            raise CaseFailure("%s %s: %s" % (p, voi, json.dumps(v["fit"])[:400]))
        if voi == "organ":
            errors.append(abs(v["tia_MBq_h"] / truth_tia[p] - 1))
    # four points of a 20 % spread population: the MAP's organ TIA within 30 % (3 of the 10 % noise's
    # SDs) for the median patient
    if len(errors) != 8 or not statistics.median(errors) < 0.3:
        raise CaseFailure("organ |TIA error| of the MAPs: %s" % errors)

    def variant(name, change, expected, *extra):
        doc = json.load(open(ctx.path("pop.json")))
        doc.pop("lutdose_sha256")
        change(doc)
        ctx.fails(expected, "fit", "--tac", new, *A0, "--population", write(ctx, name, json.dumps(doc)), *extra)

    variant("sha.json", lambda d: d["structural_model"].update(model_sha256="0" * 64), "structural_model.model_sha256")

    def unknown(d):
        d["structural_model"]["free_parameters"][2] = "k_x"
        d["vois"][0]["parameters"][2] = "log_k_x"
    variant("unknown.json", unknown, "structural_model.free_parameters is 'k_x'")
    # the model's observed VOIs as recorded: checked against the model (review of 0.18: never read)
    variant("vois.json", lambda d: d["structural_model"].update(observed_vois=["kidneys"]),
            "structural_model.observed_vois")
    changed = json.load(open(model_file))
    changed["parameters"]["k_b"]["value"] = 0.3
    other = write(ctx, "blood_organ_linear.json", json.dumps(changed))
    variant("other.json", lambda d: None, "model_sha256", "--model", other)
    # --free-parameters names the command line, not the table (review of 0.18, 7); VOIs the model does not
    # observe are named in a note, not dropped without a word (review of 0.18, 6)
    ctx.fails("command line: --free-parameters: a free parameter is 'k_zz'", "population", "learn", tacs, "--patients",
              pts, "--model", "blood_organ_linear", "--free-parameters", "k_in,k_zz", "--out", ctx.path("z.json"))
    with open(tacs) as f:
        rows = f.readlines()
    extra = write(ctx, "extra.csv", "".join(rows) + "".join(r.replace(",organ,", ",kidneys,") for r in rows[1:]
                                                           if ",organ," in r))
    cp = ctx.ok("population", "learn", extra, "--patients", pts, "--model", "blood_organ_linear", "--e-step", "laplace",
                "--out", ctx.path("extra.json"), "--quiet")
    if "kidneys" not in cp.stderr or "not observe" not in cp.stderr:
        raise CaseFailure("a VOI the model does not observe left out without a note: %r" % cp.stderr)
    # --functions with --model: the compartment model is the structural model (review of 0.18: accepted
    # and ignored)
    ctx.fails("no --functions with --model", "population", "learn", tacs, "--patients", pts, "--model",
              "blood_organ_linear", "--functions", "E1", "--out", ctx.path("f.json"))
    if os.path.exists(ctx.path("f.json")):
        raise CaseFailure("population learn --model --functions wrote a file")


def case_compartment_population_combined(ctx):
    """population learn --model blood_organ_linear --error-model combined (0.19 refused every error model
    but the proportional one for a compartment population), then fit --tac --population with the file: a
    format_version 4 file whose compartment model has error_model combined, sigma0_MBq, b_proportional and
    their standard errors (no sigma_log); the MAPs of new sparse cycles keep a reading of 0 MBq as data (no
    point left out, finite TIA and u). 60 patients with a noise floor of 2 MBq (the blood at 24 h is about
    1.8 MBq: many readings of 0) and b = 10 %, the Laplace E-step (what is tested is the file's round trip).
    batch --tac with the file writes the store's /population rows of the model (check_compartment_store).
    --kinetics population --model --error-model combined learns the same population inline (same TIAs)."""
    tacs, pts, _ = blood_organ_tacs(ctx, "learn", 60, 3, (1, 4, 24, 48, 96, 168), (1, 4, 24), sigma0_MBq=2.0)
    with open(tacs) as f:
        if not any(float(r["activity_MBq"]) == 0 for r in csv.DictReader(f)):
            raise CaseFailure("the learning cohort has no reading of 0: the case is not tested")
    cp = ctx.ok("population", "learn", tacs, "--patients", pts, "--model", "blood_organ_linear", "--error-model",
                "combined", "--e-step", "laplace", "--out", ctx.path("pop.json"))
    pop = json.load(open(ctx.path("pop.json")))
    v = pop["vois"][0]
    # the summary names the error model's own figures (its b is not a sigma_log: no SD of ln A)
    if "combined error, sigma0 " not in cp.stdout or "sigma_log" in cp.stdout:
        raise CaseFailure("population learn --model --error-model combined printed %r" % cp.stdout)
    if pop["format_version"] != 4 or pop["options"].get("error_model") != "combined" or \
            v.get("error_model") != "combined" or "sigma_log" in v or not v.get("sigma0_MBq", 0) > 0 or \
            not v.get("b_proportional", -1) >= 0 or not v.get("log_sigma0_se", 0) > 0 or \
            not v.get("log_b_proportional_se", 0) > 0:
        raise CaseFailure("combined compartment population file: %s" % json.dumps(pop)[:900])
    new, new_pts, _ = blood_organ_tacs(ctx, "new", 4, 4, (24, 96), (1, 4, 24), sigma0_MBq=2.0)
    with open(new) as f:
        rows = f.read().splitlines()
    # a reading of 0 where the truth is within the noise floor (blood at 24 h, about 1.8 MBq)
    rows = [r if not r.startswith("Q001,blood,24,") else "Q001,blood,24,0" for r in rows]
    new = write(ctx, "new_zero.csv", "\n".join(rows) + "\n")
    res = json.loads(ctx.ok("fit", "--tac", new, "--population", ctx.path("pop.json"), *A0).stdout)
    fits = tias(res)
    if len(fits) != 8 or res.get("population", {}).get("vois") != pop["vois"]:
        raise CaseFailure("fit --population with a combined compartment population: %s" % json.dumps(res)[:900])
    for (p, voi), v in fits.items():
        n = 2 if voi == "organ" else 3
        if v["fit"]["method"] != "population MAP" or v["fit"]["candidates"][0]["n_points"] != n or \
                any("left out" in note for note in v["fit"]["notes"]) or not v["tia_MBq_h"] > 0 or \
                not v["tia_u_MBq_h"] > 0:
            raise CaseFailure("%s %s under the combined model: %s" % (p, voi, json.dumps(v["fit"])[:600]))
    # the store's /population rows: error_model, sigma0_MBq, b_proportional and their SEs as in the file
    ctx.ok("batch", "--tac", new, "--patients", new_pts, "--svalues", write(ctx, "sv.csv", ORGAN_BLOOD_SVALUES),
           "--population", ctx.path("pop.json"), "--progress", "never", "--out", ctx.path("s.h5"))
    check_compartment_store(ctx.path("s.h5"), ctx.path("pop.json"), "batch --tac, combined compartment population")
    # learned inline (--kinetics population --model --error-model combined): the same population and TIAs as
    # population learn followed by --population FILE on the same points (review of 0.20, finding 1)
    inline = json.loads(ctx.ok("fit", "--tac", tacs, *A0, "--kinetics", "population", "--model", "blood_organ_linear",
                               "--error-model", "combined", "--e-step", "laplace").stdout)
    by_file = json.loads(ctx.ok("fit", "--tac", tacs, *A0, "--population", ctx.path("pop.json")).stdout)
    same_tias(run_tias(inline), run_tias(by_file), "--kinetics population --model --error-model combined against "
              "population learn then --population")
    if inline["population"].get("vois") != pop["vois"] or \
            inline["options"]["fit"]["population"]["learning"].get("error_model") != "combined":
        raise CaseFailure("inline combined learning: population %s" % json.dumps(inline["population"])[:600])


# A user S-value table over blood_organ_linear's VOIs (organ, blood), which are no phantom's VOIs. A test
# fixture, not physics (as test_batch.py's USER_SVALUES): run and batch only need doses to compute.
ORGAN_BLOOD_SVALUES = ("target,source,s_mGy_per_MBq_s,target_mass_g\n"
                       "organ,organ,2.1e-4,300\norgan,blood,3.0e-7,300\n"
                       "blood,organ,3.0e-7,5000\nblood,blood,1.0e-5,5000\n")


def learn_compartment_population(ctx, out):
    """`out`: a compartment population of blood_organ_linear learned from 60 patients of blood_organ_tacs
    (organ at 1-168 h, blood at 1-24 h) with the Laplace E-step (a fifth of the sampled one's time; what is
    tested here is where the file is used, not the learning)."""
    tacs, pts, _ = blood_organ_tacs(ctx, "learn", 60, 1, (1, 4, 24, 48, 96, 168), (1, 4, 24))
    ctx.ok("population", "learn", tacs, "--patients", pts, "--model", "blood_organ_linear", "--e-step", "laplace",
           "--out", out, "--quiet")
    return out


def tac_rows_by_patient(path):
    """{patient: [rows]} of a TAC table (its header kept apart: (header, rows))."""
    with open(path) as f:
        lines = f.read().splitlines()
    out = {}
    for line in lines[1:]:
        out.setdefault(line.split(",")[0], []).append(line)
    return lines[0], out


# Relative tolerance of TIAs and doses computed twice by the same engine call on the same doubles: JSON
# text (17 significant digits, exact for doubles) or export's shortest round-trip CSV text on both sides,
# so equal to a few ulp (same_number's 1e-12).
def same_tias(a, b, where):
    """a, b: {(patient, voi): (tia_MBq_h, method)}; CaseFailure unless equal (same_number) with one method."""
    if set(a) != set(b) or any(a[k][1] != b[k][1] or not same_number(a[k][0], b[k][0]) for k in a):
        raise CaseFailure("%s: %s; expected %s" % (where, sorted(a.items()), sorted(b.items())))


def run_tias(results):
    """{(patient, voi): (tia_MBq_h, fit.method)} of a results.json."""
    return {(p["id"], v["name"]): (v["tia_MBq_h"], v["fit"]["method"])
            for p in results["patients"] for c in p["cycles"] for v in c["vois"]}


def store_tias(ctx, store):
    """{(patient, voi): (tia_MBq_h, method)} of a batch store (lutdose export's vois.csv), and its failures.csv."""
    ctx.ok("export", store, "--csv", store + "_csv")
    vois = {(r["patient"], r["voi"]): (csv_number(r, "tia_MBq_h"), r["method"])
            for r in csv_rows(os.path.join(store + "_csv", "vois.csv"))}
    return vois, csv_rows(os.path.join(store + "_csv", "failures.csv"))


def check_compartment_store(store, pop_path, where):
    """The store's /population rows are the compartment population's model (voi_kind compartment, a row per
    free parameter) and its provenance names the file's SHA-256 (computed here) and structural model."""
    pop = json.load(open(pop_path))
    check_population_table(store_population(store), pop["vois"], where)
    fit = store_provenance(store)["options"]["fit"]
    sha = hashlib.sha256(open(pop_path, "rb").read()).hexdigest()
    if fit.get("method") != "population MAP" or fit.get("population", {}).get("sha256") != sha or \
            fit.get("structural_model") != pop["structural_model"]:
        raise CaseFailure("%s: provenance options.fit %s" % (where, json.dumps(fit)[:600]))


def case_compartment_population_batch_tac(ctx):
    """batch --tac --population with a compartment population (0.18 refused it, exit 2 'not yet by batch'):
    each patient's TIAs are those of `run --tac` of that patient alone with the same file (same_tias); the
    store's /population rows and provenance are the file's (check_compartment_store); a patient with no VOI
    the model observes is a failure row (exit 3) and the others are done; a patient without blood points
    gets the MAP of its organ points, as run --tac does; --model naming another model or another version of
    the model file is refused before anything is written (exit 2); --resume with another population file is
    refused (the file's SHA-256 is in the store's fingerprint); a table none of whose VOIs the model
    observes is refused before the batch starts (exit 2, no store)."""
    pop = learn_compartment_population(ctx, ctx.path("pop.json"))
    new, _, _ = blood_organ_tacs(ctx, "new", 5, 2, (24, 96), (1, 4))
    header, rows = tac_rows_by_patient(new)
    rows["Q004"] = [r for r in rows["Q004"] if ",blood," not in r]  # organ points only
    rows["Q900"] = ["Q900,kidneys,24,50", "Q900,kidneys,96,20"]  # no VOI the model observes
    tac = write(ctx, "cohort.csv", "\n".join([header] + sum(rows.values(), [])) + "\n")
    pts = write(ctx, "cohort_patients.csv", "patient,administered_MBq\n" + "".join("%s,7400\n" % p for p in rows))
    sv = write(ctx, "sv.csv", ORGAN_BLOOD_SVALUES)
    batch = ("batch", "--tac", tac, "--patients", pts, "--svalues", sv, "--population", pop, "--progress", "never")
    cp = ctx.run(*batch, "--out", ctx.path("s.h5"), "--threads", 2)[1]
    if cp.returncode != 3:
        raise CaseFailure("batch --tac with a compartment population: exit %d (expected 3)\n%s" % (cp.returncode,
                                                                                                 cp.stderr))
    vois, failures = store_tias(ctx, ctx.path("s.h5"))
    if cp.returncode != 3 or [f["patient"] for f in failures] != ["Q900"] or \
            "no VOI of the input is observed by the model" not in failures[0]["error"]:
        raise CaseFailure("batch --tac with a patient of no observed VOI: exit %d, failures %s\n%s" %
                          (cp.returncode, failures, cp.stderr))
    alone = {}
    for p in ("Q001", "Q002", "Q003", "Q004", "Q005"):
        one = write(ctx, p + ".csv", "\n".join([header] + rows[p]) + "\n")
        ctx.ok("run", "--tac", one, "--activity-MBq", 7400, "--svalues", sv, "--population", pop, "--out",
               ctx.path("run_" + p), "--quiet")
        alone.update(run_tias(json.load(open(ctx.path("run_" + p, "results.json")))))
    same_tias(vois, alone, "batch --tac against run --tac of each patient alone")
    if ("Q004", "blood") in vois or any(m != "population MAP" for _, m in vois.values()):
        raise CaseFailure("batch --tac: not every observed VOI by population MAP: %s" % vois)
    check_compartment_store(ctx.path("s.h5"), pop, "batch --tac")
    # another model, or another version of the model file: refused before the store is made
    changed = json.load(open(os.path.join(ctx_source(), "models", "files", "blood_organ_linear.json")))
    changed["parameters"]["k_b"]["value"] = 0.3
    other = write(ctx, "blood_organ_linear.json", json.dumps(changed))
    for model, expected in (("prrt_multiorgan_linear", "structural_model.model"), (other, "model_sha256")):
        ctx.fails(expected, *batch, "--model", model, "--out", ctx.path("m.h5"))
        if os.path.exists(ctx.path("m.h5")):
            raise CaseFailure("batch --model %s wrote a store" % model)
    # the same model by its file: accepted
    ctx.run(*batch, "--model", os.path.join(ctx_source(), "models", "files", "blood_organ_linear.json"),
            "--out", ctx.path("same.h5"))
    if store_tias(ctx, ctx.path("same.h5"))[0] != vois:
        raise CaseFailure("batch --model with the population's own model file: other TIAs")
    # --resume with another population file (learned with the sampled E-step): another fingerprint
    tacs = ctx.path("learn_tacs.csv")
    ctx.ok("population", "learn", tacs, "--patients", ctx.path("learn_patients.csv"), "--model",
           "blood_organ_linear", "--out", ctx.path("pop2.json"), "--quiet")
    before = open(ctx.path("s.h5"), "rb").read()
    argv = [a if a != pop else ctx.path("pop2.json") for a in batch]
    ctx.fails("fingerprint", *argv, "--out", ctx.path("s.h5"), "--resume")
    if open(ctx.path("s.h5"), "rb").read() != before:
        raise CaseFailure("a refused --resume changed the store")
    # a table none of whose VOIs the model observes: a bad invocation, refused before the batch starts
    # (exit 2, no store; 0.19 failed every patient one by one, exit 3: review of 0.19, finding 5)
    kidneys = write(ctx, "kidneys.csv", "patient,voi,time_h,activity_MBq\n" +
                    "".join("%s,kidneys,24,50\n%s,kidneys,96,20\n" % (p, p) for p in rows))
    ctx.fails("expected at least one VOI the model blood_organ_linear observes", "batch", "--tac", kidneys,
              "--patients", pts, "--svalues", sv, "--population", pop, "--progress", "never", "--out",
              ctx.path("k.h5"))
    if os.path.exists(ctx.path("k.h5")):
        raise CaseFailure("batch --tac with none of the model's VOIs wrote a store")


def organ_blood_cases(ctx, folder, tacs, fit=None):
    """One case file per patient of `tacs` (blood_organ_tacs with the same organ and blood times: a case's
    VOIs are measured at every time point) in `folder`: one cycle of 7400 MBq, each time point (start_h) with
    the TAC's activities (activity_MBq: no quantification), the user S-value table sv.csv of the folder, and
    the fit block `fit` if given, and dose limits on both VOIs (plan's delivered_dose_uncertainty lists the
    limited targets). Returns {patient: path}."""
    os.makedirs(ctx.path(folder), exist_ok=True)
    write(ctx, os.path.join(folder, "sv.csv"), ORGAN_BLOOD_SVALUES)
    points = {}
    for r in csv_rows(tacs):
        points.setdefault(r["patient"], {}).setdefault(float(r["time_h"]), {})[r["voi"]] = \
            {"activity_MBq": float(r["activity_MBq"])}
    out = {}
    for p, by_time in points.items():
        doc = {"lutdose_case_version": 1, "patient": {"id": p}, "phantom": "icrp110-am",
               "dose": {"svalues": "sv.csv"}, "plan": {"limits": ["organ:dose_Gy:40", "blood:dose_Gy:40"]},
               "cycles": [{"cycle": 1, "administered": {"activity_MBq": 7400},
                           "timepoints": [{"start_h": t, "vois": v} for t, v in sorted(by_time.items())]}]}
        if fit:
            doc["fit"] = fit
        out[p] = write(ctx, os.path.join(folder, p + ".json"), json.dumps(doc, indent=2))
    return out


def case_compartment_population_cases(ctx):
    """Case files with a compartment population (0.18 refused them, exit 2 'not yet by run CASE, plan or
    batch'): run CASE.json with the case's fit.population gives the TIAs of run --tac of the same points with
    --population (same_tias), and so does --population with a case naming none; the results record the
    population as run --tac's (options.fit, population); batch CASES_DIR (the cases' fit.population, or
    --population) gives run's TIAs, its store the file's /population rows; plan's delivered doses are run's;
    fit.model naming another model is refused (exit 2), the population's own model accepted; a case with no
    VOI the model observes is a failure row of batch (exit 3)."""
    os.makedirs(ctx.path("cases", "priors"))
    pop = learn_compartment_population(ctx, ctx.path("cases", "priors", "pop.json"))
    sha = hashlib.sha256(open(pop, "rb").read()).hexdigest()
    # blood at 1, 4 and 12 h stays above 1e-3 of its largest point (no near-zero flag); the organ shares
    # the times (a case's VOIs are measured at every time point)
    tacs, _, _ = blood_organ_tacs(ctx, "new", 3, 4, (1, 4, 12), (1, 4, 12))
    own = organ_blood_cases(ctx, "cases", tacs, {"population": "priors/pop.json"})
    plain = organ_blood_cases(ctx, "plain", tacs)
    header, rows = tac_rows_by_patient(tacs)
    sv = ctx.path("cases", "sv.csv")
    by_tac, by_case, by_option = {}, {}, {}
    for p in own:
        one = write(ctx, p + ".csv", "\n".join([header] + rows[p]) + "\n")
        ctx.ok("run", "--tac", one, "--activity-MBq", 7400, "--svalues", sv, "--population", pop, "--out",
               ctx.path("tac_" + p), "--quiet")
        by_tac.update(run_tias(json.load(open(ctx.path("tac_" + p, "results.json")))))
        ctx.ok("run", own[p], "--out", ctx.path("case_" + p), "--quiet")
        res = json.load(open(ctx.path("case_" + p, "results.json")))
        by_case.update(run_tias(res))
        ctx.ok("run", plain[p], "--population", pop, "--out", ctx.path("option_" + p), "--quiet")
        by_option.update(run_tias(json.load(open(ctx.path("option_" + p, "results.json")))))
    fit = res["options"]["fit"]
    pop_doc = json.load(open(pop))
    if fit.get("method") != "population MAP" or fit.get("population", {}).get("sha256") != sha or \
            fit.get("structural_model") != pop_doc["structural_model"] or \
            res.get("population", {}).get("structural_model") != pop_doc["structural_model"]:
        raise CaseFailure("run CASE with a compartment fit.population: options.fit %s" % json.dumps(fit)[:600])
    if any(m != "population MAP" for _, m in by_case.values()) or len(by_case) != 6:
        raise CaseFailure("run CASE: not every VOI by population MAP: %s" % by_case)
    same_tias(by_case, by_tac, "run CASE (fit.population) against run --tac --population of the same points")
    same_tias(by_option, by_case, "run CASE --population against the case's fit.population")
    # batch CASES_DIR: the cases' own fit.population, and --population with cases naming none
    ctx.ok("batch", ctx.path("cases"), "--out", ctx.path("own.h5"), "--progress", "never")
    same_tias(store_tias(ctx, ctx.path("own.h5"))[0], by_case, "batch CASES_DIR with the cases' fit.population")
    write(ctx, os.path.join("plain", "Q900.json"),
          open(plain["Q001"]).read().replace('"organ"', '"kidneys"').replace('"blood"', '"spleen"')
          .replace('"id": "Q001"', '"id": "Q900"'))
    cp = ctx.run("batch", ctx.path("plain"), "--population", pop, "--out", ctx.path("plain.h5"), "--progress",
                 "never")[1]
    vois, failures = store_tias(ctx, ctx.path("plain.h5"))
    if cp.returncode != 3 or [f["patient"] for f in failures] != ["Q900"] or \
            "no VOI of the input is observed by the model" not in failures[0]["error"]:
        raise CaseFailure("batch CASES_DIR with a case of no observed VOI: exit %d, failures %s\n%s" %
                          (cp.returncode, failures, cp.stderr))
    same_tias(vois, by_case, "batch CASES_DIR --population")
    check_compartment_store(ctx.path("plain.h5"), pop, "batch CASES_DIR --population")
    # plan: the delivered doses of run CASE, the population named
    doses = doses_and_tias(res)[0]
    for plan, where in ((json.loads(ctx.ok("plan", own["Q003"]).stdout), "plan with fit.population"),
                        (json.loads(ctx.ok("plan", plain["Q003"], "--population", pop).stdout), "plan --population")):
        delivered = {(d["cycle"], d["target"]): d["dose_Gy"] for d in plan["delivered_dose_uncertainty"]}
        if not delivered or set(delivered) != set(doses) or \
                any(not same_number(doses[k], v) for k, v in delivered.items()) or \
                plan.get("population", {}).get("sha256") != sha:
            raise CaseFailure("%s: delivered %s, population %s; run %s" % (where, delivered, plan.get("population"),
                                                                         doses))
    # fit.model: the population's model is accepted, another refused (nothing written)
    ctx.ok("run", with_fit(ctx, own["Q001"], "same_model.json", {"population": "priors/pop.json",
                                                                 "model": "blood_organ_linear"}),
           "--out", ctx.path("same_model"), "--quiet")
    same_tias(run_tias(json.load(open(ctx.path("same_model", "results.json")))),
              {k: v for k, v in by_case.items() if k[0] == "Q001"}, "fit.model naming the population's model")
    ctx.fails("structural_model.model", "run", with_fit(ctx, own["Q001"], "other_model.json",
                                                        {"population": "priors/pop.json",
                                                         "model": "prrt_multiorgan_linear"}),
              "--out", ctx.path("other_model"))
    if os.path.exists(ctx.path("other_model")):
        raise CaseFailure("run CASE with another fit.model wrote results")


def case_compartment_population_learn_cases(ctx):
    """population learn CASES_DIR --model (0.19; 0.18 refused it, exit 2 'not implemented yet'): the TACs and
    administered activities of a folder of case files give the compartment population of the TAC table of the
    same points (theta, Omega, b, theta's SEs, shrinkage and -2 log L: the same numbers, the same doubles in
    both inputs), learned on 2 threads from the folder and on 1 from the table (the threads change no
    estimate); the file records the folder and each case file's SHA-256 (computed here with hashlib); VOIs the
    model does not observe are named in a note. Refused (exit 2, nothing written): a folder whose cases have
    none of the model's VOIs, --patients with a folder."""
    # a case's VOIs are measured at every time point: organ and blood at the same four times (blood at 48 h,
    # 6e-8 of A0, is a point > 0 like any other for the compartment population)
    tacs, pts, _ = blood_organ_tacs(ctx, "learn", 30, 5, (1, 4, 24, 48), (1, 4, 24, 48))
    cases = organ_blood_cases(ctx, "cases", tacs)
    ctx.ok("population", "learn", tacs, "--patients", pts, "--model", "blood_organ_linear", "--e-step", "laplace",
           "--threads", 1, "--out", ctx.path("table.json"), "--quiet")
    cp = ctx.ok("population", "learn", ctx.path("cases"), "--model", "blood_organ_linear", "--e-step", "laplace",
                "--threads", 2, "--out", ctx.path("cases.json"))
    table, folder = json.load(open(ctx.path("table.json"))), json.load(open(ctx.path("cases.json")))
    a, b = table["vois"][0], folder["vois"][0]
    for k in ("voi_kind", "function", "parameters", "n_patients", "n_observations", "iterations", "converged",
              "theta", "omega", "sigma_log", "theta_se", "shrinkage", "minus2_log_likelihood"):
        if a[k] != b[k]:
            raise CaseFailure("%s: %r from the table, %r from the case files" % (k, a[k], b[k]))
    if a["n_patients"] != 30 or folder.get("structural_model") != table.get("structural_model") or \
            "30 patients' cycles" not in cp.stdout:
        raise CaseFailure("compartment population of the case files: %s\n%s" % (json.dumps(folder)[:600], cp.stdout))
    files = [{"name": os.path.basename(cases[p]), "sha256": hashlib.sha256(open(cases[p], "rb").read()).hexdigest()}
             for p in sorted(cases)]
    inp = folder["input"]
    if inp.get("path") != ctx.path("cases") or inp.get("kind") != "case-files" or inp.get("case_files") != files:
        raise CaseFailure("input of a compartment population learned from case files: %s" % json.dumps(inp)[:800])
    # a VOI the model does not observe: named in a note, the population learned from the others
    doc = json.load(open(cases["Q001"]))
    for tp in doc["cycles"][0]["timepoints"]:
        tp["vois"]["kidneys"] = dict(tp["vois"]["organ"])
    write(ctx, os.path.join("cases", "Q001.json"), json.dumps(doc))
    cp = ctx.ok("population", "learn", ctx.path("cases"), "--model", "blood_organ_linear", "--e-step", "laplace",
                "--max-iterations", 2, "--out", ctx.path("kidneys.json"))
    if "kidneys" not in cp.stderr or "not observe" not in cp.stderr:
        raise CaseFailure("a VOI of the case files the model does not observe, without a note: %r" % cp.stderr)
    # refusals: no case with a VOI the model observes; --patients with a folder
    os.makedirs(ctx.path("other"))
    write(ctx, os.path.join("other", "sv.csv"), ORGAN_BLOOD_SVALUES)
    for p in ("Q002", "Q003", "Q004"):
        write(ctx, os.path.join("other", p + ".json"), open(cases[p]).read().replace('"organ"', '"kidneys"')
              .replace('"blood"', '"spleen"'))
    ctx.fails("the number of units (patients' cycles with a VOI the model observes) is '0'", "population", "learn",
              ctx.path("other"), "--model", "blood_organ_linear", "--out", ctx.path("bad1.json"))
    ctx.fails("no patients table with a folder of case files", "population", "learn", ctx.path("cases"), "--patients",
              pts, "--model", "blood_organ_linear", "--out", ctx.path("bad2.json"))
    for p in ("bad1.json", "bad2.json"):
        if os.path.exists(ctx.path(p)):
            raise CaseFailure("%s written on bad input" % p)


def case_store_full_omega(ctx):
    """Store format 5 (lutdose 0.18): a batch with a population of a full Omega (population learn
    --omega full) has in /population its omega_structure, error_model and standard errors, and in
    /population_omega the lower triangle of each kind's Omega, equal to the population file's
    (read here, the truth); export writes both as population.csv and population_omega.csv. A
    diagonal population's /population_omega holds its variances only."""
    learn = ctx.cohort("learn", 50, 1, "4,24,48,96,168")  # 50 TACs: the minimum of a full Omega
    ctx.ok("population", "learn", learn, "--patients", patients(learn), "--functions", "E1", "--omega", "full",
           "--out", ctx.path("full.json"), "--quiet")
    new = ctx.cohort("new", 6, 2, "24,96")
    for name in ("full", "diagonal"):
        if name == "diagonal":
            ctx.ok("population", "learn", learn, "--patients", patients(learn), "--functions", "E1",
                   "--out", ctx.path("diagonal.json"), "--quiet")
        vois = json.load(open(ctx.path(name + ".json")))["vois"]
        store = ctx.path(name + ".h5")
        ctx.ok("batch", "--tac", new, "--patients", patients(new), "--population", ctx.path(name + ".json"),
               "--out", store)
        check_population_table(store_population(store), vois, name + ".h5")
        check_omega_table(store_omega(store), vois, name + ".h5")
        ctx.ok("export", store, "--csv", ctx.path(name + "_csv"))
        rows = csv_rows(ctx.path(name + "_csv", "population_omega.csv"))
        check_omega_table({(r["voi_kind"], r["parameter_i"], r["parameter_j"]):
                           dict(r, covariance=csv_number(r, "covariance"), correlation=csv_number(r, "correlation"),
                                correlation_se=csv_number(r, "correlation_se"))
                           for r in rows}, vois, name + " population_omega.csv")
        rows = csv_rows(ctx.path(name + "_csv", "population.csv"))
        if {r.get("omega_structure") for r in rows} != {name}:
            raise CaseFailure("%s population.csv: omega_structure %s" % (name, rows))
    if not any(v["omega"][0][1] != 0 for v in json.load(open(ctx.path("full.json")))["vois"]):
        raise CaseFailure("full.json has no covariance: the case would not test one")
    if not all(v.get("omega_correlation_se") for v in json.load(open(ctx.path("full.json")))["vois"]):
        raise CaseFailure("full.json has no omega_correlation_se (lutdose 0.20): the case would not test it")


def to_format4(path):
    """Rewrites the results store at `path` as lutdose 0.14 to 0.17 wrote it (format 4): /population
    with the columns up to e_step (the format-5 columns after it dropped), no /population_omega and
    no /points (format 6), format_version 4 (docs/store.md, "Layout version")."""
    import h5py
    import numpy
    with h5py.File(path, "r+") as f:
        rows = f["population"][()]
        names = list(rows.dtype.names)
        names = names[:names.index("e_step") + 1]
        old = numpy.empty(len(rows), dtype=numpy.dtype([(n, rows.dtype.fields[n][0]) for n in names]))
        for n in names:
            old[n] = rows[n]
        del f["population"]
        f.create_dataset("population", data=old)
        del f["population_omega"]
        del f["points"]
        f.attrs.modify("format_version", numpy.int32(4))


def case_store_format4(ctx):
    """A format-4 store (lutdose 0.14 to 0.17; made here from a format-6 store with h5py) is still
    exported: population.csv has the format-5 columns, empty in every row (unknown, never a guess),
    the other cells as the format-6 store's; population_omega.csv and points.csv a header line only.
    batch --resume and merge refuse it, naming the file, the version found (4) and the one they read (7)."""
    tac = ctx.cohort("c", 12, 31, "4,24,48,96")
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1")
    ctx.ok("batch", "--tac", tac, "--patients", patients(tac), "--population", ctx.path("pop.json"),
           "--out", ctx.path("v5.h5"))
    store_population(ctx.path("v5.h5"))  # skips the case without h5py
    shutil.copyfile(ctx.path("v5.h5"), ctx.path("v4.h5"))
    to_format4(ctx.path("v4.h5"))
    ctx.ok("export", ctx.path("v5.h5"), "--csv", ctx.path("csv5"))
    ctx.ok("export", ctx.path("v4.h5"), "--csv", ctx.path("csv4"))
    v5, v4 = csv_rows(ctx.path("csv5", "population.csv")), csv_rows(ctx.path("csv4", "population.csv"))
    added = ("error_model", "omega_structure", "sigma0_MBq", "b_proportional", "log_omega_se", "log_sigma_log_se")
    if not v5 or len(v4) != len(v5) or list(v4[0]) != list(v5[0]) or \
            any(r4[c] != ("" if c in added else r5[c]) for r4, r5 in zip(v4, v5) for c in r5):
        raise CaseFailure("population.csv of a format-4 store:\n%s\nexpected that of format 5 with %s empty:\n%s" %
                          (v4, added, v5))
    if not any(r["log_omega_se"] != "" for r in v5):
        raise CaseFailure("the format-5 store has no log_omega_se: the case would not show it emptied: %s" % v5)
    with open(ctx.path("csv4", "population_omega.csv")) as f:
        if f.read() != "voi_kind,function,parameter_i,parameter_j,covariance,correlation,correlation_se\n":
            raise CaseFailure("population_omega.csv of a format-4 store is not a header line only")
    with open(ctx.path("csv4", "points.csv")) as f:  # format 6 (lutdose 0.19) added /points
        if f.read() != "patient,cycle,voi,time_h,activity_MBq,activity_u_MBq\n":
            raise CaseFailure("points.csv of a format-4 store is not a header line only")
    for args in (("batch", "--tac", tac, "--patients", patients(tac), "--population", ctx.path("pop.json"),
                  "--out", ctx.path("v4.h5"), "--resume"),
                 ("merge", ctx.path("m.h5"), ctx.path("v4.h5"))):
        argv, cp = ctx.run(*args)
        if cp.returncode != 2 or not all(t in cp.stderr for t in ("v4.h5", "has format_version 4", "reads format_version 7")):
            raise CaseFailure("%s: exit %d, %s; expected exit 2 naming v4.h5, version 4 and 5" %
                              (" ".join(argv), cp.returncode, cp.stderr))
    if os.path.exists(ctx.path("m.h5")):
        raise CaseFailure("merge wrote m.h5 from a refused store")


def with_uncertainty(src, dst, relative):
    """A copy of the TAC table `src` with the column activity_u_MBq = relative x activity_MBq."""
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(dst, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) + ["activity_u_MBq"])
        w.writeheader()
        for r in rows:
            w.writerow(dict(r, activity_u_MBq=repr(relative * float(r["activity_MBq"]))))
    return dst


def case_input_model_needs_uncertainties(ctx):
    """A population of the input error model (each point's SD is its activity_u_MBq) with a TAC table
    that has no column activity_u_MBq is a bad invocation of `batch --tac` (review of 0.17, finding 9:
    every patient failed, one by one): exit 2 before the batch starts, naming the table, the column,
    the population file and its error model; no store. fit --tac refuses it too."""
    tac = ctx.cohort("c", 12, 9, "4,24,48,96")
    with_u = with_uncertainty(tac, ctx.path("with_u.csv"), 0.05)
    ctx.ok("population", "learn", with_u, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet",
           "--functions", "E1", "--error-model", "input")
    args = ("batch", "--tac", tac, "--patients", patients(tac), "--population", ctx.path("pop.json"),
            "--out", ctx.path("store.h5"))
    for expected in ("tacs.csv", "activity_u_MBq", "pop.json", "input"):
        ctx.fails(expected, *args)
    if os.path.exists(ctx.path("store.h5")):
        raise CaseFailure("batch wrote a store with an input-model population and no activity_u_MBq")
    ctx.fails("activity_u_MBq", "fit", "--tac", tac, "--population", ctx.path("pop.json"), *A0)
    ctx.ok("batch", "--tac", with_u, "--patients", patients(tac), "--population", ctx.path("pop.json"),
           "--out", ctx.path("store_u.h5"))


def case_kinetics_population_learning_options(ctx):
    """--kinetics population on fit, run --tac and batch takes population learn's learning options
    (0.18; 0.17 refused them and sent the user to population learn): --functions (the candidates),
    --error-model (the population's residual error model: proportional, combined, constant, input),
    --omega and --e-step. The population learned is the one population learn learns with the same
    options (the same vois, compared as JSON), and the results record the options (options.fit.
    population.learning). Refused, exit 2, nothing written: --omega or --e-step without --kinetics
    population (with individual kinetics or --population FILE they would be ignored), and an error
    model of individual fits only (proportional-model, poisson) with --kinetics population."""
    tac = ctx.cohort("c", 50, 12, "4,24,48,96")  # 50 TACs per kind: the least a full Omega is learned from
    opts = ("--functions", "E1", "--error-model", "combined", "--omega", "full", "--e-step", "laplace",
            "--max-iterations", "7")  # --max-iterations since 0.19 (review of 0.18: population learn's only)
    fit = json.loads(ctx.ok("fit", "--tac", tac, "--kinetics", "population", *A0, *opts).stdout)
    ctx.ok("population", "learn", tac, "--patients", patients(tac), "--out", ctx.path("pop.json"), "--quiet", *opts)
    if json.load(open(ctx.path("pop.json")))["vois"] != fit["population"]["vois"]:
        raise CaseFailure("fit --kinetics population %s learned another population than population learn" %
                          " ".join(opts))
    learning = fit["options"]["fit"]["population"].get("learning")
    expected = {"candidates": ["E1"], "error_model": "combined", "omega_structure": "full", "e_step": "laplace",
                "max_iterations": 7}
    if learning != expected:
        raise CaseFailure("options.fit.population.learning: %r, expected %r" % (learning, expected))
    for v in fit["population"]["vois"]:
        if v["function"] != "E1" or v.get("error_model") != "combined" or v.get("omega_structure") != "full":
            raise CaseFailure("learned model: %s" % json.dumps(v)[:400])
    batch = ("batch", "--tac", tac, "--patients", patients(tac), "--kinetics", "population")
    ctx.ok(*batch, *opts, "--out", ctx.path("store.h5"))
    prov = store_provenance(ctx.path("store.h5"))["options"]["fit"]["population"]
    if prov.get("learning") != expected or prov.get("vois_sha256") != fit["population"]["vois_sha256"]:
        raise CaseFailure("batch store: options.fit.population %s" % prov)
    # a folder of case files: the learning's options with --kinetics population, refused without it
    ctx.ok("synth", "--out", ctx.path("cases"), "--quiet", "--patients", 12, "--seed", 13, "--times-h", "4,24,48,96",
           "--format", "cases")
    ctx.ok("batch", ctx.path("cases"), "--kinetics", "population", "--functions", "E1", "--e-step", "laplace",
           "--max-iterations", "7", "--out", ctx.path("cases.h5"))
    prov = store_provenance(ctx.path("cases.h5"))["options"]["fit"]["population"]
    if prov.get("learning") != dict(expected, error_model="proportional", omega_structure="diagonal"):
        raise CaseFailure("batch CASES_DIR store: options.fit.population %s" % prov)
    ctx.fails("--functions is 'given with case files'", "batch", ctx.path("cases"), "--functions", "E1",
              "--out", ctx.path("b2.h5"))
    # one case file: no cohort to learn from, so no learning options either (review of 0.18: accepted
    # and ignored); also refused beside --population and previous-cycles
    case = sorted(glob.glob(ctx.path("cases", "*.json")))[0]
    for extra in ((), ("--kinetics", "previous-cycles"), ("--population", ctx.path("pop.json"))):
        for option, value in (("--omega", "full"), ("--e-step", "laplace"), ("--max-iterations", "7")):
            ctx.fails("%s is '%s'" % (option, value), "run", case, *extra, option, value, "--out", ctx.path("r2"))
    # duplicate candidates: refused (population learn wrote a file its own reader refused), and an
    # empty --error-model is not "not given" (review of 0.18)
    ctx.fails("each function once", "fit", "--tac", tac, *A0, "--kinetics", "population", "--functions", "E1,E1")
    ctx.fails("each function once", "population", "learn", tac, "--patients", patients(tac), "--functions",
              "E1,E2u,E1", "--out", ctx.path("dup.json"))
    ctx.fails("--error-model", "fit", "--tac", tac, *A0, "--kinetics", "population", "--error-model", "")
    # the defaults: recorded too
    res = json.loads(ctx.ok("fit", "--tac", tac, "--kinetics", "population", *A0, "--functions", "E1").stdout)
    default = {"candidates": ["E1"], "error_model": "proportional", "omega_structure": "diagonal", "e_step": "sampled",
               "max_iterations": 100}
    if res["options"]["fit"]["population"].get("learning") != default:
        raise CaseFailure("defaults: %r" % res["options"]["fit"]["population"].get("learning"))
    for option, value in (("--omega", "full"), ("--e-step", "laplace"), ("--max-iterations", "7")):
        ctx.fails("%s is '%s' without --kinetics population" % (option, value), "fit", "--tac", tac, *A0,
                  option, value)
        ctx.fails("%s is '%s' without --kinetics population" % (option, value), "fit", "--tac", tac, *A0,
                  "--population", ctx.path("pop.json"), option, value)
        ctx.fails("%s is '%s' without --kinetics population" % (option, value), "batch", "--tac", tac,
                  "--patients", patients(tac), option, value, "--out", ctx.path("b1.h5"))
    for model in ("proportional-model", "poisson"):
        ctx.fails("--error-model is '%s' with --kinetics population; expected proportional, combined, constant or "
                  "input" % model, "run", "--tac", tac, *A0, "--phantom", "icrp110-am", "--kinetics", "population",
                  "--error-model", model, "--out", ctx.path("r1"))
    for p in ("b1.h5", "b2.h5", "r1", "r2", "dup.json"):
        if os.path.exists(ctx.path(p)):
            raise CaseFailure("%s written on bad input" % p)


def case_kinetics_population_compartment(ctx):
    """--kinetics population --model (issue 15, point 1, with a compartment model as the structural model):
    fit --tac, batch --tac and batch CASES_DIR learn the compartment population from their input as
    `population learn --model` learns it, then fit every cycle by its MAP: the TIAs equal (same_tias: the
    same doubles) those of the same commands with --population FILE of the file `population learn` wrote
    from the same points; the results' population (vois, structural_model) equals the file's; the learning
    options are recorded (options.fit.population.learning, without candidates: the structural model is the
    model); the store's /population rows are the file's model and --resume learns the same population again.
    Refused (exit 2, nothing written): a table with none of the model's VOIs, a single patient, a free
    parameter the points do not determine, --population beside it, --free-parameters without --model,
    --functions with --model, the input error model without activity_u_MBq."""
    # 30 patients, organ and blood at the same four times (a case's VOIs are measured at every time point)
    tacs, pts, _ = blood_organ_tacs(ctx, "cohort", 30, 7, (1, 4, 24, 48), (1, 4, 24, 48))
    learn = ("--model", "blood_organ_linear", "--e-step", "laplace")  # Laplace: a fifth of the sampled E-step's time
    ctx.ok("population", "learn", tacs, "--patients", pts, *learn, "--out", ctx.path("p.json"), "--quiet")
    pop = json.load(open(ctx.path("p.json")))
    learned = json.loads(ctx.ok("fit", "--tac", tacs, *A0, "--kinetics", "population", *learn).stdout)
    by_file = json.loads(ctx.ok("fit", "--tac", tacs, *A0, "--population", ctx.path("p.json")).stdout)
    fit_tias = run_tias(learned)
    same_tias(fit_tias, run_tias(by_file), "fit --kinetics population --model against --population FILE")
    if len(fit_tias) != 60 or any(m != "population MAP" for _, m in fit_tias.values()):
        raise CaseFailure("fit --kinetics population --model: not every VOI by population MAP: %s" % fit_tias)
    got, options = learned["population"], learned["options"]["fit"]
    expected_learning = {"error_model": "proportional", "omega_structure": "diagonal", "e_step": "laplace",
                         "max_iterations": 100}
    if got.get("vois") != pop["vois"] or got.get("structural_model") != pop["structural_model"] or \
            got.get("source") != "learned from the input (--kinetics population)" or not got.get("vois_sha256") or \
            options.get("structural_model") != pop["structural_model"] or \
            options["population"].get("learning") != expected_learning:
        raise CaseFailure("fit --kinetics population --model: population %s, options.fit %s; the file's vois %s" %
                          (json.dumps(got)[:600], json.dumps(options)[:600], json.dumps(pop["vois"])[:400]))
    # batch --tac and batch CASES_DIR: the same TIAs as the file's, the store's /population the file's model
    sv = write(ctx, "sv.csv", ORGAN_BLOOD_SVALUES)
    batch = ("batch", "--tac", tacs, "--patients", pts, "--svalues", sv, "--progress", "never")
    ctx.ok(*batch, "--kinetics", "population", *learn, "--out", ctx.path("s.h5"))
    ctx.ok(*batch, "--population", ctx.path("p.json"), "--out", ctx.path("f.h5"))
    vois = store_tias(ctx, ctx.path("s.h5"))[0]
    same_tias(vois, store_tias(ctx, ctx.path("f.h5"))[0], "batch --tac --kinetics population --model against --population")
    same_tias(vois, fit_tias, "batch --tac --kinetics population --model against fit")
    organ_blood_cases(ctx, "cases", tacs)
    ctx.ok("batch", ctx.path("cases"), "--kinetics", "population", *learn, "--out", ctx.path("c.h5"), "--progress",
           "never")
    same_tias(store_tias(ctx, ctx.path("c.h5"))[0], fit_tias, "batch CASES_DIR --kinetics population --model")
    ctx.ok(*batch, "--kinetics", "population", *learn, "--out", ctx.path("s.h5"), "--resume")
    for store in ("s.h5", "c.h5"):
        check_population_table(store_population(ctx.path(store)), pop["vois"], store)
        fit = store_provenance(ctx.path(store))["options"]["fit"]
        if fit.get("structural_model") != pop["structural_model"] or \
                fit["population"].get("learning") != expected_learning or \
                fit["population"].get("vois_sha256") != got["vois_sha256"]:
            raise CaseFailure("%s: provenance options.fit %s" % (store, json.dumps(fit)[:600]))
    free_parameters_and_case_model(ctx, tacs, pts, sv, learn)
    refusals_of_kinetics_population_compartment(ctx, tacs, pts, sv)


def free_parameters_and_case_model(ctx, tacs, pts, sv, learn):
    """run --tac --kinetics population --model --free-parameters k_b,k_out (k_in keeps the model file's value)
    gives the TIAs of `population learn --free-parameters k_b,k_out` then run --tac --population (same_tias),
    its population's free parameters those two; batch CASES_DIR --kinetics population --model with a case
    whose fit.model names another model: that case fails (/failures, exit 3), the others are done."""
    free = ("--free-parameters", "k_b,k_out")
    ctx.ok("population", "learn", tacs, "--patients", pts, *learn, *free, "--out", ctx.path("p2.json"), "--quiet")
    run = ("run", "--tac", tacs, *A0, "--svalues", sv, "--quiet", "--out")
    ctx.ok(*run, ctx.path("learned2"), "--kinetics", "population", *learn, *free)
    ctx.ok(*run, ctx.path("file2"), "--population", ctx.path("p2.json"))
    learned = json.load(open(ctx.path("learned2", "results.json")))
    same_tias(run_tias(learned), run_tias(json.load(open(ctx.path("file2", "results.json")))),
              "run --tac --kinetics population --model --free-parameters against --population FILE")
    if learned["population"]["structural_model"]["free_parameters"] != ["k_b", "k_out"] or \
            learned["population"]["vois"] != json.load(open(ctx.path("p2.json")))["vois"]:
        raise CaseFailure("--free-parameters k_b,k_out: population %s" % json.dumps(learned["population"])[:600])
    doc = json.load(open(ctx.path("cases", "Q001.json")))
    doc["fit"] = {"model": "prrt_multiorgan_linear"}
    write(ctx, os.path.join("cases", "Q001.json"), json.dumps(doc))
    cp = ctx.run("batch", ctx.path("cases"), "--kinetics", "population", *learn, "--out", ctx.path("m.h5"),
                 "--progress", "never")[1]
    vois, failures = store_tias(ctx, ctx.path("m.h5"))
    if cp.returncode != 3 or [f["patient"] for f in failures] != ["Q001"] or \
            "structural_model.model" not in failures[0]["error"] or len(vois) != 58:
        raise CaseFailure("batch CASES_DIR --kinetics population --model, a case of another fit.model: exit %d, "
                          "failures %s\n%s" % (cp.returncode, failures, cp.stderr))


def refusals_of_kinetics_population_compartment(ctx, tacs, pts, sv):
    """The refusals of case_kinetics_population_compartment: exit 2, no results folder or store."""
    header, rows = tac_rows_by_patient(tacs)
    kidneys = write(ctx, "kidneys.csv", (header + "\n" + "\n".join(
        r.replace(",organ,", ",kidneys,") for r in sum(rows.values(), []) if ",organ," in r) + "\n"))
    one = write(ctx, "one.csv", "\n".join([header] + rows["Q001"]) + "\n")
    blood = write(ctx, "blood.csv", "\n".join([header] + [r for r in sum(rows.values(), []) if ",blood," in r]) + "\n")
    run = ("run", *A0, "--svalues", sv, "--kinetics", "population", "--model", "blood_organ_linear", "--out")
    ctx.fails("the number of units (patients' cycles with a VOI the model observes) is '0'", *run, ctx.path("r1"),
              "--tac", kidneys)
    ctx.fails("the number of units (patients' cycles with a VOI the model observes) is '1'", *run, ctx.path("r2"),
              "--tac", one)
    ctx.fails("do not determine", "batch", "--tac", blood, "--patients", pts, "--svalues", sv, "--kinetics",
              "population", "--model", "blood_organ_linear", "--e-step", "laplace", "--out", ctx.path("b1.h5"))
    ctx.fails("--kinetics population with --population: choose one", *run, ctx.path("r3"), "--tac", tacs,
              "--population", ctx.path("p.json"))
    ctx.fails("--free-parameters is 'k_in' without --kinetics population --model", "run", *A0, "--svalues", sv,
              "--kinetics", "population", "--free-parameters", "k_in", "--tac", tacs, "--out", ctx.path("r4"))
    ctx.fails("--functions with --kinetics population --model", *run, ctx.path("r5"), "--tac", tacs, "--functions",
              "E1")
    # the input error model needs each point's u (0.20: the additive models are learned, compadd)
    ctx.fails("activity_u_MBq", *run, ctx.path("r6"), "--tac", tacs, "--error-model", "input")
    # the option named, as population learn names it (review of 0.20, finding 2: the TAC table was named)
    fails_with_start(ctx, "command line: --free-parameters: a free parameter is 'k_zz'", *run, ctx.path("r7"), "--tac",
                     tacs, "--free-parameters", "k_in,k_zz")
    for p in ("r1", "r2", "r3", "r4", "r5", "r6", "r7", "b1.h5"):
        if os.path.exists(ctx.path(p)):
            raise CaseFailure("%s written on bad input" % p)


def error_line(stderr):
    """The message of the first error line of stderr, without the program's "lutdose: error: " prefix."""
    for line in stderr.splitlines():
        if line.startswith("lutdose: error: "):
            return line[len("lutdose: error: "):]
    return stderr


def fails_with_start(ctx, start, *args):
    """Exit 2 with an error message that begins with `start` (a message naming another source, e.g. the TAC
    table, and then the same words, does not pass, as ctx.fails' substring would let it)."""
    argv, cp = ctx.run(*args)
    if cp.returncode != 2 or not error_line(cp.stderr).startswith(start):
        raise CaseFailure("expected exit 2 with a message beginning %r: %s\nexit %d\n%s" %
                          (start, " ".join(map(str, argv)), cp.returncode, cp.stderr))


def case_kinetics_population_free_parameters_named(ctx):
    """--kinetics population --model --free-parameters: a free parameter the model lacks, named twice or
    empty is refused naming the option as population learn does ("command line: --free-parameters: ...",
    review of 0.20, finding 2: 0.20 named the TAC table), on fit --tac, run --tac, batch --tac and batch
    CASES_DIR; a model file without any "fit": true parameter is refused naming the model file (0.20 named
    the TAC table), also by population learn --model. Nothing written."""
    tacs, pts, _ = blood_organ_tacs(ctx, "cohort", 4, 7, (1, 4, 24, 48), (1, 4, 24, 48))
    sv = write(ctx, "sv.csv", ORGAN_BLOOD_SVALUES)
    organ_blood_cases(ctx, "cases", tacs)
    model = json.load(open(os.path.join(ctx_source(), "models", "files", "blood_organ_linear.json")))
    for p in model["parameters"].values():
        p["fit"] = False
    nofit = write(ctx, "nofit.json", json.dumps(model))
    learn = ("--kinetics", "population", "--e-step", "laplace", "--model")
    routes = {"fit": ("fit", "--tac", tacs, *A0),
              "run": ("run", "--tac", tacs, *A0, "--svalues", sv, "--out", ctx.path("r")),
              "batch_tac": ("batch", "--tac", tacs, "--patients", pts, "--svalues", sv, "--progress", "never",
                            "--out", ctx.path("b.h5")),
              "batch_cases": ("batch", ctx.path("cases"), "--progress", "never", "--out", ctx.path("c.h5"))}
    for name, route in routes.items():
        for given, value in (("k_in,k_zz", "k_zz"), ("k_in,k_in", "k_in"), ("", "")):
            what = "each free parameter once" if given == "k_in,k_in" else "a parameter of the model"
            fails_with_start(ctx, "command line: --free-parameters: a free parameter is '%s'; expected %s" %
                             (value, what), *route, *learn, "blood_organ_linear", "--free-parameters", given)
        fails_with_start(ctx, nofit + ": ", *route, *learn, nofit)
    fails_with_start(ctx, nofit + ": ", "population", "learn", tacs, "--patients", pts, "--model", nofit,
                     "--e-step", "laplace", "--out", ctx.path("p.json"))
    for p in ("r", "b.h5", "c.h5", "p.json"):
        if os.path.exists(ctx.path(p)):
            raise CaseFailure("%s written on bad input" % p)


UNOBSERVED_NOTE = ("not observed by the compartment model blood_organ_linear of the population: fitted "
                   "individually (the exponential family)")


def unobserved_voi_notes(results, voi):
    """{patient: the fit's notes} of the VOI `voi` in a results.json."""
    return {p["id"]: v["fit"]["notes"] for p in results["patients"] for c in p["cycles"] for v in c["vois"]
            if v["name"] == voi}


def case_compartment_population_unobserved_voi(ctx):
    """A VOI the compartment model does not observe ("Organ" beside "organ": a typo) is fitted individually
    with a note saying so in its fit's notes, with --kinetics population --model (fit --tac) and with
    --population FILE of a compartment population (review of 0.20, finding 3: a silent fallback); the
    inline learning (fit --tac, batch --tac) prints population learn --model's note on standard error,
    naming the VOIs left out."""
    tacs, pts, _ = blood_organ_tacs(ctx, "cohort", 12, 7, (1, 4, 24, 48), (1, 4, 24, 48))
    lines = open(tacs).read().splitlines()
    extra = write(ctx, "extra.csv", "\n".join(lines + [r.replace(",organ,", ",Organ,") for r in lines
                                                       if ",organ," in r]) + "\n")
    note = "lutdose: note: VOIs the model blood_organ_linear does not observe, left out of the population: Organ"
    learn = ("--model", "blood_organ_linear", "--e-step", "laplace")
    cp = ctx.ok("population", "learn", extra, "--patients", pts, *learn, "--out", ctx.path("p.json"), "--quiet")
    if note not in cp.stderr.splitlines():
        raise CaseFailure("population learn --model: no note %r on stderr:\n%s" % (note, cp.stderr))
    inline = ctx.ok("fit", "--tac", extra, *A0, "--kinetics", "population", *learn)
    by_file = ctx.ok("fit", "--tac", extra, *A0, "--population", ctx.path("p.json"))
    for how, cp in (("--kinetics population --model", inline), ("--population FILE", by_file)):
        results = json.loads(cp.stdout)
        notes = unobserved_voi_notes(results, "Organ")
        if len(notes) != 12 or any(UNOBSERVED_NOTE not in n for n in notes.values()):
            raise CaseFailure("fit --tac %s: the notes of VOI Organ %s; expected each with %r" %
                              (how, notes, UNOBSERVED_NOTE))
        observed = [n for voi in ("organ", "blood") for n in unobserved_voi_notes(results, voi).values()]
        if any(UNOBSERVED_NOTE in n for n in observed):
            raise CaseFailure("fit --tac %s: the note on an observed VOI: %s" % (how, observed))
    if note not in inline.stderr.splitlines():
        raise CaseFailure("fit --tac --kinetics population --model: no note %r on stderr:\n%s" % (note, inline.stderr))
    sv = write(ctx, "sv.csv", ORGAN_BLOOD_SVALUES)
    cp = ctx.run("batch", "--tac", extra, "--patients", pts, "--svalues", sv, "--progress", "never",
                 "--kinetics", "population", *learn, "--out", ctx.path("b.h5"))[1]
    if note not in cp.stderr.splitlines():
        raise CaseFailure("batch --tac --kinetics population --model: exit %d, no note %r on stderr:\n%s" %
                          (cp.returncode, note, cp.stderr))


CASES = {
    "compartment_population": case_compartment_population,
    "compartment_population_combined": case_compartment_population_combined,
    "compartment_population_batch_tac": case_compartment_population_batch_tac,
    "compartment_population_cases": case_compartment_population_cases,
    "compartment_population_learn_cases": case_compartment_population_learn_cases,
    "kinetics_population_compartment": case_kinetics_population_compartment,
    "kinetics_population_free_parameters_named": case_kinetics_population_free_parameters_named,
    "compartment_population_unobserved_voi": case_compartment_population_unobserved_voi,
    "store_full_omega": case_store_full_omega,
    "store_format4": case_store_format4,
    "kinetics_population_learning_options": case_kinetics_population_learning_options,
    "input_model_needs_uncertainties": case_input_model_needs_uncertainties,
    "error_model_combined": case_error_model_combined,
    "omega_full": case_omega_full,
    "population_file_in_cases": case_population_file_in_cases,
    "learn_from_store": case_learn_from_store,
    "learn_from_case_store": case_learn_from_case_store,
    "learn_compartment_from_store": case_learn_compartment_from_store,
    "case_file_population": case_case_file_population,
    "case_file_fit_options_refused": case_case_file_fit_options_refused,
    "plan_population": case_plan_population,
    "population_in_outputs": case_population_in_outputs,
    "store_e_step": case_store_e_step,
    "individual_fit_options_refused": case_individual_fit_options_refused,
    "run_and_batch_kinetics_population": case_run_and_batch_kinetics_population,
    "learn_from_cases": case_learn_from_cases,
    "per_administered_activity": case_per_administered_activity,
    "zero_tac_not_accepted": case_zero_tac_not_accepted,
    "map_far_from_data_not_used": case_map_far_from_data_not_used,
    "run_and_batch_tac": case_run_and_batch_tac,
    "round_trip": case_round_trip,
    "kinetics_population": case_kinetics_population,
    "bad_population_files": case_bad_population_files,
    "one_scan_refused": case_one_scan_refused,
    "half_life_checked": case_half_life_checked,
    "population_provenance": case_population_provenance,
    "edited_file_refused": case_edited_file_refused,
    "run_and_batch_provenance": case_run_and_batch_provenance,
    "batch_population_coverage": case_batch_population_coverage,
}


def main(argv):
    return e2e_driver.main(argv, "population", CASES, lambda a, tmp: Ctx(os.path.abspath(a.lutdose), tmp),
                            CaseFailure, Skip)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
