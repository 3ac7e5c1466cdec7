#!/usr/bin/env python3
"""docs/architecture.md matches the tree (issue 12: "docs/architecture.md exists and matches the
folders").

Checks: (1) every stage folder of engine/include/lutdose, engine/src and tests/unit is named in
the document's stage table and every folder the table names exists; (2) every file of the
table "Where each formula of docs/methods.md lives" exists and (3) every function named in a row
is defined in one of the row's files (its last name part, e.g. `compute` of
`DoseCalculator::compute`, followed by '(' on an unindented line, so a mere call does not count).

Usage: architecture_doc.py --root SOURCE_DIR. Exit status 0 when everything matches, 1 otherwise.
"""
import argparse
import os
import re
import sys


def table_after(text, heading):
    """The rows (lists of cells) of the first markdown table after `heading`."""
    rest = text[text.index(heading):]
    rows = []
    for line in rest.splitlines()[1:]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header row


def code_spans(cell):
    return re.findall(r"`([^`]+)`", cell)


def check_stage_folders(root, text, problems):
    rows = table_after(text, "# Architecture")
    named = {"engine/include/lutdose": set(), "engine/src": set(), "tests/unit": set()}
    for row in rows[:-1]:  # the last row is models/, with its own paths
        for base, cell in zip(("engine/include/lutdose", "engine/src", "tests/unit"), row[1:4]):
            named[base].update(s.strip("/") for s in code_spans(cell))
    for base, folders in named.items():
        actual = {d for d in os.listdir(os.path.join(root, base)) if os.path.isdir(os.path.join(root, base, d))}
        if base == "tests/unit":
            actual.discard("models")  # the models row
        for d in sorted(actual - folders):
            problems.append(f"{base}/{d} is not in the stage table of docs/architecture.md")
        for d in sorted(folders - actual):
            problems.append(f"docs/architecture.md names {base}/{d}, which does not exist")


def check_formula_table(root, text, problems):
    rows = table_after(text, "## Where each formula of `docs/methods.md` lives")
    if len(rows) < 10:
        problems.append(f"the formula table has {len(rows)} rows; expected one per methods.md section")
    for section, files_cell, functions_cell in rows:
        files = [f for f in code_spans(files_cell) if "." in f]
        sources = ""
        for f in files:
            path = os.path.join(root, f if f.startswith("models/") else os.path.join("engine/src", f))
            if not os.path.isfile(path):
                problems.append(f"{section}: {f} does not exist")
                continue
            sources += open(path, encoding="utf-8").read()
        for name in code_spans(functions_cell):
            last = name.split("::")[-1]
            # defined (or declared) at namespace scope: a line that starts unindented; a call
            # inside a function body is indented and does not count
            if not re.search(r"^[^\s/#].*\b" + re.escape(last) + r"\s*\(", sources, re.M):
                problems.append(f"{section}: {name} is not defined in {', '.join(files)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    root = ap.parse_args().root
    text = open(os.path.join(root, "docs", "architecture.md"), encoding="utf-8").read()
    problems = []
    check_stage_folders(root, text, problems)
    check_formula_table(root, text, problems)
    for p in problems:
        print("FAILED: " + p)
    if not problems:
        print("docs/architecture.md matches the folders and the formula locations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
