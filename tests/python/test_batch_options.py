"""batch's options with TAC tables are `lutdose batch --tac`'s: svalues= is --svalues (one user
S-value table for every patient), and phantom=, body_mass_kg=, activity_MBq= are refused as the
program refuses --phantom, --body-mass-kg, --activity-MBq there (the patients table gives them)."""
import pandas as pd
import pytest

import lutdose
from conftest import cli


# A user S-value table over the synthetic cohort's organs (docs/svalues.md's format). A fixture, not
# physics: the numbers only need to differ from every shipped phantom's, so that a batch that left
# svalues= out would give other doses than the program with --svalues.
USER_SVALUES = ("target,source,s_mGy_per_MBq_s,target_mass_g\n"
                "kidneys,kidneys,2.1e-4,300\nkidneys,liver,3.0e-7,300\nkidneys,spleen,8.0e-7,300\n"
                "liver,kidneys,3.0e-7,1800\nliver,liver,3.4e-5,1800\nliver,spleen,1.0e-7,1800\n"
                "spleen,kidneys,8.0e-7,150\nspleen,liver,1.0e-7,150\nspleen,spleen,4.0e-4,150\n")


def _cohort(tmp_path, phantom):
    """A synthetic cohort of 3 patients whose patients table names `phantom` for each."""
    lutdose.synth(3, seed=11, out=tmp_path / "c")
    patients = pd.read_csv(tmp_path / "c" / "patients.csv", comment="#")
    patients["phantom"] = phantom
    patients.to_csv(tmp_path / "c" / "patients.csv", index=False)
    return tmp_path / "c" / "tacs.csv", tmp_path / "c" / "patients.csv"


def test_batch_svalues_equals_cli(tmp_path):
    tac, patients = _cohort(tmp_path, "user")
    table = tmp_path / "user_sv.csv"
    table.write_text(USER_SVALUES)
    cli("batch", "--tac", tac, "--patients", patients, "--svalues", table, "--out", tmp_path / "cli.h5",
        "--progress", "never")
    progress, store = lutdose.batch(tac=tac, patients=patients, svalues=table, out=tmp_path / "py.h5", threads=1)
    want = lutdose.read_store(tmp_path / "cli.h5")
    assert progress["failed"] == 0 and len(want.failures) == 0 and len(want.targets) > 0
    pd.testing.assert_frame_equal(store.targets, want.targets)  # every dose: the same doubles
    pd.testing.assert_frame_equal(store.vois, want.vois)


def test_batch_svalues_missing_file_is_refused(tmp_path):
    tac, patients = _cohort(tmp_path, "user")
    with pytest.raises(lutdose.InputError, match="nonexistent"):
        lutdose.batch(tac=tac, patients=patients, svalues=tmp_path / "nonexistent.csv", out=tmp_path / "py.h5")


@pytest.mark.parametrize("key, cli_option, value", [
    ("phantom", "--phantom", "icrp110-af"),
    ("body_mass_kg", "--body-mass-kg", 70.0),
    ("activity_MBq", "--activity-MBq", 7400.0),
])
def test_batch_tac_refuses_options_the_program_has_not(tmp_path, key, cli_option, value):
    """`lutdose batch --tac` has no --phantom, --body-mass-kg, --activity-MBq (the patients table
    gives them per patient): the program exits 2, the module raises TypeError as for any option
    it does not have, and writes nothing."""
    tac, patients = _cohort(tmp_path, "icrp110-am")
    p = cli("batch", "--tac", tac, "--patients", patients, cli_option, value, "--out", tmp_path / "cli.h5",
            check=False)
    assert p.returncode == 2 and "not expected" in p.stderr, p.stderr
    with pytest.raises(TypeError, match=f"unexpected option '{key}'"):
        lutdose.batch(tac=tac, patients=patients, out=tmp_path / "py.h5", **{key: value})
    assert not (tmp_path / "py.h5").exists()


def test_batch_tac_kinetics_population_equals_cli(tmp_path):
    """batch(tac=..., kinetics="population") learns the cohort's population first, as `lutdose batch
    --tac ... --kinetics population` does: the same /population table and the same MAP fits."""
    tac, patients = _cohort(tmp_path, "icrp110-am")
    cli("batch", "--tac", tac, "--patients", patients, "--kinetics", "population", "--out", tmp_path / "cli.h5",
        "--progress", "never")
    want = lutdose.read_store(tmp_path / "cli.h5")
    progress, store = lutdose.batch(tac=tac, patients=patients, kinetics="population", out=tmp_path / "py.h5", threads=1)
    assert len(want.population) > 0 and progress["maps_used"] > 0
    pd.testing.assert_frame_equal(store.population, want.population)
    pd.testing.assert_frame_equal(store.vois, want.vois)
    pd.testing.assert_frame_equal(store.targets, want.targets)
