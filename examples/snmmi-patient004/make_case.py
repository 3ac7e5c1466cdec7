#!/usr/bin/env python3
"""Writes case.json: the Patient_004 activities of tac.csv turned back into SPECT counts with a
stated calibration, so that `lutdose run case.json` exercises the counts -> activity step and must
give back the TAC table's TIAs.

Calibration (stated, not measured for this patient):
  CF = 5.67 +- 0.08 cps/MBq   (SPECT/CT, ME collimator, OSEM; methods.md §1.2, K7)
  dead time paralysable, tau = 4.6 us (208 keV window; methods.md §1.3, K2)
  frames of 30 min starting at the tabulated times (acquisition-start convention)
  camera true count rate 39 635 cps at the first scan (methods.md §1.3 test vector), falling with
  the whole-body activity; observed rate R_o = R_t exp(-R_t tau)
  recovery coefficients for the kidneys from a table in log volume (illustrative values)
  VOI volumes with a 5 % standard uncertainty (segmentation; illustrative)
Counts C = A(t_s) * T * CF * RC / DTCF * k, k = (1 - exp(-lambda T)) / (lambda T); left unrounded
(scatter-corrected counts are not integers).
"""
import csv
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
HALF_LIFE_H = 6.647 * 24  # ICRP-107
LAM = math.log(2) / HALF_LIFE_H
CF, CF_U = 5.67, 0.08
TAU_S = 4.6e-6
T_S = 1800.0
RC_TABLE = {"volume_mL": [1.0, 10.0, 100.0, 1000.0], "rc": [0.35, 0.62, 0.86, 0.95],
            "rc_u": [0.05, 0.04, 0.03, 0.02], "floor": 0.3}
RECOVERY_VOIS = {"kidney_left", "kidney_right"}
VOLUME_U_REL = 0.05  # stated segmentation uncertainty of every VOI volume (illustrative)
WHOLE_BODY_MBQ = [1328.7776, 883.0188, 426.2224, 357.6196]  # Patient_004 WholeBody ROI (shared data)


def rc_pchip(v):
    """The RC lutdose uses: PCHIP in log volume (Fritsch-Butland interior slopes, one-sided end slopes)."""
    xs = [math.log(x) for x in RC_TABLE["volume_mL"]]
    ys = RC_TABLE["rc"]
    x = math.log(v)
    n = len(xs)
    h = [xs[i + 1] - xs[i] for i in range(n - 1)]
    d = [(ys[i + 1] - ys[i]) / h[i] for i in range(n - 1)]
    m = [0.0] * n
    for i in range(1, n - 1):
        if d[i - 1] * d[i] > 0:
            w1, w2 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
            m[i] = (w1 + w2) / (w1 / d[i - 1] + w2 / d[i])
    # end points: one-sided secant slopes (Boost.Math's pchip default)
    m[0] = d[0]
    m[-1] = d[-1]
    i = max(j for j in range(n - 1) if xs[j] <= x)
    t = (x - xs[i]) / h[i]
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
    return h00 * ys[i] + h10 * h[i] * m[i] + h01 * ys[i + 1] + h11 * h[i] * m[i + 1]


def main():
    rows = [r for r in csv.reader(l for l in open(os.path.join(HERE, "tac.csv")) if not l.startswith("#"))]
    header, rows = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    times = sorted({float(r[col["time_h"]]) for r in rows})
    mean_volume = {}
    for r in rows:
        mean_volume.setdefault(r[col["voi"]], []).append(float(r[col["volume_mL"]]))
    mean_volume = {k: sum(v) / len(v) for k, v in mean_volume.items()}
    r_t0 = 39635.0
    k = (1 - math.exp(-LAM * T_S / 3600)) / (LAM * T_S / 3600)
    timepoints = []
    for ti, t in enumerate(times):
        r_t = r_t0 * WHOLE_BODY_MBQ[ti] / WHOLE_BODY_MBQ[0]
        r_o = r_t * math.exp(-r_t * TAU_S)
        dtcf = r_t / r_o
        vois = {}
        for r in rows:
            if float(r[col["time_h"]]) != t:
                continue
            a = float(r[col["activity_MBq"]])
            v = float(r[col["volume_mL"]])
            rc = rc_pchip(v) if r[col["voi"]] in RECOVERY_VOIS else 1.0
            vois[r[col["voi"]]] = {"counts": a * T_S * CF * rc / dtcf * k, "volume_mL": v}
        timepoints.append({"start_h": t, "duration_s": T_S, "observed_rate_cps": r_o, "vois": vois})
    case = {
        "lutdose_case_version": 1,
        "patient": {"id": "SNMMI-Patient_004", "sex": "male"},
        "phantom": "icrp110-am",
        "protocols": {
            "SPECT-ME-208keV": {
                "cf_cps_per_MBq": CF, "cf_u_cps_per_MBq": CF_U,
                "dead_time": {"model": "paralysable", "tau_us": TAU_S * 1e6},
                "recovery": RC_TABLE,
            }
        },
        "fit": {"function": "auto", "error_model": "proportional"},
        "dose": {"tumour_method": "sphere"},
        "cycles": [{
            "cycle": 1,
            "reference_time": "2021-01-01T10:00:00",
            "administered": {"activity_MBq": 7260.4 * math.exp(LAM * 1.0), "measured_at": "2021-01-01T09:00:00",
                             "residual_MBq": 50.0},
            "protocol": "SPECT-ME-208keV",
            "timing": "acquisition-start",
            "decay_corrected_to": "none",
            "vois": {name: {"recovery": name in RECOVERY_VOIS,
                            "volume_u_mL": round(VOLUME_U_REL * mean_volume[name], 2)}
                     for name in sorted(mean_volume)},
            "timepoints": timepoints,
        }],
    }
    with open(os.path.join(HERE, "case.json"), "w") as f:
        json.dump(case, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
