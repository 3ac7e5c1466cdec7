#!/usr/bin/env python3
"""Side by side: lutdose and the Python peer (../shared/peers, lmfit) on the peer's seeded synthetic
cohort with known true TIAs. Prints, for each tool: TAC fits per second (fit loop only for the peer,
the whole `lutdose fit --format csv` process for lutdose, per second of wall time and per CPU-second,
so lutdose's figure includes reading and writing), the per-core ratio of the two (issue 13's target:
>= 1000x), and the median and 95th percentile of |TIA error| against the truth.

    python3 benchmarks/peer_compare.py --lutdose build/lutdose [--patients 1000] [--peer-patients 200]
        [--lutdose-args "--error-model proportional"] [--skip-peer] [--times 5,48,144] [--repeat 3]

lutdose runs --repeat times (default 3) and its median rates are reported (one run slowed by other
work on a shared machine does not decide the ratio), with each run's CPU rate and the page faults.
--times gives the cohort's scan times [h] (make_cohort.py's --times), e.g. a sparse 3-scan schedule;
the per-VOI median and 95th percentile of |TIA error| of both tools on the same TACs are then
printed side by side (docs/validation.md, "Sparse schedules").

The peer is slow (about 25 TAC fits/s): --peer-patients runs it on the first N patients of the
same cohort (default 200, i.e. 1000 TACs, ~40 s); its accuracy figures for the full 1000-patient
cohort are in ../shared/peers/README.md (3.4 % / 18 % with 1/y weights, 8.8 % / 32 % unweighted).
Needs Debian's python3-numpy, python3-scipy, python3-lmfit, python3-pandas (scripts/install-deps.sh --peer).
"""
import argparse
import csv
import io
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "peers")


def percentile(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def make_cohort(n, seed, path, times=None):
    extra = ["--times", times] if times else []
    subprocess.run(["/usr/bin/python3", os.path.join(SHARED, "make_cohort.py"), str(n), "--seed", str(seed),
                    "--out", path] + extra, check=True)


def to_lutdose_tac(cohort, path, limit=None):
    truth = {}
    with open(cohort) as f, open(path, "w") as out:
        out.write("patient,voi,time_h,activity_MBq\n")
        patients = []
        for r in csv.DictReader(f):
            if r["patient"] not in patients:
                patients.append(r["patient"])
            if limit and len(patients) > limit:
                break
            out.write("%s,%s,%s,%s\n" % (r["patient"], r["roi"], r["time_h_post_injection"], r["activity_MBq"]))
            truth[(r["patient"], r["roi"])] = float(r["true_tia_MBq_h"])
    return truth


def lutdose_errors(lutdose, tac, truth, extra):
    """Runs `lutdose fit --format csv` (the lean output for many TACs) on `tac`; returns the |TIA
    errors|, the whole process's TAC fits per second of wall time and per second of CPU time (user +
    system of the child, output included), and the fit-loop rate it reports."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    cp = subprocess.run([lutdose, "fit", "--tac", tac, "--format", "csv", "--timing"] + shlex.split(extra),
                        capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    LAST_FAULTS[0] = after.ru_minflt - before.ru_minflt
    if cp.returncode != 0:
        sys.exit("lutdose fit failed:\n" + cp.stderr)
    loop_rate = float("nan")
    for line in cp.stderr.splitlines():
        if line.startswith("[timing] fit loop:"):
            loop_rate = float(line.split(" = ")[1].split()[0])
    errors, n = [], 0
    LAST_BY_VOI.clear()
    for v in csv.DictReader(io.StringIO(cp.stdout)):
        n += 1
        errors.append(abs(float(v["tia_MBq_h"]) / truth[(v["patient"], v["voi"])] - 1))
        LAST_BY_VOI.setdefault(v["voi"], []).append(errors[-1])
    return errors, n / wall, n / cpu, loop_rate


LAST_BY_VOI = {}  # per-VOI |errors| of the last lutdose_errors call
LAST_FAULTS = [0]  # page faults (minor) of the last lutdose_errors call's process


def repeated_lutdose_errors(lutdose, tac, truth, extra, repeat):
    """lutdose_errors `repeat` times (the errors are the same each time: the fits are deterministic);
    the median of each rate, so that one run slowed by other work on a shared machine does not decide
    the figure, and every run's CPU rate."""
    runs = [lutdose_errors(lutdose, tac, truth, extra) for _ in range(repeat)]
    if any(r[0] != runs[0][0] for r in runs):
        sys.exit("lutdose fit gave different TIAs in repeated runs of the same table")
    med = [statistics.median(r[k] for r in runs) for k in (1, 2, 3)]
    return runs[0][0], med[0], med[1], med[2], [r[2] for r in runs]


def run_peer(cohort_subset, repeat):
    """Runs the peer (one process, jobs=1) with its fit loop repeated `repeat` times; returns its
    JSON, its log, the wall time and the CPU time (user + system) of the process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "peer.json")
        cp = subprocess.run(["/usr/bin/python3", os.path.join(SHARED, "tac_peer.py"), cohort_subset,
                             "--weighting", "relative", "--repeat", str(repeat), "--out", out],
                            capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if cp.returncode != 0:
            sys.exit("peer failed:\n" + cp.stderr)
        with open(out) as f:
            doc = json.load(f)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return doc, cp.stderr, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def peer_errors(cohort_subset):
    """The peer's results and log, and the CPU time of one TAC fit in its fit loop: the CPU time of
    a run with the loop repeated 3 times minus that of a run with it once, over 2 x the TACs (so the
    start-up and imports cancel, and the machine's load does not count as it would in wall time)."""
    doc, log, wall, cpu1 = run_peer(cohort_subset, 1)
    _, _, _, cpu3 = run_peer(cohort_subset, 3)
    return doc, log, wall, cpu3 - cpu1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lutdose", required=True)
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--peer-patients", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--lutdose-args", default="")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="lutdose runs; their median rates are reported")
    ap.add_argument("--times", default=None, help="scan times [h], comma-separated (make_cohort.py --times)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cohort = os.path.join(d, "cohort.csv")
        make_cohort(args.patients, args.seed, cohort, args.times)
        tac = os.path.join(d, "tac.csv")
        truth = to_lutdose_tac(cohort, tac)
        errors, rate, cpu_rate, loop_rate, cpu_rates = repeated_lutdose_errors(
            args.lutdose, tac, truth, args.lutdose_args, max(1, args.repeat))
        print("lutdose %s: %d TACs, median of %d runs: %.0f TAC fits/s in the fit loop; whole process (`lutdose "
              "fit --format csv`, reading and output included): %.0f TAC fits/s of wall time, %.0f per CPU-second "
              "(runs: %s; %d page faults); |TIA error| median %.2f %%, p95 %.2f %%"
              % (args.lutdose_args or "(defaults)", len(errors), len(cpu_rates), loop_rate, rate, cpu_rate,
                 ", ".join("%.0f" % r for r in cpu_rates), LAST_FAULTS[0],
                 100 * statistics.median(errors), 100 * percentile(errors, 0.95)))
        if args.skip_peer:
            return
        subset = os.path.join(d, "subset.csv")
        with open(cohort) as f, open(subset, "w") as out:
            rows = list(csv.reader(f))
            out.write(",".join(rows[0]) + "\n")
            keep = sorted({r[0] for r in rows[1:]})[: args.peer_patients]
            keep = set(keep)
            for r in rows[1:]:
                if r[0] in keep:
                    out.write(",".join(r) + "\n")
        doc, log, wall, loop_cpu2 = peer_errors(subset)
        sub_truth = {k: v for k, v in truth.items() if k[0] in keep}
        perrs, peer_by_voi = [], {}
        for entry in (doc if isinstance(doc, list) else doc.get("results", doc.get("tacs", []))):
            key = (entry.get("patient"), entry.get("roi"))
            if key in sub_truth and entry.get("TIA_MBq_h"):
                perrs.append(abs(entry["TIA_MBq_h"] / sub_truth[key] - 1))
                peer_by_voi.setdefault(key[1], []).append(perrs[-1])
        sub_errors, _, _, _ = lutdose_errors(args.lutdose, to_subset_tac(tac, keep, d), sub_truth, args.lutdose_args)
        print("peer (lmfit, 1/y weights): %d TACs, %.1f TAC fits/s (whole process incl. imports), "
              "|TIA error| median %.2f %%, p95 %.2f %%" % (len(perrs), len(perrs) / wall,
                                                          100 * statistics.median(perrs), 100 * percentile(perrs, 0.95)))
        print("lutdose on the same %d TACs: |TIA error| median %.2f %%, p95 %.2f %%"
              % (len(sub_errors), 100 * statistics.median(sub_errors), 100 * percentile(sub_errors, 0.95)))
        print("per VOI, |TIA error| median / p95 [%%] (peer: %d of %d TACs returned a TIA):" % (len(perrs), len(sub_errors)))
        for voi, errs in LAST_BY_VOI.items():
            pe = peer_by_voi.get(voi, [])
            print("  %-10s lutdose %6.2f / %6.2f   peer %6.2f / %6.2f" % (
                voi, 100 * statistics.median(errs), 100 * percentile(errs, 0.95),
                100 * statistics.median(pe) if pe else float("nan"), 100 * percentile(pe, 0.95) if pe else float("nan")))
        peer_cpu_rate = 2 * len(perrs) / loop_cpu2
        print("per core: lutdose's whole process %.0f TAC fits per CPU-second / the peer's fit loop %.1f TAC fits per "
              "CPU-second (its own wall-time figure: %.1f/s) = %.0fx (issue 13's target: >= 1000x)"
              % (cpu_rate, peer_cpu_rate, peer_loop_rate(log), cpu_rate / peer_cpu_rate))
        print("peer's own timing and accuracy lines:\n" + "\n".join("  " + l for l in log.strip().splitlines()))


def peer_loop_rate(log):
    """The peer's fit-loop rate from its '[timing] total fit time X s; R TAC fits/s' line (jobs=1:
    one core, so fits per second of its loop are fits per CPU-second)."""
    for line in log.splitlines():
        if line.startswith("[timing] total fit time"):
            return float(line.split(";")[1].split()[0])
    sys.exit("no fit-loop timing line in the peer's output:\n" + log)


def to_subset_tac(tac, keep, d):
    path = os.path.join(d, "tac_subset.csv")
    with open(tac) as f, open(path, "w") as out:
        out.write(f.readline())
        for line in f:
            if line.split(",", 1)[0] in keep:
                out.write(line)
    return path


if __name__ == "__main__":
    main()
