"""Packaging and errors: the module imports from the build tree, maps bad input to InputError (a
ValueError) with the CLI's message and internal errors to RuntimeError."""
import lutdose
import numpy as np
import pytest

from conftest import cli_error


def test_import_from_build_tree():
    assert lutdose.__version__.count(".") == 2
    assert issubclass(lutdose.InputError, ValueError)


def test_bad_option_has_cli_message(source):
    tac = f"{source}/examples/snmmi-patient004/tac.csv"
    expected = cli_error("fit", "--tac", tac, "--error-model", "wrong")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.fit_tac([1, 24, 96], [10, 8, 4], error_model="wrong")
    assert str(e.value) == expected


def test_bad_function_has_cli_message(source):
    tac = f"{source}/examples/snmmi-patient004/tac.csv"
    expected = cli_error("fit", "--tac", tac, "--function", "E9")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.fit_tac([1, 24, 96], [10, 8, 4], function="E9")
    assert str(e.value) == expected


def test_bad_case_file_has_cli_message(tmp_path):
    case = tmp_path / "case.json"
    case.write_text('{"patient": {"id": "X"}}')
    expected = cli_error("run", case, "--out", tmp_path / "out")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.run_case(case)
    assert str(e.value) == expected


def test_bad_tac_row_has_cli_message(tmp_path):
    # The same table as a file for the CLI and as columns for the module: the row checks are the
    # same, only the table's name differs (the file's path or "DataFrame").
    tac = tmp_path / "tac.csv"
    tac.write_text("voi,time_h,activity_MBq\nliver,1,100\nliver,0.5,90\n")
    expected = cli_error("fit", "--tac", tac)
    import pandas as pd
    df = pd.DataFrame({"voi": ["liver", "liver"], "time_h": [1, 0.5], "activity_MBq": [100, 90]})
    with pytest.raises(lutdose.InputError) as e:
        lutdose.fit_many(df)
    assert str(e.value) == expected.replace(str(tac), "DataFrame")


def test_missing_store_is_input_error(tmp_path):
    expected = cli_error("export", tmp_path / "none.h5", "--csv", tmp_path / "csv")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.read_store(tmp_path / "none.h5")
    assert str(e.value) == expected


@pytest.mark.parametrize("kind", ["out_of_range", "logic", "runtime"])
def test_internal_error_is_runtime_error(kind):
    with pytest.raises(RuntimeError) as e:
        lutdose._lutdose._internal_error_for_test(kind)
    assert not isinstance(e.value, ValueError)


def test_unknown_option_is_type_error():
    with pytest.raises(TypeError, match="colour"):
        lutdose.fit_many({"voi": ["a"], "time_h": [1.0], "activity_MBq": [1.0]}, colour="red")
