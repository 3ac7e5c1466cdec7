#!/usr/bin/env python3
"""A method study in a few lines of Python, notebook style (docs/python.md).

1. Synthesise a seeded cohort with known truth (lutdose.synth).
2. Run it into a results store on every core (lutdose.batch), and read the store with pandas
   (lutdose.read_store).
3. Compare TIA methods against the truth: the default (AICc among E1, E2u, E2), E1 forced, and
   the trapezoid integration with a physical tail (an upper bound) and with a tail fitted to
   the last three points (lutdose.fit_many on the same TACs).
4. Plot the TIA error by VOI and method (matplotlib) and print a summary table.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/cohort_study.py \
        [--patients 200] [--seed 7] [--out docs/images/python-tia-error.png]

Needs Debian's python3-numpy, python3-pandas and python3-matplotlib (scripts/install-deps.sh --plots).
"""
import argparse
import os
import tempfile

import lutdose

# %% Options
parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--patients", type=int, default=200)
parser.add_argument("--seed", type=int, default=7)
parser.add_argument("--out", default="python-tia-error.png", help="the figure (PNG)")
args = parser.parse_args()

# %% 1. A synthetic cohort: 4 VOIs per patient, 5 scans, 10 % (organs) and 15 % (tumours) noise.
cohort = lutdose.synth(args.patients, seed=args.seed, times_h=[4, 24, 48, 96, 168])
truth = cohort.truth.set_index(["patient", "cycle", "voi"])
print(f"cohort: {len(cohort.truth)} VOIs of {args.patients} patients")

# %% 2. Run the cohort into a store and read it with pandas.
with tempfile.TemporaryDirectory() as tmp:
    for name in ("tacs.csv", "patients.csv"):
        with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
            f.write(cohort.files[name])
    progress, store = lutdose.batch(tac=os.path.join(tmp, "tacs.csv"), patients=os.path.join(tmp, "patients.csv"),
                                    out=os.path.join(tmp, "cohort.h5"))
print(f"batch: {progress['done']} patients done, {progress['failed']} failed, {progress['elapsed_s']:.2f} s")
doses = store.vois.set_index(["patient", "cycle", "voi"])
dose_error = 100 * (doses.dose_Gy / truth.dose_Gy - 1)
print(f"dose error (default method): median {dose_error.median():+.2f} %, "
      f"95th percentile of |error| {dose_error.abs().quantile(0.95):.1f} %")

# %% 3. Methods against the truth: TIA error [%] per VOI.
methods = {"auto (AICc)": {}, "E1": {"function": "E1"},
           "trapezoid, physical tail": {"integration": "trapezoid", "trapezoid_tail": "physical"},
           "trapezoid, fitted tail": {"integration": "trapezoid", "trapezoid_tail": "fit"}}
errors = []
for label, options in methods.items():
    fits = lutdose.fit_many(cohort.tacs, **options).set_index(["patient", "cycle", "voi"])
    e = (100 * (fits.tia_MBq_h / truth.tia_MBq_h - 1)).rename("tia_error_pct").reset_index()
    e["method"] = label
    errors.append(e)
import pandas as pd  # noqa: E402 (notebook style: imported where first needed)

errors = pd.concat(errors, ignore_index=True)
summary = errors.groupby(["voi", "method"]).tia_error_pct.agg(
    median="median", p95_abs=lambda x: x.abs().quantile(0.95))
print("\nTIA error [%] against the truth (median, 95th percentile of |error|):")
print(summary.round(2).to_string())

# %% 4. The figure: TIA error by VOI, one box per method.
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

vois = list(dict.fromkeys(errors.voi))
fig, ax = plt.subplots(figsize=(8, 4.5))
width = 0.8 / len(methods)
for k, label in enumerate(methods):
    data = [errors[(errors.voi == v) & (errors.method == label)].tia_error_pct.dropna() for v in vois]
    pos = [i + (k - (len(methods) - 1) / 2) * width for i in range(len(vois))]
    b = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False)
    for patch in b["boxes"]:
        patch.set_facecolor(f"C{k}")
    ax.plot([], [], color=f"C{k}", lw=8, label=label)
ax.axhline(0, color="black", lw=0.8)
ax.set_xticks(range(len(vois)), vois)
ax.set_ylabel("TIA error [%] (fit / truth - 1)")
ax.set_title(f"lutdose: TIA error by VOI, {args.patients} synthetic patients (seed {args.seed})")
low, high = ax.get_ylim()
ax.set_ylim(low, high + 0.25 * (high - low))  # room for the legend above the boxes
ax.legend(loc="upper center", ncol=2, fontsize="small")
fig.tight_layout()
fig.savefig(args.out, dpi=100)
print(f"\nfigure: {args.out}")
