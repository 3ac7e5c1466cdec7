"""Population kinetics from Python (docs/python.md, docs/population.md): run_tac, fit_tac and
fit_many with population=FILE or kinetics="population" give what `lutdose run --tac` and `lutdose
fit` give for the same inputs (the same engine calls: equal exactly), and refuse what they refuse."""
import csv
import io
import json
import math
import random

import pandas as pd
import pytest

import lutdose
from conftest import cli, cli_error, run_json

A0_MBQ = 7400  # lutdose synth's administered activity of every patient (docs/synth.md)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A 3-scan cohort of 20 patients (the TACs fitted), a population file learned from another
    5-scan cohort of 30 (E1 only, to be quick) and the first patient's TACs as a file."""
    tmp = tmp_path_factory.mktemp("population")
    cli("synth", "--out", tmp / "learn", "--quiet", "--patients", 30, "--seed", 21, "--times-h", "4,24,48,96,168")
    cli("population", "learn", tmp / "learn" / "tacs.csv", "--patients", tmp / "learn" / "patients.csv",
        "--out", tmp / "pop.json", "--quiet", "--functions", "E1")
    cli("synth", "--out", tmp / "c", "--quiet", "--patients", 20, "--seed", 22, "--times-h", "4,24,48")
    tac = tmp / "c" / "tacs.csv"
    df = pd.read_csv(tac, float_precision="round_trip")  # the program's doubles (docs/python.md)
    one = tmp / "one.csv"
    df[df.patient == "P00001"].to_csv(one, index=False)
    return {"tmp": tmp, "pop": tmp / "pop.json", "tac": tac, "df": df, "one": one}


def cli_fit_csv(*args):
    """`lutdose fit ... --format csv` as {(patient, cycle, voi): (tia_MBq_h, method)}."""
    rows = csv.DictReader(io.StringIO(cli("fit", *args, "--format", "csv").stdout))
    return {(r["patient"], int(r["cycle"]), r["voi"]): (float(r["tia_MBq_h"]) if r["tia_MBq_h"] else None, r["method"])
            for r in rows}


def frame_tias(df):
    return {(p, int(c), v): (None if t != t else t, m)
            for p, c, v, t, m in zip(df.patient, df.cycle, df.voi, df.tia_MBq_h, df.method)}


def test_run_tac_population_file_equals_cli(cohort, tmp_path):
    expected = run_json("--tac", cohort["one"], "--activity-MBq", A0_MBQ, "--phantom", "icrp110-am",
                        "--population", cohort["pop"], tmp=str(tmp_path))
    r = lutdose.run_tac(cohort["one"], administered_MBq=A0_MBQ, phantom="icrp110-am", population=cohort["pop"])
    assert r.to_json() == expected  # byte for byte, as run_tac without population
    doc = json.loads(expected)
    assert doc["options"]["fit"]["method"] == "population MAP"
    assert {v["fit"]["method"] for v in doc["patients"][0]["cycles"][0]["vois"]} == {"population MAP"}


def test_run_tac_kinetics_population_equals_cli(cohort, tmp_path):
    expected = run_json("--tac", cohort["tac"], "--activity-MBq", A0_MBQ, "--phantom", "icrp110-am",
                        "--kinetics", "population", tmp=str(tmp_path))
    r = lutdose.run_tac(cohort["tac"], administered_MBq=A0_MBQ, phantom="icrp110-am", kinetics="population")
    assert r.to_json() == expected
    assert json.loads(expected)["options"]["fit"]["population"]["source"].startswith("learned from the input")


def test_run_tac_dataframe_population_equals_cli(cohort, tmp_path):
    # a DataFrame is named "DataFrame" in the results: the numbers are compared, not the text
    expected = json.loads(run_json("--tac", cohort["one"], "--activity-MBq", A0_MBQ, "--phantom", "icrp110-am",
                                   "--population", cohort["pop"], tmp=str(tmp_path)))
    r = lutdose.run_tac(cohort["df"][cohort["df"].patient == "P00001"], administered_MBq=A0_MBQ,
                        phantom="icrp110-am", population=cohort["pop"])
    got = json.loads(r.to_json())
    assert got["patients"] == expected["patients"]


@pytest.mark.parametrize("kinetics", ["population", "individual"])
def test_fit_many_kinetics_equals_cli(cohort, kinetics):
    expected = cli_fit_csv("--tac", cohort["tac"], "--activity-MBq", A0_MBQ, "--kinetics", kinetics)
    got = frame_tias(lutdose.fit_many(cohort["df"], kinetics=kinetics, activity_MBq=A0_MBQ, threads=2))
    assert got == expected
    methods = {m for _, m in got.values()}
    assert methods == {"population MAP"} if kinetics == "population" else "population MAP" not in methods


def test_fit_many_population_file_equals_cli(cohort):
    expected = cli_fit_csv("--tac", cohort["tac"], "--activity-MBq", A0_MBQ, "--population", cohort["pop"])
    got = frame_tias(lutdose.fit_many(cohort["df"], population=cohort["pop"], activity_MBq=A0_MBQ))
    assert got == expected
    assert {m for _, m in got.values()} == {"population MAP"}


def test_population_refusals_as_the_cli(cohort):
    # without the administered activity: the CLI's message
    msg = cli_error("fit", "--tac", cohort["tac"], "--kinetics", "population")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.fit_many(cohort["df"], kinetics="population")
    assert str(e.value) == msg.replace(str(cohort["tac"]), "DataFrame")
    # a population file with --kinetics population: a contradiction
    with pytest.raises(lutdose.InputError, match="choose one"):
        lutdose.fit_many(cohort["df"], kinetics="population", population=cohort["pop"], activity_MBq=A0_MBQ)
    with pytest.raises(lutdose.InputError, match="kinetics"):
        lutdose.fit_many(cohort["df"], kinetics="bayes", activity_MBq=A0_MBQ)
    # an option of the wrong type names the option (0.13.0: pybind's RuntimeError "Unable to cast")
    with pytest.raises(lutdose.InputError, match="population is '5'; expected a text .*, not int"):
        lutdose.fit_many(cohort["df"], population=5, activity_MBq=A0_MBQ)
    with pytest.raises(lutdose.InputError, match="activity_MBq is '7400'; expected a number, not str"):
        lutdose.fit_many(cohort["df"], kinetics="population", activity_MBq="7400")


def test_plan_population_equals_cli(cohort, tmp_path):
    cli("synth", "--out", tmp_path / "cases", "--format", "cases", "--quiet", "--patients", 1, "--seed", 23,
        "--times-h", "4,24,48")
    case = tmp_path / "cases" / "case-P00001.json"
    expected = cli("plan", case, "--population", cohort["pop"]).stdout
    assert lutdose.plan(case, population=cohort["pop"]) == json.loads(expected)
    assert lutdose.plan.last_json == expected
    assert json.loads(expected)["population"]["source"] == str(cohort["pop"])


def test_run_case_with_fit_population_equals_cli(cohort, tmp_path):
    cli("synth", "--out", tmp_path / "cases", "--format", "cases", "--quiet", "--patients", 1, "--seed", 24,
        "--times-h", "4,24,48")
    doc = json.load(open(tmp_path / "cases" / "case-P00001.json"))
    doc["fit"] = {"population": "pop.json"}
    (tmp_path / "cases" / "pop.json").write_bytes(cohort["pop"].read_bytes())
    case = tmp_path / "cases" / "entry.json"
    case.write_text(json.dumps(doc))
    expected = run_json(case, tmp=str(tmp_path))
    assert lutdose.run_case(case).to_json() == expected
    assert json.loads(expected)["options"]["fit"]["method"] == "population MAP"


def one_tac_file(cohort, tmp_path, voi="kidneys", name="kidneys.csv"):
    """The first patient's kidney TAC as `fit_tac` is given it (voi, time_h, activity_MBq; no patient
    or cycle column) and as a file for `lutdose fit`: (path, times [h], activities [MBq])."""
    df = cohort["df"]
    one = df[(df.patient == "P00001") & (df.voi == "kidneys")]
    path = tmp_path / name
    pd.DataFrame({"voi": voi, "time_h": one.time_h, "activity_MBq": one.activity_MBq}).to_csv(path, index=False)
    return path, list(one.time_h), list(one.activity_MBq)


def test_fit_tac_population_file_equals_cli(cohort, tmp_path):
    path, t, a = one_tac_file(cohort, tmp_path)
    doc = json.loads(cli("fit", "--tac", path, "--activity-MBq", A0_MBQ, "--population", cohort["pop"]).stdout)
    expected = doc["patients"][0]["cycles"][0]["vois"][0]
    r = lutdose.fit_tac(t, a, voi="kidneys", population=cohort["pop"], administered_MBq=A0_MBQ)
    # the same engine call on the same doubles (the table read with round_trip): equal exactly
    assert (r.tia_MBq_h, r.tia_u_MBq_h, r.method) == (expected["tia_MBq_h"], expected["tia_u_MBq_h"],
                                                      expected["fit"]["method"])
    assert r.method == "population MAP" and r.function == expected["fit"]["function"]
    assert json.loads(r.json)["population"] == doc["population"]  # the file, its SHA-256 and models


def test_fit_tac_population_refusals_as_the_cli(cohort, tmp_path):
    path, t, a = one_tac_file(cohort, tmp_path)
    pop = cohort["pop"]

    def same_refusal(args, **kw):
        msg = cli_error("fit", "--tac", *args)
        with pytest.raises(lutdose.InputError) as e:
            lutdose.fit_tac(t, a, **kw)
        assert str(e.value) == msg.replace(str(args[0]), "fit_tac")

    # without the administered activity: test_fit_tac_population_without_activity_names_the_argument
    # a VOI kind the file lacks (voi= decides the kind)
    other, _, _ = one_tac_file(cohort, tmp_path, voi="bladder", name="bladder.csv")
    same_refusal((other, "--activity-MBq", A0_MBQ, "--population", pop), voi="bladder", population=pop,
                 administered_MBq=A0_MBQ)
    # a file that is no population file
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    same_refusal((path, "--activity-MBq", A0_MBQ, "--population", bad), voi="kidneys", population=bad,
                 administered_MBq=A0_MBQ)
    # an empty path is refused (as --population ''), not read as no population (0.14's review)
    for call in (lambda: lutdose.fit_tac(t, a, voi="kidneys", population="", administered_MBq=A0_MBQ),
                 lambda: lutdose.fit_many(pd.read_csv(path), population="", activity_MBq=A0_MBQ)):
        with pytest.raises(lutdose.InputError, match="population is ''"):
            call()
    # kinetics="population" would learn a population from one TAC: fit_tac has no such option
    with pytest.raises(TypeError, match="kinetics"):
        lutdose.fit_tac(t, a, voi="kidneys", kinetics="population", administered_MBq=A0_MBQ)


def test_fit_tac_population_without_activity_names_the_argument(cohort, tmp_path):
    # Regression (issue 15): fit_tac(..., administered_MBq=nan, population=FILE) and run_tac said
    # "command line: --activity-MBq is 'missing'", an option the caller never saw; the message
    # names the function and its argument (None and NaN are both "not known": dose()'s convention)
    _, t, a = one_tac_file(cohort, tmp_path)
    one = cohort["df"][cohort["df"].patient == "P00001"]
    calls = [("fit_tac", lambda v: lutdose.fit_tac(t, a, voi="kidneys", population=cohort["pop"], administered_MBq=v)),
             ("run_tac", lambda v: lutdose.run_tac(one, administered_MBq=v, phantom="icrp110-am",
                                                   population=cohort["pop"]))]
    for name, call in calls:
        for value in (None, float("nan")):
            if value is None and name == "run_tac":
                continue  # run_tac's administered_MBq is required (TypeError without it)
            with pytest.raises(lutdose.InputError) as e:
                call(value)
            msg = str(e.value)
            assert msg.startswith(name + ": administered_MBq is 'missing'; expected the administered activity"), msg
            assert "--activity-MBq" not in msg and "command line" not in msg, msg


def test_read_store_population_e_step(cohort, tmp_path):
    # the store's /population records the E-step of the population (the file's e_step: pop.json was
    # learned with population learn's default, the sampled E-step); 0.13 had no such column
    store = tmp_path / "s.h5"
    cli("batch", "--tac", cohort["tac"], "--patients", cohort["tmp"] / "c" / "patients.csv", "--population",
        cohort["pop"], "--out", store)
    population = lutdose.read_store(store).population
    assert len(population) > 0 and set(population.e_step) == {"sampled"}
    assert {v["e_step"] for v in json.load(open(cohort["pop"]))["vois"]} == {"sampled"}


# The /population columns of store formats 5 (lutdose 0.18) and 6 (0.19, the additive models' SEs;
# docs/store.md), after e_step: None in a store of format 4 or older.
FORMAT5_COLUMNS = ["error_model", "omega_structure", "sigma0_MBq", "b_proportional", "log_omega_se", "log_sigma_log_se",
                   "log_sigma0_se", "log_b_proportional_se"]


def to_older_format(store, version):
    """Rewrites `store` (format 5) with h5py as an older lutdose wrote it: format 4 (0.14 to 0.17)
    has /population up to e_step, format 3 (0.11 to 0.13) without e_step; neither /population_omega
    nor /points (format 6)."""
    h5py = pytest.importorskip("h5py")
    import numpy as np
    with h5py.File(store, "r+") as f:
        rows = f["population"][()]
        names = list(rows.dtype.names)
        names = names[:names.index("e_step") + (1 if version == 4 else 0)]
        old = np.empty(len(rows), dtype=np.dtype([(n, rows.dtype.fields[n][0]) for n in names]))
        for n in names:
            old[n] = rows[n]
        del f["population"]
        del f["population_omega"]
        del f["points"]
        f.create_dataset("population", data=old)
        f.attrs.modify("format_version", np.int32(version))


def test_read_store_format3_e_step_unknown(cohort, tmp_path):
    # a store of lutdose 0.11 to 0.13 (format 3: /population without e_step, made here from a
    # format 6 store with h5py) is read with e_step None: unknown, never a guess
    store = tmp_path / "s.h5"
    cli("batch", "--tac", cohort["tac"], "--patients", cohort["tmp"] / "c" / "patients.csv", "--population",
        cohort["pop"], "--out", store)
    new = lutdose.read_store(store).population
    assert len(lutdose.read_store(store).points) > 0
    to_older_format(store, 3)
    assert len(lutdose.read_store(store).points) == 0  # no /points before format 6: no rows, not an error
    population = lutdose.read_store(store).population
    assert list(population.e_step) == [None] * len(new)
    unknown = ["e_step"] + FORMAT5_COLUMNS
    assert all(list(population[c]) == [None] * len(new) for c in unknown)
    pd.testing.assert_frame_equal(population.drop(columns=unknown), new.drop(columns=unknown))


def test_read_store_format5_population(cohort, tmp_path):
    # store format 5 (lutdose 0.18): the population's error model, Omega structure and standard errors in
    # Store.population, its Omega's elements in Store.population_omega: those of the population file
    # (pop.json: proportional, diagonal; JSON numbers round-trip exactly); a format 4 store (0.14 to 0.17,
    # made here with h5py) has them None and no population_omega rows: unknown, never a guess
    store = tmp_path / "s.h5"
    cli("batch", "--tac", cohort["tac"], "--patients", cohort["tmp"] / "c" / "patients.csv", "--population",
        cohort["pop"], "--out", store)
    s = lutdose.read_store(store)
    vois = json.load(open(cohort["pop"]))["vois"]
    want = [(v["voi_kind"], name, "proportional", "diagonal", v["log_omega_se"][k], v["log_sigma_log_se"])
            for v in vois for k, name in enumerate(v["parameters"])]
    p = s.population
    assert list(zip(p.voi_kind, p.parameter, p.error_model, p.omega_structure, p.log_omega_se,
                    p.log_sigma_log_se)) == want
    assert p.sigma0_MBq.isna().all() and p.b_proportional.isna().all()  # not part of the proportional model
    o = s.population_omega
    assert list(zip(o.voi_kind, o.parameter_i, o.parameter_j, o.covariance, o.correlation)) == \
        [(v["voi_kind"], name, name, v["omega"][k][k], 1.0) for v in vois for k, name in enumerate(v["parameters"])]
    assert o.correlation_se.isna().all()  # format 7: a diagonal Omega has no correlations, no SEs
    to_older_format(store, 4)
    old = lutdose.read_store(store)
    assert all(list(old.population[c]) == [None] * len(p) for c in FORMAT5_COLUMNS)
    assert len(old.population_omega) == 0
    pd.testing.assert_frame_equal(old.population.drop(columns=FORMAT5_COLUMNS), p.drop(columns=FORMAT5_COLUMNS))


def test_individual_fit_options_refused_as_the_cli(cohort, tmp_path):
    # an option of individual fits with a population: the MAP does not use it, so it is refused
    # (0.13 ignored it silently), with the program's message
    pop = cohort["pop"]
    msg = cli_error("fit", "--tac", cohort["tac"], "--activity-MBq", A0_MBQ, "--population", pop,
                    "--error-model", "constant")
    assert "--error-model is 'constant' with --population" in msg
    with pytest.raises(lutdose.InputError) as e:
        lutdose.fit_many(cohort["df"], population=pop, activity_MBq=A0_MBQ, error_model="constant")
    assert str(e.value) == msg
    path, t, a = one_tac_file(cohort, tmp_path)
    msg = cli_error("fit", "--tac", path, "--activity-MBq", A0_MBQ, "--population", pop, "--function", "E2")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.fit_tac(t, a, voi="kidneys", population=pop, administered_MBq=A0_MBQ, function="E2")
    assert str(e.value) == msg
    # an option of the learning without kinetics="population" is refused as the CLI refuses it
    msg = cli_error("fit", "--tac", cohort["tac"], "--activity-MBq", A0_MBQ, "--omega", "full")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.fit_many(cohort["df"], activity_MBq=A0_MBQ, omega="full")
    assert str(e.value) == msg and "without --kinetics population" in msg
    # an empty text is not "not given" (review of 0.18: omega="" learned the diagonal default)
    for option in ("omega", "e_step", "error_model"):
        with pytest.raises(lutdose.InputError, match=option):
            lutdose.fit_many(cohort["df"], kinetics="population", activity_MBq=A0_MBQ, **{option: ""})


def test_kinetics_population_learning_options_equal_cli(cohort, tmp_path):
    """kinetics="population" takes the learning's options as the CLI does (0.18): functions, error_model,
    omega, e_step; the same population and results as lutdose run --tac with them."""
    cli_opts = ("--functions", "E1", "--error-model", "combined", "--e-step", "laplace", "--max-iterations", "9")
    expected = run_json("--tac", cohort["tac"], "--activity-MBq", A0_MBQ, "--phantom", "icrp110-am",
                        "--kinetics", "population", *cli_opts, tmp=str(tmp_path))
    r = lutdose.run_tac(cohort["tac"], administered_MBq=A0_MBQ, phantom="icrp110-am", kinetics="population",
                        functions=["E1"], error_model="combined", e_step="laplace", max_iterations=9)
    assert r.to_json() == expected
    learning = json.loads(expected)["options"]["fit"]["population"]["learning"]
    assert learning == {"candidates": ["E1"], "error_model": "combined", "omega_structure": "diagonal",
                        "e_step": "laplace", "max_iterations": 9}
    for bad in (0, -3, 100001):  # as the CLI's range, never "not given" (0.19)
        with pytest.raises(lutdose.InputError, match="max_iterations"):
            lutdose.run_tac(cohort["tac"], administered_MBq=A0_MBQ, phantom="icrp110-am", kinetics="population",
                            max_iterations=bad)


# blood_organ_linear.json's free parameters (k_b, k_in, k_out [1/h]) and Lu-177's physical decay constant
# (ICRP-107 half-life 6.647 d)
ORGAN_BLOOD_K_PER_H = (0.3422, 0.006684, 0.008033)
LU177_LAMBDA_PER_H = math.log(2) / (6.647 * 24)


def organ_blood_points(patient, rng, times_h):
    """(patient, voi, time_h, activity_MBq) of one patient of blood_organ_linear (its closed form: blood
    A0 e^-(k_b+l)t, organ A0 k_in/(k_out-k_b) (e^-(k_b+l)t - e^-(k_out+l)t)), ln k ~ N(ln k_file, 0.2^2), times
    log-normal noise of 10 %; `times_h` per VOI."""
    kb, kin, kout = (k * math.exp(0.2 * rng.gauss(0, 1)) for k in ORGAN_BLOOD_K_PER_H)
    blood = lambda t: A0_MBQ * math.exp(-(kb + LU177_LAMBDA_PER_H) * t)
    organ = lambda t: A0_MBQ * kin / (kout - kb) * (blood(t) / A0_MBQ - math.exp(-(kout + LU177_LAMBDA_PER_H) * t))
    return [(patient, voi, t, f(t) * math.exp(0.1 * rng.gauss(0, 1)))
            for voi, f in (("organ", organ), ("blood", blood)) for t in times_h[voi]]


@pytest.fixture(scope="module")
def compartment(tmp_path_factory):
    """A compartment population of blood_organ_linear (population learn --model, Laplace E-step: quick)
    learned from 60 patients, and 3 new patients as a TAC table and as case files (organ and blood at 1, 4,
    12 h: a case's VOIs are measured at every time point), with a user S-value table of the two VOIs
    (no phantom has them; a fixture, not physics)."""
    tmp = tmp_path_factory.mktemp("compartment")
    rng = random.Random(31)
    learn = [r for i in range(60) for r in organ_blood_points("L%02d" % i, rng, {
        "organ": (1, 4, 24, 48, 96, 168), "blood": (1, 4, 24)})]
    pd.DataFrame(learn, columns=["patient", "voi", "time_h", "activity_MBq"]).to_csv(tmp / "learn.csv", index=False)
    pd.DataFrame({"patient": ["L%02d" % i for i in range(60)], "administered_MBq": A0_MBQ}).to_csv(
        tmp / "learn_patients.csv", index=False)
    cli("population", "learn", tmp / "learn.csv", "--patients", tmp / "learn_patients.csv", "--model",
        "blood_organ_linear", "--e-step", "laplace", "--out", tmp / "pop.json", "--quiet")
    new = [r for i in range(3) for r in organ_blood_points("N%d" % i, rng, {"organ": (1, 4, 12), "blood": (1, 4, 12)})]
    pd.DataFrame(new, columns=["patient", "voi", "time_h", "activity_MBq"]).to_csv(tmp / "new.csv", index=False)
    pd.DataFrame({"patient": ["N0", "N1", "N2"], "administered_MBq": A0_MBQ}).to_csv(tmp / "new_patients.csv",
                                                                                    index=False)
    (tmp / "cases").mkdir()
    (tmp / "sv.csv").write_text("target,source,s_mGy_per_MBq_s,target_mass_g\norgan,organ,2.1e-4,300\n"
                                "organ,blood,3.0e-7,300\nblood,organ,3.0e-7,5000\nblood,blood,1.0e-5,5000\n")
    (tmp / "cases" / "sv.csv").write_bytes((tmp / "sv.csv").read_bytes())
    for p in ("N0", "N1", "N2"):
        times = sorted({t for q, _, t, _ in new if q == p})
        doc = {"lutdose_case_version": 1, "patient": {"id": p}, "phantom": "icrp110-am",
               "dose": {"svalues": "sv.csv"}, "plan": {"limits": ["organ:dose_Gy:40"]},
               "cycles": [{"cycle": 1, "administered": {"activity_MBq": A0_MBQ}, "timepoints": [
                   {"start_h": t, "vois": {v: {"activity_MBq": a} for q, v, u, a in new if q == p and u == t}}
                   for t in times]}]}
        (tmp / "cases" / (p + ".json")).write_text(json.dumps(doc))
    return tmp


def test_compartment_population_batch_run_case_and_plan_equal_cli(compartment, tmp_path):
    # issue 15, point 2: a compartment population with case files, plan and batch (0.18 refused them:
    # 'not yet by run CASE, plan or batch'); the bindings go through the CLI's engine calls: equal exactly
    tmp, pop = compartment, compartment / "pop.json"
    cli("batch", "--tac", tmp / "new.csv", "--patients", tmp / "new_patients.csv", "--svalues", tmp / "sv.csv",
        "--population", pop, "--out", tmp_path / "cli_tac.h5", "--progress", "never")
    progress, store = lutdose.batch(tac=tmp / "new.csv", patients=tmp / "new_patients.csv", svalues=tmp / "sv.csv",
                                    population=pop, out=tmp_path / "py_tac.h5")
    cli("batch", tmp / "cases", "--population", pop, "--out", tmp_path / "cli_cases.h5", "--progress", "never")
    progress_cases, store_cases = lutdose.batch(tmp / "cases", population=pop, out=tmp_path / "py_cases.h5")
    assert progress["done"] == progress_cases["done"] == 3 and set(store.vois.method) == {"population MAP"}
    assert set(store.population.voi_kind) == {"compartment"}
    for cli_path, py in ((tmp_path / "cli_tac.h5", store), (tmp_path / "cli_cases.h5", store_cases)):
        want = lutdose.read_store(cli_path)
        for name in ("vois", "targets", "population"):
            pd.testing.assert_frame_equal(getattr(want, name), getattr(py, name))
    doc = json.load(open(tmp / "cases" / "N0.json"))
    doc["fit"] = {"population": "pop.json"}
    (tmp_path / "pop.json").write_bytes(pop.read_bytes())
    (tmp_path / "sv.csv").write_bytes((tmp / "sv.csv").read_bytes())
    case = tmp_path / "entry.json"
    case.write_text(json.dumps(doc))
    assert lutdose.run_case(case).to_json() == run_json(case, tmp=str(tmp_path))
    expected = cli("plan", tmp / "cases" / "N0.json", "--population", pop).stdout
    assert lutdose.plan(tmp / "cases" / "N0.json", population=pop) == json.loads(expected)
    assert json.loads(expected)["population"]["source"] == str(pop) and json.loads(expected)["delivered_dose_uncertainty"]


def test_kinetics_population_with_model_equals_cli(compartment, tmp_path):
    # issue 15, point 1 with a compartment model (0.20; 0.19 refused it, 'choose one'): kinetics="population"
    # with model= learns the model's population from the input as `--kinetics population --model` does,
    # through the same engine calls: equal exactly; the population section is `population learn --model`'s
    tmp, learn = compartment, ("--model", "blood_organ_linear", "--e-step", "laplace")
    expected = run_json("--tac", tmp / "learn.csv", "--activity-MBq", A0_MBQ, "--svalues", tmp / "sv.csv",
                        "--kinetics", "population", *learn, tmp=str(tmp_path))
    r = lutdose.run_tac(tmp / "learn.csv", administered_MBq=A0_MBQ, svalues=tmp / "sv.csv", kinetics="population",
                        model="blood_organ_linear", e_step="laplace")
    assert r.to_json() == expected
    # the fixture's pop.json was learned from the same table and activities with the same options
    assert json.loads(expected)["population"]["vois"] == json.load(open(tmp / "pop.json"))["vois"]
    batch = ("--tac", tmp / "learn.csv", "--patients", tmp / "learn_patients.csv", "--svalues", tmp / "sv.csv")
    cli("batch", *batch, "--kinetics", "population", *learn, "--out", tmp_path / "cli.h5", "--progress", "never")
    _, store = lutdose.batch(tac=tmp / "learn.csv", patients=tmp / "learn_patients.csv", svalues=tmp / "sv.csv",
                             kinetics="population", model="blood_organ_linear", e_step="laplace",
                             out=tmp_path / "py.h5")
    want = lutdose.read_store(tmp_path / "cli.h5")
    for name in ("vois", "population"):
        pd.testing.assert_frame_equal(getattr(want, name), getattr(store, name))
    with pytest.raises(lutdose.InputError, match="--free-parameters is 'k_in' without --kinetics population --model"):
        lutdose.run_tac(tmp / "learn.csv", administered_MBq=A0_MBQ, svalues=tmp / "sv.csv", kinetics="population",
                        free_parameters=["k_in"])


def test_kinetics_population_free_parameters_named_as_the_option(compartment, tmp_path):
    # review of 0.20, finding 2: a bad free_parameters with kinetics="population" and model= is named as
    # the option ("options: free_parameters", as other options), not as the input ("DataFrame: ..." in 0.20)
    tmp = compartment
    df = pd.read_csv(tmp / "learn.csv", float_precision="round_trip")
    calls = {
        "fit_many": lambda bad: lutdose.fit_many(df, kinetics="population", model="blood_organ_linear",
                                                 free_parameters=bad, activity_MBq=A0_MBQ),
        "run_tac": lambda bad: lutdose.run_tac(tmp / "learn.csv", administered_MBq=A0_MBQ, svalues=tmp / "sv.csv",
                                               kinetics="population", model="blood_organ_linear",
                                               free_parameters=bad),
        "batch": lambda bad: lutdose.batch(tac=tmp / "learn.csv", patients=tmp / "learn_patients.csv",
                                           svalues=tmp / "sv.csv", kinetics="population", model="blood_organ_linear",
                                           free_parameters=bad, out=tmp_path / "py.h5")}
    for name, call in calls.items():
        for bad, value in ((["k_in", "k_zz"], "k_zz"), (["k_in", "k_in"], "k_in")):
            with pytest.raises(lutdose.InputError) as e:
                call(bad)
            assert str(e.value).startswith("options: free_parameters: a free parameter is '%s'" % value), name
    assert not (tmp_path / "py.h5").exists()
