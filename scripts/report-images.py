#!/usr/bin/env python3
"""Copies the README's report screenshots from the browser tests' artifacts into docs/images.

Run the tests first (ctest -L browser, or tests/e2e/test_report.py --case patient004_browser and
--case cohort_browser with --artifacts build/report-artifacts), then this script: it crops the
top of each screenshot (Pillow, Debian python3-pil) and stores it as a palette PNG.
Usage: scripts/report-images.py [ARTIFACTS_DIR]   (default build/report-artifacts)
"""
import os
import sys

from PIL import Image

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
artifacts = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build", "report-artifacts")
for name, height in (("report-patient004", 1250), ("report-cohort", 1000)):
    image = Image.open(os.path.join(artifacts, name + ".png")).convert("RGB")
    image = image.crop((0, 0, image.width, min(height, image.height)))
    out = os.path.join(root, "docs", "images", name + ".png")
    image.quantize(colors=64).save(out, optimize=True)
    print("written:", out, image.size)
