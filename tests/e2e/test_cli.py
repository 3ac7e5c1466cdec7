#!/usr/bin/env python3
"""End-to-end tests of the lutdose command-line program (python3 standard library only).

Usage:
  test_cli.py --list
  test_cli.py --lutdose PATH/TO/lutdose --source SOURCE_DIR --case NAME|all

Every case runs the real binary on real files in its own fresh temporary directory
(removed at the end).  A case passes by returning; it fails by raising CaseFailure
with a message that says what was expected and what happened.
"""

import argparse
import csv
import datetime
import hashlib
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback

EXAMPLE_ACTIVITY_MBQ = 7210.4
EXAMPLE_PHANTOM = "icrp110-am"
PHANTOMS = ["icrp110-am", "icrp110-af", "icrp89-male", "icrp89-female"]
TIMEOUT_S = 300

# Electron energy emitted per decay of Lu-177 (ICRP-107): 0.147923 MeV.
# 0.147923 MeV * 1.602176634e-13 J/MeV * 3.6e9 decays per MBq h / 1e-3 kg/g = 0.0853185 Gy g / (MBq h).
LOCAL_GY_G_PER_MBQ_H = 0.0853185

CSV_HEADER = ("patient,cycle,voi,function,accepted,tia_MBq_h,tia_u_MBq_h,tia_h,mass_g,mass_source,"
              "s_mGy_per_MBq_s,dose_Gy,dose_u_Gy,dose_Gy_per_GBq,tia_u_dof,tia_ci95_low_MBq_h,tia_ci95_high_MBq_h,"
              "dose_u_dof,dose_ci95_low_Gy,dose_ci95_high_Gy,uncertainty_missing_inputs")

# A small, valid table (3 time points per VOI) used as the base for bad-input variants.
GOOD_LIVER_3 = "voi,time_h,activity_MBq\nliver,4,300\nliver,24,250\nliver,96,150\n"


class CaseFailure(Exception):
    pass


class CaseSkipped(Exception):
    pass


# Exit status of a skipped case (CTest's SKIP_RETURN_CODE in tests/CMakeLists.txt).
SKIP_EXIT = 77


def skip(reason):
    """Skips the case for a missing optional tool; under CI (CI=true) a skip is a failure instead."""
    if os.environ.get("CI") == "true":
        raise CaseFailure("CI=true forbids skipped tests, and this one would be skipped: " + reason)
    raise CaseSkipped(reason)


class Result:
    def __init__(self, argv, returncode, stdout, stderr):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def describe(self):
        out = self.stdout if len(self.stdout) <= 2000 else self.stdout[:2000] + "\n...[stdout truncated]"
        return ("  command: %s\n  exit status: %s\n  stderr:\n%s\n  stdout:\n%s"
                % (shlex.join(self.argv), self.returncode, _indent(self.stderr), _indent(out)))


def _indent(text):
    if not text:
        return "    (empty)"
    return "\n".join("    " + line for line in text.rstrip("\n").split("\n"))


class Ctx:
    """What a case gets: the binary, the source tree and its own temporary directory."""

    def __init__(self, lutdose, source, tmp):
        self.lutdose = lutdose
        self.source = source
        self.tmp = tmp

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        return p

    def run(self, *args, env=None, binary=None):
        argv = [binary or self.lutdose] + [str(a) for a in args]
        try:
            cp = subprocess.run(argv, cwd=self.tmp, capture_output=True, text=True, timeout=TIMEOUT_S,
                                env=env)
        except subprocess.TimeoutExpired as e:
            raise CaseFailure("command timed out after %d s: %s" % (TIMEOUT_S, shlex.join(argv))) from e
        return Result(argv, cp.returncode, cp.stdout, cp.stderr)

    @property
    def example_tac(self):
        return os.path.join(self.source, "examples", "snmmi-patient004", "tac.csv")

    @property
    def published_tia(self):
        return os.path.join(self.source, "tests", "data", "snmmi_challenge_patient004_fit_tia.csv")


# ----------------------------------------------------------------------------- helpers

def fail(msg, res=None):
    if res is not None:
        msg = msg + "\n" + res.describe()
    raise CaseFailure(msg)


def expect_exit(res, code, what):
    if res.returncode != code:
        fail("%s: expected exit status %d, got %s" % (what, code, res.returncode), res)


def load_json_file(path, res=None):
    if not os.path.isfile(path):
        fail("expected the file %s to exist, it does not" % path, res)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:
        fail("expected %s to be valid JSON: %s" % (path, e), res)


def parse_json_stdout(res):
    try:
        return json.loads(res.stdout)
    except ValueError as e:
        fail("expected the standard output to be valid JSON: %s" % e, res)


def rel_close(a, b, rel):
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rel * max(abs(a), abs(b))


def tac_vois(path):
    """VOI names of a TAC table, in first-seen order (comment lines skipped)."""
    with open(path, encoding="utf-8") as f:
        lines = [ln for ln in f if not ln.lstrip().startswith("#") and ln.strip()]
    names = []
    for row in csv.DictReader(io.StringIO("".join(lines))):
        if row["voi"] not in names:
            names.append(row["voi"])
    return names


def single_cycle(doc, res):
    try:
        patients = doc["patients"]
        if len(patients) != 1 or len(patients[0]["cycles"]) != 1:
            fail("expected exactly one patient with one cycle, got %d patient(s)" % len(patients), res)
        return patients[0]["cycles"][0]
    except (KeyError, TypeError, IndexError) as e:
        fail("results JSON lacks patients[0].cycles[0]: %r" % e, res)


def by_name(items, key, res):
    out = {}
    for it in items:
        out[it[key]] = it
    return out


def mentions_word(text, word):
    return re.search(r"(?<![\w.+-])" + re.escape(word) + r"(?![\w.])", text) is not None


def expect_bad_input(ctx, res, out_dir, file_name=None, must_mention=(), words=(), what="bad input"):
    """Exit 2, a 'lutdose: ' message on stderr naming the file/option and the value, no output directory."""
    expect_exit(res, 2, what)
    err = res.stderr
    if not err.startswith("lutdose: "):
        fail("%s: expected the message on stderr to start with 'lutdose: ' (or 'lutdose: error: ')" % what, res)
    if file_name is not None and file_name not in err:
        fail("%s: expected the message on stderr to name the input file %r" % (what, file_name), res)
    for s in must_mention:
        if s not in err:
            fail("%s: expected the message on stderr to mention %r" % (what, s), res)
    for w in words:
        if not mentions_word(err, w):
            fail("%s: expected the message on stderr to mention the value %r" % (what, w), res)
    if "Traceback" in err or "terminate called" in err:
        fail("%s: expected a clean error message, got a crash trace" % what, res)
    if out_dir is not None and os.path.exists(out_dir):
        fail("%s: expected no output directory %s to be left behind, but it exists (contents: %s)"
             % (what, out_dir, sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else "a file"), res)


def bad_tac_case(ctx, tac_text, file_name, must_mention=(), words=(), extra_args=(), phantom=EXAMPLE_PHANTOM):
    """Writes tac_text to file_name, runs `run` into a not-yet-existing directory, expects bad input."""
    tac = ctx.write(file_name, tac_text)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", phantom, "--out", out,
                  "--quiet", *extra_args)
    expect_bad_input(ctx, res, out, file_name=file_name, must_mention=must_mention, words=words)
    return res


# ----------------------------------------------------------------------------- good input

def case_example_run(ctx):
    # Example through `run`: exit 0, results.json/.csv written, a finite positive dose per input VOI,
    # Gy/GBq = Gy / 7.2104, the stdout table names every VOI, results.csv has the VOIs' rows then the other
    # targets' with the JSON doses, no leftover temporary files.
    out = ctx.path("out")
    res = ctx.run("run", "--tac", ctx.example_tac, "--activity-MBq", EXAMPLE_ACTIVITY_MBQ,
                  "--phantom", EXAMPLE_PHANTOM, "--out", out)
    expect_exit(res, 0, "example run")
    vois = tac_vois(ctx.example_tac)
    if sorted(vois) != ["kidney_left", "kidney_right", "liver", "spleen"]:
        fail("the example table changed: expected VOIs kidney_left, kidney_right, liver, spleen, got %s" % vois)
    doc = load_json_file(os.path.join(out, "results.json"), res)
    if not os.path.isfile(os.path.join(out, "results.csv")):
        fail("expected %s/results.csv to exist" % out, res)
    cyc = single_cycle(doc, res)
    if not rel_close(float(cyc.get("administered_MBq", float("nan"))), EXAMPLE_ACTIVITY_MBQ, 1e-12):
        fail("expected administered_MBq %s, got %r" % (EXAMPLE_ACTIVITY_MBQ, cyc.get("administered_MBq")), res)
    doses = by_name(cyc.get("doses", []), "target", res)
    for v in vois:
        if v not in doses:
            fail("expected a dose entry for VOI %s in results.json, targets are %s" % (v, sorted(doses)), res)
        d = doses[v]
        g = d.get("dose_Gy")
        if not isinstance(g, (int, float)) or not math.isfinite(g) or g <= 0:
            fail("expected a finite dose_Gy > 0 for %s, got %r" % (v, g), res)
        per = d.get("dose_Gy_per_GBq")
        expected = g / (EXAMPLE_ACTIVITY_MBQ / 1000.0)
        if not isinstance(per, (int, float)) or not rel_close(per, expected, 1e-9):
            fail("expected dose_Gy_per_GBq of %s = dose_Gy / 7.2104 = %.12g, got %r" % (v, expected, per), res)
        if not mentions_word(res.stdout, v):
            fail("expected the stdout table to name VOI %s" % v, res)
    # results.csv: the documented header and one row per VOI agreeing with the JSON dose.
    with open(os.path.join(out, "results.csv"), encoding="utf-8", newline="") as f:
        text = f.read()
    header = text.split("\n", 1)[0].rstrip("\r")
    if header != CSV_HEADER:
        fail("expected results.csv header\n  %s\ngot\n  %s" % (CSV_HEADER, header), res)
    # docs/results.md: one row per VOI, then one per other target of the dose schema (fit columns empty).
    rows = list(csv.DictReader(io.StringIO(text)))
    csv_vois = [r["voi"] for r in rows]
    others = [d["target"] for d in cyc.get("doses", []) if d["target"] not in vois]
    if sorted(csv_vois[:len(vois)]) != sorted(vois) or csv_vois[len(vois):] != others:
        fail("expected results.csv rows: one per VOI %s, then the other targets of results.json (%d: %s...), "
             "got %s..." % (sorted(vois), len(others), others[:3], csv_vois[:len(vois) + 3]), res)
    for r in rows[len(vois):]:
        if r["function"] or r["tia_MBq_h"]:
            fail("expected empty fit columns in the results.csv row of target %s, got function %r tia %r"
                 % (r["voi"], r["function"], r["tia_MBq_h"]), res)
    for r in rows:
        if not rel_close(float(r["dose_Gy"]), doses[r["voi"]]["dose_Gy"], 1e-6):
            fail("results.csv dose_Gy of %s is %s; expected the results.json value %r"
                 % (r["voi"], r["dose_Gy"], doses[r["voi"]]["dose_Gy"]), res)
    leftovers = [n for n in os.listdir(out) if n.startswith(".")]
    if leftovers:
        fail("expected no leftover temporary files in %s, found %s" % (out, leftovers), res)


def case_example_published_tia(ctx):
    # `fit --function E2u --error-model constant` on the example reproduces the published TIAs within 1 %.
    if not os.path.isfile(ctx.published_tia):
        fail("reference file %s not found" % ctx.published_tia)
    published = {}
    with open(ctx.published_tia, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            published[row["roi"].lower()] = float(row["TIA_MBq_h"])
    vois = tac_vois(ctx.example_tac)
    missing = [v for v in vois if v not in published]
    if missing:
        fail("the reference file %s has no TIA for %s" % (ctx.published_tia, missing))
    res = ctx.run("fit", "--tac", ctx.example_tac, "--function", "E2u", "--error-model", "constant")
    expect_exit(res, 0, "fit E2u constant")
    doc = parse_json_stdout(res)
    cyc = single_cycle(doc, res)
    got = by_name(cyc.get("vois", []), "name", res)
    for v in vois:
        if v not in got:
            fail("expected VOI %s in the fit output, got %s" % (v, sorted(got)), res)
        fn = got[v].get("fit", {}).get("function")
        if fn != "E2u":
            fail("expected VOI %s fitted with the forced function E2u, got %r" % (v, fn), res)
        tia = got[v].get("tia_MBq_h")
        if not isinstance(tia, (int, float)) or not rel_close(tia, published[v], 0.01):
            fail("expected tia_MBq_h of %s within 1 %% of the published %.6g, got %r" % (v, published[v], tia), res)
    if "doses" in cyc:
        fail("expected no 'doses' in the fit output", res)


def case_tumour_local_deposition(ctx):
    # --tumour-method local: dose = 0.0853185 Gy g/(MBq h) * TIA / mass (all electron energy,
    # 0.147923 MeV/decay of ICRP-107, absorbed in the 20 g tumour), within 2e-4 relative.
    tac = ctx.write("tumour.csv",
                    "voi,time_h,activity_MBq,mass_g\n"
                    "tumour_1,4,10.0,20\n"
                    "tumour_1,24,8.2,20\n"
                    "tumour_1,72,4.1,20\n"
                    "tumour_1,144,1.5,20\n")
    out = ctx.path("out")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", "icrp110-am", "--out", out,
                  "--tumour-method", "local", "--quiet")
    expect_exit(res, 0, "tumour local run")
    cyc = single_cycle(load_json_file(os.path.join(out, "results.json"), res), res)
    vois = by_name(cyc.get("vois", []), "name", res)
    doses = by_name(cyc.get("doses", []), "target", res)
    if "tumour_1" not in vois or "tumour_1" not in doses:
        fail("expected tumour_1 among the VOIs and doses, got %s / %s" % (sorted(vois), sorted(doses)), res)
    tia = vois["tumour_1"].get("tia_MBq_h")
    dose = doses["tumour_1"].get("dose_Gy")
    if not isinstance(tia, (int, float)) or not math.isfinite(tia) or tia <= 0:
        fail("expected a finite tia_MBq_h > 0 for tumour_1, got %r" % tia, res)
    expected = LOCAL_GY_G_PER_MBQ_H * tia / 20.0
    if not isinstance(dose, (int, float)) or not rel_close(dose, expected, 2e-4):
        fail("expected dose_Gy of tumour_1 = 0.0853185 * %.10g / 20 = %.10g (rel 2e-4), got %r"
             % (tia, expected, dose), res)
    mass = doses["tumour_1"].get("mass_g")
    if not isinstance(mass, (int, float)) or not rel_close(mass, 20.0, 1e-12):
        fail("expected mass_g 20 for tumour_1's dose, got %r" % mass, res)


def case_help_and_version(ctx):
    # --help, run --help and fit --help exit 0 and mention the options; --version prints the version.
    res = ctx.run("--help")
    expect_exit(res, 0, "lutdose --help")
    for s in ("run", "fit", "--version"):
        if s not in res.stdout:
            fail("expected `lutdose --help` to mention %r on stdout" % s, res)
    run_opts = ["--tac", "--activity-MBq", "--phantom", "--out", "--function", "--functions", "--error-model",
                "--aicc-k", "--trapezoid-head", "--tumour-method", "--sphere-composition", "--density-g-per-mL",
                "--half-life-h", "--data-dir", "--quiet"]
    fit_opts = ["--tac", "--activity-MBq", "--function", "--functions", "--error-model", "--aicc-k",
                "--trapezoid-head", "--half-life-h", "--data-dir"]
    for sub, opts in (("run", run_opts), ("fit", fit_opts)):
        res = ctx.run(sub, "--help")
        expect_exit(res, 0, "lutdose %s --help" % sub)
        for o in opts:
            if not re.search(re.escape(o) + r"(?![\w-])", res.stdout):
                fail("expected `lutdose %s --help` to mention option %s on stdout" % (sub, o), res)
        for p in (PHANTOMS if sub == "run" else []):
            if p not in res.stdout:
                fail("expected `lutdose run --help` to list phantom %s" % p, res)
    version = None
    with open(os.path.join(ctx.source, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\s*\(\s*lutdose\s+VERSION\s+([0-9][0-9.]*)", f.read())
        if m:
            version = m.group(1)
    if version is None:
        fail("could not read the project VERSION from %s/CMakeLists.txt" % ctx.source)
    res = ctx.run("--version")
    expect_exit(res, 0, "lutdose --version")
    if res.stdout.strip() != "lutdose " + version:
        fail("expected `lutdose --version` to print 'lutdose %s', got %r" % (version, res.stdout.strip()), res)


def case_fit_patient_column(ctx):
    # A table with a `patient` column and two patients gives two patients in the `fit` JSON.
    rows = ["patient,voi,time_h,activity_MBq"]
    for pid, scale in (("p01", 1.0), ("p02", 1.3)):
        for voi, base in (("liver", 380.0), ("spleen", 90.0)):
            for t, f in ((4, 1.0), (24, 0.9), (96, 0.55), (120, 0.47)):
                rows.append("%s,%s,%g,%.4f" % (pid, voi, t, base * f * scale))
    tac = ctx.write("two_patients.csv", "\n".join(rows) + "\n")
    res = ctx.run("fit", "--tac", tac)
    expect_exit(res, 0, "fit with a patient column")
    doc = parse_json_stdout(res)
    patients = doc.get("patients")
    if not isinstance(patients, list) or len(patients) != 2:
        fail("expected 2 patients in the fit JSON, got %r"
             % (len(patients) if isinstance(patients, list) else patients), res)
    ids = sorted(p.get("id") for p in patients)
    if ids != ["p01", "p02"]:
        fail("expected patient ids ['p01', 'p02'], got %s" % ids, res)
    for p in patients:
        cycles = p.get("cycles", [])
        names = sorted(v["name"] for c in cycles for v in c.get("vois", []))
        if names != ["liver", "spleen"]:
            fail("expected patient %s to have VOIs liver and spleen, got %s" % (p.get("id"), names), res)
        for c in cycles:
            if "doses" in c:
                fail("expected no 'doses' in the fit output (patient %s)" % p.get("id"), res)
            for v in c.get("vois", []):
                tia = v.get("tia_MBq_h")
                if not isinstance(tia, (int, float)) or not math.isfinite(tia) or tia <= 0:
                    fail("expected a finite tia_MBq_h > 0 for %s/%s, got %r" % (p.get("id"), v["name"], tia), res)


def case_fit_csv_equals_json(ctx):
    # `fit --format csv` (one line per VOI, streamed patient by patient) gives the numbers of the
    # JSON output exactly (both print the shortest exact form of the same doubles), also when a
    # patient's rows are not contiguous and a patient has two cycles.
    rows = ["patient,cycle,voi,time_h,activity_MBq"]
    for voi, base in (("liver", 380.0), ("spleen", 90.0)):
        for pid, scale, cycles in (("p01", 1.0, (1, 2)), ("p02", 1.3, (1,))):
            for cyc in cycles:
                for t, f in ((4, 1.0), (24, 0.9), (96, 0.55), (120, 0.47)):
                    rows.append("%s,%d,%s,%g,%.4f" % (pid, cyc, voi, t, base * f * scale * (1 + 0.1 * cyc)))
    tac = ctx.write("interleaved.csv", "\n".join(rows) + "\n")
    res_json = ctx.run("fit", "--tac", tac)
    expect_exit(res_json, 0, "fit (json)")
    res_csv = ctx.run("fit", "--tac", tac, "--format", "csv")
    expect_exit(res_csv, 0, "fit --format csv")
    want = {}
    for p in parse_json_stdout(res_json)["patients"]:
        for c in p["cycles"]:
            for v in c["vois"]:
                want[(p["id"], str(c["cycle"]), v["name"])] = v
    got = list(csv.DictReader(io.StringIO(res_csv.stdout)))
    if sorted((r["patient"], r["cycle"], r["voi"]) for r in got) != sorted(want):
        fail("expected one CSV line per VOI of the JSON (%s), got %s"
             % (sorted(want), [(r["patient"], r["cycle"], r["voi"]) for r in got]), res_csv)
    for r in got:
        v = want[(r["patient"], r["cycle"], r["voi"])]
        if r["function"] != v["fit"]["function"]:
            fail("expected function %r for %s, got %r" % (v["fit"]["function"], r["voi"], r["function"]), res_csv)
        for col, key in (("tia_MBq_h", "tia_MBq_h"), ("tia_u_MBq_h", "tia_u_MBq_h")):
            if float(r[col]) != v[key]:
                fail("expected %s %r of %s/%s as in the JSON, got %r" % (col, v[key], r["patient"], r["voi"], r[col]), res_csv)
        if [float(r["tia_ci95_low_MBq_h"]), float(r["tia_ci95_high_MBq_h"])] != v["tia_ci95_MBq_h"]:
            fail("expected the 95 %% interval %r, got %r, %r" % (v["tia_ci95_MBq_h"], r["tia_ci95_low_MBq_h"],
                                                                 r["tia_ci95_high_MBq_h"]), res_csv)
        if r["dose_Gy"] != "":
            fail("expected an empty dose_Gy (fit computes no dose), got %r" % r["dose_Gy"], res_csv)
    res = ctx.run("fit", "--tac", tac, "--format", "xml")
    expect_exit(res, 2, "fit --format xml")


def case_rerun_replaces_output(ctx):
    # `run` into a directory holding an earlier lutdose result set replaces it with the new results; a
    # results.json/results.csv not written by lutdose (no manifest.json) is refused (exit 2) and kept.
    out = ctx.path("out")
    os.makedirs(out)
    with open(os.path.join(out, "results.json"), "w") as f:
        f.write("old, not JSON\n")
    with open(os.path.join(out, "results.csv"), "w") as f:
        f.write("old\n")
    args = ("run", "--tac", ctx.example_tac, "--activity-MBq", EXAMPLE_ACTIVITY_MBQ, "--out", out, "--quiet")
    res = ctx.run(*args, "--phantom", EXAMPLE_PHANTOM)
    expect_exit(res, 2, "run into a directory holding files lutdose did not write")
    with open(os.path.join(out, "results.json")) as f:
        if f.read() != "old, not JSON\n":
            fail("expected the refused run to leave results.json unchanged", res)
    shutil.rmtree(out)
    res = ctx.run(*args, "--phantom", "icrp89-male")
    expect_exit(res, 0, "first run")
    res = ctx.run(*args, "--phantom", EXAMPLE_PHANTOM)
    expect_exit(res, 0, "run into a directory holding an earlier result set")
    doc = load_json_file(os.path.join(out, "results.json"), res)
    if doc.get("options", {}).get("dose", {}).get("phantom") != EXAMPLE_PHANTOM:
        fail("expected the new results.json to record phantom %s" % EXAMPLE_PHANTOM, res)
    with open(os.path.join(out, "results.csv"), encoding="utf-8") as f:
        if f.readline().rstrip("\r\n") != CSV_HEADER:
            fail("expected results.csv to be replaced with the new table", res)
    leftovers = [n for n in os.listdir(out) if n.startswith(".")]
    if leftovers:
        fail("expected no leftover temporary files in %s, found %s" % (out, leftovers), res)


# ----------------------------------------------------------------------------- bad input

def case_missing_file(ctx):
    # A --tac file that does not exist: exit 2, message names the file, no output directory.
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", ctx.path("does_not_exist.csv"), "--activity-MBq", "7000",
                  "--phantom", EXAMPLE_PHANTOM, "--out", out)
    expect_bad_input(ctx, res, out, file_name="does_not_exist.csv")


def case_malformed_csv(ctx):
    # A row with more cells than the header: exit 2, message names the file and line number 3.
    res = bad_tac_case(ctx, "voi,time_h,activity_MBq\nliver,4,300\nliver,24,250,17\nliver,96,150\n",
                       "malformed.csv")
    if not re.search(r"(malformed\.csv:3\b|line\s*3\b)", res.stderr):
        fail("expected the message to name line 3 of malformed.csv", res)


def case_missing_column(ctx):
    # No activity_MBq column: exit 2, message names the file and the missing column.
    bad_tac_case(ctx, "voi,time_h\nliver,4\nliver,24\nliver,96\n", "no_activity.csv",
                 must_mention=("activity_MBq",))


def case_unknown_column(ctx):
    # An unknown column 'colour': exit 2, message names the file and the column.
    bad_tac_case(ctx, "voi,time_h,activity_MBq,colour\nliver,4,300,red\nliver,24,250,red\nliver,96,150,red\n",
                 "unknown_column.csv", words=("colour",))


def case_non_numeric_activity(ctx):
    # activity_MBq 'abc': exit 2, message names the file, the column and the value.
    bad_tac_case(ctx, "voi,time_h,activity_MBq\nliver,4,300\nliver,24,abc\nliver,96,150\n",
                 "activity_abc.csv", must_mention=("activity_MBq",), words=("abc",))


def case_negative_activity(ctx):
    # activity_MBq -12.5: exit 2, message names the file, the column and the value.
    bad_tac_case(ctx, "voi,time_h,activity_MBq\nliver,4,300\nliver,24,-12.5\nliver,96,150\n",
                 "activity_negative.csv", must_mention=("activity_MBq",), words=("-12.5",))


def case_nan_activity(ctx):
    # activity_MBq 'nan': exit 2, message names the file, the column and the value.
    bad_tac_case(ctx, "voi,time_h,activity_MBq\nliver,4,300\nliver,24,nan\nliver,96,150\n",
                 "activity_nan.csv", must_mention=("activity_MBq",), words=("nan",))


def case_infinite_activity(ctx):
    # activity_MBq 'inf': exit 2, message names the file, the column and the value.
    bad_tac_case(ctx, "voi,time_h,activity_MBq\nliver,4,300\nliver,24,inf\nliver,96,150\n",
                 "activity_inf.csv", must_mention=("activity_MBq",), words=("inf",))


def case_times_not_increasing(ctx):
    # time_h 30.5 after 96 within the same VOI: exit 2, message names the file and the value.
    bad_tac_case(ctx, "voi,time_h,activity_MBq\nliver,4,300\nliver,96,150\nliver,30.5,250\n",
                 "times_decreasing.csv", must_mention=("time_h",), words=("30.5",))


def case_duplicated_time(ctx):
    # time_h 24.25 twice within the same VOI: exit 2, message names the file and the value.
    bad_tac_case(ctx, "voi,time_h,activity_MBq\nliver,4,300\nliver,24.25,250\nliver,24.25,240\nliver,96,150\n",
                 "times_duplicated.csv", must_mention=("time_h",), words=("24.25",))


def case_negative_time(ctx):
    # time_h -1.5: exit 2, message names the file, the column and the value.
    bad_tac_case(ctx, "voi,time_h,activity_MBq\nliver,-1.5,300\nliver,24,250\nliver,96,150\n",
                 "time_negative.csv", must_mention=("time_h",), words=("-1.5",))


def case_zero_volume(ctx):
    # volume_mL 0: exit 2, message names the file and the column volume_mL.
    bad_tac_case(ctx, "voi,time_h,activity_MBq,volume_mL\nliver,4,300,1800\nliver,24,250,0\nliver,96,150,1800\n",
                 "volume_zero.csv", must_mention=("volume_mL",), words=("0",))


def case_negative_mass(ctx):
    # mass_g -3.25: exit 2, message names the file, the column and the value.
    bad_tac_case(ctx, "voi,time_h,activity_MBq,mass_g\nliver,4,300,-3.25\nliver,24,250,-3.25\nliver,96,150,-3.25\n",
                 "mass_negative.csv", must_mention=("mass_g",), words=("-3.25",))


def case_unknown_phantom(ctx):
    # --phantom icrp999: exit 2, message names the option and the value and lists the known phantoms.
    tac = ctx.write("good.csv", GOOD_LIVER_3)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", "icrp999", "--out", out)
    expect_bad_input(ctx, res, out, must_mention=("--phantom",) + tuple(PHANTOMS), words=("icrp999",))


def case_unknown_voi(ctx):
    # VOI 'heart' that icrp110-am cannot map: exit 2, message names the file and the VOI and lists mappable names.
    bad_tac_case(ctx, "voi,time_h,activity_MBq\nheart,4,300\nheart,24,250\nheart,96,150\n",
                 "voi_heart.csv", must_mention=("kidney_left", "kidney_right", "liver", "spleen"),
                 words=("heart",))


def case_unknown_fit_function(ctx):
    # --function E9: exit 2, message names the option and the value, no output directory.
    tac = ctx.write("good.csv", GOOD_LIVER_3)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", EXAMPLE_PHANTOM, "--out", out,
                  "--function", "E9")
    expect_bad_input(ctx, res, out, must_mention=("--function",), words=("E9",))


def case_too_few_points_for_forced_function(ctx):
    # --function E2 (4 parameters) on a VOI with 3 points: exit 2, message names the file, VOI, function and count.
    bad_tac_case(ctx, GOOD_LIVER_3, "three_points.csv", must_mention=("liver",), words=("E2", "3"),
                 extra_args=("--function", "E2"))


def case_tumour_without_mass(ctx):
    # tumour_1 without mass_g or volume_mL: exit 2, message names the file and the VOI and asks for a mass.
    res = bad_tac_case(ctx, "voi,time_h,activity_MBq\ntumour_1,4,10\ntumour_1,24,8\ntumour_1,96,4\n",
                       "tumour_no_mass.csv", words=("tumour_1",))
    if "mass_g" not in res.stderr and "volume_mL" not in res.stderr:
        fail("expected the message to name the missing field mass_g or volume_mL", res)


def case_tumour_mass_outside_sphere_table(ctx):
    # tumour_1 of 5000 g (sphere table ends at 932 g): exit 2, message names the file, the VOI and the mass.
    bad_tac_case(ctx, "voi,time_h,activity_MBq,mass_g\ntumour_1,4,10,5000\ntumour_1,24,8,5000\ntumour_1,96,4,5000\n",
                 "tumour_5000g.csv", words=("tumour_1", "5000"))


def case_missing_required_option(ctx):
    # `run` without --phantom: exit 2, message names --phantom, no output directory.
    tac = ctx.write("good.csv", GOOD_LIVER_3)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--out", out)
    expect_bad_input(ctx, res, out, must_mention=("--phantom",))


def case_fit_bad_input_no_stdout(ctx):
    # `fit` on a table with a negative activity: exit 2, message names file and value, nothing on stdout.
    tac = ctx.write("fit_negative.csv", "voi,time_h,activity_MBq\nliver,4,300\nliver,24,-7.75\nliver,96,150\n")
    res = ctx.run("fit", "--tac", tac)
    expect_bad_input(ctx, res, None, file_name="fit_negative.csv", must_mention=("activity_MBq",),
                     words=("-7.75",))
    if res.stdout.strip():
        fail("expected no (partial) JSON on stdout after bad input", res)


def case_existing_output_kept_on_error(ctx):
    # A bad-input run into an existing output directory exits 2 and leaves the previous results byte-identical.
    out = ctx.path("out")
    res = ctx.run("run", "--tac", ctx.example_tac, "--activity-MBq", EXAMPLE_ACTIVITY_MBQ,
                  "--phantom", EXAMPLE_PHANTOM, "--out", out, "--quiet")
    expect_exit(res, 0, "first (good) run")
    before = {}
    for name in ("results.json", "results.csv", "results.h5", "manifest.json"):
        p = os.path.join(out, name)
        if not os.path.isfile(p):
            fail("expected the good run to write %s" % p, res)
        with open(p, "rb") as f:
            before[name] = f.read()
    bad = ctx.write("bad.csv", "voi,time_h,activity_MBq\nliver,4,300\nliver,24,-1\nliver,96,150\n")
    res = ctx.run("run", "--tac", bad, "--activity-MBq", EXAMPLE_ACTIVITY_MBQ,
                  "--phantom", EXAMPLE_PHANTOM, "--out", out)
    expect_bad_input(ctx, res, None, file_name="bad.csv", must_mention=("activity_MBq",), words=("-1",))
    for name, data in before.items():
        p = os.path.join(out, name)
        if not os.path.isfile(p):
            fail("expected the previous %s to survive the failed run, it is gone" % p, res)
        with open(p, "rb") as f:
            if f.read() != data:
                fail("expected the previous %s to be byte-identical after the failed run, it changed" % p, res)
    extra = sorted(set(os.listdir(out)) - set(before))
    if extra:
        fail("expected the failed run to add nothing to %s, found %s" % (out, extra), res)


def _data_dir_of_run(ctx, out, what, env=None, binary=None, extra=()):
    res = ctx.run("run", "--tac", ctx.example_tac, "--activity-MBq", EXAMPLE_ACTIVITY_MBQ,
                  "--phantom", EXAMPLE_PHANTOM, "--out", out, "--quiet", *extra, env=env, binary=binary)
    expect_exit(res, 0, what)
    return load_json_file(os.path.join(out, "results.json"), res)["options"]["data_dir"], res


def case_data_dir_option_and_env(ctx):
    # Reference data are taken from --data-dir, else LUTDOSE_DATA_DIR; a directory without data is bad input.
    mine = ctx.path("mydata")
    shutil.copytree(os.path.join(ctx.source, "data"), mine)
    used, res = _data_dir_of_run(ctx, ctx.path("o1"), "--data-dir", extra=("--data-dir", mine))
    if used != mine:
        fail("expected results.json options.data_dir to be %s, got %s" % (mine, used), res)
    env = dict(os.environ, LUTDOSE_DATA_DIR=mine)
    used, res = _data_dir_of_run(ctx, ctx.path("o2"), "LUTDOSE_DATA_DIR", env=env)
    if used != mine:
        fail("expected options.data_dir from LUTDOSE_DATA_DIR to be %s, got %s" % (mine, used), res)
    empty = ctx.path("empty")
    os.mkdir(empty)
    out = ctx.path("o3")
    res = ctx.run("run", "--tac", ctx.example_tac, "--activity-MBq", EXAMPLE_ACTIVITY_MBQ,
                  "--phantom", EXAMPLE_PHANTOM, "--out", out, "--data-dir", empty)
    expect_bad_input(ctx, res, out, must_mention=("--data-dir", empty))
    res = ctx.run("run", "--tac", ctx.example_tac, "--activity-MBq", EXAMPLE_ACTIVITY_MBQ,
                  "--phantom", EXAMPLE_PHANTOM, "--out", out, env=dict(os.environ, LUTDOSE_DATA_DIR=empty))
    expect_bad_input(ctx, res, out, must_mention=("LUTDOSE_DATA_DIR", empty))


def case_installed_binary_uses_prefix_data(ctx):
    # `cmake --install` puts the data in <prefix>/share/lutdose, and the installed binary finds them there.
    build_dir = os.path.dirname(ctx.lutdose)
    prefix = ctx.path("prefix")
    cp = subprocess.run(["cmake", "--install", build_dir, "--prefix", prefix],
                        capture_output=True, text=True, timeout=TIMEOUT_S)
    if cp.returncode != 0:
        fail("cmake --install %s --prefix %s failed:\n%s%s" % (build_dir, prefix, cp.stdout, cp.stderr))
    env = {k: v for k, v in os.environ.items() if k != "LUTDOSE_DATA_DIR"}
    used, res = _data_dir_of_run(ctx, ctx.path("o"), "installed binary", env=env,
                                 binary=os.path.join(prefix, "bin", "lutdose"))
    expected = os.path.join(prefix, "share", "lutdose")
    if os.path.realpath(used) != os.path.realpath(expected):
        fail("expected the installed binary to use %s, it used %s" % (expected, used), res)


# ----------------------------------------------------------------------------- case files (JSON)

EXAMPLE_PROTOCOL = "SPECT-ME-208keV"


def example_case_path(ctx):
    return os.path.join(ctx.source, "examples", "snmmi-patient004", "case.json")


def example_case(ctx):
    """The Patient_004 case file as a dict (a fresh copy each call, to be modified by bad-input cases)."""
    with open(example_case_path(ctx), encoding="utf-8") as f:
        return json.load(f)


def import_h5py():
    try:
        import h5py  # noqa: imported here so that --list and the other cases work without it
    except ImportError:
        skip("h5py is not importable by %s (optional: install python3-h5py, or run the driver with a python3 "
             "that has it)" % sys.executable)
    return h5py


def _path_regex(path):
    """`a.b.c` as printed: the last step may also be written `a.b: c`; no longer path may follow."""
    head, sep, last = path.rpartition(".")
    if sep and not last.endswith("]"):
        body = re.escape(head) + r"(?:\.|: )" + re.escape(last)
    else:
        body = re.escape(path)
    return re.compile(r"(?<![\w.\]])" + body + r"(?!\w|\[|\.\w)")


def problem_line(res, file_name, path, values=(), what="bad case file"):
    """The stderr line naming `path` (JSON path), with the file name on it and every value after the path."""
    rx = _path_regex(path)
    lines = [ln for ln in res.stderr.split("\n") if rx.search(ln)]
    if not lines:
        fail("%s: expected a line on stderr naming the JSON path %s" % (what, path), res)
    for ln in lines:
        rest = ln[rx.search(ln).end():]
        if file_name in ln and all(mentions_word(rest, v) for v in values):
            return ln
    fail("%s: expected a line on stderr naming the file %s, the JSON path %s and then the value(s) %s"
         % (what, file_name, path, list(values)), res)


def bad_case_file(ctx, case, file_name, problems, given=(), extra_args=(), what=None):
    """Writes `case` (a dict, or text as is), runs `run FILE --out DIR`, expects bad input: exit 2, a message
    starting 'lutdose: error: ', each (path, values) of `problems` on a line with the file name, each problem
    once, no path of `given` (present in the file) reported as missing, no output directory."""
    what = what or "bad case file %s" % file_name
    text = case if isinstance(case, str) else json.dumps(case, indent=2) + "\n"
    p = ctx.write(file_name, text)
    out = ctx.path("out_not_created")
    res = ctx.run("run", p, "--out", out, *extra_args)
    expect_bad_input(ctx, res, out, file_name=file_name, what=what)
    if not res.stderr.startswith("lutdose: error: "):
        fail("%s: expected stderr to start with 'lutdose: error: '" % what, res)
    for path, values in problems:
        problem_line(res, file_name, path, values, what)
    lines = [ln for ln in res.stderr.rstrip("\n").split("\n") if ln.strip()]
    dups = sorted({ln for ln in lines if lines.count(ln) > 1})
    if dups:
        fail("%s: expected every problem reported once, these lines repeat: %s" % (what, dups), res)
    for path in given:
        rx = re.compile(_path_regex(path).pattern + r"\s+is\s+missing")
        bad = [ln for ln in lines if rx.search(ln)]
        if bad:
            fail("%s: %s is given in the file (with an invalid value), but stderr says it is missing: %s"
                 % (what, path, bad[0]), res)
    return res


def _run_example_case(ctx, out):
    res = ctx.run("run", example_case_path(ctx), "--out", out, "--quiet")
    expect_exit(res, 0, "run examples/snmmi-patient004/case.json")
    return res, load_json_file(os.path.join(out, "results.json"), res)


def _tp(case, i):
    return case["cycles"][0]["timepoints"][i]


# ----------------------------------------------------------------------------- case files: good input

def case_case_matches_tac_table(ctx):
    # The example case (counts, CF, dead time, RC, activity 1 h early with a 50 MBq residual) gives the TAC run's
    # TIAs (and doses) per VOI to 1e-6 relative and administered_MBq 7210.4 (1e-9 relative).
    res_c, doc_c = _run_example_case(ctx, ctx.path("case_out"))
    res_t = ctx.run("run", "--tac", ctx.example_tac, "--activity-MBq", EXAMPLE_ACTIVITY_MBQ,
                    "--phantom", EXAMPLE_PHANTOM, "--out", ctx.path("tac_out"), "--quiet")
    expect_exit(res_t, 0, "run --tac on the example")
    doc_t = load_json_file(ctx.path("tac_out", "results.json"), res_t)
    cyc_c, cyc_t = single_cycle(doc_c, res_c), single_cycle(doc_t, res_t)
    adm = cyc_c.get("administered_MBq")
    if not isinstance(adm, (int, float)) or not rel_close(adm, EXAMPLE_ACTIVITY_MBQ, 1e-9):
        fail("expected the case run's administered_MBq = 7292.015 exp(-lambda 1 h) - 50 = %s (rel 1e-9), got %r"
             % (EXAMPLE_ACTIVITY_MBQ, adm), res_c)
    vc, vt = by_name(cyc_c.get("vois", []), "name", res_c), by_name(cyc_t.get("vois", []), "name", res_t)
    if sorted(vc) != sorted(vt) or not vc:
        fail("expected the same VOIs from the case file and the TAC table, got %s and %s" % (sorted(vc), sorted(vt)),
             res_c)
    dc, dt = by_name(cyc_c.get("doses", []), "target", res_c), by_name(cyc_t.get("doses", []), "target", res_t)
    for v in sorted(vt):
        a, b = vc[v].get("tia_MBq_h"), vt[v].get("tia_MBq_h")
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not rel_close(a, b, 1e-6):
            fail("expected tia_MBq_h of %s from the case file (%r) to equal the TAC run's (%r) within 1e-6 relative"
                 % (v, a, b), res_c)
        a, b = dc.get(v, {}).get("dose_Gy"), dt.get(v, {}).get("dose_Gy")
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not rel_close(a, b, 1e-6):
            fail("expected dose_Gy of %s from the case file (%r) to equal the TAC run's (%r) within 1e-6 relative"
                 % (v, a, b), res_c)


def _text(x):
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def case_case_writes_h5_same_as_json(ctx):
    # results.h5 of the case run is a results store (docs/store.md) with one patient: format_version 7, kind
    # "run"; its /vois and /targets rows hold the exact doubles of results.json; /inputs/case_json is the case
    # file verbatim; h5dump reads it.
    h5py = import_h5py()
    out = ctx.path("out")
    res, doc = _run_example_case(ctx, out)
    h5 = os.path.join(out, "results.h5")
    if not os.path.isfile(h5):
        fail("expected %s to exist" % h5, res)
    with open(example_case_path(ctx), "rb") as f:
        case_text = f.read().decode("utf-8")

    def same(what, h5_value, json_value):
        if json_value is None:
            json_value = float("nan")  # results.json writes an unknown value as null
        if not isinstance(json_value, (int, float)) or isinstance(json_value, bool):
            fail("results.json has no number for %s: %r" % (what, json_value), res)
        if not (float(h5_value) == json_value or (math.isnan(h5_value) and math.isnan(json_value))):
            fail("expected %s in results.h5 to be exactly the results.json value %r, got %r"
                 % (what, json_value, h5_value), res)

    with h5py.File(h5, "r") as f:
        fv = f.attrs.get("format_version")
        if fv is None or int(fv) != 7 or _text(f.attrs.get("kind")) != "run":
            fail("expected the root attributes format_version == 7 and kind == 'run', got %r, %r"
                 % (fv, f.attrs.get("kind")), res)
        if _text(f["/inputs/case_json"][()]) != case_text:
            fail("expected /inputs/case_json to be the case file text verbatim", res)
        vois, targets = f["/vois"][()], f["/targets"][()]
    p = doc["patients"][0]
    c = p["cycles"][0]
    if len(vois) != len(c["vois"]) or len(vois) != 4:
        fail("expected 4 /vois rows (the example's VOIs), got %d" % len(vois), res)
    doses = by_name(c.get("doses", []), "target", res)
    for row, v in zip(vois, c["vois"]):
        if _text(row["patient"]) != p["id"] or int(row["cycle"]) != c["cycle"] or _text(row["voi"]) != v["name"]:
            fail("expected /vois keys %r, got %r" % ((p["id"], c["cycle"], v["name"]), row), res)
        for key in ("tia_MBq_h", "tia_u_MBq_h", "mass_g"):
            same("/vois %s %s" % (v["name"], key), row[key], v.get(key))
        for key in ("dose_Gy", "dose_u_Gy", "dose_Gy_per_GBq"):
            same("/vois %s %s" % (v["name"], key), row[key], doses[v["name"]].get(key))
    if len(targets) != len(c["doses"]):
        fail("expected one /targets row per dose of results.json (%d), got %d" % (len(c["doses"]), len(targets)), res)
    for row, d in zip(targets, c["doses"]):
        if _text(row["target"]) != d["target"]:
            fail("expected /targets in the order of results.json, got %r for %r" % (row["target"], d["target"]), res)
        for key in ("dose_Gy", "dose_u_Gy"):
            same("/targets %s %s" % (d["target"], key), row[key], d.get(key))
    exe = shutil.which("h5dump")
    if not exe:
        skip("h5dump is not on PATH (optional: install hdf5-tools)")
    cp = subprocess.run([exe, "-d", "/vois", h5], capture_output=True, text=True, timeout=TIMEOUT_S)
    if cp.returncode != 0 or p["id"] not in cp.stdout:
        fail("expected h5dump -d /vois to print the rows with the patient id (exit %d):\n%s"
             % (cp.returncode, cp.stderr), res)


def case_tac_run_writes_h5(ctx):
    # `run --tac` also writes results.h5 with /inputs/tac_csv = the TAC file text and the administered activity
    # in its /patients row (the table has no patient id: the key is the empty string).
    h5py = import_h5py()
    out = ctx.path("out")
    res = ctx.run("run", "--tac", ctx.example_tac, "--activity-MBq", EXAMPLE_ACTIVITY_MBQ,
                  "--phantom", EXAMPLE_PHANTOM, "--out", out, "--quiet")
    expect_exit(res, 0, "run --tac on the example")
    h5 = os.path.join(out, "results.h5")
    if not os.path.isfile(h5):
        fail("expected the TAC run to write %s" % h5, res)
    with open(ctx.example_tac, "rb") as f:
        tac_text = f.read().decode("utf-8")
    with h5py.File(h5, "r") as f:
        if "/inputs/tac_csv" not in f:
            fail("expected the dataset /inputs/tac_csv in results.h5, /inputs has %s"
                 % (sorted(f["/inputs"]) if "/inputs" in f else "nothing"), res)
        if _text(f["/inputs/tac_csv"][()]) != tac_text:
            fail("expected /inputs/tac_csv to be the TAC file text verbatim", res)
        rows = f["/patients"][()]
    if len(rows) != 1 or _text(rows[0]["patient"]) != "" or int(rows[0]["cycle"]) != 1 \
            or float(rows[0]["administered_MBq"]) != EXAMPLE_ACTIVITY_MBQ or _text(rows[0]["status"]) != "done":
        fail("expected one /patients row ('', 1, done, %s MBq), got %r" % (EXAMPLE_ACTIVITY_MBQ, rows), res)


# ----------------------------------------------------------------------------- case files: bad input

def case_case_malformed_json(ctx):
    # The example cut off in the middle of a line: exit 2, message names the file and the line where it ends.
    with open(example_case_path(ctx), encoding="utf-8") as f:
        text = f.read()
    cut = text.index('"observed_rate_cps"', text.index('"start_h": 27.7253')) + 10
    line = text[:cut].count("\n") + 1
    res = bad_case_file(ctx, text[:cut], "truncated.json", [])
    if not re.search(r"(truncated\.json:%d\b|line\s*%d\b)" % (line, line), res.stderr):
        fail("expected the message to name line %d, where truncated.json ends" % line, res)


def case_case_unknown_key(ctx):
    # cycles[0].colour: exit 2, message names the file and the path cycles[0].colour.
    c = example_case(ctx)
    c["cycles"][0]["colour"] = "red"
    bad_case_file(ctx, c, "unknown_key.json", [("cycles[0].colour", ())])


def case_case_missing_key(ctx):
    # No cycles[0].administered: exit 2, message names the file and the path cycles[0].administered.
    c = example_case(ctx)
    del c["cycles"][0]["administered"]
    bad_case_file(ctx, c, "no_administered.json", [("cycles[0].administered", ())])


def case_case_negative_counts(ctx):
    # counts -1234.5 for the liver at time point 1: exit 2, message names the file, the path and the value.
    c = example_case(ctx)
    _tp(c, 1)["vois"]["liver"]["counts"] = -1234.5
    bad_case_file(ctx, c, "counts_negative.json", [("cycles[0].timepoints[1].vois.liver.counts", ("-1234.5",))],
                  given=("cycles[0].timepoints[1].vois.liver.counts",))


def case_case_nan_counts(ctx):
    # counts "nan" (JSON has no NaN) for the spleen at time point 2: exit 2, message names the path and 'nan'.
    c = example_case(ctx)
    _tp(c, 2)["vois"]["spleen"]["counts"] = "nan"
    bad_case_file(ctx, c, "counts_nan.json", [("cycles[0].timepoints[2].vois.spleen.counts", ("nan",))],
                  given=("cycles[0].timepoints[2].vois.spleen.counts",))


def case_case_duration_not_positive(ctx):
    # Frame duration_s 0, then -60, at time point 2: exit 2, message names the path and the value, not "missing".
    for value, name in ((0, "duration_zero.json"), (-60, "duration_negative.json")):
        c = example_case(ctx)
        _tp(c, 2)["duration_s"] = value
        bad_case_file(ctx, c, name, [("cycles[0].timepoints[2].duration_s", (str(value),))],
                      given=("cycles[0].timepoints[2].duration_s",))


def case_case_acquisition_before_reference(ctx):
    # Time point 0 starting 30 min before the reference time: exit 2, message names ...timepoints[0].start and it.
    c = example_case(ctx)
    del _tp(c, 0)["start_h"]
    _tp(c, 0)["start"] = "2021-01-01T09:30:00"
    bad_case_file(ctx, c, "before_reference.json",
                  [("cycles[0].timepoints[0].start", ("2021-01-01T09:30:00",))])


def case_case_cf_not_positive(ctx):
    # cf_cps_per_MBq 0, then -5.67: exit 2, message names the path and the value, and does not call it missing.
    path = "protocols.%s.cf_cps_per_MBq" % EXAMPLE_PROTOCOL
    for value, name in ((0, "cf_zero.json"), (-5.67, "cf_negative.json")):
        c = example_case(ctx)
        c["protocols"][EXAMPLE_PROTOCOL]["cf_cps_per_MBq"] = value
        bad_case_file(ctx, c, name, [(path, (str(value),))], given=(path,))


def case_case_rate_beyond_saturation(ctx):
    # observed_rate_cps 90000 with tau 4.6 us (R_o tau = 0.41 > 1/e): exit 2, message names the time point,
    # observed_rate_cps and 90000.
    c = example_case(ctx)
    _tp(c, 0)["observed_rate_cps"] = 90000
    bad_case_file(ctx, c, "saturated.json", [("cycles[0].timepoints[0].observed_rate_cps", ("90000",))])


def case_case_rc_not_monotone(ctx):
    # RC table 0.35, 0.62, 0.55, 0.95: exit 2, message names ...recovery.rc[2] and 0.55.
    c = example_case(ctx)
    c["protocols"][EXAMPLE_PROTOCOL]["recovery"]["rc"] = [0.35, 0.62, 0.55, 0.95]
    bad_case_file(ctx, c, "rc_not_monotone.json", [("protocols.%s.recovery.rc[2]" % EXAMPLE_PROTOCOL, ("0.55",))])


def case_case_rc_out_of_range(ctx):
    # An RC of 1.2 (last), then 0 (first): exit 2, message names the element's path and the value.
    for rc, i, value, name in (([0.35, 0.62, 0.86, 1.2], 3, "1.2", "rc_above_1.json"),
                               ([0, 0.62, 0.86, 0.95], 0, "0", "rc_zero.json")):
        c = example_case(ctx)
        c["protocols"][EXAMPLE_PROTOCOL]["recovery"]["rc"] = rc
        bad_case_file(ctx, c, name, [("protocols.%s.recovery.rc[%d]" % (EXAMPLE_PROTOCOL, i), (value,))])


def case_case_volume_below_rc_table(ctx):
    # kidney_left of 0.5 mL (RC table starts at 1 mL) is an error naming the path and 0.5; 1500 mL (above the
    # table's 1000 mL) is not: the plateau RC 0.95 is used.
    c = example_case(ctx)
    _tp(c, 1)["vois"]["kidney_left"]["volume_mL"] = 0.5
    bad_case_file(ctx, c, "volume_below_rc.json",
                  [("cycles[0].timepoints[1].vois.kidney_left.volume_mL", ("0.5",))])
    c = example_case(ctx)
    _tp(c, 1)["vois"]["kidney_left"]["volume_mL"] = 1500
    p = ctx.write("volume_above_rc.json", json.dumps(c, indent=2))
    out = ctx.path("out_above")
    res = ctx.run("run", p, "--out", out, "--quiet")
    expect_exit(res, 0, "a VOI volume above the RC table (plateau)")
    cyc = single_cycle(load_json_file(os.path.join(out, "results.json"), res), res)
    q = by_name(cyc.get("vois", []), "name", res).get("kidney_left", {}).get("quantification", [])
    rc = q[1].get("rc") if len(q) > 1 else None
    if not isinstance(rc, (int, float)) or not rel_close(rc, 0.95, 1e-12):
        fail("expected the plateau RC 0.95 for kidney_left at 1500 mL (time point 1), got %r" % rc, res)


def case_case_voi_missing_at_timepoint(ctx):
    # spleen measured at time points 0, 1, 3 but not 2: exit 2, message names cycles[0].timepoints[2].vois.spleen.
    c = example_case(ctx)
    del _tp(c, 2)["vois"]["spleen"]
    bad_case_file(ctx, c, "spleen_missing.json", [("cycles[0].timepoints[2].vois.spleen", ())])


def case_case_unknown_unit(ctx):
    # duration "30 mins" and tau "4.6 parsecs": exit 2, message names the path, the unit and the valid units,
    # and does not call the duration missing.
    c = example_case(ctx)
    del _tp(c, 1)["duration_s"]
    _tp(c, 1)["duration"] = "30 mins"
    bad_case_file(ctx, c, "duration_mins.json", [("cycles[0].timepoints[1].duration", ("mins", "s", "min", "h"))],
                  given=("cycles[0].timepoints[1].duration_s", "cycles[0].timepoints[1].duration"))
    c = example_case(ctx)
    dt = c["protocols"][EXAMPLE_PROTOCOL]["dead_time"]
    del dt["tau_us"]
    dt["tau"] = "4.6 parsecs"
    path = "protocols.%s.dead_time.tau" % EXAMPLE_PROTOCOL
    bad_case_file(ctx, c, "tau_parsecs.json", [(path, ("parsecs", "s", "ms", "us", "ns"))],
                  given=(path, path + "_s"))


def case_case_several_problems(ctx):
    # Negative counts at time point 0 and duration 0 at time point 2: both reported, each on its own line.
    c = example_case(ctx)
    _tp(c, 0)["vois"]["liver"]["counts"] = -7.5
    _tp(c, 2)["duration_s"] = 0
    p1, p2 = "cycles[0].timepoints[0].vois.liver.counts", "cycles[0].timepoints[2].duration_s"
    res = bad_case_file(ctx, c, "two_problems.json", [(p1, ("-7.5",)), (p2, ("0",))], given=(p1, p2))
    l1, l2 = problem_line(res, "two_problems.json", p1, ("-7.5",)), problem_line(res, "two_problems.json", p2, ("0",))
    if l1 == l2:
        fail("expected the two problems on separate lines", res)


def case_case_all_problems_at_once(ctx):
    # Negative counts (tp 0), a saturated observed rate (tp 1) and a VOI volume below the RC table (tp 3) in one
    # file: all three are reported in one run (the user should not have to fix them one by one).
    c = example_case(ctx)
    _tp(c, 0)["vois"]["liver"]["counts"] = -7.5
    _tp(c, 1)["observed_rate_cps"] = 90000
    _tp(c, 3)["vois"]["kidney_left"]["volume_mL"] = 0.5
    bad_case_file(ctx, c, "three_problems.json",
                  [("cycles[0].timepoints[0].vois.liver.counts", ("-7.5",)),
                   ("cycles[0].timepoints[1].observed_rate_cps", ("90000",)),
                   ("cycles[0].timepoints[3].vois.kidney_left.volume_mL", ("0.5",))])


def case_case_with_tac_only_option(ctx):
    # A case file with --phantom, --activity-MBq, --function or --error-model: exit 2, names the option, no output.
    for opt, value in (("--phantom", "icrp89-male"), ("--activity-MBq", "7000"), ("--function", "E1"),
                       ("--error-model", "constant")):
        out = ctx.path("out_not_created")
        res = ctx.run("run", example_case_path(ctx), "--out", out, opt, value)
        expect_bad_input(ctx, res, out, must_mention=(opt,), what="case file with %s" % opt)


def case_case_with_tac(ctx):
    # A case file and --tac together: exit 2, message names --tac, no output directory.
    out = ctx.path("out_not_created")
    res = ctx.run("run", example_case_path(ctx), "--tac", ctx.example_tac, "--out", out)
    expect_bad_input(ctx, res, out, must_mention=("--tac",), what="case file and --tac")


# ----------------------------------------------------------------------------- doses: MIRD schema, S-value tables,
# marrow, Monte Carlo

SYNTHETIC_VOIS = ("kidneys", "liver", "spleen", "tumour_1", "red_marrow")


def synthetic_case_path(ctx):
    return os.path.join(ctx.source, "examples", "synthetic-two-cycles", "case.json")


def synthetic_case(ctx):
    """The synthetic two-cycle case file as a dict (a fresh copy each call)."""
    with open(synthetic_case_path(ctx), encoding="utf-8") as f:
        return json.load(f)


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _cycles(doc, n, res):
    try:
        patients = doc["patients"]
        if len(patients) != 1 or len(patients[0]["cycles"]) != n:
            fail("expected exactly one patient with %d cycles, got %d patient(s) with %s cycle(s)"
                 % (n, len(patients), [len(p.get("cycles", [])) for p in patients]), res)
        return patients[0], patients[0]["cycles"]
    except (KeyError, TypeError, IndexError) as e:
        fail("results JSON lacks patients[0].cycles: %r" % e, res)


def _published_intervals(path, organ_pred, res=None):
    """(source_id, statistic, value text, lo, hi) of the published rows whose organ satisfies organ_pred, in Gy/GBq:
    mean±SD gives [mean-SD, mean+SD], a range 'a-b' in brackets or parentheses gives [a, b], a bare number [v, v]."""
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if not organ_pred(row["organ"].strip().lower()):
                continue
            if row["unit"].strip() not in ("mGy/MBq", "Gy/GBq"):
                continue  # cumulative limits in Gy, values per 7.4 GBq: not comparable per GBq as written
            if not row["radiopharmaceutical"].startswith("177Lu-DOTATATE"):
                continue
            text = row["value"].strip()
            m = re.match(r"^\s*([0-9.]+)\s*(?:±\s*([0-9.]+))?", text)
            if not m:
                fail("could not read the published value %r in %s" % (text, path), res)
            v = float(m.group(1))
            if m.group(2):
                out.append((row["source_id"], row["statistic"], text, v - float(m.group(2)), v + float(m.group(2))))
            else:
                out.append((row["source_id"], row["statistic"], text, v, v))
            r = re.search(r"[\[(]\s*([0-9.]+)\s*-\s*([0-9.]+)\s*[\])]", text)
            if r:
                out.append((row["source_id"], row["statistic"] + " (range)", text, float(r.group(1)),
                            float(r.group(2))))
    return out


def case_synthetic_two_cycles(ctx):
    # Synthetic two-cycle example: cumulative doses = sum of the cycles (1e-12); red marrow 0.02-0.07 Gy/GBq
    # (published); remainder TIA > 0; liver, spleen, tumour TIAs within 0.5 % and kidneys within 1 % of true_tia.json.
    out = ctx.path("out")
    res = ctx.run("run", synthetic_case_path(ctx), "--out", out, "--quiet")
    expect_exit(res, 0, "run examples/synthetic-two-cycles/case.json")
    doc = load_json_file(os.path.join(out, "results.json"), res)
    patient, cycles = _cycles(doc, 2, res)
    with open(os.path.join(ctx.source, "examples", "synthetic-two-cycles", "true_tia.json"), encoding="utf-8") as f:
        true_tia = json.load(f)
    per_cycle = []
    for c in cycles:
        cn = c.get("cycle")
        doses = by_name(c.get("doses", []), "target", res)
        vois = by_name(c.get("vois", []), "name", res)
        for v in SYNTHETIC_VOIS:
            if v not in doses or not _number(doses[v].get("dose_Gy")):
                fail("cycle %s: expected a finite dose_Gy for target %s, targets are %s" % (cn, v, sorted(doses)), res)
        rm = doses["red_marrow"].get("dose_Gy_per_GBq")
        if not _number(rm) or not 0.02 <= rm <= 0.07:
            fail("cycle %s: expected red_marrow dose_Gy_per_GBq within the published 0.02-0.07 Gy/GBq "
                 "(tests/data/lu177_dotatate_published_organ_doses.csv), got %r" % (cn, rm), res)
        rb = c.get("remainder_tia_MBq_h")
        if not _number(rb) or rb <= 0:
            fail("cycle %s: expected remainder_tia_MBq_h > 0 (whole_body VOI), got %r" % (cn, rb), res)
        for v, tol in (("liver", 0.005), ("spleen", 0.005), ("tumour_1", 0.005), ("kidneys", 0.01)):
            tia = vois.get(v, {}).get("tia_MBq_h")
            truth = true_tia[str(cn)][v]  # true_tia.json: per cycle number
            if not _number(tia) or not rel_close(tia, truth, tol):
                fail("cycle %s: expected tia_MBq_h of %s within %g %% of the generating %.10g (true_tia.json), got %r"
                     % (cn, v, tol * 100, truth, tia), res)
        per_cycle.append(doses)
    cum = by_name(patient.get("cumulative", {}).get("doses", []), "target", res)
    for v in SYNTHETIC_VOIS:
        if v not in cum:
            fail("expected patients[0].cumulative.doses to have target %s, it has %s" % (v, sorted(cum)), res)
        if cum[v].get("cycles") != 2:
            fail("expected cumulative %s to count cycles == 2, got %r" % (v, cum[v].get("cycles")), res)
        total = per_cycle[0][v]["dose_Gy"] + per_cycle[1][v]["dose_Gy"]
        got = cum[v].get("dose_Gy")
        if not _number(got) or not rel_close(got, total, 1e-12):
            fail("expected cumulative dose_Gy of %s = %.17g + %.17g = %.17g (rel 1e-12), got %r"
                 % (v, per_cycle[0][v]["dose_Gy"], per_cycle[1][v]["dose_Gy"], total, got), res)
        if not _number(cum[v].get("dose_u_Gy")) or cum[v]["dose_u_Gy"] <= 0:
            fail("expected a finite cumulative dose_u_Gy > 0 for %s, got %r" % (v, cum[v].get("dose_u_Gy")), res)


def case_patient004_published_ranges(ctx):
    # Patient_004 case: both kidneys' Gy/GBq inside the union of the published kidney mean±SD/range intervals;
    # liver within 0.27±2x0.05, spleen below 1.17-0.14 (as docs/validation.md §4 states).
    path = os.path.join(ctx.source, "tests", "data", "lu177_dotatate_published_organ_doses.csv")
    if not os.path.isfile(path):
        fail("reference file %s not found" % path)
    res, doc = _run_example_case(ctx, ctx.path("out"))
    doses = by_name(single_cycle(doc, res).get("doses", []), "target", res)
    per = {}
    for v in ("kidney_left", "kidney_right", "liver", "spleen"):
        g = doses.get(v, {}).get("dose_Gy_per_GBq")
        if not _number(g) or g <= 0:
            fail("expected a finite dose_Gy_per_GBq > 0 for %s, got %r" % (v, g), res)
        per[v] = g
    kidneys = _published_intervals(path, lambda o: o == "kidneys", res)
    if len(kidneys) < 3:
        fail("expected several published kidney values in %s, found %s" % (path, kidneys))
    for v in ("kidney_left", "kidney_right"):
        if not any(lo <= per[v] <= hi for _, _, _, lo, hi in kidneys):
            fail("expected %s = %.4g Gy/GBq inside one of the published kidney intervals %s"
                 % (v, per[v], ["%s %s: [%.3g, %.3g]" % (s, st, lo, hi) for s, st, _, lo, hi in kidneys]), res)
    for organ, want in (("liver", "0.27±0.05"), ("spleen", "1.17±0.14")):
        rows = [r for r in _published_intervals(path, lambda o, organ=organ: o == organ, res) if r[0] == "S1"]
        if len(rows) != 1 or rows[0][2] != want:
            fail("expected one S1 (planar, Clin Nucl Med 2013) %s row valued %s in %s, got %s"
                 % (organ, want, path, rows))
    liver_lo, liver_hi = 0.27 - 2 * 0.05, 0.27 + 2 * 0.05
    if not liver_lo <= per["liver"] <= liver_hi:
        fail("expected the liver's %.4g Gy/GBq within 0.27 ± 2 SD (0.05) = [%.2f, %.2f] (docs: within about 1 SD)"
             % (per["liver"], liver_lo, liver_hi), res)
    if not per["spleen"] < 1.17 - 0.14:
        fail("expected the spleen's %.4g Gy/GBq below the planar 1.17 ± 0.14 (i.e. < 1.03; CT mass 1.7 x the "
             "phantom's, docs/validation.md §4)" % per["spleen"], res)


# A user S-value table: liver, spleen and whole_body, every target from every source; S in mGy/(MBq s).
USER_SV_MASS = {"liver": 1800.0, "spleen": 150.0, "whole_body": 73000.0}
USER_SV = {("liver", "liver"): 1.4e-5, ("liver", "spleen"): 2.0e-7, ("liver", "whole_body"): 5.0e-7,
           ("spleen", "liver"): 2.1e-7, ("spleen", "spleen"): 1.6e-4, ("spleen", "whole_body"): 5.2e-7,
           ("whole_body", "liver"): 3.3e-7, ("whole_body", "spleen"): 3.4e-7, ("whole_body", "whole_body"): 3.5e-7}


def user_svalue_text(skip=None, override=None):
    """The user table as CSV text (pairs in target-major order), without the pair `skip`, with `override` values."""
    lines = ["target,source,s_mGy_per_MBq_s,target_mass_g"]
    for (t, s), v in USER_SV.items():
        if (t, s) == skip:
            continue
        text = (override or {}).get((t, s), repr(v))
        lines.append("%s,%s,%s,%s" % (t, s, text, repr(USER_SV_MASS[t])))
    return "\n".join(lines) + "\n"


USER_SV_TAC = ("voi,time_h,activity_MBq,mass_g\n"
               "liver,4,300,1800\nliver,24,260,1800\nliver,72,190,1800\nliver,144,110,1800\n"
               "spleen,4,60,150\nspleen,24,58,150\nspleen,72,40,150\nspleen,144,22,150\n"
               "whole_body,4,2000,\nwhole_body,24,1500,\nwhole_body,72,900,\nwhole_body,144,400,\n")


def case_user_svalue_table(ctx):
    # --svalues with --mass-scaling inverse-mass at the table's masses: every target's dose (liver, spleen,
    # whole_body region) = 3.6 x sum over liver, spleen and the remainder (Cloutier) of TIA x S; phantom "user".
    table = ctx.write("my_svalues.csv", user_svalue_text())
    tac = ctx.write("tac_user.csv", USER_SV_TAC)
    out = ctx.path("out")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--svalues", table, "--mass-scaling", "inverse-mass",
                  "--out", out, "--quiet")
    expect_exit(res, 0, "run --svalues")
    doc = load_json_file(os.path.join(out, "results.json"), res)
    ph = doc.get("options", {}).get("dose", {}).get("phantom")
    if ph != "user":
        fail("expected options.dose.phantom 'user' with --svalues, got %r" % ph, res)
    cyc = single_cycle(doc, res)
    vois = by_name(cyc.get("vois", []), "name", res)
    tia = {}
    for v in ("liver", "spleen", "whole_body"):
        t = vois.get(v, {}).get("tia_MBq_h")
        if not _number(t) or t <= 0:
            fail("expected a finite tia_MBq_h > 0 for %s, got %r" % (v, t), res)
        tia[v] = t
    tia_rb = tia["whole_body"] - tia["liver"] - tia["spleen"]
    if not _number(cyc.get("remainder_tia_MBq_h")) or not rel_close(cyc["remainder_tia_MBq_h"], tia_rb, 1e-9):
        fail("expected remainder_tia_MBq_h = TIA(whole_body) - TIA(liver) - TIA(spleen) = %.10g, got %r"
             % (tia_rb, cyc.get("remainder_tia_MBq_h")), res)
    m_rb = USER_SV_MASS["whole_body"] - USER_SV_MASS["liver"] - USER_SV_MASS["spleen"]
    doses = by_name(cyc.get("doses", []), "target", res)
    for target, kind in (("liver", "organ"), ("spleen", "organ"), ("whole_body", "region")):
        s_rb = (USER_SV[(target, "whole_body")] * USER_SV_MASS["whole_body"]
                - USER_SV[(target, "liver")] * USER_SV_MASS["liver"]
                - USER_SV[(target, "spleen")] * USER_SV_MASS["spleen"]) / m_rb
        parts = {"liver": 3.6 * tia["liver"] * USER_SV[(target, "liver")],
                 "spleen": 3.6 * tia["spleen"] * USER_SV[(target, "spleen")],
                 "remainder": 3.6 * tia_rb * s_rb}
        expected = sum(parts.values())
        d = doses.get(target)
        if d is None:
            fail("expected a dose entry for target %s, targets are %s" % (target, sorted(doses)), res)
        if d.get("kind") != kind:
            fail("expected target %s of kind %r, got %r" % (target, kind, d.get("kind")), res)
        if not _number(d.get("dose_Gy")) or not rel_close(d["dose_Gy"], expected, 1e-9):
            fail("expected dose_Gy of %s = 3.6 x (TIA_liver S(%s<-liver) + TIA_spleen S(%s<-spleen) + TIA_RB S_RB) "
                 "= %.10g (rel 1e-9), got %r" % (target, target, target, expected, d.get("dose_Gy")), res)
        contrib = d.get("contributions_Gy", {})
        for src, want in parts.items():
            if not _number(contrib.get(src)) or not rel_close(contrib[src], want, 1e-9):
                fail("expected contributions_Gy[%s] of %s = %.10g, got %r" % (src, target, want, contrib.get(src)), res)


def case_info_svalues(ctx):
    # `info svalues` lists the 4 phantoms; `info svalues --phantom icrp89-male` lists red_marrow, whole_body and
    # the region "Red Marrow"; both exit 0.
    res = ctx.run("info", "svalues")
    expect_exit(res, 0, "lutdose info svalues")
    for p in PHANTOMS:
        if not mentions_word(res.stdout, p):
            fail("expected `lutdose info svalues` to list phantom %s" % p, res)
    res = ctx.run("info", "svalues", "--phantom", "icrp89-male")
    expect_exit(res, 0, "lutdose info svalues --phantom icrp89-male")
    for s in ("red_marrow", "whole_body"):
        if not mentions_word(res.stdout, s):
            fail("expected `lutdose info svalues --phantom icrp89-male` to list the VOI name %s" % s, res)
    if "Red Marrow" not in res.stdout:
        fail("expected `lutdose info svalues --phantom icrp89-male` to list the region 'Red Marrow'", res)


def case_monte_carlo_option(ctx):
    # --mc-samples 200 --mc-seed 7: dose_u_mc_Gy for every VOI target, a monte_carlo block with 200 samples;
    # the same seed gives a byte-identical results.json, another seed different dose_u_mc_Gy.
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        out = ctx.path("out_" + name)
        res = ctx.run("run", example_case_path(ctx), "--out", out, "--quiet", "--mc-samples", "200", "--mc-seed", seed)
        expect_exit(res, 0, "run the example case with --mc-samples 200 --mc-seed %d" % seed)
        with open(os.path.join(out, "results.json"), "rb") as f:
            raw = f.read()
        runs[name] = (res, raw, load_json_file(os.path.join(out, "results.json"), res))
    res, _, doc = runs["a"]
    cyc = single_cycle(doc, res)
    mc = cyc.get("monte_carlo")
    if not isinstance(mc, dict) or mc.get("samples") != 200:
        fail("expected a cycle monte_carlo block with samples 200, got %r" % mc, res)
    doses = by_name(cyc.get("doses", []), "target", res)
    vois = tac_vois(ctx.example_tac)
    for v in vois:
        u = doses.get(v, {}).get("dose_u_mc_Gy")
        if not _number(u) or u <= 0:
            fail("expected a finite dose_u_mc_Gy > 0 for VOI target %s, got %r" % (v, u), res)
    if runs["a"][1] != runs["b"][1]:
        fail("expected two runs with --mc-seed 7 to write byte-identical results.json, they differ", runs["b"][0])
    other = by_name(single_cycle(runs["c"][2], runs["c"][0]).get("doses", []), "target", runs["c"][0])
    same = [v for v in vois if other.get(v, {}).get("dose_u_mc_Gy") == doses[v]["dose_u_mc_Gy"]]
    if same:
        fail("expected --mc-seed 8 to give different dose_u_mc_Gy than --mc-seed 7, equal for %s" % same, runs["c"][0])


def case_svalues_missing_pair(ctx):
    # A user S-value table without liver <- spleen: exit 2, message names the file, the target and the source.
    table = ctx.write("sv_missing.csv", user_svalue_text(skip=("liver", "spleen")))
    tac = ctx.write("tac_user.csv", USER_SV_TAC)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--svalues", table, "--out", out)
    expect_bad_input(ctx, res, out, file_name="sv_missing.csv", words=("liver", "spleen"))
    if not any(mentions_word(ln, "liver") and mentions_word(ln, "spleen") and "sv_missing.csv" in ln
               for ln in res.stderr.split("\n")):
        fail("expected one line naming sv_missing.csv, the target liver and the source spleen", res)


def case_svalues_with_a_phantom(ctx):
    # --phantom X beside --svalues T: T's S-values would be used and X ignored without a word (noticed
    # in 0.16); the pair is refused: exit 2 naming both options, nothing written.
    table = ctx.write("my_svalues.csv", user_svalue_text())
    tac = ctx.write("tac_user.csv", USER_SV_TAC)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", "icrp110-af", "--svalues", table,
                  "--out", out)
    expect_bad_input(ctx, res, out, words=("--phantom", "icrp110-af", "--svalues"))


def case_svalues_negative_entry(ctx):
    # A user S-value table with S(spleen <- liver) = -2.5e-7 on line 5: exit 2, message names file, line and value.
    table = ctx.write("sv_negative.csv", user_svalue_text(override={("spleen", "liver"): "-2.5e-7"}))
    with open(table, encoding="utf-8") as f:
        line = next(i for i, ln in enumerate(f, 1) if "-2.5e-7" in ln)
    tac = ctx.write("tac_user.csv", USER_SV_TAC)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--svalues", table, "--out", out)
    expect_bad_input(ctx, res, out, file_name="sv_negative.csv", words=("-2.5e-7",))
    if not re.search(r"(sv_negative\.csv:%d\b|line\s*%d\b)" % (line, line), res.stderr):
        fail("expected the message to name line %d of sv_negative.csv" % line, res)


def case_marrow_blood_without_blood(ctx):
    # Marrow method "blood" but no blood samples in cycle 1: exit 2, message names the file, cycle 1 and blood.
    c = synthetic_case(ctx)
    del c["cycles"][0]["blood"]
    res = bad_case_file(ctx, c, "no_blood.json", [])
    if not any("no_blood.json" in ln and mentions_word(ln, "blood") and re.search(r"cycle\W*1\b", ln)
               for ln in res.stderr.split("\n")):
        fail("expected a line naming no_blood.json, cycle 1 and the missing blood samples", res)


def case_marrow_image_without_fraction(ctx):
    # Marrow method "image" without l2l4_fraction: exit 2, message names dose.marrow.l2l4_fraction as missing.
    c = synthetic_case(ctx)
    c["dose"]["marrow"] = {"method": "image"}
    bad_case_file(ctx, c, "image_no_fraction.json", [("dose.marrow.l2l4_fraction", ("missing",))])


def case_whole_body_below_organs(ctx):
    # whole_body activities x 0.1 (TIA below the organs' sum): exit 2, message names the whole-body TIA value.
    res_good = ctx.run("run", synthetic_case_path(ctx), "--out", ctx.path("good"), "--quiet")
    expect_exit(res_good, 0, "run the synthetic example")
    _, cycles = _cycles(load_json_file(ctx.path("good", "results.json"), res_good), 2, res_good)
    wb = by_name(cycles[0].get("vois", []), "name", res_good).get("whole_body", {}).get("tia_MBq_h")
    if not _number(wb):
        fail("expected a whole_body VOI with a TIA in cycle 1 of the synthetic example, got %r" % wb, res_good)
    c = synthetic_case(ctx)
    for cy in c["cycles"]:
        for tp in cy["timepoints"]:
            if "whole_body" in tp["vois"]:
                tp["vois"]["whole_body"]["activity_MBq"] *= 0.1
    res = bad_case_file(ctx, c, "whole_body_low.json", [])
    lines = [ln for ln in res.stderr.split("\n") if re.search(r"whole[-_ ]body", ln, re.I)]
    nums = [float(x) for ln in lines for x in re.findall(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", ln)]
    if not any(rel_close(x, 0.1 * wb, 1e-6) for x in nums):
        fail("expected a line about the whole-body TIA naming its value %.10g MBq h (0.1 x %.10g)"
             % (0.1 * wb, wb), res)


def case_whole_body_without_source(ctx):
    # A whole_body VOI with icrp110-am (no whole-body source): exit 2, message names whole_body and icrp110-am.
    res = bad_tac_case(ctx, GOOD_LIVER_3 + "whole_body,4,3000\nwhole_body,24,2000\nwhole_body,96,900\n",
                       "whole_body_am.csv", words=("whole_body", "icrp110-am"))
    if "whole-body source" not in res.stderr and "whole_body source" not in res.stderr:
        fail("expected the message to say that icrp110-am has no whole-body source", res)


def case_overlapping_vois(ctx):
    # kidneys and kidney_left in one table (the same activity twice): exit 2, message names both VOIs.
    res = bad_tac_case(ctx, "voi,time_h,activity_MBq\nkidneys,4,30\nkidneys,24,25\nkidneys,96,15\n"
                            "kidney_left,4,15\nkidney_left,24,12\nkidney_left,96,7\n",
                       "overlap.csv", words=("kidneys", "kidney_left"))
    if "overlap" not in res.stderr:
        fail("expected the message to say that the VOIs overlap", res)


def bad_liver_run(ctx, *options, words):
    # `run --tac` of a good liver TAC with `options`: exit 2, the message names --body-mass-kg and `words`.
    tac = ctx.write("good.csv", GOOD_LIVER_3)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", "icrp89-male", "--out", out, *options)
    expect_bad_input(ctx, res, out, must_mention=("--body-mass-kg",), words=words)


def case_cross_scaling_without_body_mass(ctx):
    # --cross-scaling body-mass with --tac but no --body-mass-kg: exit 2, message names body-mass and --body-mass-kg.
    bad_liver_run(ctx, "--cross-scaling", "body-mass", words=("body-mass",))


def case_negative_body_mass_unused(ctx):
    # Review of 0.15 (F8): --body-mass-kg -70 without body-mass cross scaling exited 0 and recorded
    # body_mass_g -70000 in results.json. A body mass is checked whenever it is given.
    bad_liver_run(ctx, "--body-mass-kg", "-70", words=("-70",))


# ----------------------------------------------------------------------------- radiobiology (BED) and `lutdose plan`

KIDNEY_AB_GY = 2.6          # data/radiobiology/tissue_parameters.csv, kidney*
KIDNEY_TREP_H = 2.8
KIDNEY_DOSE_LIMIT_GY = 23.0  # data/radiobiology/limits.csv defaults
KIDNEY_BED_LIMIT_GY = 40.0
PLAN_A_MAX_MBQ = 7400.0      # docs/plan.md defaults
PLAN_A_STANDARD_MBQ = 7400.0


def synthetic_four_cycles_path(ctx):
    return os.path.join(ctx.source, "examples", "synthetic-four-cycles", "case.json")


def history_csv(rows, columns=("cycle", "administered_MBq", "target", "dose_Gy", "t_eff_h")):
    """A dose history table (docs/plan.md) from rows of values in the order of `columns`."""
    return ",".join(columns) + "\n" + "".join(",".join(str(v) for v in r) + "\n" for r in rows)


def kidney_history(dose_per_cycle_Gy, cycles=2, mbq=7400, t_eff_h=56):
    return history_csv([(c, mbq, "kidneys", dose_per_cycle_Gy, t_eff_h) for c in range(1, cycles + 1)])


def run_plan(ctx, args, what):
    """`lutdose plan ARGS`, expected to succeed and print the JSON on stdout."""
    res = ctx.run("plan", *args)
    expect_exit(res, 0, what)
    return res, parse_json_stdout(res)


def plan_target(doc, name, res):
    targets = doc.get("targets")
    if not isinstance(targets, list):
        fail("expected a 'targets' list in the plan JSON, got %r" % targets, res)
    t = by_name(targets, "name", res).get(name)
    if t is None:
        fail("expected target %s in the plan's targets, got %s" % (name, [x.get("name") for x in targets]), res)
    return t


def plan_number(obj, key, res, what):
    v = obj.get(key)
    if not _number(v):
        fail("%s: expected a finite number %s, got %r" % (what, key, v), res)
    return v


def g_mono(t_eff_h, t_rep_h):
    """G = lambda/(lambda + mu) of a mono-exponential dose rate (methods.md §7.1)."""
    lam, mu = math.log(2) / t_eff_h, math.log(2) / t_rep_h
    return lam / (lam + mu)


def bed_of(dose_Gy, g, ab):
    return dose_Gy + g * dose_Gy * dose_Gy / ab


def dose_for_bed(bed_Gy, g, ab):
    """The cycle dose whose BED is bed_Gy (the root of x + G x^2/(a/b) = bed_Gy), 0 for bed_Gy <= 0."""
    if bed_Gy <= 0:
        return 0.0
    return 2.0 * bed_Gy / (1.0 + math.sqrt(1.0 + 4.0 * g * bed_Gy / ab))


def expected_kidney_plan(strategy, doses_Gy, mbq, t_eff_h, dose_limit, bed_limit, planned=4, k=1.0, cv=0.10):
    """docs/plan.md steps 1-4 for a history of the single target 'kidneys' with a dose and a BED limit,
    previous-cycle prediction, all cycles at `mbq`. Returns (activity_MBq, binding (target, quantity, limit),
    the target's max_activity_MBq)."""
    d = doses_Gy[-1] / (mbq / 1000.0)
    d_safe = d + k * cv * d
    g = g_mono(t_eff_h, KIDNEY_TREP_H)
    r_dose = dose_limit - sum(doses_Gy)
    r_bed = bed_limit - sum(bed_of(x, g, KIDNEY_AB_GY) for x in doses_Gy)
    n = 1 if strategy == "fixed-until-limit" else planned - len(doses_Gy)
    a_dose = 1000.0 * r_dose / (n * d_safe)
    a_bed = 1000.0 * dose_for_bed(r_bed / n, g, KIDNEY_AB_GY) / d_safe
    if strategy == "max-bed":
        a_dose = math.inf  # the kidneys have a BED limit: their dose limit is reported, not applied
    if a_dose <= a_bed:
        a, binding = a_dose, ("kidneys", "dose_Gy", dose_limit)
    else:
        a, binding = a_bed, ("kidneys", "bed_Gy", bed_limit)
    max_activity = min(a_dose, a_bed)
    if strategy == "fixed-until-limit":
        max_activity = min(max_activity, PLAN_A_STANDARD_MBQ)
        if PLAN_A_STANDARD_MBQ <= a:
            a, binding = PLAN_A_STANDARD_MBQ, (None, "a_standard", PLAN_A_STANDARD_MBQ)
    if a > PLAN_A_MAX_MBQ:
        a, binding = PLAN_A_MAX_MBQ, (None, "a_max", PLAN_A_MAX_MBQ)
    return a, binding, max_activity


def case_bed_in_run(ctx):
    # Synthetic two-cycle run: kidneys have bed_Gy > dose_Gy, bed_Gy = D + bed_g D^2/2.6 and eqd2_Gy = bed_Gy/(1 + 2/2.6)
    # (1e-12), alpha/beta 2.6 Gy, T_rep 2.8 h, a bed_method; cumulative BED = sum of the cycles' (1e-12); Adrenals (no
    # tissue parameters) has no BED; stdout has the history table of the organs at risk with the cumulative values.
    out = ctx.path("out")
    res = ctx.run("run", synthetic_case_path(ctx), "--out", out)
    expect_exit(res, 0, "run examples/synthetic-two-cycles/case.json")
    doc = load_json_file(os.path.join(out, "results.json"), res)
    patient, cycles = _cycles(doc, 2, res)
    eqd2_factor = 1.0 + 2.0 / KIDNEY_AB_GY
    kidney = []
    for c in cycles:
        cn = c.get("cycle")
        doses = by_name(c.get("doses", []), "target", res)
        k = doses.get("kidneys")
        if k is None:
            fail("cycle %s: expected a dose entry for kidneys, targets are %s" % (cn, sorted(doses)), res)
        what = "cycle %s, kidneys" % cn
        dose = plan_number(k, "dose_Gy", res, what)
        bed = plan_number(k, "bed_Gy", res, what)
        eqd2 = plan_number(k, "eqd2_Gy", res, what)
        g = plan_number(k, "bed_g", res, what)
        if not bed > dose:
            fail("%s: expected bed_Gy > dose_Gy, got bed_Gy %r and dose_Gy %r" % (what, bed, dose), res)
        if not rel_close(eqd2, bed / eqd2_factor, 1e-12):
            fail("%s: expected eqd2_Gy = bed_Gy/(1 + 2/2.6) = %.17g (rel 1e-12), got %r"
                 % (what, bed / eqd2_factor, eqd2), res)
        if k.get("alpha_beta_Gy") != KIDNEY_AB_GY or k.get("repair_half_time_h") != KIDNEY_TREP_H:
            fail("%s: expected alpha_beta_Gy 2.6 and repair_half_time_h 2.8 (tissue_parameters.csv), got %r and %r"
                 % (what, k.get("alpha_beta_Gy"), k.get("repair_half_time_h")), res)
        if not 0 < g <= 1 or not rel_close(bed, bed_of(dose, g, KIDNEY_AB_GY), 1e-12):
            fail("%s: expected bed_g in (0, 1] and bed_Gy = D + bed_g D^2/2.6 = %.17g (rel 1e-12), got bed_g %r, "
                 "bed_Gy %r" % (what, bed_of(dose, g, KIDNEY_AB_GY), g, bed), res)
        if not isinstance(k.get("bed_method"), str) or not k["bed_method"]:
            fail("%s: expected a bed_method string, got %r" % (what, k.get("bed_method")), res)
        adr = doses.get("Adrenals")
        if adr is None:
            fail("cycle %s: expected a dose entry for the icrp89-male region Adrenals" % cn, res)
        for key in ("bed_Gy", "eqd2_Gy"):
            if adr.get(key) is not None:
                fail("cycle %s: Adrenals has no tissue parameters, expected no %s, got %r" % (cn, key, adr[key]), res)
        kidney.append((dose, bed))
    cum = by_name(patient.get("cumulative", {}).get("doses", []), "target", res)
    ck = cum.get("kidneys")
    if ck is None:
        fail("expected kidneys in patients[0].cumulative.doses, got %s" % sorted(cum), res)
    total_bed = kidney[0][1] + kidney[1][1]
    got = ck.get("bed_Gy")
    if not _number(got) or not rel_close(got, total_bed, 1e-12):
        fail("expected cumulative bed_Gy of kidneys = %.17g + %.17g = %.17g (rel 1e-12), got %r"
             % (kidney[0][1], kidney[1][1], total_bed, got), res)
    if not _number(ck.get("eqd2_Gy")) or not rel_close(ck["eqd2_Gy"], total_bed / eqd2_factor, 1e-12):
        fail("expected cumulative eqd2_Gy of kidneys = %.17g / (1 + 2/2.6) (rel 1e-12), got %r"
             % (total_bed, ck.get("eqd2_Gy")), res)
    if "Adrenals" in cum and cum["Adrenals"].get("bed_Gy") is not None:
        fail("expected no cumulative bed_Gy for Adrenals (no tissue parameters), got %r" % cum["Adrenals"]["bed_Gy"],
             res)
    # The history table: its title, then one row per organ at risk and cycle:
    # target cycle MBq Gy/GBq dose cum.dose cum.BED %dose-limit %BED-limit.
    lines = res.stdout.split("\n")
    title = [i for i, ln in enumerate(lines) if "history of the organs at risk" in ln]
    if not title:
        fail("expected the stdout of a two-cycle run to have the 'history of the organs at risk' table", res)
    rows = {}
    for ln in lines[title[0] + 1:]:
        if not ln.strip():
            break
        f = ln.split()
        if f[0] == "kidneys" and len(f) >= 9:
            rows[f[1]] = f
    cum_dose = cum_bed = 0.0
    for i, (dose, bed) in enumerate(kidney, 1):
        cum_dose += dose
        cum_bed += bed
        f = rows.get(str(i))
        if f is None:
            fail("expected a kidneys row for cycle %d in the history table" % i, res)
        try:
            vals = [float(x) for x in f[4:9]]
        except ValueError:
            fail("expected numbers in the history table row %r" % " ".join(f), res)
        want = [dose, cum_dose, cum_bed, 100 * cum_dose / KIDNEY_DOSE_LIMIT_GY, 100 * cum_bed / KIDNEY_BED_LIMIT_GY]
        names = ["dose", "cumulative dose", "cumulative BED", "% of the 23 Gy dose limit", "% of the 40 Gy BED limit"]
        for name, v, w, tol in zip(names, vals, want, (0.005, 0.005, 0.005, 0.5, 0.5)):
            if abs(v - w) > tol * (1 + 1e-9):
                fail("history table, kidneys cycle %d: expected %s %.6g (as printed, within %g), got %s"
                     % (i, name, w, tol, v), res)


def case_bed_test_vector_via_history_plan(ctx):
    # History of kidneys 5 Gy x 2 cycles at t_eff 56 h (G = 1/21 with T_rep 2.8 h, BED 5.4579 Gy per cycle, methods
    # §7.5): the plan's cumulative BED = 2 x 5.4579 + dA + G (dA)^2/2.6 (d, A from the JSON) to 1e-4, g = 1/21;
    # with --planned-cycles 2 the plan says stop (binding planned_cycles, activity 0).
    hist = ctx.write("kidney_5Gy.csv", kidney_history(5))
    res, doc = run_plan(ctx, ("--history", hist), "plan --history kidney_5Gy.csv")
    k = plan_target(doc, "kidneys", res)
    g = 1.0 / 21.0
    cycle_bed = 5.0 + g * 25.0 / KIDNEY_AB_GY  # 5.457875...
    if abs(cycle_bed - 5.4579) > 5e-5:
        fail("test vector: expected BED 5.4579 Gy of a 5 Gy cycle, computed %.6g" % cycle_bed)
    if not _number(k.get("g")) or not rel_close(k["g"], g, 1e-9):
        fail("expected the planned cycle's g of kidneys = 1/21 = %.12g (t_eff 56 h, T_rep 2.8 h), got %r"
             % (g, k.get("g")), res)
    d = plan_number(k, "predicted_dose_Gy_per_GBq", res, "kidneys")
    a = plan_number(doc, "activity_MBq", res, "plan") / 1000.0
    if not rel_close(d, 5.0 / 7.4, 1e-12) or not a > 0:
        fail("expected predicted_dose_Gy_per_GBq 5/7.4 (previous cycle) and activity_MBq > 0, got %r and %r"
             % (d, doc.get("activity_MBq")), res)
    b = d * a + g * (d * a) ** 2 / KIDNEY_AB_GY
    want = 2 * cycle_bed + b
    got = plan_number(k, "cumulative_bed_Gy", res, "kidneys")
    if abs(got - want) > 1e-4:
        fail("expected kidneys' cumulative_bed_Gy = 2 x %.6f + %.6f (planned cycle, d = %.6g Gy/GBq, A = %.6g GBq) "
             "= %.6f (within 1e-4), got %r" % (cycle_bed, b, d, a, want, got), res)
    got = plan_number(k, "cumulative_dose_Gy", res, "kidneys")
    if abs(got - (10.0 + d * a)) > 1e-9:
        fail("expected kidneys' cumulative_dose_Gy = 10 + dA = %.10g, got %r" % (10.0 + d * a, got), res)
    res, doc = run_plan(ctx, ("--history", hist, "--planned-cycles", "2"), "plan --history --planned-cycles 2")
    b = doc.get("binding") or {}
    if doc.get("stop") is not True or doc.get("activity_MBq") != 0 or b.get("quantity") != "planned_cycles" \
            or b.get("limit") != 2:
        fail("expected, with both of 2 planned cycles delivered, stop true, activity_MBq 0 and binding "
             "planned_cycles 2; got stop %r, activity_MBq %r, binding %r"
             % (doc.get("stop"), doc.get("activity_MBq"), doc.get("binding")), res)


def case_plan_after_cycle_two_keeps_bed_under_limit(ctx):
    # `plan` of the synthetic two-cycle case: next cycle 3, activity in (0, 7400] MBq, kidneys' cumulative dose and
    # BED within their limits; the real cycle-3 kidney Gy/GBq of the four-cycle example (+5 %/cycle) lies within the
    # prediction +- 2u.
    res, doc = run_plan(ctx, (synthetic_case_path(ctx),), "plan examples/synthetic-two-cycles/case.json")
    if doc.get("next_cycle") != 3:
        fail("expected next_cycle 3, got %r" % doc.get("next_cycle"), res)
    a = plan_number(doc, "activity_MBq", res, "plan")
    if not 0 < a <= 7400 or doc.get("stop") is not False:
        fail("expected stop false and activity_MBq in (0, 7400], got stop %r, activity_MBq %r"
             % (doc.get("stop"), a), res)
    k = plan_target(doc, "kidneys", res)
    for q, limit in (("dose", KIDNEY_DOSE_LIMIT_GY), ("bed", KIDNEY_BED_LIMIT_GY)):
        cum = plan_number(k, "cumulative_%s_Gy" % q, res, "kidneys")
        lim = plan_number(k, "limit_%s_Gy" % q, res, "kidneys")
        if lim != limit or not cum <= lim:
            fail("expected kidneys' limit_%s_Gy %g and cumulative_%s_Gy <= it, got limit %r, cumulative %r"
                 % (q, limit, q, lim, cum), res)
    d = plan_number(k, "predicted_dose_Gy_per_GBq", res, "kidneys")
    u = plan_number(k, "predicted_u_Gy_per_GBq", res, "kidneys")
    out = ctx.path("four")
    res4 = ctx.run("run", synthetic_four_cycles_path(ctx), "--out", out, "--quiet")
    expect_exit(res4, 0, "run examples/synthetic-four-cycles/case.json")
    _, cycles = _cycles(load_json_file(os.path.join(out, "results.json"), res4), 4, res4)
    c3 = [c for c in cycles if c.get("cycle") == 3]
    if not c3:
        fail("expected a cycle 3 in the four-cycle results, got cycles %s" % [c.get("cycle") for c in cycles], res4)
    truth = by_name(c3[0].get("doses", []), "target", res4).get("kidneys", {}).get("dose_Gy_per_GBq")
    if not _number(truth) or not abs(truth - d) <= 2 * u:
        fail("expected the four-cycle example's cycle-3 kidney dose_Gy_per_GBq within the plan's prediction "
             "%.6g +- 2 x %.6g = [%.6g, %.6g], got %r" % (d, u, d - 2 * u, d + 2 * u, truth), res4)


def case_plan_text_and_out(ctx):
    # `plan --text` prints "next cycle 3:" and every reasoning entry; `--out FILE` writes the stdout JSON (plus its
    # checksum member) and prints nothing (with --text: only the text); no temporary file is left next to it.
    case = synthetic_case_path(ctx)
    res, doc = run_plan(ctx, (case,), "plan CASE")
    res_out = ctx.run("plan", case, "--out", ctx.path("plan.json"))
    expect_exit(res_out, 0, "plan CASE --out plan.json")
    if res_out.stdout != "":
        fail("expected nothing on stdout with --out, got %d characters" % len(res_out.stdout), res_out)
    with open(ctx.path("plan.json"), encoding="utf-8", newline="") as f:
        written = f.read()
    # The file is the stdout JSON with a last member "lutdose_sha256": the SHA-256 of the bytes before it (so that
    # a later run replaces it only if unedited); rebuilt here with hashlib from the stdout JSON.
    body = res.stdout.rstrip()
    body = body[:-1].rstrip() if body.endswith("}") else body
    expected = body + ',\n  "lutdose_sha256": "%s"\n}\n' % hashlib.sha256(body.encode("utf-8")).hexdigest()
    if written != expected:
        fail("expected plan.json = the stdout JSON of `plan CASE` plus its lutdose_sha256 member (%d vs %d characters)"
             % (len(written), len(expected)), res_out)
    reasoning = doc.get("reasoning")
    if not isinstance(reasoning, list) or not reasoning:
        fail("expected a non-empty reasoning list, got %r" % reasoning, res)
    for args, name in (((case, "--text"), None), ((case, "--text", "--out", ctx.path("plan2.json")), "plan2.json")):
        rt = ctx.run("plan", *args)
        expect_exit(rt, 0, "plan %s" % " ".join(args[1:]))
        if not rt.stdout.startswith("next cycle 3:"):
            fail("expected the --text output to start with 'next cycle 3:'", rt)
        if rt.stdout.lstrip().startswith("{") or '"next_cycle"' in rt.stdout:
            fail("expected only text, no JSON, on stdout with --text", rt)
        missing = [r for r in reasoning if r not in rt.stdout]
        if missing:
            fail("expected every reasoning entry in the --text output; missing e.g. %r" % missing[0], rt)
        if name:
            with open(ctx.path(name), encoding="utf-8", newline="") as f:
                if f.read() != expected:
                    fail("expected %s (--text --out) = the stdout JSON of `plan CASE` plus its checksum" % name, rt)
    leftovers = sorted(n for n in os.listdir(ctx.tmp) if n not in ("plan.json", "plan2.json"))
    if leftovers:
        fail("expected only plan.json and plan2.json in the directory, found also %s" % leftovers)


def case_plan_strategies(ctx):
    # equal-split, fixed-until-limit and max-bed with --limit 'kidney*:bed_Gy:28', on the 5 Gy x 2 history (all
    # clamped) and an 8 Gy x 2 history (limits bind below 7400 MBq): activity > 0, activity, binding and the
    # target's max_activity_MBq as docs/plan.md steps 1-4 give them (rel 1e-9), limit_bed_Gy 28, limit_dose_Gy 23.
    for dose in (5, 8):
        name = "kidney_%dGy.csv" % dose
        hist = ctx.write(name, kidney_history(dose))
        for strategy in ("equal-split", "fixed-until-limit", "max-bed"):
            what = "plan --history %s --strategy %s --limit 'kidney*:bed_Gy:28'" % (name, strategy)
            res, doc = run_plan(ctx, ("--history", hist, "--strategy", strategy, "--limit", "kidney*:bed_Gy:28"), what)
            a_want, binding, max_a = expected_kidney_plan(strategy, [dose, dose], 7400.0, 56.0,
                                                          KIDNEY_DOSE_LIMIT_GY, 28.0)
            a = plan_number(doc, "activity_MBq", res, what)
            if not a > 0 or not rel_close(a, a_want, 1e-9):
                fail("%s: expected activity_MBq %.10g (> 0), got %r" % (what, a_want, a), res)
            b = doc.get("binding") or {}
            if (b.get("target"), b.get("quantity")) != binding[:2] or not _number(b.get("limit")) \
                    or not rel_close(b["limit"], binding[2], 1e-12):
                fail("%s: expected binding target %r, quantity %r, limit %g; got %r"
                     % (what, binding[0], binding[1], binding[2], doc.get("binding")), res)
            k = plan_target(doc, "kidneys", res)
            if k.get("limit_bed_Gy") != 28 or k.get("limit_dose_Gy") != KIDNEY_DOSE_LIMIT_GY:
                fail("%s: expected kidneys' limit_bed_Gy 28 (the stricter --limit) and limit_dose_Gy 23, got %r and %r"
                     % (what, k.get("limit_bed_Gy"), k.get("limit_dose_Gy")), res)
            if b.get("target") == "kidneys" and b["limit"] != k.get("limit_" + b["quantity"]):
                fail("%s: the binding limit %r differs from kidneys' limit_%s %r"
                     % (what, b["limit"], b["quantity"], k.get("limit_" + b["quantity"])), res)
            got = k.get("max_activity_MBq")
            if not _number(got) or not rel_close(got, max_a, 1e-9):
                fail("%s: expected kidneys' max_activity_MBq %.10g, got %r" % (what, max_a, got), res)


def case_plan_limit_already_exceeded(ctx):
    # Kidneys at 12 + 12 = 24 Gy (limit 23 Gy): exit 0 with stop true, activity_MBq 0 (not negative), binding kidneys'
    # dose_Gy 23, and a reasoning entry naming kidneys, 24 and 23; --text says STOP.
    hist = ctx.write("kidney_24Gy.csv", kidney_history(12))
    res, doc = run_plan(ctx, ("--history", hist), "plan --history kidney_24Gy.csv (limit exceeded)")
    if doc.get("stop") is not True or doc.get("activity_MBq") != 0:
        fail("expected stop true and activity_MBq 0, got stop %r and activity_MBq %r"
             % (doc.get("stop"), doc.get("activity_MBq")), res)
    b = doc.get("binding") or {}
    if (b.get("target"), b.get("quantity"), b.get("limit")) != ("kidneys", "dose_Gy", 23):
        fail("expected binding kidneys dose_Gy 23, got %r" % doc.get("binding"), res)
    k = plan_target(doc, "kidneys", res)
    if k.get("cumulative_dose_Gy") != 24:
        fail("expected kidneys' cumulative_dose_Gy 24 (nothing added at activity 0), got %r"
             % k.get("cumulative_dose_Gy"), res)
    if not any(mentions_word(r, "kidneys") and mentions_word(r, "24") and mentions_word(r, "23")
               for r in doc.get("reasoning", [])):
        fail("expected a reasoning entry naming kidneys, their cumulative 24 Gy and the 23 Gy limit", res)
    rt = ctx.run("plan", "--history", hist, "--text")
    expect_exit(rt, 0, "plan --history kidney_24Gy.csv --text")
    first = rt.stdout.split("\n", 1)[0]
    if not first.startswith("next cycle 3:") or "stop" not in first.lower():
        fail("expected the --text output to start with 'next cycle 3:' and say stop", rt)


def case_plan_missing_tissue_parameters(ctx):
    # Target pancreas with --limit pancreas:bed_Gy:20 (no tissue parameters): exit 2 naming pancreas and the missing
    # tissue parameters, no --out file.
    hist = ctx.write("pancreas.csv", history_csv([(1, 7400, "pancreas", 2.5, 56), (2, 7400, "pancreas", 2.6, 56)]))
    out = ctx.path("plan.json")
    res = ctx.run("plan", "--history", hist, "--limit", "pancreas:bed_Gy:20", "--out", out)
    expect_bad_input(ctx, res, out, words=("pancreas",), what="BED limit on pancreas without tissue parameters")
    if not any(mentions_word(ln, "pancreas") and re.search(r"tissue param", ln, re.I)
               and re.search(r"missing|\bno\b|not found|none", ln, re.I) for ln in res.stderr.split("\n")):
        fail("expected a line naming pancreas and its missing tissue parameters", res)


def case_plan_bad_history(ctx):
    # dose_Gy 'abc' (line 3), no dose_Gy column, administered_MBq -7400 (line 3): exit 2 naming the file, the line
    # (the header for the missing column), the column and the value; no --out file.
    cols = ("cycle", "administered_MBq", "target", "dose_Gy")
    for name, text, column, value, line in (
            ("dose_abc.csv", history_csv([(1, 7400, "kidneys", 5), (2, 7400, "kidneys", "abc")], cols),
             "dose_Gy", "abc", 3),
            ("no_dose_column.csv", history_csv([(1, 7400, "kidneys"), (2, 7400, "kidneys")], cols[:3]),
             "dose_Gy", None, 1),
            ("activity_negative.csv", history_csv([(1, 7400, "kidneys", 5), (2, -7400, "kidneys", 5)], cols),
             "administered_MBq", "-7400", 3)):
        hist = ctx.write(name, text)
        out = ctx.path("plan.json")
        res = ctx.run("plan", "--history", hist, "--out", out)
        expect_bad_input(ctx, res, out, file_name=name, must_mention=(column,), words=(value,) if value else (),
                         what="bad history %s" % name)
        rx = r"(%s:%d\b|line\s*%d\b%s)" % (re.escape(name), line, line, r"|%s:\s*header" % re.escape(name)
                                            if line == 1 else "")
        if not re.search(rx, res.stderr):
            fail("bad history %s: expected the message to name line %d%s" % (name, line,
                 " (the header)" if line == 1 else ""), res)


def case_plan_case_and_history_together(ctx):
    # A case file and --history together: exit 2, message names --history, no --out file.
    hist = ctx.write("kidney_5Gy.csv", kidney_history(5))
    out = ctx.path("plan.json")
    res = ctx.run("plan", synthetic_case_path(ctx), "--history", hist, "--out", out)
    expect_bad_input(ctx, res, out, must_mention=("--history",), what="plan with a case file and --history")


def _cycle_time_case(ctx, file_name, second_reference_time, first_reference_time=None):
    c = synthetic_case(ctx)
    if first_reference_time is not None:
        c["cycles"][0]["reference_time"] = first_reference_time
    c["cycles"][1]["reference_time"] = second_reference_time
    bad_case_file(ctx, c, file_name, [("cycles[1].reference_time", (second_reference_time,))])


def case_cycles_out_of_order(ctx):
    # The synthetic two-cycle case with the cycles' reference times swapped (cycle 2 before cycle 1): exit 2, message
    # names cycles[1].reference_time and its value.
    c = synthetic_case(ctx)
    t1, t2 = c["cycles"][0]["reference_time"], c["cycles"][1]["reference_time"]
    _cycle_time_case(ctx, "cycles_swapped.json", t1, first_reference_time=t2)


def case_cycles_overlapping(ctx):
    # Cycle 2's reference time 3 days after cycle 1's (its scans run to 168 h): exit 2, message names
    # cycles[1].reference_time and its value.
    c = synthetic_case(ctx)
    t1 = c["cycles"][0]["reference_time"]
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})(T.*)$", t1)
    if not m:
        fail("expected cycle 1's reference_time as YYYY-MM-DDThh:mm:ss, got %r" % t1)
    t2 = (datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3))) + datetime.timedelta(days=3)).isoformat() \
        + m.group(4)
    _cycle_time_case(ctx, "cycles_overlapping.json", t2)


def case_plan_bad_option(ctx):
    # --strategy fastest: exit 2, message names --strategy and the value, no --out file.
    hist = ctx.write("kidney_5Gy.csv", kidney_history(5))
    out = ctx.path("plan.json")
    res = ctx.run("plan", "--history", hist, "--strategy", "fastest", "--out", out)
    expect_bad_input(ctx, res, out, must_mention=("--strategy",), words=("fastest",), what="--strategy fastest")


def _organ_tac(ctx):
    """A TAC table of kidneys, liver and spleen from the synthetic example's kinetics (the names
    the shipped multi-organ compartment model observes)."""
    import math
    lam_p = math.log(2) / (6.647 * 24)
    def ex(th, t):
        return math.exp(-math.log(2) * t / th)
    curves = {"kidneys": lambda t: 148 * (0.85 * ex(56, t) + 0.15 * ex(3, t)),
              "liver": lambda t: 407 * (ex(70, t) - ex(1, t)),
              "spleen": lambda t: 148 * (ex(70, t) - ex(2, t))}
    lines = ["voi,time_h,activity_MBq"]
    for name, f in curves.items():
        for t in (0.5, 2, 6, 24, 48, 96, 168):
            lines.append("%s,%g,%.6g" % (name, t, f(t)))
    return ctx.write("organs.csv", "\n".join(lines) + "\n")


def case_compartment_model_run(ctx):
    # --model prrt_multiorgan_linear fits the observed VOIs jointly; results name the model and give finite TIAs and doses.
    tac = _organ_tac(ctx)
    out = ctx.path("out")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", 7400, "--phantom", "icrp89-male", "--out", out, "--quiet",
                  "--model", "prrt_multiorgan_linear")
    expect_exit(res, 0, "run with a compartment model")
    doc = load_json_file(os.path.join(out, "results.json"), res)
    cycle = single_cycle(doc, res)
    for v in cycle["vois"]:
        if v["fit"]["function"] != "compartment:prrt_multiorgan_linear":
            fail("expected VOI %s fitted by the compartment model, got %r" % (v["name"], v["fit"]["function"]), res)
        if not (isinstance(v["tia_MBq_h"], (int, float)) and v["tia_MBq_h"] > 0):
            fail("expected a positive TIA for %s, got %r" % (v["name"], v["tia_MBq_h"]), res)
    if not doc["options"]["fit"]["compartment_model"].endswith("prrt_multiorgan_linear.json"):
        fail("expected options.fit.compartment_model to name the model file", res)


def case_compartment_model_bad(ctx):
    # An unknown model name, and a model observing none of the input's VOIs, are bad input naming the model.
    tac = _organ_tac(ctx)
    out = ctx.path("out")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", 7400, "--phantom", "icrp89-male", "--out", out,
                  "--model", "no_such_model")
    expect_bad_input(ctx, res, out, must_mention=("--model", "no_such_model"))
    res = ctx.run("run", "--tac", tac, "--activity-MBq", 7400, "--phantom", "icrp89-male", "--out", out,
                  "--model", "blood_organ_linear")
    expect_bad_input(ctx, res, out, must_mention=("blood_organ_linear", "organ"))
    # a model file with an unknown compartment and a negative rate: both named, with their JSON paths
    with open(os.path.join(ctx.source, "models", "files", "blood_organ_linear.json"), encoding="utf-8") as f:
        model = json.load(f)
    model["transfers"][0]["to"] = "nowhere"
    model["parameters"][sorted(model["parameters"])[0]]["value"] = -0.5
    bad = ctx.write("bad_model.json", json.dumps(model))
    res = ctx.run("run", "--tac", tac, "--activity-MBq", 7400, "--phantom", "icrp89-male", "--out", out,
                  "--model", bad)
    expect_bad_input(ctx, res, out, file_name="bad_model.json", must_mention=("nowhere", "-0.5"))


# ----------------------------------------------------------------------------- hostile input (issue 10)

# Seconds a hostile input may take before its exit 2: the limits stop the work early, and a run of the
# small example takes well under a second, so 20 s only fails when the work is not bounded.
HOSTILE_SECONDS = 20
# Bytes of stderr a bad-input message may take: 50 problems listed, each value quoted to at most a few
# hundred characters (docs/case-file.md, "Limits").
MAX_MESSAGE_BYTES = 40000


def timed_run(ctx, *args, stdin_bytes=None):
    import time
    argv = [ctx.lutdose] + [str(a) for a in args]
    start = time.monotonic()
    try:
        cp = subprocess.run(argv, cwd=ctx.tmp, capture_output=True, timeout=TIMEOUT_S, input=stdin_bytes)
    except subprocess.TimeoutExpired as e:
        raise CaseFailure("command timed out after %d s: %s" % (TIMEOUT_S, shlex.join(argv))) from e
    seconds = time.monotonic() - start
    res = Result(argv, cp.returncode, cp.stdout.decode("utf-8", "replace"), cp.stderr.decode("utf-8", "replace"))
    return res, seconds


def hostile(ctx, file_name, args, must_mention=(), words=(), what=None, stdin_bytes=None):
    """Exit 2 within HOSTILE_SECONDS, a short message naming the file and the field, no output directory."""
    out = ctx.path("out_not_created")
    res, seconds = timed_run(ctx, *args, "--out", out, "--quiet", stdin_bytes=stdin_bytes)
    what = what or "hostile input %s" % file_name
    expect_bad_input(ctx, res, out, file_name=file_name, must_mention=must_mention, words=words, what=what)
    if seconds > HOSTILE_SECONDS:
        fail("%s: expected exit 2 within %d s, took %.1f s" % (what, HOSTILE_SECONDS, seconds), res)
    if len(res.stderr) > MAX_MESSAGE_BYTES:
        fail("%s: expected a message of at most %d bytes, got %d" % (what, MAX_MESSAGE_BYTES, len(res.stderr)))
    return res


def write_bytes(ctx, name, data):
    p = ctx.path(name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def case_text(ctx, mutate=None):
    c = example_case(ctx)
    if mutate:
        mutate(c)
    return json.dumps(c, indent=2) + "\n"


def case_input_json_number_out_of_range(ctx):
    # 1e400 (beyond the double range) as a count in a case file and as a rate in a model file: exit 2 naming the field.
    text = case_text(ctx).replace('"counts": 3137622.491726673', '"counts": 1e400', 1)
    if "1e400" not in text:
        fail("test setup: the liver count of time point 1 was not found in the example")
    p = ctx.write("huge_number.json", text)
    res = hostile(ctx, "huge_number.json", ["run", p], must_mention=("cycles[0].timepoints[1].vois.liver.counts",))
    with open(os.path.join(ctx.source, "models", "files", "blood_organ_linear.json"), encoding="utf-8") as f:
        model = f.read()
    m = re.search(r'"value"\s*:\s*[0-9.eE+-]+', model) or re.search(r':\s*[0-9]+\.[0-9]+', model)
    if not m:
        fail("test setup: no number found in blood_organ_linear.json")
    bad = ctx.write("model_huge.json", model[:m.start()] + m.group(0).split(":")[0] + ": 1e400" + model[m.end():])
    tac = ctx.write("tac.csv", GOOD_LIVER_3)
    hostile(ctx, "model_huge.json", ["run", "--tac", tac, "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM,
                                     "--model", bad])


def case_input_json_duplicate_key(ctx):
    # A key written twice in one object (the parser keeps the last value): exit 2 naming its path, in a
    # case file and in a model file.
    text = case_text(ctx).replace('"counts": 3137622.491726673', '"counts": 3137622.491726673, "counts": 1', 1)
    if '"counts": 1' not in text:
        fail("test setup: the liver count of time point 1 was not found in the example")
    p = ctx.write("dup_key.json", text)
    hostile(ctx, "dup_key.json", ["run", p], must_mention=("cycles[0].timepoints[1].vois.liver.counts", "twice"))
    with open(os.path.join(ctx.source, "models", "files", "blood_organ_linear.json"), encoding="utf-8") as f:
        model = json.load(f)
    first = next(iter(model))
    body = json.dumps(model)
    bad = ctx.write("model_dup.json", "{" + json.dumps(first) + ": null, " + body[1:])
    tac = ctx.write("tac.csv", GOOD_LIVER_3)
    hostile(ctx, "model_dup.json", ["run", "--tac", tac, "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM,
                                    "--model", bad], must_mention=(first, "twice"))


def case_input_json_deep_nesting(ctx):
    # 100 000 nested arrays in a case file, in its plan block (run and plan), and in a model file: exit 2, no crash.
    deep = "[" * 100000 + "]" * 100000
    text = case_text(ctx)
    p = ctx.write("deep.json", text.replace('"phantom": "icrp110-am"', '"phantom": ' + deep, 1))
    res = hostile(ctx, "deep.json", ["run", p], must_mention=("depth",))
    p2 = ctx.write("deep_plan.json", text.replace('"phantom": "icrp110-am"',
                                                  '"phantom": "icrp110-am", "plan": {"limits": ' + deep + '}', 1))
    hostile(ctx, "deep_plan.json", ["run", p2], must_mention=("depth",))
    res, seconds = timed_run(ctx, "plan", p2)
    expect_bad_input(ctx, res, None, file_name="deep_plan.json", must_mention=("depth",), what="plan deep_plan.json")
    m = ctx.write("deep_model.json", '{"compartments": ' + deep + '}')
    tac = ctx.write("tac.csv", GOOD_LIVER_3)
    hostile(ctx, "deep_model.json", ["run", "--tac", tac, "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM,
                                     "--model", m], must_mention=("depth",))


def case_input_cycle_beyond_int(ctx):
    # cycle 2147483648 (beyond the int range): exit 2 naming cycles[0].cycle and the value.
    def mutate(c):
        c["cycles"][0]["cycle"] = 2147483648
    p = ctx.write("big_cycle.json", case_text(ctx, mutate))
    hostile(ctx, "big_cycle.json", ["run", p], must_mention=("cycles[0].cycle",), words=("2147483648",))


def case_input_nul_and_invalid_utf8(ctx):
    # NUL in a patient id and a VOI name of a case file; invalid UTF-8 in a TAC cell and a CSV comment: exit 2.
    def nul_id(c):
        c["patient"]["id"] = "P\u0000004"
    p = ctx.write("nul_id.json", case_text(ctx, nul_id))
    hostile(ctx, "nul_id.json", ["run", p], must_mention=("patient.id",))

    def nul_voi(c):
        for tp in c["cycles"][0]["timepoints"]:
            tp["vois"]["liv\u0000er"] = tp["vois"].pop("liver")
    p = ctx.write("nul_voi.json", case_text(ctx, nul_voi))
    hostile(ctx, "nul_voi.json", ["run", p], must_mention=("NUL",))
    raw = case_text(ctx).encode().replace(b'"SNMMI-Patient_004"', b'"SNMMI-\xff\xfe004"', 1)
    p = write_bytes(ctx, "bad_utf8_id.json", raw)
    hostile(ctx, "bad_utf8_id.json", ["run", p], must_mention=("patient.id", "UTF-8"))
    args = ["--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM]
    t = write_bytes(ctx, "bad_utf8.csv", b"voi,time_h,activity_MBq\nliv\xff\xfeer,4,300\nliver,24,250\nliver,96,150\n")
    hostile(ctx, "bad_utf8.csv", ["run", "--tac", t] + args, must_mention=("voi", "UTF-8"))
    t = write_bytes(ctx, "bad_comment.csv", b"# made by \xc3\x28 scanner\n" + GOOD_LIVER_3.encode())
    hostile(ctx, "bad_comment.csv", ["run", "--tac", t] + args, must_mention=("bad_comment.csv:1", "UTF-8"))
    t = write_bytes(ctx, "nul_cell.csv", b"voi,time_h,activity_MBq\nliver\x00x,4,300\nliver,24,250\nliver,96,150\n")
    hostile(ctx, "nul_cell.csv", ["run", "--tac", t] + args, must_mention=("voi", "NUL"))


def case_input_utf8_bom_accepted(ctx):
    # A UTF-8 byte-order mark (spreadsheet export) before a TAC table and a case file is accepted.
    t = write_bytes(ctx, "bom.csv", b"\xef\xbb\xbf" + GOOD_LIVER_3.encode())
    res = ctx.run("run", "--tac", t, "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM, "--out", ctx.path("o1"),
                  "--quiet")
    expect_exit(res, 0, "run --tac with a BOM")
    p = write_bytes(ctx, "bom.json", b"\xef\xbb\xbf" + case_text(ctx).encode())
    res = ctx.run("run", p, "--out", ctx.path("o2"), "--quiet")
    expect_exit(res, 0, "run a case file with a BOM")


def case_input_stdin_bytes_stored(ctx):
    # --tac /dev/stdin: results.h5 stores exactly the bytes analysed, with their SHA-256.
    import hashlib
    h5py = import_h5py()
    data = GOOD_LIVER_3.encode()
    out = ctx.path("out")
    res, _ = timed_run(ctx, "run", "--tac", "/dev/stdin", "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM,
                       "--out", out, "--quiet", stdin_bytes=data)
    expect_exit(res, 0, "run --tac /dev/stdin")
    with h5py.File(os.path.join(out, "results.h5"), "r") as f:
        raw = f["/inputs/tac_csv"][()]
        raw = raw if isinstance(raw, bytes) else raw.encode()
        if raw != data:
            fail("expected /inputs/tac_csv to hold the %d bytes read from stdin, got %r" % (len(data), raw[:80]), res)
        if "/inputs/tac_csv_sha256" not in f:
            fail("expected /inputs/tac_csv_sha256 in results.h5", res)
        digest = f["/inputs/tac_csv_sha256"][()]
        digest = digest if isinstance(digest, str) else digest.decode()
        if digest != hashlib.sha256(data).hexdigest():
            fail("expected /inputs/tac_csv_sha256 = %s, got %s" % (hashlib.sha256(data).hexdigest(), digest), res)


def case_input_limit_points_per_tac(ctx):
    # 20 000 points in one TAC, and a table of a million rows: exit 2 within seconds naming the limit.
    rows = ["voi,time_h,activity_MBq"] + ["liver,%d,%g" % (i + 1, 300.0 * math.exp(-0.004 * i)) for i in range(20000)]
    t = ctx.write("points_20k.csv", "\n".join(rows) + "\n")
    hostile(ctx, "points_20k.csv", ["run", "--tac", t, "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM],
            must_mention=("points",))
    rows = ["voi,time_h,activity_MBq"] + ["liver,%d,1" % (i + 1) for i in range(1000000)]
    t = ctx.write("points_1m.csv", "\n".join(rows) + "\n")
    hostile(ctx, "points_1m.csv", ["run", "--tac", t, "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM])


def case_input_limit_name_length(ctx):
    # A 5 MB patient id in a case file and a TAC table: exit 2 within seconds, the name not quoted whole.
    def mutate(c):
        c["patient"]["id"] = "x" * 5000000
    p = ctx.write("long_id.json", case_text(ctx, mutate))
    hostile(ctx, "long_id.json", ["run", p], must_mention=("patient.id",))
    t = ctx.write("long_id.csv", "patient,voi,time_h,activity_MBq\n" +
                  "".join("%s,liver,%d,%d\n" % ("y" * 5000000, h, a) for h, a in ((4, 300), (24, 250), (96, 150))))
    hostile(ctx, "long_id.csv", ["run", "--tac", t, "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM],
            must_mention=("patient",))


def case_input_many_problems(ctx):
    # 100 000 problems (unknown keys) in a case file: exit 2 within seconds; the first problems listed, then a count.
    def mutate(c):
        for i in range(100000):
            c["patient"]["k%d" % i] = i
    p = ctx.write("many_problems.json", case_text(ctx, mutate))
    res = hostile(ctx, "many_problems.json", ["run", p])
    if not re.search(r"and 99\d\d\d more", res.stderr):
        fail("expected the message to end with 'and N more' problems", res)


def case_input_long_value_truncated(ctx):
    # A 15-million-character activity cell: exit 2 within seconds, the value quoted only in part.
    t = ctx.write("long_cell.csv", "voi,time_h,activity_MBq\nliver,4," + "9" * 15000000 + "\nliver,24,250\n")
    hostile(ctx, "long_cell.csv", ["run", "--tac", t, "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM],
            must_mention=("activity_MBq",))


def case_input_implausible_values(ctx):
    # Values that pass "finite" but no physics (issue 10, finding 7): exit 2 naming the field, within seconds.
    def setter(key_path, value):
        def mutate(c):
            obj = c
            for k in key_path[:-1]:
                obj = obj[k]
            obj[key_path[-1]] = value
        return mutate
    tp = ["cycles", 0, "timepoints", 1]
    for name, path, value, field in (
            ("activity_1e308.json", tp + ["vois", "spleen"], {"activity_MBq": 1e308},
             "cycles[0].timepoints[1].vois.spleen.activity_MBq"),
            ("duration_1e-310.json", tp + ["duration_s"], 1e-310, "cycles[0].timepoints[1].duration_s"),
            ("counts_1e100.json", tp + ["vois", "liver", "counts"], 1e100, "cycles[0].timepoints[1].vois.liver.counts"),
            ("counts_1e170.json", tp + ["vois", "liver", "counts"], 1e170, "cycles[0].timepoints[1].vois.liver.counts")):
        p = ctx.write(name, case_text(ctx, setter(path, value)))
        hostile(ctx, name, ["run", p], must_mention=(field,))
    # a calibration factor of 2e-3 cps/MBq (inside its own range) turns the liver's 1786 cps into 9e5 MBq: the
    # derived activity is checked too
    p = ctx.write("cf_tiny.json", case_text(ctx, setter(["protocols", EXAMPLE_PROTOCOL, "cf_cps_per_MBq"], 2e-3)))
    hostile(ctx, "cf_tiny.json", ["run", p], must_mention=("cycles[0].timepoints[0].vois.liver",))
    table = ctx.write("sv_huge.csv", user_svalue_text(override={("liver", "liver"): "1.6e304"}))
    tac = ctx.write("tac.csv", USER_SV_TAC)
    hostile(ctx, "sv_huge.csv", ["run", "--tac", tac, "--activity-MBq", 7000, "--svalues", table],
            must_mention=("s_mGy_per_MBq_s",), words=("1.6e304",))
    t = ctx.write("tac_huge.csv", "voi,time_h,activity_MBq\nliver,4,1e300\nliver,24,250\nliver,96,150\n")
    hostile(ctx, "tac_huge.csv", ["run", "--tac", t, "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM],
            must_mention=("activity_MBq",))


def case_input_implausible_parameters(ctx):
    # Case-file parameters and dose-history cells that are finite but physically meaningless (issue 10, build item
    # 3): exit 2 naming the file and the field, never a run with a 47-digit dose.
    def deep_set(path, value):
        def mutate(c):
            obj = c
            for k in path[:-1]:
                obj = obj[k] if isinstance(k, int) else obj.setdefault(k, {})
            obj[path[-1]] = value
        return mutate
    def bad_plan(name, args, field):  # `plan` has no --quiet: hostile() would fail on the option
        out = ctx.path("plan_not_created.json")
        res = ctx.run("plan", *args, "--out", out)
        expect_bad_input(ctx, res, out, file_name=name, must_mention=(field,), what="plan %s" % name)
    tissue = ["radiobiology", "tissues", "kidneys"]
    for i, (path, value, field) in enumerate((
            (["protocols", EXAMPLE_PROTOCOL, "cf_cps_per_MBq"], 1e308, "cf_cps_per_MBq"),
            (tissue, {"alpha_beta_Gy": 2.6, "repair_half_time_h": 1e-310}, "repair_half_time_h"),
            (tissue, {"alpha_beta_Gy": 2.6, "repair_half_time_h": 1e308}, "repair_half_time_h"),
            (tissue, {"alpha_beta_Gy": 1e308, "repair_half_time_h": 2.8}, "alpha_beta_Gy"),
            (["half_life_h"], 1e300, "half_life_h"),
            (["dose", "marrow", "rmblr"], 1e-310, "rmblr"),
            (["dose", "organ_density_g_per_mL"], 1e308, "organ_density_g_per_mL"))):
        name = "implausible_%d.json" % i
        p = ctx.write(name, case_text(ctx, deep_set(path, value)))
        hostile(ctx, name, ["run", p], must_mention=(field,))
    for key, value in (("a_max_MBq", 1e300), ("safety_k", 1e308), ("prediction_cv", 1e308)):
        name = "plan_%s.json" % key
        bad_plan(name, [ctx.write(name, case_text(ctx, deep_set(["plan", key], value)))], "plan." + key)
    with open(os.path.join(ctx.source, "examples", "synthetic-two-cycles", "case.json"), encoding="utf-8") as f:
        two = f.read()
    for i, hct in enumerate((1e-310, 0.9999999999)):
        c = json.loads(two)
        c["cycles"][0]["blood"]["hematocrit"] = hct
        name = "hematocrit_%d.json" % i
        hostile(ctx, name, ["run", ctx.write(name, json.dumps(c))], must_mention=("hematocrit",))
    for i, (row, field) in enumerate((((1, 7400, "kidneys", 1e300, 50), "dose_Gy"),
                                      ((1, 7400, "kidneys", 5, 50, 1e300), "bed_Gy"),
                                      ((1, 7400, "kidneys", 5, 1e300), "t_eff_h"),
                                      ((1, 7400, "kidneys", 5, 1e-310), "t_eff_h"))):
        cols = ("cycle", "administered_MBq", "target", "dose_Gy", "t_eff_h", "bed_Gy")[:len(row)]
        name = "history_%d.csv" % i
        bad_plan(name, ["--history", ctx.write(name, history_csv([row], cols))], field)


def case_input_referenced_files_confined(ctx):
    # dose.svalues / fit.model naming /dev/stdin, /dev/zero, /etc/passwd, ../ or a directory: exit 2 within
    # seconds, nothing of the named file quoted; --allow-external-files admits an absolute path.
    base = case_text(ctx)
    for i, (key, value) in enumerate((("svalues", "/dev/stdin"), ("svalues", "/dev/zero"), ("svalues", "/etc/passwd"),
                                      ("svalues", "../outside.csv"), ("svalues", "sub"), ("model", "/dev/zero"),
                                      ("model", "/etc/passwd"), ("model", "../m.json"))):
        block = "dose" if key == "svalues" else "fit"
        c = json.loads(base)
        c.setdefault(block, {})[key] = value
        name = "ref%d.json" % i
        p = ctx.write(name, json.dumps(c))
        os.makedirs(ctx.path("sub"), exist_ok=True)
        res = hostile(ctx, name, ["run", p], must_mention=(block + "." + key,), stdin_bytes=b"")
        if "root:" in res.stderr:
            fail("expected no content of /etc/passwd in the message", res)
    # a symbolic link beside the case file pointing outside it is refused too
    os.symlink("/etc/passwd", ctx.path("link.csv"))
    c = json.loads(base)
    c["dose"]["svalues"] = "link.csv"
    p = ctx.write("ref_link.json", json.dumps(c))
    hostile(ctx, "ref_link.json", ["run", p], must_mention=("dose.svalues",))


def _berlin_case(ctx, reference, start, zone=None):
    c = example_case(ctx)
    cy = c["cycles"][0]
    cy["reference_time"] = reference
    cy["administered"]["measured_at_h"] = cy["administered"].pop("measured_at", None) and -1.0
    tp = cy["timepoints"][1]
    del tp["start_h"]
    tp["start"] = start
    if zone:
        c["time_zone"] = zone
    return c


def case_input_dates(ctx):
    # Impossible dates are bad input naming the field; ISO offsets and an IANA time zone are honoured, also
    # across the 2021-03-28 daylight-saving change in Europe (02:00 CET -> 03:00 CEST: that day has 23 h).
    for bad in ("2021-02-31T10:00:00", "2021-04-31T10:00:00"):
        c = example_case(ctx)
        c["cycles"][0]["reference_time"] = bad
        name = "date_%s.json" % bad[:10]
        p = ctx.write(name, json.dumps(c))
        hostile(ctx, name, ["run", p], must_mention=("cycles[0].reference_time",), words=(bad,))

    def start_h(c, name):
        p = ctx.write(name, json.dumps(c))
        out = ctx.path("out_" + name)
        res = ctx.run("run", p, "--out", out, "--quiet")
        expect_exit(res, 0, "run %s" % name)
        doc = load_json_file(os.path.join(out, "results.json"), res)
        v = single_cycle(doc, res)["vois"][0]
        return v["quantification"][1]["start_h"], res
    # 2021-03-27 10:00 CET (+01:00) to 2021-03-28 10:00 CEST (+02:00): 23 h.
    h, res = start_h(_berlin_case(ctx, "2021-03-27T10:00+01:00", "2021-03-28T10:00+02:00"), "offsets.json")
    if abs(h - 23.0) > 1e-9:  # exact arithmetic on whole hours
        fail("expected start_h 23 between 2021-03-27T10:00+01:00 and 2021-03-28T10:00+02:00, got %r" % h, res)
    h, res = start_h(_berlin_case(ctx, "2021-03-27T10:00", "2021-03-28T10:00", "Europe/Berlin"), "berlin.json")
    if abs(h - 23.0) > 1e-9:
        fail("expected start_h 23 across the DST change with time_zone Europe/Berlin, got %r" % h, res)
    # without a time zone, naive times are read on one clock without DST: 24 h
    h, res = start_h(_berlin_case(ctx, "2021-03-27T10:00", "2021-03-28T10:00"), "naive.json")
    if abs(h - 24.0) > 1e-9:
        fail("expected start_h 24 between naive times a day apart, got %r" % h, res)
    for name, c, mention in (
            ("zone_unknown.json", _berlin_case(ctx, "2021-03-27T10:00", "2021-03-28T10:00", "Mars/Olympus"),
             "time_zone"),
            ("zone_gap.json", _berlin_case(ctx, "2021-03-27T10:00", "2021-03-28T02:30", "Europe/Berlin"),
             "cycles[0].timepoints[1].start"),
            ("mixed.json", _berlin_case(ctx, "2021-03-27T10:00", "2021-03-28T10:00+02:00"),
             "cycles[0].timepoints[1].start")):
        p = ctx.write(name, json.dumps(c))
        hostile(ctx, name, ["run", p], must_mention=(mention,))


def case_input_limit_vois_and_cycles(ctx):
    # 501 VOIs in one cycle of a TAC table, 101 cycles in a case file: exit 2 naming the limit.
    rows = ["voi,time_h,activity_MBq"] + ["v%d,4,1" % i for i in range(501)]
    t = ctx.write("vois_501.csv", "\n".join(rows) + "\n")
    hostile(ctx, "vois_501.csv", ["run", "--tac", t, "--activity-MBq", 7000, "--phantom", EXAMPLE_PHANTOM],
            must_mention=("500 VOIs",))

    def many_cycles(c):
        base = c["cycles"][0]
        c["cycles"] = []
        for i in range(101):
            cy = json.loads(json.dumps(base))
            cy["cycle"] = i + 1
            c["cycles"].append(cy)
    p = ctx.write("cycles_101.json", case_text(ctx, many_cycles))
    hostile(ctx, "cycles_101.json", ["run", p], must_mention=("cycles",), words=("100",))


def case_input_dose_history_hostile(ctx):
    # The plan's dose-history table: an implausible activity, a control character in a target name,
    # a cycle number beyond the limit: exit 2 naming the file, line and column.
    head = "cycle,administered_MBq,target,dose_Gy\n"
    for name, row, mention in (("hist_activity.csv", "1,1e300,kidneys,4.1\n", "administered_MBq"),
                               ("hist_name.csv", "1,7400,kid\x01neys,4.1\n", "target"),
                               ("hist_cycle.csv", "2147483648,7400,kidneys,4.1\n", "cycle")):
        p = ctx.write(name, head + row)
        res, seconds = timed_run(ctx, "plan", "--history", p)
        expect_bad_input(ctx, res, None, file_name=name + ":2", must_mention=(mention,), what="plan --history " + name)


def case_input_blank_lines_bounded_memory(ctx):
    # A valid TAC table of 3 rows and 15 million blank lines (15 MB, under the 16 MiB input limit):
    # 0.12.0 reserved one row per line (840 MB of address space) and died of bad_alloc (exit 1)
    # under a 600 MB address-space limit as clusters set; it must fit the TAC. (Not under ASan,
    # which needs terabytes of address space: scripts/sanitize.sh leaves it out.)
    import resource
    path = ctx.path("blank_lines.csv")
    with open(path, "w") as f:
        f.write("voi,time_h,activity_MBq\nliver,4,100\nliver,24,80\nliver,72,50\n")
        f.write("\n" * 15000000)
    limit = 600 * 1024 * 1024
    argv = [ctx.lutdose, "fit", "--tac", path, "--format", "csv"]
    cp = subprocess.run(argv, cwd=ctx.tmp, capture_output=True, text=True, timeout=TIMEOUT_S,
                        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    if cp.returncode != 0 or len(cp.stdout.splitlines()) != 2:
        raise CaseFailure("fit of 3 rows and 15 million blank lines under a 600 MB address-space limit: exit %d\n%s"
                          % (cp.returncode, cp.stderr[-2000:]))


INPUT_HARDENING_CASES = {
    "input_blank_lines_bounded_memory": case_input_blank_lines_bounded_memory,
    "input_limit_vois_and_cycles": case_input_limit_vois_and_cycles,
    "input_dose_history_hostile": case_input_dose_history_hostile,
    "input_json_number_out_of_range": case_input_json_number_out_of_range,
    "input_json_deep_nesting": case_input_json_deep_nesting,
    "input_json_duplicate_key": case_input_json_duplicate_key,
    "input_cycle_beyond_int": case_input_cycle_beyond_int,
    "input_nul_and_invalid_utf8": case_input_nul_and_invalid_utf8,
    "input_utf8_bom_accepted": case_input_utf8_bom_accepted,
    "input_stdin_bytes_stored": case_input_stdin_bytes_stored,
    "input_limit_points_per_tac": case_input_limit_points_per_tac,
    "input_limit_name_length": case_input_limit_name_length,
    "input_many_problems": case_input_many_problems,
    "input_long_value_truncated": case_input_long_value_truncated,
    "input_implausible_values": case_input_implausible_values,
    "input_implausible_parameters": case_input_implausible_parameters,
    "input_referenced_files_confined": case_input_referenced_files_confined,
    "input_dates": case_input_dates,
}


# ----------------------------------------------------------------------------- driver


def case_info_licences_installed(ctx):
    # `cmake --install` of the build into an empty prefix: the installed lutdose prints NOTICE exactly (as the
    # build-tree one does), and LICENSE, NOTICE and the ICRP-07 notice are installed beside the data.
    build = os.path.dirname(ctx.lutdose)
    cmake = shutil.which("cmake")
    if cmake is None:
        fail("cmake is not on PATH (needed to install the build)")
    prefix = ctx.path("prefix")
    cp = subprocess.run([cmake, "--install", build, "--prefix", prefix], capture_output=True, text=True,
                        timeout=TIMEOUT_S)
    if cp.returncode != 0:
        fail("cmake --install %s --prefix %s failed (%d):\n%s" % (build, prefix, cp.returncode, cp.stderr))
    with open(os.path.join(ctx.source, "NOTICE"), encoding="utf-8") as f:
        notice = f.read()
    for needle in ("Apache License, Version 2.0", "ICRP", "not-for-profit", "LGPL-3.0", "PyTheranostics"):
        if needle not in notice:
            fail("expected NOTICE to name %r" % needle)
    for binary in (ctx.lutdose, os.path.join(prefix, "bin", "lutdose")):
        res = ctx.run("info", "licences", binary=binary)
        expect_exit(res, 0, "%s info licences" % binary)
        if res.stdout != notice:
            fail("expected `info licences` to print the NOTICE file exactly", res)
    share = os.path.join(prefix, "share", "lutdose")
    for name, src in (("LICENSE", "LICENSE"), ("NOTICE", "NOTICE"),
                      (os.path.join("decay", "LICENSE.ICRP-07.txt"), os.path.join("data", "decay", "LICENSE.ICRP-07.txt"))):
        with open(os.path.join(ctx.source, src), "rb") as f:
            want = f.read()
        got_path = os.path.join(share, name)
        if not os.path.isfile(got_path):
            fail("expected %s to be installed, it is not" % got_path)
        with open(got_path, "rb") as f:
            if f.read() != want:
                fail("expected the installed %s to equal the source's %s" % (got_path, src))


# ----------------------------------------------------------------------------- honest uncertainties (issue 11)

def _csv_rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def case_uncertainty_dof_and_intervals_in_every_output(ctx):
    # The example with relative weights: every VOI's u(TIA) has n - K degrees of freedom and a 95 % Student-t
    # interval TIA +- t u containing the TIA; JSON, CSV, HDF5 /table and the printed table all show them.
    h5py = import_h5py()
    out = ctx.path("out")
    res = ctx.run("run", "--tac", ctx.example_tac, "--activity-MBq", EXAMPLE_ACTIVITY_MBQ,
                  "--phantom", EXAMPLE_PHANTOM, "--out", out)
    expect_exit(res, 0, "example run")
    cyc = single_cycle(load_json_file(os.path.join(out, "results.json"), res), res)
    rows = {r["voi"]: r for r in _csv_rows(os.path.join(out, "results.csv"))}
    doses = by_name(cyc.get("doses", []), "target", res)
    for v in cyc["vois"]:
        name, dof, ci = v["name"], v.get("tia_u_dof"), v.get("tia_ci95_MBq_h")
        chosen = [c for c in v["fit"]["candidates"] if c["function"] == v["fit"]["function"]][0]
        if dof != chosen["n_points"] - chosen["n_parameters"]:
            fail("expected %s tia_u_dof = n - K = %d, got %r" % (name, chosen["n_points"] - chosen["n_parameters"],
                                                                 dof), res)
        if not (isinstance(ci, list) and len(ci) == 2 and ci[0] < v["tia_MBq_h"] < ci[1]):
            fail("expected %s tia_ci95_MBq_h = [low, high] around the TIA, got %r" % (name, ci), res)
        if not (isinstance(v.get("tia_ci68_MBq_h"), list) and ci[0] < v["tia_ci68_MBq_h"][0]):
            fail("expected %s 68 %% interval inside the 95 %% one, got %r" % (name, v.get("tia_ci68_MBq_h")), res)
        d = doses[name]
        if not (_number(d.get("dose_u_dof")) and isinstance(d.get("dose_ci95_Gy"), list)
                and d.get("uncertainty_incomplete") is False):
            fail("expected %s dose_u_dof, dose_ci95_Gy and uncertainty_incomplete false, got %r, %r, %r"
                 % (name, d.get("dose_u_dof"), d.get("dose_ci95_Gy"), d.get("uncertainty_incomplete")), res)
        r = rows[name]
        if float(r["tia_u_dof"]) != dof or not rel_close(float(r["tia_ci95_low_MBq_h"]), ci[0], 1e-9) \
                or not rel_close(float(r["dose_ci95_high_Gy"]), d["dose_ci95_Gy"][1], 1e-9):
            fail("expected results.csv's dof and intervals of %s to match the JSON, got %r" % (name, r), res)
    with h5py.File(os.path.join(out, "results.h5"), "r") as f:
        for table, cols in (("/vois", ("tia_u_dof", "tia_ci95_low_MBq_h")), ("/targets", ("dose_u_dof", "dose_ci95_high_Gy"))):
            names = f[table].dtype.names
            for col in cols:
                if col not in names:
                    fail("expected the column %s in %s of results.h5, it has %s" % (col, table, names), res)
        if not all(math.isfinite(x) for x in f["/vois"]["tia_ci95_low_MBq_h"]):
            fail("expected finite 95 %% bounds in /vois, got %r" % list(f["/vois"]["tia_ci95_low_MBq_h"]), res)
    if "dof" not in res.stdout or "95 % interval" not in res.stdout:
        fail("expected the printed table to have the dof and 95 % interval columns", res)


def case_uncertainty_unknown_is_not_zero(ctx):
    # Kidneys, two points, E1 forced, relative weights: n = K, no variance can be estimated. u(TIA) and u(D) are
    # unknown: null in JSON with the reason and the missing input, empty in CSV, NaN in HDF5, "n/a" in the table.
    h5py = import_h5py()
    tac = ctx.path("two.csv")
    with open(tac, "w", encoding="utf-8") as f:
        f.write("voi,time_h,activity_MBq,volume_mL\nkidneys,24,60,290\nkidneys,96,40,290\n")
    out = ctx.path("out")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7400", "--phantom", "icrp89-male",
                  "--function", "E1", "--out", out)
    expect_exit(res, 0, "two-point run")
    cyc = single_cycle(load_json_file(os.path.join(out, "results.json"), res), res)
    v = cyc["vois"][0]
    if v.get("tia_u_MBq_h") is not None or v.get("tia_ci95_MBq_h") is not None or not v.get("tia_u_unknown_reason"):
        fail("expected tia_u_MBq_h and tia_ci95_MBq_h null with a reason, got %r, %r, %r"
             % (v.get("tia_u_MBq_h"), v.get("tia_ci95_MBq_h"), v.get("tia_u_unknown_reason")), res)
    d = by_name(cyc["doses"], "target", res)["kidneys"]
    if d.get("dose_u_Gy") is not None or d.get("uncertainty_incomplete") is not True \
            or d.get("uncertainty_missing_inputs") != ["fit:cycle1:kidneys"]:
        fail("expected kidneys' dose_u_Gy null, incomplete, missing fit:cycle1:kidneys, got %r" % d, res)
    row = {r["voi"]: r for r in _csv_rows(os.path.join(out, "results.csv"))}["kidneys"]
    if row["dose_u_Gy"] != "" or row["tia_u_MBq_h"] != "" or row["uncertainty_missing_inputs"] != "fit:cycle1:kidneys":
        fail("expected empty u cells and the missing input in results.csv, got %r" % row, res)
    with h5py.File(os.path.join(out, "results.h5"), "r") as f:
        t = f["/vois"][()]
        if not math.isnan(t["dose_u_Gy"][0]) or not math.isnan(t["tia_u_dof"][0]):
            fail("expected NaN dose_u_Gy and tia_u_dof in /vois, got %r" % t[0], res)
        missing = [_text(x) for x in f["/targets"]["u_missing"]]
        if "fit:cycle1:kidneys" not in missing:
            fail("expected the missing input fit:cycle1:kidneys in /targets u_missing, got %r" % missing, res)
    line = [l for l in res.stdout.splitlines() if l.startswith("kidneys")][0]
    if "n/a" not in line or "0.000 " in line.split()[-5:]:
        fail("expected the table's kidneys row to show n/a for u(D), got %r" % line, res)
    if "budget incomplete" not in res.stdout:
        fail("expected a note that the dose budget is incomplete", res)


def case_plan_reports_delivered_dose_uncertainty(ctx):
    # `plan` from a case: the delivered organ-at-risk doses with their u, dof, 95 % interval and incomplete mark.
    res, doc = run_plan(ctx, (synthetic_case_path(ctx),), "plan examples/synthetic-two-cycles/case.json")
    rows = doc.get("delivered_dose_uncertainty")
    if not isinstance(rows, list) or not any(r.get("target") == "kidneys" for r in rows):
        fail("expected delivered_dose_uncertainty with the kidneys' cycles, got %r" % rows, res)
    for r in rows:
        if "dose_u_dof" not in r or "uncertainty_incomplete" not in r or "dose_ci95_Gy" not in r:
            fail("expected dose_u_dof, dose_ci95_Gy and uncertainty_incomplete in every row, got %r" % r, res)


def case_plan_refuses_incomplete_marrow(ctx):
    # Issue 11 finding 7: the two-cycle example without its whole-body VOI and marrow method. The marrow dose is then
    # the organs' cross-dose only (no self-dose, no remainder of body) and allowed 864 055 MBq with P(exceed) = 0 %.
    # Now the plan gives no activity (null), names the limits that cannot be evaluated, why, and the input that would
    # make them possible; --allow-incomplete proceeds, marks the result and reports no P(exceed) for those targets.
    case = synthetic_case(ctx)
    for cy in case["cycles"]:
        for tp in cy["timepoints"]:
            tp["vois"].pop("whole_body", None)
    case["dose"].pop("marrow", None)
    path = ctx.write("case.json", json.dumps(case))
    res, doc = run_plan(ctx, (path, "--a-max-MBq", "1000000000"), "plan CASE without whole_body and marrow method")
    if doc.get("activity_MBq") is not None or doc.get("incomplete") is not True:
        fail("expected activity_MBq null and incomplete true, got %r, %r"
             % (doc.get("activity_MBq"), doc.get("incomplete")), res)
    text = " ".join(doc.get("reasoning", []))
    for word in ("cannot be evaluated", "whole_body", "blood", "L2-L4", "--allow-incomplete"):
        if word not in text:
            fail("expected the reasoning to mention %r" % word, res)
    if "864055" in text:
        fail("expected no activity from the incomplete marrow dose in the reasoning", res)
    for t in doc.get("targets", []):
        if t.get("p_exceed_dose") is not None or t.get("p_exceed_bed") is not None:
            fail("expected no P(exceed) for %s (its dose is incomplete)" % t.get("name"), res)
    res2, doc2 = run_plan(ctx, (path, "--a-max-MBq", "1000000000", "--allow-incomplete"), "plan --allow-incomplete")
    a = plan_number(doc2, "activity_MBq", res2, "plan --allow-incomplete")
    if doc2.get("incomplete") is not True or not a > 0:
        fail("expected an activity > 0 and incomplete true, got %r, %r" % (a, doc2.get("incomplete")), res2)
    marrow = plan_target(doc2, "Red Marrow", res2)
    if not marrow.get("incomplete") or marrow.get("p_exceed_dose") is not None:
        fail("expected Red Marrow marked incomplete with p_exceed_dose null, got %r, %r"
             % (marrow.get("incomplete"), marrow.get("p_exceed_dose")), res2)
    rt = ctx.run("plan", path, "--text")
    expect_exit(rt, 0, "plan CASE --text")
    if "no prescription" not in rt.stdout.splitlines()[0]:
        fail("expected the first --text line to say 'no prescription'", rt)


def case_printed_dof_column_stays_readable(ctx):
    # Noiseless synthetic TACs give fit u(TIA) near 0, so the Welch-Satterthwaite dof of a dose reaches 1e+59
    # (two-cycle example: tumour_1). The printed table must keep its dof column (6 characters) and show such a
    # dof as ">9999" (Student-t and normal quantiles agree to 1e-4 there), not a 60-digit number.
    out = ctx.path("out")
    case = os.path.join(ctx.source, "examples", "synthetic-two-cycles", "case.json")
    res = ctx.run("run", case, "--out", out)
    expect_exit(res, 0, "run examples/synthetic-two-cycles/case.json")
    rows = [l for l in res.stdout.splitlines() if l.startswith(("liver ", "spleen ", "tumour_1 ")) and "[" in l]
    if len(rows) != 6:
        fail("expected 6 rows for liver, spleen and tumour_1 in two cycles, got %r" % rows, res)
    for line in rows:
        dof = line.split("[")[0].split()[-1]
        if len(dof) > 6 or (dof not in (">9999", "inf") and float(dof) >= 1e4):
            fail("expected a dof of at most 6 characters, '>9999' for large values, got %r in %r" % (dof, line), res)


def case_plan_kidney_limit_without_whole_body(ctx):
    # Follow-up of issue 11 item 7: without a whole_body VOI a VOI organ (kidneys) still has its self-dose; only the
    # remainder-of-body cross-dose is missing (about 0.1-1 % for 177Lu kidneys, docs/plan.md). Its limit is evaluated
    # and reported (a bound, with a note), while the marrow (no self-dose, no remainder) still refuses the plan.
    case = synthetic_case(ctx)
    for cy in case["cycles"]:
        for tp in cy["timepoints"]:
            tp["vois"].pop("whole_body", None)
    case["dose"].pop("marrow", None)
    path = ctx.write("case.json", json.dumps(case))
    res, doc = run_plan(ctx, (path, "--a-max-MBq", "1000000000"), "plan CASE without whole_body and marrow method")
    if doc.get("activity_MBq") is not None or doc.get("incomplete") is not True:
        fail("expected no prescription while the marrow limit cannot be evaluated, got %r, %r"
             % (doc.get("activity_MBq"), doc.get("incomplete")), res)
    kidneys = plan_target(doc, "kidneys", res)
    if kidneys.get("incomplete") is not None:
        fail("expected the kidneys' dose not marked incomplete (it has its self-dose), got %r"
             % kidneys.get("incomplete"), res)
    if "remainder" not in (kidneys.get("note") or ""):
        fail("expected a note that the remainder cross-dose is not included, got %r" % kidneys.get("note"), res)
    bound = kidneys.get("max_activity_MBq")
    if not isinstance(bound, (int, float)) or not bound > 0:
        fail("expected the kidney limit evaluated (max_activity_MBq > 0), got %r" % bound, res)
    marrow = plan_target(doc, "Red Marrow", res)
    if "self-dose" not in (marrow.get("incomplete") or "") or "whole_body" not in marrow.get("incomplete"):
        fail("expected Red Marrow incomplete (self-dose and remainder), got %r" % marrow.get("incomplete"), res)


def case_plan_out_keeps_hand_edited_plan(ctx):
    # Follow-up of issue 10: `plan --out FILE` recognised an earlier plan by its JSON keys only, so a hand-edited plan
    # was overwritten. Now an earlier plan is replaced only if its bytes match the checksum lutdose recorded in it;
    # an edited one gives exit 2 with a message and is left byte for byte. An unedited one is still replaced.
    case = synthetic_case_path(ctx)
    out = ctx.path("p.json")
    expect_exit(ctx.run("plan", case, "--out", out), 0, "plan CASE --out p.json")
    again = ctx.run("plan", case, "--out", out)
    expect_exit(again, 0, "plan CASE --out p.json over lutdose's own earlier plan")
    with open(out, encoding="utf-8") as f:
        doc = json.load(f)
    doc["physician_comment"] = "reduce to 5 GBq"
    edited = json.dumps(doc, indent=2)
    with open(out, "w", encoding="utf-8") as f:
        f.write(edited)
    res = ctx.run("plan", case, "--out", out)
    expect_exit(res, 2, "plan CASE --out p.json over a hand-edited plan")
    if "p.json" not in res.stderr:
        fail("expected the message to name p.json", res)
    with open(out, encoding="utf-8") as f:
        if f.read() != edited:
            fail("expected the hand-edited p.json unchanged", res)
    leftovers = [n for n in os.listdir(os.path.dirname(out)) if n.startswith(".lutdose-tmp-")]
    if leftovers:
        fail("expected no temporary file left, got %r" % leftovers, res)

def _flat_organ_tac(ctx, name, times):
    """Kidneys, liver and spleen flat at 100 MBq at the given times: no compartment model can follow them."""
    lines = ["voi,time_h,activity_MBq"]
    for v in ("kidneys", "liver", "spleen"):
        lines += ["%s,%g,100" % (v, t) for t in times]
    return ctx.write(name, "\n".join(lines) + "\n")


def case_compartment_model_failed_fit_falls_back(ctx):
    # Issue 11 follow-up: a joint compartment fit that fails its acceptance criteria (flat TACs: rates at their
    # bounds, rank-deficient) is never the result: each VOI keeps its exponential-family result (or fallback), with
    # a note naming the failed compartment fit and its flags. With 2 points per VOI (6 points for 9 free rates) the
    # fit cannot run at all: not an error blaming the model file, the same fallback with the reason.
    for name, times, flag in (("flat.csv", (0.5, 2, 6, 24, 48, 96, 168), "parameter_at_bound"),
                              ("few.csv", (24, 96), "too_few_points")):
        tac = _flat_organ_tac(ctx, name, times)
        out = ctx.path("out_" + name)
        res = ctx.run("run", "--tac", tac, "--activity-MBq", 7400, "--phantom", "icrp89-male", "--out", out,
                      "--quiet", "--model", "prrt_multiorgan_linear")
        expect_exit(res, 0, "run of %s with a compartment model that cannot fit it" % name)
        cycle = single_cycle(load_json_file(os.path.join(out, "results.json"), res), res)
        for v in cycle["vois"]:
            fit = v["fit"]
            if fit["function"].startswith("compartment:"):
                fail("%s: expected VOI %s not to use the failed compartment fit, got %r"
                     % (name, v["name"], fit["function"]), res)
            notes = [n for n in fit.get("notes", []) if "prrt_multiorgan_linear" in n and flag in n]
            if not notes:
                fail("%s: expected a note on %s naming the failed compartment fit and %s, got %r"
                     % (name, v["name"], flag, fit.get("notes")), res)


def case_error_model_poisson_recorded(ctx):
    # Issue 11 follow-up: "error_model": "poisson" in a case file is the alias of input for counts; the outputs
    # show what the user chose ("poisson"), in the printed header and in options.fit.error_model.
    src = os.path.join(ctx.source, "examples", "snmmi-patient004")
    with open(os.path.join(src, "case.json"), encoding="utf-8") as f:
        case = json.load(f)
    case["fit"]["error_model"] = "poisson"
    path = ctx.write("case.json", json.dumps(case))
    out = ctx.path("out")
    res = ctx.run("run", path, "--out", out)
    expect_exit(res, 0, "run of Patient_004 (counts) with error_model poisson")
    if "| error model poisson" not in res.stdout.splitlines()[0]:
        fail("expected the printed header to say 'error model poisson', got %r" % res.stdout.splitlines()[0], res)
    doc = load_json_file(os.path.join(out, "results.json"), res)
    if doc["options"]["fit"]["error_model"] != "poisson":
        fail("expected options.fit.error_model 'poisson', got %r" % doc["options"]["fit"]["error_model"], res)


def case_printed_small_u_not_zero(ctx):
    # Issue 11 follow-up: a known but small u(D) (red marrow region of a one-point Hanscheid run, about 3e-4 Gy)
    # printed with fixed 3 decimals read "0.000". A known nonzero u is printed with significant digits and read
    # back within the printed precision of the JSON value.
    tac = ctx.write("one.csv", "voi,time_h,activity_MBq,volume_mL\nkidneys,96,40,290\n")
    out = ctx.path("out")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", 7400, "--phantom", "icrp89-male", "--reduced", "hanscheid",
                  "--out", out)
    expect_exit(res, 0, "one-point Hanscheid run")
    cycle = single_cycle(load_json_file(os.path.join(out, "results.json"), res), res)
    checked = 0
    for d in cycle["doses"]:
        u = d.get("dose_u_Gy")
        rows = [l for l in res.stdout.splitlines() if l.startswith(d["target"] + " ")]
        if not _number(u) or u <= 0 or not rows:
            continue
        printed = rows[0].split("[")[0].split()[-3]  # columns: ... dose Gy, u(D) Gy, Gy/GBq, dof
        # 3 significant digits: relative rounding error at most 0.5e-2
        if float(printed) <= 0 or abs(float(printed) - u) > 5e-3 * u:
            fail("expected u(D) of %s printed as %.3g, got %r in %r" % (d["target"], u, printed, rows[0]), res)
        checked += 1
    if checked < 3:
        fail("expected kidneys, red marrow and total body rows with a known u(D), checked %d" % checked, res)


def case_option_bad_choice_cli(ctx):
    # Issue 12 item 3: a bad value of a choice option on the command line: exit 2, the message names the
    # option (its command-line name and case-file key) and the value, and lists the allowed values.
    tac = ctx.write("good.csv", GOOD_LIVER_3)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", EXAMPLE_PHANTOM, "--out", out,
                  "--aicc-k", "fit+2")
    expect_bad_input(ctx, res, out, must_mention=("--aicc-k", "fit.aicc_k", "fit, fit+1"), words=("fit+2",))


def case_option_problems_listed_together_cli(ctx):
    # Issue 12 item 3: problems of several options on the command line are listed at once (validate()),
    # each naming its option and value.
    tac = ctx.write("good.csv", GOOD_LIVER_3)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", EXAMPLE_PHANTOM, "--out", out,
                  "--combined-b", "-1", "--half-life-h", "-2", "--functions", "E1,E9")
    expect_bad_input(ctx, res, out, must_mention=("--combined-b", "--half-life-h", "--functions"),
                     words=("-1", "-2", "E9"))


def case_option_bad_choice_case_file(ctx):
    # Issue 12 item 3: bad option values in a case file: exit 2, each on a line naming the file, the field and
    # the value; the checks shared with the command line (validate()) are listed with the others.
    case = example_case(ctx)
    case["fit"] = {"error_model": "poison", "combined_b": 0, "reduced": "halfway"}
    case["dose"] = dict(case.get("dose", {}), mass_scaling="by-volume")
    bad_case_file(ctx, case, "bad_options.json",
                  [("fit.error_model", ("poison",)), ("fit.reduced", ("halfway",)),
                   ("dose.mass_scaling", ("by-volume",))])
    case = example_case(ctx)
    case["fit"] = {"error_model": "combined"}
    bad_case_file(ctx, case, "combined_without_sigmas.json", [("fit.error_model", ("combined",))])


def case_option_ranges_same_both_sides(ctx):
    # Issue 12 item 3 (review): the command line checks numbers with the case file's ranges (one table):
    # a density of 50 g/mL and 5 000 000 Monte Carlo samples are refused on both sides, the same words.
    tac = ctx.write("good.csv", GOOD_LIVER_3)
    out = ctx.path("out_not_created")
    base = ("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", EXAMPLE_PHANTOM, "--out", out)
    res = ctx.run(*base, "--density-g-per-mL", "50")  # alone first: without the check this run is short
    expect_bad_input(ctx, res, out, must_mention=("--density-g-per-mL",), words=("50",))
    res = ctx.run(*base, "--density-g-per-mL", "50", "--mc-samples", "5000000")
    expect_bad_input(ctx, res, out, must_mention=("--density-g-per-mL", "dose.organ_density_g_per_mL",
                                                  "--mc-samples", "uncertainty.monte_carlo_samples"),
                     words=("50", "5000000"))
    cli_err = res.stderr
    case = example_case(ctx)
    case["dose"] = dict(case.get("dose", {}), organ_density_g_per_mL=50)
    case["uncertainty"] = {"monte_carlo_samples": 5000000}
    bad_case_file(ctx, case, "out_of_range.json",
                  [("dose.organ_density_g_per_mL", ("50",)), ("uncertainty.monte_carlo_samples", ("5000000",))])
    # The expected range is worded the same on both sides (the text after "expected").
    for key in ("dose.organ_density_g_per_mL", "uncertainty.monte_carlo_samples"):
        cli_line = [ln for ln in cli_err.split("\n") if key in ln][0]
        p = ctx.write("out_of_range.json", json.dumps(case))
        case_err = ctx.run("run", p, "--out", ctx.path("out_not_created")).stderr
        case_line = [ln for ln in case_err.split("\n") if key in ln][0]
        if cli_line.split("expected", 1)[1] != case_line.split("expected", 1)[1]:
            fail("expected the same range for %s on both sides: %r vs %r" % (key, cli_line, case_line), res)


def case_option_negative_monte_carlo(ctx):
    # Issue 12 item 3 (review): negative --mc-samples / --mc-seed are bad input (exit 2, nothing written),
    # with --tac and with a case file, not silently ignored.
    tac = ctx.write("good.csv", GOOD_LIVER_3)
    out = ctx.path("out_not_created")
    base = ("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", EXAMPLE_PHANTOM, "--out", out)
    for opt, value in (("--mc-samples", "-5"), ("--mc-seed", "-1")):
        res = ctx.run(*base, opt, value)
        expect_bad_input(ctx, res, out, must_mention=(opt, "expected"), words=(value,),
                         what="%s %s with --tac" % (opt, value))
        res = ctx.run("run", example_case_path(ctx), "--out", out, opt, value)
        expect_bad_input(ctx, res, out, must_mention=(opt, "expected"), words=(value,),
                         what="%s %s with a case file" % (opt, value))


def case_option_all_problems_at_once_cli(ctx):
    # Issue 12 item 3 (review): the command line lists every problem at once, bad choices and the other
    # checks, fit and dose options alike (as the case file does).
    tac = ctx.write("good.csv", GOOD_LIVER_3)
    out = ctx.path("out_not_created")
    res = ctx.run("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", EXAMPLE_PHANTOM, "--out", out,
                  "--error-model", "poison", "--aicc-k", "bad", "--combined-b", "-1",
                  "--density-g-per-mL", "-1", "--mass-scaling", "by-volume")
    expect_bad_input(ctx, res, out, must_mention=("--error-model", "--aicc-k", "--combined-b",
                                                  "--density-g-per-mL", "--mass-scaling"),
                     words=("poison", "bad", "-1", "by-volume"))


CASES = {
    "option_ranges_same_both_sides": case_option_ranges_same_both_sides,
    "option_negative_monte_carlo": case_option_negative_monte_carlo,
    "option_all_problems_at_once_cli": case_option_all_problems_at_once_cli,
    "option_bad_choice_cli": case_option_bad_choice_cli,
    "option_problems_listed_together_cli": case_option_problems_listed_together_cli,
    "option_bad_choice_case_file": case_option_bad_choice_case_file,
    "uncertainty_dof_and_intervals_in_every_output": case_uncertainty_dof_and_intervals_in_every_output,
    "uncertainty_unknown_is_not_zero": case_uncertainty_unknown_is_not_zero,
    "printed_dof_column_stays_readable": case_printed_dof_column_stays_readable,
    "plan_reports_delivered_dose_uncertainty": case_plan_reports_delivered_dose_uncertainty,
    "compartment_model_run": case_compartment_model_run,
    "compartment_model_bad": case_compartment_model_bad,
    "compartment_model_failed_fit_falls_back": case_compartment_model_failed_fit_falls_back,
    "error_model_poisson_recorded": case_error_model_poisson_recorded,
    "printed_small_u_not_zero": case_printed_small_u_not_zero,
    "example_run": case_example_run,
    "example_published_tia": case_example_published_tia,
    "tumour_local_deposition": case_tumour_local_deposition,
    "help_and_version": case_help_and_version,
    "fit_patient_column": case_fit_patient_column,
    "fit_csv_equals_json": case_fit_csv_equals_json,
    "rerun_replaces_output": case_rerun_replaces_output,
    "missing_file": case_missing_file,
    "malformed_csv": case_malformed_csv,
    "missing_column": case_missing_column,
    "unknown_column": case_unknown_column,
    "non_numeric_activity": case_non_numeric_activity,
    "negative_activity": case_negative_activity,
    "nan_activity": case_nan_activity,
    "infinite_activity": case_infinite_activity,
    "times_not_increasing": case_times_not_increasing,
    "duplicated_time": case_duplicated_time,
    "negative_time": case_negative_time,
    "zero_volume": case_zero_volume,
    "negative_mass": case_negative_mass,
    "unknown_phantom": case_unknown_phantom,
    "unknown_voi": case_unknown_voi,
    "unknown_fit_function": case_unknown_fit_function,
    "too_few_points_for_forced_function": case_too_few_points_for_forced_function,
    "tumour_without_mass": case_tumour_without_mass,
    "tumour_mass_outside_sphere_table": case_tumour_mass_outside_sphere_table,
    "missing_required_option": case_missing_required_option,
    "fit_bad_input_no_stdout": case_fit_bad_input_no_stdout,
    "existing_output_kept_on_error": case_existing_output_kept_on_error,
    "data_dir_option_and_env": case_data_dir_option_and_env,
    "installed_binary_uses_prefix_data": case_installed_binary_uses_prefix_data,
    "case_matches_tac_table": case_case_matches_tac_table,
    "case_writes_h5_same_as_json": case_case_writes_h5_same_as_json,
    "tac_run_writes_h5": case_tac_run_writes_h5,
    "case_malformed_json": case_case_malformed_json,
    "case_unknown_key": case_case_unknown_key,
    "case_missing_key": case_case_missing_key,
    "case_negative_counts": case_case_negative_counts,
    "case_nan_counts": case_case_nan_counts,
    "case_duration_not_positive": case_case_duration_not_positive,
    "case_acquisition_before_reference": case_case_acquisition_before_reference,
    "case_cf_not_positive": case_case_cf_not_positive,
    "case_rate_beyond_saturation": case_case_rate_beyond_saturation,
    "case_rc_not_monotone": case_case_rc_not_monotone,
    "case_rc_out_of_range": case_case_rc_out_of_range,
    "case_volume_below_rc_table": case_case_volume_below_rc_table,
    "case_voi_missing_at_timepoint": case_case_voi_missing_at_timepoint,
    "case_unknown_unit": case_case_unknown_unit,
    "case_several_problems": case_case_several_problems,
    "case_all_problems_at_once": case_case_all_problems_at_once,
    "case_with_tac_only_option": case_case_with_tac_only_option,
    "case_with_tac": case_case_with_tac,
    "synthetic_two_cycles": case_synthetic_two_cycles,
    "patient004_published_ranges": case_patient004_published_ranges,
    "user_svalue_table": case_user_svalue_table,
    "info_svalues": case_info_svalues,
    "monte_carlo_option": case_monte_carlo_option,
    "svalues_missing_pair": case_svalues_missing_pair,
    "svalues_negative_entry": case_svalues_negative_entry,
    "svalues_with_a_phantom": case_svalues_with_a_phantom,
    "marrow_blood_without_blood": case_marrow_blood_without_blood,
    "marrow_image_without_fraction": case_marrow_image_without_fraction,
    "whole_body_below_organs": case_whole_body_below_organs,
    "whole_body_without_source": case_whole_body_without_source,
    "overlapping_vois": case_overlapping_vois,
    "cross_scaling_without_body_mass": case_cross_scaling_without_body_mass,
    "negative_body_mass_unused": case_negative_body_mass_unused,
    "bed_in_run": case_bed_in_run,
    "bed_test_vector_via_history_plan": case_bed_test_vector_via_history_plan,
    "plan_after_cycle_two_keeps_bed_under_limit": case_plan_after_cycle_two_keeps_bed_under_limit,
    "plan_text_and_out": case_plan_text_and_out,
    "plan_strategies": case_plan_strategies,
    "plan_limit_already_exceeded": case_plan_limit_already_exceeded,
    "plan_missing_tissue_parameters": case_plan_missing_tissue_parameters,
    "plan_bad_history": case_plan_bad_history,
    "plan_case_and_history_together": case_plan_case_and_history_together,
    "cycles_out_of_order": case_cycles_out_of_order,
    "cycles_overlapping": case_cycles_overlapping,
    "plan_bad_option": case_plan_bad_option,
    "info_licences_installed": case_info_licences_installed,
    "plan_refuses_incomplete_marrow": case_plan_refuses_incomplete_marrow,
    "plan_kidney_limit_without_whole_body": case_plan_kidney_limit_without_whole_body,
    "plan_out_keeps_hand_edited_plan": case_plan_out_keeps_hand_edited_plan,
}
CASES.update(INPUT_HARDENING_CASES)


def run_case(name, lutdose, source):
    """Returns None on pass, a failure message otherwise; raises CaseSkipped."""
    tmp = tempfile.mkdtemp(prefix="lutdose_e2e_%s_" % name)
    try:
        CASES[name](Ctx(lutdose, source, tmp))
        return None
    except CaseSkipped:
        raise
    except CaseFailure as e:
        return str(e)
    except Exception:  # a bug in the test or an unexpected output shape: still a failure, with the trace
        return "unexpected error in the test:\n" + traceback.format_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
def main(argv):
    ap = argparse.ArgumentParser(description="lutdose end-to-end tests")
    ap.add_argument("--list", action="store_true", help="print the case names, one per line")
    ap.add_argument("--lutdose", help="path to the lutdose binary")
    ap.add_argument("--source", help="lutdose source tree (for examples/, data/ and tests/data/)")
    ap.add_argument("--case", help="case name, or 'all'")
    args = ap.parse_args(argv)

    if args.list:
        for name in CASES:
            print(name)
        return 0
    if not (args.lutdose and args.source and args.case):
        ap.error("--lutdose, --source and --case are required (or --list)")
    lutdose = os.path.abspath(args.lutdose)
    source = os.path.abspath(args.source)
    if not os.access(lutdose, os.X_OK):
        print("lutdose binary %s not found or not executable" % lutdose, file=sys.stderr)
        return 1
    if args.case == "all":
        names = list(CASES)
    elif args.case in CASES:
        names = [args.case]
    else:
        print("unknown case %r; known: all, %s" % (args.case, ", ".join(CASES)), file=sys.stderr)
        return 1

    failed = []
    skipped = []
    for name in names:
        try:
            msg = run_case(name, lutdose, source)
        except CaseSkipped as e:
            skipped.append(name)
            print("SKIPPED %s: %s" % (name, e))
            continue
        if msg is None:
            if len(names) > 1:
                print("PASS %s" % name)
        else:
            failed.append(name)
            print("FAIL %s: %s" % (name, msg), file=sys.stderr)
            if len(names) > 1:
                print("FAIL %s" % name)
        sys.stdout.flush()
        sys.stderr.flush()
    if len(names) > 1:
        print("%d passed, %d failed, %d skipped" % (len(names) - len(failed) - len(skipped), len(failed),
                                                   len(skipped)))
    if failed:
        return 1
    return SKIP_EXIT if skipped and len(skipped) == len(names) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
