"""fit_tac and fit_many against `lutdose fit`: the same TIAs, exactly (json numbers are written in
their shortest exact form, so json.loads gives back the program's doubles)."""
import csv
import json
import os
import time

import numpy as np
import pandas as pd
import pytest

import lutdose
from conftest import cli


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
        window["fit_s"] = lutdose._lutdose._fit_many(cols, opts, 1, "DataFrame")[1]
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
