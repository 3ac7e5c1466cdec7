"""run_case and run_tac against `lutdose run`: results.json byte for byte, and the DataFrames hold
the same numbers as results.json."""
import json
import os

import numpy as np
import pandas as pd
import pytest

import lutdose
from conftest import run_json

CASES = ["snmmi-patient004", "synthetic-two-cycles", "synthetic-four-cycles"]


@pytest.mark.parametrize("example", CASES)
def test_run_case_equals_cli(source, tmp_path, example):
    case = f"{source}/examples/{example}/case.json"
    expected = run_json(case, tmp=str(tmp_path))
    r = lutdose.run_case(case)
    assert r.to_json() == expected


def test_run_tac_path_equals_cli(source, tmp_path):
    tac = f"{source}/examples/snmmi-patient004/tac.csv"
    expected = run_json("--tac", tac, "--activity-MBq", "7210.4", "--phantom", "icrp110-am", tmp=str(tmp_path))
    r = lutdose.run_tac(tac, administered_MBq=7210.4, phantom="icrp110-am")
    assert r.to_json() == expected


def test_run_tac_options_equal_cli(source, tmp_path):
    tac = f"{source}/examples/snmmi-patient004/tac.csv"
    args = ["--function", "E2u", "--error-model", "constant", "--mass-scaling", "inverse-mass"]
    expected = run_json("--tac", tac, "--activity-MBq", "7210.4", "--phantom", "icrp110-af", *args, tmp=str(tmp_path))
    r = lutdose.run_tac(tac, administered_MBq=7210.4, phantom="icrp110-af", function="E2u",
                        error_model="constant", mass_scaling="inverse-mass")
    assert r.to_json() == expected


def test_dataframes_hold_results_json_numbers(source):
    r = lutdose.run_case(f"{source}/examples/snmmi-patient004/case.json")
    doc = r.json
    cycle = doc["patients"][0]["cycles"][0]
    vois = r.vois.set_index("voi")
    for v in cycle["vois"]:
        assert vois.loc[v["name"], "tia_MBq_h"] == v["tia_MBq_h"]
    doses = r.doses.set_index("target")
    for d in cycle["doses"]:
        assert doses.loc[d["target"], "dose_Gy"] == d["dose_Gy"]
    assert set(r.budget.target) <= set(vois.index)
    assert (r.budget.term_Gy >= 0).all()
    assert "kidney_left" in r.table and "kidney_left" in r.csv


def test_run_tac_dataframe_equals_file(source):
    tac = f"{source}/examples/snmmi-patient004/tac.csv"
    df = pd.read_csv(tac, comment="#", float_precision="round_trip")
    from_file = lutdose.run_tac(tac, administered_MBq=7210.4, phantom="icrp110-am")
    from_df = lutdose.run_tac(df, administered_MBq=7210.4, phantom="icrp110-am")
    pd.testing.assert_frame_equal(from_file.vois, from_df.vois)
    pd.testing.assert_frame_equal(from_file.doses, from_df.doses)
    # results.json differs only in the input's name.
    assert from_df.to_json() == from_file.to_json().replace(tac, "DataFrame")


def test_run_case_from_dict(source):
    path = f"{source}/examples/synthetic-two-cycles/case.json"
    with open(path, encoding="utf-8") as f:
        case = json.load(f)
    a = lutdose.run_case(path)
    b = lutdose.run_case(case)
    pd.testing.assert_frame_equal(a.doses, b.doses)
    assert len(b.cumulative) > 0  # two cycles: doses summed over them


def test_run_case_dict_names_its_input_stably(source):
    # Regression: results.json, the store rows and messages named the random temporary file the
    # dict was written to, so two identical calls gave different to_json().
    with open(os.path.join(source, "examples", "snmmi-patient004", "case.json"), encoding="utf-8") as f:
        case = json.load(f)
    a, b = lutdose.run_case(case), lutdose.run_case(case)
    assert a.to_json() == b.to_json()
    assert "case (dict)" in a.to_json() and "lutdose-case-" not in a.to_json()
    assert set(a._tables["patients"]["source"]) == {"case (dict)"}
    with pytest.raises(lutdose.InputError) as e:
        lutdose.run_case({"lutdose_case_version": 1})
    assert str(e.value).startswith("case (dict): ") and "lutdose-case-" not in str(e.value)
