"""fit_tac and fit_many against `lutdose fit`: the same TIAs, exactly (json numbers are written in
their shortest exact form, so json.loads gives back the program's doubles)."""
import csv
import io
import json
import os
import time

import numpy as np
import pandas as pd
import pytest

import lutdose
from conftest import cli, cli_error


def cli_fit(tac, *args):
    doc = json.loads(cli("fit", "--tac", tac, *args).stdout)
    return {(p["id"], c["cycle"], v["name"]): v for p in doc["patients"] for c in p["cycles"] for v in c["vois"]}


def p004(source):
    path = f"{source}/examples/snmmi-patient004/tac.csv"
    return path, pd.read_csv(path, comment="#", float_precision="round_trip")


@pytest.mark.parametrize("args", [(), ("--function", "E2u", "--error-model", "constant")])
def test_fit_tac_equals_cli(source, args):
    path, df = p004(source)
    expected = cli_fit(path, *args)
    kw = {"function": args[1], "error_model": args[3]} if args else {}
    for voi, rows in df.groupby("voi", sort=False):
        r = lutdose.fit_tac(rows.time_h, rows.activity_MBq, voi=voi, **kw)
        v = expected[("", 1, voi)]
        assert r.tia_MBq_h == v["tia_MBq_h"]
        assert r.tia_u_MBq_h == v["tia_u_MBq_h"]
        assert r.function == v["fit"]["function"]
        assert r.covariance.shape == (len(r.parameters), len(r.parameters))
        assert list(r.candidates.function) == [c["function"] for c in v["fit"]["candidates"]]


def test_curve_matches_fitted_values(source):
    _, df = p004(source)
    rows = df[df.voi == "liver"]
    r = lutdose.fit_tac(rows.time_h, rows.activity_MBq, function="E2u", error_model="constant")
    # The engine's fitted values f(t_i) and curve() evaluate the same function at the same
    # parameters: equal to rounding (1e-12 relative).
    np.testing.assert_allclose(r.curve(rows.time_h.to_numpy()), r.selected.fitted_MBq, rtol=1e-12)
    # Integral of the curve to a late time approaches the TIA (trapezoid on a fine grid: 1e-4).
    t = np.linspace(0, 20000, 400001)
    a = r.curve(t)
    assert abs(np.sum((a[1:] + a[:-1]) / 2 * np.diff(t)) / r.tia_MBq_h - 1) < 1e-4
    assert isinstance(r.curve([1.0, 2.0]), np.ndarray)


def test_fit_tac_input_error_model_with_u():
    r = lutdose.fit_tac([1, 24, 72, 168], [100, 80, 50, 20], activity_u_MBq=[5, 4, 3, 2], error_model="input")
    assert r.tia_MBq_h > 0 and np.isfinite(r.tia_u_MBq_h)


@pytest.fixture(scope="module")
def cohort_10000(tmp_path_factory):
    """2500 synthetic patients x 4 VOIs = 10 000 TACs, as a file and a DataFrame."""
    tmp = tmp_path_factory.mktemp("cohort")
    c = lutdose.synth(2500, seed=11, out=tmp / "synth")
    return tmp / "synth" / "tacs.csv", c.tacs


def test_fit_many_equals_cli_on_10000_tacs(cohort_10000):
    path, df = cohort_10000
    assert df.groupby(["patient", "cycle", "voi"]).ngroups == 10000
    start = time.perf_counter()
    expected = cli_fit(path)
    cli_s = time.perf_counter() - start
    res = {}
    for threads in (1, 2):
        out = lutdose.fit_many(df, threads=threads)
        res[threads] = (out, lutdose.fit_many.last_seconds)
        assert lutdose.fit_many.last_threads == threads
        assert len(out) == 10000
        tia = {(p, c, v): t for p, c, v, t in zip(out.patient, out.cycle, out.voi, out.tia_MBq_h)}
        for key, v in expected.items():
            got = tia[key]
            assert got == v["tia_MBq_h"] or (np.isnan(got) and v["tia_MBq_h"] is None), key
    s1, s2 = res[1][1], res[2][1]
    print(f"\n[timing] fit_many 10000 TACs: 1 thread {s1:.3f} s ({10000 / s1:.0f} TACs/s), 2 threads "
          f"{s2:.3f} s ({10000 / s2:.0f} TACs/s), speed-up {s1 / s2:.2f}; lutdose fit process {cli_s:.2f} s")
    pd.testing.assert_frame_equal(res[1][0], res[2][0])  # thread count does not change results


def test_fit_many_releases_the_gil(cohort_10000):
    # The main thread stamps the time while a worker thread runs the module's fit call. The call
    # holds the GIL while it converts the columns and builds the tables, and must release it for
    # the fits: then the main thread's stamps cover most of the fit time inside the call. Were the
    # GIL held throughout, no stamp would fall inside the call at all.
    import threading
    _, df = cohort_10000
    small = df[df.patient.isin(df.patient.unique()[:1000])]
    cols = lutdose._tac_columns(small)
    opts = lutdose._options({}, None)
    window = {}

    def work():
        window["t0"] = time.perf_counter()
        window["fit_s"] = lutdose._lutdose._fit_many(cols, opts, 1, "DataFrame", False)[1]
        window["t1"] = time.perf_counter()

    t = threading.Thread(target=work)
    stamps, n = [], 0
    t.start()
    while t.is_alive():
        n += 1
        if n % 50 == 0:
            stamps.append(time.perf_counter())
    t.join()
    inside = [x for x in stamps if window["t0"] < x < window["t1"]]
    assert inside, "no Python ran in the main thread during the fits: the GIL was held"
    # Half the fit time: the other half allows for the machine's load and the switch interval.
    assert max(inside) - min(inside) > 0.5 * window["fit_s"], (max(inside) - min(inside), window)


def split_patient_table():
    """Patient p1's rows are not contiguous: p1/kidney_left, p2/kidney_left, p1/liver, p3/liver."""
    t = [1.0, 4.0, 24.0, 72.0, 168.0]
    rows = []
    for patient, voi, a0 in (("p1", "kidney_left", 10.0), ("p2", "kidney_left", 12.0), ("p1", "liver", 30.0),
                             ("p3", "liver", 25.0)):
        for i, th in enumerate(t):
            rows.append({"patient": patient, "cycle": 1, "voi": voi, "time_h": th,
                         "activity_MBq": a0 * np.exp(-0.02 * th) * (1 + 0.01 * (-1) ** i)})
    return pd.DataFrame(rows)


def test_fit_many_order_does_not_depend_on_threads(tmp_path):
    # Regression: patient_blocks split a patient whose rows are not contiguous, so the row order
    # and the grouping depended on the thread count. Expected: `lutdose fit --format csv`'s order
    # (patients in order of first appearance, each patient's VOIs together).
    df = split_patient_table()
    path = tmp_path / "tac.csv"
    df.to_csv(path, index=False)
    rows = list(csv.DictReader(io.StringIO(cli("fit", "--tac", path, "--format", "csv").stdout)))
    expected = [(r["patient"], r["voi"]) for r in rows]
    assert expected == [("p1", "kidney_left"), ("p1", "liver"), ("p2", "kidney_left"), ("p3", "liver")]
    outs = [lutdose.fit_many(df, threads=n) for n in (1, 2, 3)]
    for out in outs:
        assert list(zip(out.patient, out.voi)) == expected
        pd.testing.assert_frame_equal(out, outs[0])


def test_fit_many_candidates_equal_cli_whatever_threads(source):
    # candidates=True: every candidate of every TAC, in the CLI's order (patient, VOI, candidate), the
    # same whatever the thread count (the blocks' rows are read in block order, not joined).
    path, df = p004(source)
    df = pd.concat([df.assign(patient=f"p{i}") for i in range(5)], ignore_index=True)
    expected = cli_fit(path)
    outs = [lutdose.fit_many(df, threads=n, candidates=True) for n in (1, 2, 3)]
    for vois, cands in outs:
        assert list(vois.patient.unique()) == [f"p{i}" for i in range(5)]
        for p in range(5):
            for voi, v in ((k[2], v) for k, v in expected.items()):
                got = cands[(cands.patient == f"p{p}") & (cands.voi == voi)]
                assert list(got.function) == [c["function"] for c in v["fit"]["candidates"]]
                assert list(got.aicc) == [c["aicc"] for c in v["fit"]["candidates"]]
        pd.testing.assert_frame_equal(vois, outs[0][0])
        pd.testing.assert_frame_equal(cands, outs[0][1])


def test_fit_many_last_threads_is_the_threads_used():
    # Three patients: at most three blocks, so at most three threads run.
    df = split_patient_table()
    lutdose.fit_many(df, threads=8)
    assert lutdose.fit_many.last_threads == 3
    lutdose.fit_many(df[df.patient == "p1"], threads=2)
    assert lutdose.fit_many.last_threads == 1  # one patient: one thread
    lutdose.fit_many(df, threads=2)
    assert lutdose.fit_many.last_threads == 2


@pytest.mark.parametrize("threads", [257, 1000, -1])
def test_fit_many_threads_out_of_range(threads):
    # Regression: 1000 started up to 1000 threads; -1 raised a pybind TypeError. Same bound and
    # message as `lutdose batch --threads`.
    with pytest.raises(lutdose.InputError, match=r"--threads.*'%d'.*from 0 to 256" % threads):
        lutdose.fit_many(split_patient_table(), threads=threads)


def with_column(df, name, index, value):
    out = df.astype({name: object}) if name in df else df.copy()
    out.at[index, name] = value
    return out


def assert_refused_as_by_cli(df, tmp_path):
    """fit_many(df) raises InputError with `lutdose fit`'s message for a CSV file of df (the
    DataFrame in place of the file name); returns the message."""
    path = tmp_path / "tac.csv"
    df.to_csv(path, index=False)
    expected = cli_error("fit", "--tac", path).replace(str(path), "DataFrame")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.fit_many(df)
    assert str(e.value) == expected
    return expected


@pytest.mark.parametrize("name, value", [("cycle", 1.5), ("cycle", float("nan")), ("voi", None),
                                         ("voi", float("nan")), ("time_h", "abc"),
                                         # review of 0.15 (F1, F2): pandas' missing values were the texts
                                         # "<NA>" / "NaT"; a bool, a text with "_" (Python's float reads
                                         # "1_0" as 10), a date and a duration were taken as numbers
                                         ("voi", pd.NA), ("voi", pd.NaT),
                                         ("activity_MBq", True), ("time_h", "1_0"),
                                         ("time_h", pd.Timestamp("2024-01-01")), ("time_h", pd.Timedelta(hours=1))])
def test_fit_many_refuses_what_the_cli_refuses(tmp_path, name, value):
    # Regression: cycle 1.5 was truncated to 1, a NaN cycle became -9223372036854775808, a missing
    # VOI or patient became "nan" or "None". Now the table's own checks see the cells a CSV file
    # of the DataFrame holds, and give `lutdose fit`'s message (the DataFrame in place of the file).
    assert_refused_as_by_cli(with_column(split_patient_table(), name, 2, value), tmp_path)


def test_fit_many_string_dtype_na_is_an_empty_cell(tmp_path):
    # Review of 0.15 (F1): pd.NA in a pandas "string" column became the VOI "<NA>"; a CSV file of
    # the DataFrame has an empty cell there, which `lutdose fit` refuses by line and column.
    df = split_patient_table()
    df["voi"] = pd.array(list(df.voi[:-1]) + [pd.NA], dtype="string")
    assert "column voi is ''" in assert_refused_as_by_cli(df, tmp_path)


def test_fit_tac_bool_uncertainty_is_refused():
    # Review of 0.15 (F2): True was taken as an uncertainty of 1 MBq.
    with pytest.raises(lutdose.InputError, match=r"column activity_u_MBq is 'True'"):
        lutdose.fit_tac([1, 24, 72, 168], [100, 80, 50, 20], activity_u_MBq=[True] * 4, error_model="input")


def test_fit_tac_voi_none_is_an_empty_name():
    # Review of 0.15 (F1): voi=None named the VOI "None"; an empty VOI cell is refused by name.
    with pytest.raises(lutdose.InputError, match=r"column voi is ''"):
        lutdose.fit_tac([1, 24, 72, 168], [100, 80, 50, 20], voi=None)


def test_fit_tac_ragged_times_are_input_error():
    # Re-review of 0.16 (D): a list holding a list gave numpy's "inhomogeneous shape" ValueError.
    with pytest.raises(lutdose.InputError, match=r"column time_h is '\[2, 3\]'"):
        lutdose.fit_tac([1, [2, 3]], [1, 2])


def test_fit_many_missing_column_has_cli_message(tmp_path):
    # Regression: a KeyError. Now the header check of the TAC table, as `lutdose fit` reports it.
    df = split_patient_table().drop(columns="activity_MBq")
    assert "the required column 'activity_MBq' is missing" in assert_refused_as_by_cli(df, tmp_path)


def test_fit_tac_text_value_is_input_error():
    # Regression: a plain ValueError from numpy.
    with pytest.raises(lutdose.InputError, match=r"column time_h is 'a'"):
        lutdose.fit_tac(["a", 2, 24, 72], [100, 80, 50, 20])


@pytest.mark.parametrize("missing", [None, pd.NA, pd.NaT])
def test_fit_many_missing_patient_is_empty_as_in_the_cli(tmp_path, missing):
    # Regression: a None patient became "None" (and pd.NA "<NA>", NaT "NaT": review of 0.15, F1). An
    # empty patient cell is accepted by `lutdose fit` (patient ""); the module gives the same rows.
    df = with_column(split_patient_table(), "patient", 2, missing)
    path = tmp_path / "tac.csv"
    df.to_csv(path, index=False)
    rows = list(csv.DictReader(io.StringIO(cli("fit", "--tac", path, "--format", "csv").stdout)))
    out = lutdose.fit_many(df)
    assert list(zip(out.patient, out.voi)) == [(r["patient"], r["voi"]) for r in rows]
    assert not {"None", "<NA>", "NaT"} & set(out.patient)
