"""synth, batch, read_store and reference_data against the program: the same files, the same store
rows, the same reference values."""
import io
import json
import os

import numpy as np
import pandas as pd
import pytest

import lutdose
from conftest import cli


def test_synth_equals_cli(tmp_path):
    cli("synth", "--patients", 7, "--seed", 3, "--times-h", "4,24,96,168", "--out", tmp_path / "cli", "--quiet")
    c = lutdose.synth(7, seed=3, times_h=[4, 24, 96, 168], out=tmp_path / "py")
    for name in ("tacs.csv", "patients.csv", "truth.csv", "synth.json"):
        text = (tmp_path / "cli" / name).read_text()
        assert c.files[name] == text, name
        assert (tmp_path / "py" / name).read_text() == text, name
    assert len(c.truth) == 7 * 4 and set(c.tacs.columns) >= {"patient", "voi", "time_h", "activity_MBq"}


def test_synth_cases_format():
    c = lutdose.synth(2, seed=1, format="cases", cf_cps_per_MBq=5.0)
    assert sorted(c.cases) == ["case-P00001.json", "case-P00002.json"]
    assert c.tacs is None


def test_synth_bad_option_has_cli_message(tmp_path):
    p = cli("synth", "--patients", 2, "--noise", "organ=proportional:2", "--out", tmp_path / "x", check=False)
    assert p.returncode == 2
    with pytest.raises(lutdose.InputError) as e:
        lutdose.synth(2, noise={"organ": "proportional:2"})
    assert p.stderr == "lutdose: error: " + str(e.value) + "\n"


def test_batch_and_read_store_equal_cli(tmp_path):
    lutdose.synth(6, seed=5, out=tmp_path / "c")
    tac, patients = tmp_path / "c" / "tacs.csv", tmp_path / "c" / "patients.csv"
    cli("batch", "--tac", tac, "--patients", patients, "--out", tmp_path / "cli.h5", "--progress", "never")
    cli("export", tmp_path / "cli.h5", "--csv", tmp_path / "csv")
    progress, store = lutdose.batch(tac=tac, patients=patients, out=tmp_path / "py.h5", threads=2)
    assert progress["done"] == 6 and progress["failed"] == 0
    for name in ("vois", "targets", "budget", "points"):  # points: store format 6 (lutdose 0.19)
        exported = pd.read_csv(tmp_path / "csv" / f"{name}.csv", keep_default_na=False, na_values=[""], float_precision="round_trip")
        mine = getattr(store, name)
        for col in exported.columns:
            if mine[col].dtype.kind == "f":
                # export writes numbers in their shortest exact form: they read back exactly.
                np.testing.assert_array_equal(mine[col].to_numpy(), exported[col].to_numpy(float), err_msg=col)
            else:
                # text columns: empty cells read back as NaN
                assert list(mine[col].astype(str)) == list(exported[col].fillna("").astype(str)), col
        assert list(mine.columns) == list(exported.columns), name
    cli_store = lutdose.read_store(tmp_path / "cli.h5")
    pd.testing.assert_frame_equal(cli_store.vois, store.vois)
    assert store.header["kind"] == "batch"
    # /points: the table's points (read here from tacs.csv), none of them with an activity_u_MBq
    tacs = pd.read_csv(tac, float_precision="round_trip")
    assert sorted(zip(store.points.patient, store.points.voi, store.points.time_h, store.points.activity_MBq)) == \
        sorted(zip(tacs.patient, tacs.voi, tacs.time_h, tacs.activity_MBq))
    assert store.points.activity_u_MBq.isna().all()


def test_read_store_population_table(tmp_path):
    """read_store's population: the /population table, one row per VOI kind and parameter, with
    the numbers of the population file the batch used (its JSON numbers round-trip exactly)."""
    lutdose.synth(12, seed=4, times_h=[4, 24, 48, 96], out=tmp_path / "c")
    tac, patients = tmp_path / "c" / "tacs.csv", tmp_path / "c" / "patients.csv"
    cli("population", "learn", tac, "--patients", patients, "--out", tmp_path / "pop.json", "--quiet",
        "--functions", "E1")
    cli("batch", "--tac", tac, "--patients", patients, "--population", tmp_path / "pop.json",
        "--out", tmp_path / "s.h5", "--progress", "never")
    pop = json.loads((tmp_path / "pop.json").read_text())
    table = lutdose.read_store(tmp_path / "s.h5").population
    expected = [(v["voi_kind"], name, v["theta"][k], v["omega"][k][k], v["n_patients"])
                for v in pop["vois"] for k, name in enumerate(v["parameters"])]
    got = list(zip(table.voi_kind, table.parameter, table.theta, table.omega_diag, table.n_tacs))
    assert got == expected
    cli("batch", "--tac", tac, "--patients", patients, "--out", tmp_path / "plain.h5", "--progress", "never")
    assert len(lutdose.read_store(tmp_path / "plain.h5").population) == 0


def test_read_store_of_run(tmp_path, source):
    case = f"{source}/examples/snmmi-patient004/case.json"
    cli("run", case, "--out", tmp_path / "run", "--quiet")
    store = lutdose.read_store(tmp_path / "run" / "results.h5")
    r = lutdose.run_case(case)
    pd.testing.assert_frame_equal(store.vois, r.vois)
    pd.testing.assert_frame_equal(store.targets, r.doses)
    pd.testing.assert_frame_equal(store.budget, r.budget)


def test_reference_data_equals_info():
    ref = lutdose.reference_data()
    assert set(ref) >= {"phantoms", "masses", "svalues", "voi_map", "tissues", "limits", "data_dir"}
    assert list(ref["phantoms"].phantom) == ["icrp110-am", "icrp110-af", "icrp89-male", "icrp89-female"]
    text = cli("info", "svalues", "--phantom", "icrp110-am").stdout
    masses = ref["masses"][ref["masses"].phantom == "icrp110-am"].set_index("region").mass_g
    after = text.split("), mass g:\n", 1)[1]
    n = 0
    for line in after.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] != "-":
            # info prints masses with format_number ("%.10g"): equal to 10 significant digits.
            assert float(parts[1]) == pytest.approx(masses[parts[0]], rel=1e-9), parts[0]
            n += 1
    assert n > 10
    s = ref["svalues"]
    assert (s.s_mGy_per_MBq_s > 0).all() and len(s) > 100
    assert (ref["tissues"].alpha_beta_Gy > 0).all()
    assert "dose_Gy" in set(ref["limits"].quantity)


def test_synth_wrong_kind_is_input_error():
    # Regression: a RuntimeError (pybind's cast error), which the module keeps for internal errors.
    with pytest.raises(lutdose.InputError, match=r"synth: n_patients is '2.5'; expected a whole number"):
        lutdose.synth(2.5)


@pytest.mark.parametrize("threads", [257, -1])
def test_batch_threads_out_of_range_has_cli_message(tmp_path, threads):
    # Regression: batch set the threads without the CLI's range check (0 to 256).
    lutdose.synth(2, seed=5, out=tmp_path / "c")
    tac, patients = tmp_path / "c" / "tacs.csv", tmp_path / "c" / "patients.csv"
    with pytest.raises(lutdose.InputError) as e:
        lutdose.batch(tac=tac, patients=patients, out=tmp_path / "py.h5", threads=threads)
    if threads >= 0:  # the CLI's unsigned option cannot take -1 (CLI11 refuses it before the check)
        p = cli("batch", "--tac", tac, "--patients", patients, "--out", tmp_path / "cli.h5", "--threads", threads,
                check=False)
        assert p.stderr == "lutdose: error: " + str(e.value) + "\n"
    assert "from 0 to 256" in str(e.value)
    assert not (tmp_path / "py.h5").exists()


def test_batch_dataframe_for_a_path_is_input_error(tmp_path):
    # Regression: "The truth value of a DataFrame is ambiguous".
    c = lutdose.synth(2, seed=5)
    with pytest.raises(lutdose.InputError, match=r"batch: tac is a DataFrame; expected a path to a TAC table"):
        lutdose.batch(tac=c.tacs, patients=c.patients, out=tmp_path / "py.h5")


@pytest.fixture(scope="module")
def case_cohort(tmp_path_factory):
    """Six 3-scan case files (lutdose synth --format cases) and a population file learned (E1 only,
    to be quick) from another 5-scan cohort of 30 TAC-table patients."""
    tmp = tmp_path_factory.mktemp("cases")
    cli("synth", "--out", tmp / "learn", "--quiet", "--patients", 30, "--seed", 21, "--times-h", "4,24,48,96,168")
    cli("population", "learn", tmp / "learn" / "tacs.csv", "--patients", tmp / "learn" / "patients.csv",
        "--out", tmp / "pop.json", "--quiet", "--functions", "E1")
    cli("synth", "--out", tmp / "c", "--format", "cases", "--quiet", "--patients", 6, "--seed", 3,
        "--times-h", "4,24,48")
    return {"cases": tmp / "c", "pop": tmp / "pop.json"}


@pytest.mark.parametrize("options", [{"population": "pop"}, {"kinetics": "population"}])
def test_batch_case_files_population_equals_cli(case_cohort, tmp_path, options):
    # Regression: batch(cases_dir, population=...) ignored the option silently (case files took no
    # options); now as `lutdose batch CASES_DIR --population FILE` / `--kinetics population`.
    opts = {k: str(case_cohort["pop"]) if v == "pop" else v for k, v in options.items()}
    args = [a for k, v in opts.items() for a in ("--" + k, v)]
    cli("batch", case_cohort["cases"], *args, "--out", tmp_path / "cli.h5", "--progress", "never")
    progress, store = lutdose.batch(case_cohort["cases"], out=tmp_path / "py.h5", **opts)
    assert progress["done"] == 6 and progress["failed"] == 0
    assert set(store.vois.method) == {"population MAP"}
    # every VOI by MAP, none rejected: the counts of the CLI's summary (docs/batch.md)
    assert progress["maps_used"] == len(store.vois) and progress["maps_not_used"] == 0, progress
    cli_store = lutdose.read_store(tmp_path / "cli.h5")
    for name in ("vois", "targets", "population"):
        pd.testing.assert_frame_equal(getattr(cli_store, name), getattr(store, name))


def test_batch_case_files_refuse_other_fit_options_as_the_cli(case_cohort, tmp_path):
    # Regression: fit options with case files were ignored silently; the CLI refuses them.
    p = cli("batch", case_cohort["cases"], "--function", "E1", "--out", tmp_path / "cli.h5", check=False)
    assert p.returncode == 2
    with pytest.raises(lutdose.InputError) as e:
        lutdose.batch(case_cohort["cases"], out=tmp_path / "py.h5", function="E1")
    assert p.stderr == "lutdose: error: " + str(e.value) + "\n"
    assert not (tmp_path / "py.h5").exists()


def test_batch_case_files_leave_out_a_population_file_with_a_warning(case_cohort, tmp_path):
    # Regression (issue 15): a population file in the folder was run as a case (a failed patient);
    # it is left out, with a warning naming it, as `lutdose batch` notes it on standard error.
    import shutil
    folder = tmp_path / "c"
    shutil.copytree(case_cohort["cases"], folder)
    shutil.copy(case_cohort["pop"], folder / "pop.json")
    with pytest.warns(UserWarning, match="pop.json: a population file"):
        progress, store = lutdose.batch(folder, out=tmp_path / "py.h5")
    assert (progress["done"], progress["failed"]) == (6, 0) and "notes" not in progress
    assert "pop" not in set(store.patients.patient)
