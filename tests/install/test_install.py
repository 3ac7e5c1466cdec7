#!/usr/bin/env python3
"""The installed package as a user sees it (issue 12 item 7).

Installs the build into a fresh temporary prefix (cmake --install), copies examples/cpp next to it,
configures and builds it with find_package(lutdose) through CMAKE_PREFIX_PATH only (with every
installed header compiled in one more translation unit), checks that no include path of the
compile points into the source or build tree, runs the program and compares
its TIA and dose with an independent truth: the analytic integral of the mono-exponential its
activities were rounded from, and D = TIA x S x 3.6 with the phantom's self-S read here from the
published S-value table. The installed `lutdose` program must find the installed data too.

Usage: test_install.py --cmake CMAKE --build BUILD_DIR --source SOURCE_DIR
Exit status 0 when every check passes, 1 otherwise.
"""
import argparse
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The curve the example's activities come from: 120 MBq x 2^(-t / 50 h) (examples/cpp).
A0_MBQ, T_EFF_H = 120.0, 50.0
TIA_TRUE_MBQ_H = A0_MBQ * T_EFF_H / math.log(2)
# The activities are that curve rounded to 0.01 MBq: at most 4.3e-4 relative (0.005 of 11.69 MBq
# at 168 h). The fitted TIA = A0 / lambda takes errors from the amplitude and the rate, each at
# most of that order on this schedule, so 2e-3 bounds the rounding with margin while a wrong
# half-life, rate or unit (>= 1 %) still fails.
TIA_REL_TOL = 2e-3
# The phantom's left-kidney self-S and mass (OpenDose ICRP 110 adult male, the example's set).
SVALUE_TABLE = "data/svalues/opendose_lu177_icrp110_svalues.csv"
KIDNEY_REGION = "Left kidney C+M+P"


def run(cmd, **kw):
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        sys.exit(f"FAILED ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def kidney_self_s(source_dir):
    with open(os.path.join(source_dir, SVALUE_TABLE), newline="") as f:
        for row in csv.DictReader(f):
            if (row["phantom"], row["source_region"], row["target_region"]) == (
                    "ICRP110AM", KIDNEY_REGION, KIDNEY_REGION):
                return float(row["S_mGy_per_MBq_s"]), float(row["target_mass_g"])
    sys.exit(f"no ICRP110AM {KIDNEY_REGION} self-S in {SVALUE_TABLE}")


def add_all_headers_target(prefix, example_src):
    """Every installed header compiled in one translation unit against the package alone: a public
    header that includes a private one (engine/src) or a missing one fails the build."""
    include = os.path.join(prefix, "include")
    headers = sorted(os.path.relpath(os.path.join(d, f), include)
                     for d, _, files in os.walk(include) for f in files if f.endswith(".h"))
    with open(os.path.join(example_src, "all_headers.cpp"), "w") as f:
        f.writelines(f'#include "{h}"\n' for h in headers)
    with open(os.path.join(example_src, "CMakeLists.txt"), "a") as f:
        f.write("add_library(all_headers OBJECT all_headers.cpp)\n"
                "target_link_libraries(all_headers PRIVATE lutdose::engine)\n"
                "target_compile_features(all_headers PRIVATE cxx_std_17)\n")
    print(f"all_headers.cpp: {len(headers)} installed headers")
    return len(headers)


def check_include_paths(build, forbidden):
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = json.load(f)
    for entry in commands:
        for path in re.findall(r"(?:-I|-isystem\s+)(\S+)", entry["command"]):
            for root in forbidden:
                if os.path.realpath(path).startswith(os.path.realpath(root) + os.sep):
                    sys.exit(f"include path {path} lies in {root}: not the installed package")
    print(f"include paths: none in {', '.join(forbidden)}")


def check_close(name, value, truth, rel_tol, failures):
    rel = abs(value - truth) / truth
    print(f"{name}: {value:.6g}, truth {truth:.6g}, relative difference {rel:.2e} (tolerance {rel_tol})")
    if not rel <= rel_tol:
        failures.append(name)


def check_example_output(out, prefix, source_dir, failures):
    data_dir = re.search(r"data directory: (.+)", out).group(1).strip()
    if os.path.realpath(data_dir) != os.path.realpath(os.path.join(prefix, "share", "lutdose")):
        failures.append(f"the example used the data in {data_dir}, not the installed data")
    tia = re.search(r"TIA = (\S+) \+- (\S+) MBq h", out)
    dose = re.search(r"mass (\S+) g, dose = (\S+) \+- (\S+) Gy", out)
    if not tia or not dose:
        sys.exit("unexpected output of the example:\n" + out)
    check_close("TIA [MBq h]", float(tia.group(1)), TIA_TRUE_MBQ_H, TIA_REL_TOL, failures)
    s_mGy_per_MBq_s, mass_g = kidney_self_s(source_dir)
    # The mass is printed to 1 mg of 153 g (7e-6); the dose to 0.1 mGy of 4.9 Gy (2e-5), on top
    # of the TIA's tolerance (the dose is proportional to the TIA, self-S unscaled at this mass).
    check_close("mass [g]", float(dose.group(1)), mass_g, 1e-5, failures)
    dose_truth_Gy = TIA_TRUE_MBQ_H * s_mGy_per_MBq_s * 3600 * 1e-3
    check_close("dose [Gy]", float(dose.group(2)), dose_truth_Gy, TIA_REL_TOL + 2e-5, failures)


def check_installed_program(prefix, work, failures):
    tac = os.path.join(work, "tac.csv")
    with open(tac, "w") as f:
        f.write("voi,time_h,activity_MBq\n")
        for t, a in ((4, 113.53), (24, 86.04), (72, 44.23), (168, 11.69)):
            f.write(f"kidney_left,{t},{a}\n")
    env = {k: v for k, v in os.environ.items() if k != "LUTDOSE_DATA_DIR"}
    text = run([os.path.join(prefix, "bin", "lutdose"), "fit", "--tac", tac], cwd=work, env=env)
    expected = os.path.realpath(os.path.join(prefix, "share", "lutdose"))
    found = re.search(r'"data_dir": "([^"]+)"', text)
    if not found or os.path.realpath(found.group(1)) != expected:
        failures.append(f"installed lutdose did not use {expected}: {found and found.group(1)}")
    else:
        print(f"installed lutdose fit: data directory {found.group(1)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmake", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lutdose-install-")
    prefix, example_src, example_build = (os.path.join(work, d) for d in ("prefix", "src", "build"))
    failures = []
    try:
        run([args.cmake, "--install", args.build, "--prefix", prefix])
        shutil.copytree(os.path.join(args.source, "examples", "cpp"), example_src)
        if add_all_headers_target(prefix, example_src) < 20:  # 0.5 installs 28; fewer means a broken install rule
            failures.append("fewer than 20 headers installed")
        run([args.cmake, "-S", example_src, "-B", example_build, "-DCMAKE_BUILD_TYPE=Release",
             f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
             "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF"])
        check_include_paths(example_build, [args.source, args.build])
        run([args.cmake, "--build", example_build])
        env = {k: v for k, v in os.environ.items() if k != "LUTDOSE_DATA_DIR"}
        out = run([os.path.join(example_build, "fit_and_dose")], cwd=work, env=env)
        print(out, end="")
        check_example_output(out, prefix, args.source, failures)
        check_installed_program(prefix, work, failures)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the temporary directory this test made
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("installed package: example built and checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
