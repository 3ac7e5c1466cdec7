#!/usr/bin/env python3
"""Writes case.json: a synthetic 177Lu-DOTATATE patient, two cycles of 7.4 GBq eight weeks apart,
with the typical kinetics of methods.md §9.3 (the same model as ../shared/peers/make_cohort.py,
without inter-patient variation or noise), so that every TIA is known exactly:

  kidneys    0.020 A0 (0.85 e^(-ln2 t/56) + 0.15 e^(-ln2 t/3))      E2
  liver      0.055 A0 (e^(-ln2 t/70) - e^(-ln2 t/1))                 E2u
  spleen     0.020 A0 (e^(-ln2 t/70) - e^(-ln2 t/2))                 E2u
  tumour_1   0.006 A0 (e^(-ln2 t/90) - e^(-ln2 t/6)), 20 mL          E2u
  remainder  1.000 A0 (0.65 e^(-ln2 t/2) + 0.35 e^(-ln2 t/60))
  whole body = remainder + organs + tumour (a planar whole-body activity, not counts)
  blood      A0/5000 mL x (0.75 e^(-ln2 t/1) + 0.25 e^(-ln2 t/8)) MBq/mL   [illustrative, not a
             literature fit: chosen so that the marrow lands in the published 0.02-0.07 Gy/GBq]

Half-lives are effective (physical decay included). With --cycles N the patient gets N cycles,
eight weeks apart, the kidney uptake rising by 5 % per cycle (so that cycle-to-cycle prediction
has something to predict); --out-dir chooses where case.json and true_tia.json go. Images: SPECT counts of 30-min frames at
4, 24, 48, 96, 168 h with CF 5.67 cps/MBq, no dead time, the tumour with recovery coefficients.
Phantom: ICRP 89 adult male (OLINDA S-values: has the total-body source for the remainder
correction and red marrow for the blood-based marrow dose).
"""
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
LAM = math.log(2) / (6.647 * 24)  # ICRP-107
A0 = 7400.0
CF = 5.67
T_S = 1800.0
TIMES_H = [4.0, 24.0, 48.0, 96.0, 168.0]
BLOOD_TIMES_H = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 24.0, 48.0]
RC_TABLE = {"volume_mL": [1.0, 10.0, 100.0, 1000.0], "rc": [0.35, 0.62, 0.86, 0.95],
            "rc_u": [0.05, 0.04, 0.03, 0.02], "floor": 0.3}


def ex(th, t):
    return math.exp(-math.log(2) * t / th)


KIDNEY_DRIFT = 0.05  # relative rise of the kidney uptake per cycle


def kidney_factor(n):
    return 1.0 + KIDNEY_DRIFT * (n - 1)


CURVES = {
    "kidneys": lambda t: 0.020 * A0 * (0.85 * ex(56, t) + 0.15 * ex(3, t)),
    "liver": lambda t: 0.055 * A0 * (ex(70, t) - ex(1, t)),
    "spleen": lambda t: 0.020 * A0 * (ex(70, t) - ex(2, t)),
    "tumour_1": lambda t: 0.006 * A0 * (ex(90, t) - ex(6, t)),
}
REMAINDER = lambda t: A0 * (0.65 * ex(2, t) + 0.35 * ex(60, t))
BLOOD = lambda t: A0 / 5000.0 * (0.75 * ex(1, t) + 0.25 * ex(8, t))
VOLUMES = {"kidneys": 300 / 1.03, "liver": 1800 / 1.03, "spleen": 150 / 1.03, "tumour_1": 20.0}


def rc_pchip(v):
    """The engine's RC: PCHIP in log volume (Fritsch-Butland interior slopes, one-sided ends)."""
    xs = [math.log(x) for x in RC_TABLE["volume_mL"]]
    ys = RC_TABLE["rc"]
    n = len(xs)
    h = [xs[i + 1] - xs[i] for i in range(n - 1)]
    d = [(ys[i + 1] - ys[i]) / h[i] for i in range(n - 1)]
    m = [d[0]] + [0.0] * (n - 2) + [d[-1]]
    for i in range(1, n - 1):
        if d[i - 1] * d[i] > 0:
            w1, w2 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
            m[i] = (w1 + w2) / (w1 / d[i - 1] + w2 / d[i])
    x = math.log(v)
    i = max(j for j in range(n - 1) if xs[j] <= x)
    t = (x - xs[i]) / h[i]
    return ((2 * t**3 - 3 * t**2 + 1) * ys[i] + (t**3 - 2 * t**2 + t) * h[i] * m[i]
            + (-2 * t**3 + 3 * t**2) * ys[i + 1] + (t**3 - t**2) * h[i] * m[i + 1])


def curve(name, n):
    f = CURVES[name]
    return (lambda t: kidney_factor(n) * f(t)) if name == "kidneys" else f


def cycle(number, reference_time):
    k = (1 - math.exp(-LAM * T_S / 3600)) / (LAM * T_S / 3600)
    timepoints = []
    for t in TIMES_H:
        vois = {}
        for name in CURVES:
            rc = rc_pchip(VOLUMES[name]) if name.startswith("tumour") else 1.0
            vois[name] = {"counts": curve(name, number)(t) * T_S * CF * rc * k}
        vois["whole_body"] = {"activity_MBq": REMAINDER(t) + sum(curve(n, number)(t) for n in CURVES)}
        timepoints.append({"start_h": t, "duration_s": T_S, "vois": vois})
    return {
        "cycle": number,
        "reference_time": reference_time,
        "administered": {"activity_MBq": A0},
        "protocol": "SPECT-ME-208keV",
        "vois": {name: {"volume_mL": round(VOLUMES[name], 3), "volume_u_mL": round(0.05 * VOLUMES[name], 3),
                        "recovery": name.startswith("tumour")} for name in CURVES},
        "blood": {"hematocrit": 0.42,
                  "samples": [{"time_h": t, "concentration_MBq_per_mL": BLOOD(t)} for t in BLOOD_TIMES_H]},
        "timepoints": timepoints,
    }


def true_tia(n=1):
    """Exact TIAs (MBq h) of cycle n's generating curves, for tests: sum of c/k. red_marrow is
    the blood's TIAC x RMBLR (1.0) x the ICRP 89 male red-marrow mass 1170 g."""
    def tia(terms):
        return sum(c * th / math.log(2) for c, th in terms)
    return {
        "kidneys": kidney_factor(n) * tia([(0.020 * A0 * 0.85, 56), (0.020 * A0 * 0.15, 3)]),
        "liver": tia([(0.055 * A0, 70), (-0.055 * A0, 1)]),
        "spleen": tia([(0.020 * A0, 70), (-0.020 * A0, 2)]),
        "tumour_1": tia([(0.006 * A0, 90), (-0.006 * A0, 6)]),
        "whole_body": tia([(A0 * 0.65, 2), (A0 * 0.35, 60)]) + kidney_factor(n) * tia(
            [(0.020 * A0 * 0.85, 56), (0.020 * A0 * 0.15, 3)]) + tia([(0.055 * A0, 70), (-0.055 * A0, 1)])
        + tia([(0.020 * A0, 70), (-0.020 * A0, 2)]) + tia([(0.006 * A0, 90), (-0.006 * A0, 6)]),
        "red_marrow": 1170.0 * tia([(A0 / 5000.0 * 0.75, 1), (A0 / 5000.0 * 0.25, 8)]),
    }


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--out-dir", default=HERE)
    args = ap.parse_args()
    # reference times eight weeks apart, from 2026-01-05 09:00
    import datetime
    t0 = datetime.datetime(2026, 1, 5, 9, 0, 0)
    refs = [(t0 + datetime.timedelta(weeks=8 * i)).strftime("%Y-%m-%dT%H:%M:%S") for i in range(args.cycles)]
    case = {
        "lutdose_case_version": 1,
        "patient": {"id": "SYN-001", "sex": "male", "mass_kg": 73},
        "phantom": "icrp89-male",
        "protocols": {"SPECT-ME-208keV": {"cf_cps_per_MBq": CF, "cf_u_cps_per_MBq": 0.08,
                                          "recovery": RC_TABLE}},
        "fit": {"function": "auto", "functions": ["E1", "E2u", "E2"], "error_model": "proportional"},
        "dose": {"tumour_method": "sphere", "marrow": {"method": "blood", "rmblr": 1.0}},
        "plan": {"strategy": "equal-split", "prediction": "previous", "planned_cycles": 4},
        "cycles": [cycle(i + 1, refs[i]) for i in range(args.cycles)],
    }
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "case.json"), "w") as f:
        json.dump(case, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out_dir, "true_tia.json"), "w") as f:
        json.dump({str(i + 1): true_tia(i + 1) for i in range(args.cycles)}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
