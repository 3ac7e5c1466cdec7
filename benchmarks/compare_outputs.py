#!/usr/bin/env python3
"""Compares two output trees of lutdose (for changes that must not change results).

usage: compare_outputs.py BASE_DIR NEW_DIR

Every *.json file under BASE_DIR (manifest.json excepted: run ids and hashes differ by design) is
compared with the file of the same relative path under NEW_DIR: keys, list lengths, strings,
booleans and nulls must be equal; numbers are counted as bit-identical or not, and a relative
difference above 1e-9 is an error. CSV files are compared as text. Prints one line per file and a
total with the largest relative difference; exit status 1 on any error.

Typical use: run the old and the new binary on the same inputs into two folders, e.g.
  lutdose fit --tac tac20k.csv > DIR/fit20k.json
  lutdose run examples/snmmi-patient004/case.json --out DIR/snmmi-patient004
(with the same input paths for both binaries: the options echo them).
"""
import json
import math
import os
import sys

TOLERANCE = 1e-9  # relative; the brief of the change (issue 13): numbers equal within 1e-9


class Comparison:
    def __init__(self):
        self.numbers = 0
        self.not_identical = 0
        self.errors = 0
        self.max_rel = 0.0
        self.max_where = ""

    def error(self, path, message):
        self.errors += 1
        if self.errors <= 20:
            print("DIFF", path, message)

    def number(self, a, b, path):
        self.numbers += 1
        if a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)):
            return
        self.not_identical += 1
        rel = abs(a - b) / max(abs(a), abs(b), 1e-300)
        if rel > self.max_rel:
            self.max_rel, self.max_where = rel, f"{path}: {a!r} vs {b!r}"
        if not rel <= TOLERANCE:
            self.error(path, f"{a!r} vs {b!r} (relative {rel:.3g})")

    def value(self, a, b, path):
        if isinstance(a, dict):
            if not isinstance(b, dict) or list(a) != list(b):
                return self.error(path, "keys differ")
            for k in a:
                self.value(a[k], b[k], f"{path}.{k}")
        elif isinstance(a, list):
            if not isinstance(b, list) or len(a) != len(b):
                return self.error(path, "lengths differ")
            for i, (x, y) in enumerate(zip(a, b)):
                self.value(x, y, f"{path}[{i}]")
        elif isinstance(a, (int, float)) and not isinstance(a, bool):
            if not isinstance(b, (int, float)) or isinstance(b, bool):
                return self.error(path, f"{a!r} vs {b!r}")
            self.number(a, b, path)
        elif a != b:
            self.error(path, f"{a!r} vs {b!r}")


def files(root, suffix):
    for d, _, names in os.walk(root):
        for name in sorted(names):
            if name.endswith(suffix) and name != "manifest.json":
                yield os.path.relpath(os.path.join(d, name), root)


def main():
    base, new = sys.argv[1], sys.argv[2]
    c = Comparison()
    for rel in sorted(files(base, ".json")):
        with open(os.path.join(base, rel)) as fa, open(os.path.join(new, rel)) as fb:
            n0, d0, e0 = c.numbers, c.not_identical, c.errors
            c.value(json.load(fa), json.load(fb), rel)
            print(f"{rel}: {c.numbers - n0} numbers, {c.not_identical - d0} not bit-identical, {c.errors - e0} errors")
    for rel in sorted(files(base, ".csv")):
        with open(os.path.join(base, rel)) as fa, open(os.path.join(new, rel)) as fb:
            same = fa.read() == fb.read()
        print(f"{rel}: text {'identical' if same else 'DIFFERENT'}")
        if not same:
            c.error(rel, "CSV text differs")
    print(f"TOTAL {c.numbers} numbers, {c.not_identical} not bit-identical, largest relative difference "
          f"{c.max_rel:.3g} {c.max_where}, {c.errors} errors")
    return 1 if c.errors else 0


if __name__ == "__main__":
    sys.exit(main())
