#!/usr/bin/env python3
"""End-to-end tests of `lutdose report` and `lutdose plot` (docs/report.md), in headless Chromium.

Usage:
  test_report.py --list
  test_report.py --lutdose PATH/TO/lutdose --source SOURCE_DIR --artifacts DIR --case NAME

Python 3 standard library only (plus h5py for the cohort case). The reports are opened in headless
Chromium with no network (every host name resolves to nothing); its console messages come on
stderr (--enable-logging=stderr --v=0, lines with ":CONSOLE"), and the DOM after rendering
(--dump-dom) is parsed with html.parser. The numbers shown are compared with results.json read
here independently: each shown number must equal the JSON value to the digits shown (within half a
unit of its last digit). Screenshots and PDFs go to --artifacts (the build tree).
A case that needs Chromium exits 77 (skipped) without it, except under CI=true where it fails.
"""

import e2e_driver
import html.parser
import json
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 300
CHROMIUM = os.environ.get("LUTDOSE_CHROMIUM", "/usr/bin/chromium")
EXPONENTIAL = {"E1p", "E1", "E2u", "E2", "E2b", "E3u"}
DASH = "\u2014"


class CaseFailure(Exception):
    pass


class Skip(Exception):
    pass


class Ctx:
    def __init__(self, lutdose, source, tmp, artifacts):
        self.lutdose, self.source, self.tmp, self.artifacts = lutdose, source, tmp, artifacts

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def run(self, *args, env=None):
        argv = [self.lutdose] + [str(a) for a in args]
        cp = subprocess.run(argv, cwd=self.tmp, capture_output=True, text=True, timeout=TIMEOUT_S,
                            env=dict(os.environ, **(env or {})))
        return argv, cp

    def ok(self, *args, env=None):
        argv, cp = self.run(*args, env=env)
        if cp.returncode != 0:
            raise CaseFailure("expected exit 0: %s\nexit %d\n%s" % (shlex.join(argv), cp.returncode, cp.stderr))
        return cp

    def example(self, name):
        return os.path.join(self.source, "examples", name, "case.json")


# ---- Chromium -------------------------------------------------------------------------------------

def need_chromium():
    if not os.access(CHROMIUM, os.X_OK):
        raise Skip("headless Chromium not found at %s (scripts/install-deps.sh --browser)" % CHROMIUM)


def chromium(tmp, url, *options):
    """Runs headless Chromium offline on url; returns (stdout, console lines)."""
    profile = tempfile.mkdtemp(prefix="profile-", dir=tmp)
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
            "--user-data-dir=" + profile, "--hide-scrollbars"] + list(options) + [url]
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if cp.returncode != 0:
        raise CaseFailure("chromium failed (exit %d): %s" % (cp.returncode, cp.stderr[-2000:]))
    console = [line for line in cp.stderr.splitlines() if ":CONSOLE" in line]
    return cp.stdout, console


def rendered_dom(tmp, page):
    """The DOM of page after rendering; fails on any console message."""
    out, console = chromium(tmp, "file://" + os.path.abspath(page), "--dump-dom")
    if console:
        raise CaseFailure("console messages while rendering %s:\n%s" % (page, "\n".join(console)))
    if "<body" not in out:
        raise CaseFailure("chromium returned no DOM for %s" % page)
    return parse(out)


def screenshot(ctx, page, name, height=2400):
    need_chromium()
    png = os.path.join(ctx.artifacts, name)
    chromium(ctx.tmp, "file://" + os.path.abspath(page), "--window-size=1200,%d" % height, "--screenshot=" + png)
    with open(png, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            raise CaseFailure("the screenshot %s is not a PNG" % png)


# ---- a small DOM ----------------------------------------------------------------------------------

class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, dict(attrs), parent, [], ""

    def classes(self):
        return set((self.attrs.get("class") or "").split())

    def all(self, tag=None, cls=None, **data):
        out = []
        for c in self.children:
            if ((tag is None or c.tag == tag) and (cls is None or cls in c.classes())
                    and all(c.attrs.get("data-" + k) == v for k, v in data.items())):
                out.append(c)
            out.extend(c.all(tag, cls, **data))
        return out

    def full_text(self):
        return self.text + "".join(c.full_text() for c in self.children)


VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "wbr", "source"}


class Builder(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        if self.cur.children:
            self.cur.children[-1].tail = getattr(self.cur.children[-1], "tail", "") + data
        self.cur.text += data


def parse(text):
    b = Builder()
    b.feed(text)
    return b.root


# ---- numbers --------------------------------------------------------------------------------------

def shown_equals(text, value, what):
    """The shown text equals value to the digits shown; '—' exactly when value is unknown."""
    text = text.strip()
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        if text != DASH:
            raise CaseFailure("%s: results.json has no value, the report shows %r (expected %s)" % (what, text, DASH))
        return
    if text == DASH:
        raise CaseFailure("%s: the report shows %s, results.json has %r" % (what, DASH, value))
    m = re.fullmatch(r"-?(\d+)(?:\.(\d+))?(?:e([-+]?\d+))?", text)
    if not m:
        raise CaseFailure("%s: %r is not a number" % (what, text))
    decimals = len(m.group(2) or "")
    exponent = int(m.group(3) or 0)
    half_unit = 0.5 * 10.0 ** (exponent - decimals)
    digits = len((m.group(1) + (m.group(2) or "")).lstrip("0"))
    if digits < 3 and abs(value) >= 1e-12 and float(text) != value:
        raise CaseFailure("%s: %r shows fewer than 3 significant digits of %r" % (what, text, value))
    # 1e-9 relative: the decimal rounding of the shown text itself.
    if abs(float(text) - value) > half_unit * (1 + 1e-9):
        raise CaseFailure("%s: the report shows %s, results.json has %r" % (what, text, value))


def cell(row, field):
    cells = row.all("td", **{"field": field})
    if len(cells) != 1:
        raise CaseFailure("row %s: expected one cell data-field=%s, found %d" % (row.attrs, field, len(cells)))
    return cells[0].full_text()


def interval(d, key, i):
    v = d.get(key)
    return None if v is None else v[i]


# ---- checks of a patient report -------------------------------------------------------------------

def check_voi_plots(dom, patient, cycle, voi):
    name, c = voi["name"], str(cycle["cycle"])
    points = [(t, a) for t, a in zip(voi["time_h"], voi["activity_MBq"]) if t is not None and a is not None]
    fitted = [x for x in voi["fit"]["candidates"] if x.get("fitted") and x["function"] in EXPONENTIAL]
    for scale, n_points in (("linear", len(points)), ("log", sum(1 for _, a in points if a > 0))):
        svgs = dom.all("svg", kind="tac", voi=name, cycle=c, patient=patient, scale=scale)
        if len(svgs) != 1:
            raise CaseFailure("%s cycle %s: expected one %s TAC plot, found %d" % (name, c, scale, len(svgs)))
        got = len(svgs[0].all("circle", cls="point"))
        if got != n_points:
            raise CaseFailure("%s cycle %s %s plot: %d points drawn, results.json has %d" % (name, c, scale, got, n_points))
        curves = svgs[0].all("path", cls="candidate")
        if len(curves) != len(fitted):
            raise CaseFailure("%s %s plot: %d candidate curves, results.json has %d fitted" % (name, scale, len(curves), len(fitted)))
        selected = [p for p in curves if "selected" in p.classes()]
        if voi["fit"]["method"] == "fit":
            if len(selected) != 1 or selected[0].parent.attrs.get("data-function") != voi["fit"]["function"]:
                raise CaseFailure("%s %s plot: the selected curve is not the one of %s" % (name, scale, voi["fit"]["function"]))
            if scale == "linear" and not svgs[0].all("polygon", cls="band") and fitted:
                cand = [x for x in fitted if x["function"] == voi["fit"]["function"]][0]
                if cand.get("covariance") and cand.get("tia_u_dof") is not None:
                    raise CaseFailure("%s: no 95 %% band although the covariance is known" % name)
    return len(points)


def check_fit_table(dom, cycle, voi):
    sections = dom.all("section", cls="voi", voi=voi["name"], cycle=str(cycle["cycle"]))
    tables = sections[0].all("table", cls="fit-table") if len(sections) == 1 else []
    if len(tables) != 1:
        raise CaseFailure("%s: expected one VOI section with one fit table" % voi["name"])
    rows = tables[0].all("tr")[1:]
    cands = voi["fit"]["candidates"]
    if [r.attrs.get("data-function") for r in rows] != [x["function"] for x in cands]:
        raise CaseFailure("%s fit table rows %s, results.json candidates %s" % (
            voi["name"], [r.attrs.get("data-function") for r in rows], [x["function"] for x in cands]))
    for r, x in zip(rows, cands):
        for field in ("tia_MBq_h", "tia_u_MBq_h", "aicc", "akaike_weight", "r_squared"):
            shown_equals(cell(r, field), x.get(field), "%s %s %s" % (voi["name"], x["function"], field))
    shown_equals(sections[0].all("span", field="tia_MBq_h")[0].full_text(), voi["tia_MBq_h"], voi["name"] + " TIA")


def check_dose_table(dom, patient, cycle):
    tables = dom.all("table", cls="dose-table", cycle=str(cycle["cycle"]), patient=patient)
    if len(tables) != 1:
        raise CaseFailure("cycle %s: expected one dose table, found %d" % (cycle["cycle"], len(tables)))
    rows = {r.attrs["data-target"]: r for r in tables[0].all("tr") if "data-target" in r.attrs}
    n = 0
    for d in cycle["doses"]:
        if d["kind"] == "region" and d["target"] not in rows:
            continue
        if d["target"] not in rows:
            raise CaseFailure("cycle %s: no dose row for %s" % (cycle["cycle"], d["target"]))
        r, what = rows[d["target"]], "cycle %s %s " % (cycle["cycle"], d["target"])
        for field in ("dose_Gy", "dose_Gy_per_GBq", "dose_u_Gy", "bed_Gy", "eqd2_Gy"):
            shown_equals(cell(r, field), d.get(field), what + field)
        shown_equals(cell(r, "ci95_low_Gy"), interval(d, "dose_ci95_Gy", 0), what + "95 % low")
        shown_equals(cell(r, "ci95_high_Gy"), interval(d, "dose_ci95_Gy", 1), what + "95 % high")
        n += 1
    return n


def check_cumulative(dom, patient_doc):
    cycles = patient_doc["cycles"]
    tables = dom.all("table", cls="cumulative-table")
    if len(tables) != 1:
        raise CaseFailure("expected one cumulative table, found %d" % len(tables))
    rows = {r.attrs["data-target"]: r for r in tables[0].all("tr") if "data-target" in r.attrs}
    if not rows:
        raise CaseFailure("the cumulative table lists no organ at risk")
    for d in patient_doc["cumulative"]["doses"]:
        if d["target"] not in rows:
            continue
        r = rows[d["target"]]
        shown_equals(cell(r, "dose_Gy"), d["dose_Gy"], "cumulative %s dose" % d["target"])
        shown_equals(cell(r, "bed_Gy"), d.get("bed_Gy"), "cumulative %s BED" % d["target"])
        total = 0.0
        for k, c in enumerate(cycles, 1):
            total += [x for x in c["doses"] if x["target"] == d["target"]][0]["dose_Gy"]
            shown_equals(cell(r, "dose_Gy_after_%d" % k), total, "%s dose after cycle %d" % (d["target"], k))
    return sorted(rows)


def check_patient_report(ctx, results_dir, report, label):
    with open(os.path.join(results_dir, "results.json"), encoding="utf-8") as f:
        doc = json.load(f)
    dom = rendered_dom(ctx.tmp, report)
    n_vois = n_points = n_doses = 0
    for p in doc["patients"]:
        for c in p["cycles"]:
            for v in c["vois"]:
                n_points += check_voi_plots(dom, p["id"], c, v)
                check_fit_table(dom, c, v)
                n_vois += 1
            n_doses += check_dose_table(dom, p["id"], c)
    print("%s: %d VOI plots (%d points), %d dose rows checked against results.json" % (label, n_vois, n_points, n_doses))
    return doc, dom


def publish(ctx, report, name):
    """Screenshot PNG and PDF of the report into the artifacts directory."""
    screenshot(ctx, report, name + ".png")
    pdf = os.path.join(ctx.artifacts, name + ".pdf")
    ctx.ok("report", os.path.dirname(report), "--out", os.path.join(ctx.artifacts, name + ".html"), "--pdf")
    with open(pdf, "rb") as f:
        if f.read(5) != b"%PDF-":
            raise CaseFailure("%s is not a PDF" % pdf)


# ---- cases ----------------------------------------------------------------------------------------

def case_patient004_browser(ctx):
    need_chromium()
    out = ctx.path("p004")
    ctx.ok("run", ctx.example("snmmi-patient004"), "--out", out, "--quiet", "--report")
    report = os.path.join(out, "report.html")
    with open(os.path.join(out, "manifest.json")) as f:
        if "report.html" not in [x["name"] for x in json.load(f)["files"]]:
            raise CaseFailure("run --report: manifest.json does not list report.html")
    check_patient_report(ctx, out, report, "Patient_004")
    publish(ctx, report, "report-patient004")


def case_two_cycles_browser(ctx):
    need_chromium()
    out = ctx.path("two")
    ctx.ok("run", ctx.example("synthetic-two-cycles"), "--out", out, "--quiet")
    ctx.ok("plan", ctx.example("synthetic-two-cycles"), "--out", ctx.path("plan.json"))
    report = ctx.path("two.html")
    ctx.ok("report", out, "--out", report, "--plan", ctx.path("plan.json"), "--pdf")  # two.html and two.pdf
    doc, dom = check_patient_report(ctx, out, report, "two cycles")
    oars = check_cumulative(dom, doc["patients"][0])
    with open(ctx.path("plan.json")) as f:
        plan = json.load(f)
    rows = {r.attrs["data-target"]: r for r in dom.all("table", cls="plan-table")[0].all("tr") if "data-target" in r.attrs}
    for t in plan["targets"]:
        for field in ("predicted_dose_Gy_per_GBq", "cumulative_dose_Gy", "limit_dose_Gy", "max_activity_MBq"):
            shown_equals(cell(rows[t["name"]], field), t.get(field), "plan %s %s" % (t["name"], field))
    print("cumulative rows %s and the plan's %d targets checked" % (oars, len(plan["targets"])))
    screenshot(ctx, report, "report-two-cycles.png", height=1800)
    with open(ctx.path("two.pdf"), "rb") as f:
        if f.read(5) != b"%PDF-":
            raise CaseFailure("two.pdf is not a PDF")
    shutil.copy(ctx.path("two.pdf"), os.path.join(ctx.artifacts, "report-two-cycles.pdf"))


def case_cohort_browser(ctx):
    need_chromium()
    try:
        import h5py  # noqa: F401 (the store is read here independently of lutdose)
    except ImportError:
        raise Skip("python3-h5py is missing")
    ctx.ok("synth", "--patients", 200, "--seed", 7, "--out", ctx.path("cohort"), "--quiet")
    _, cp = ctx.run("batch", "--tac", ctx.path("cohort", "tacs.csv"), "--patients", ctx.path("cohort", "patients.csv"),
                    "--out", ctx.path("cohort.h5"), "--threads", 2)
    if cp.returncode not in (0, 3):
        raise CaseFailure("batch failed: %s" % cp.stderr)
    report = ctx.path("cohort.html")
    ctx.ok("report", ctx.path("cohort.h5"), "--out", report)
    dom = rendered_dom(ctx.tmp, report)
    with h5py.File(ctx.path("cohort.h5"), "r") as f:
        vois = f["vois"][:]
        failures = f["failures"][:]
    dec = lambda b: b.decode().rstrip("\0")  # noqa: E731
    patients = {dec(v["patient"]) for v in vois}
    shown = dom.all("td", field="patients")[0].full_text()
    if int(shown) != len(patients) or len(patients) != 200:
        raise CaseFailure("cohort report shows %s patients, the store has %d" % (shown, len(patients)))
    by_voi = {}
    for v in vois:
        by_voi.setdefault(dec(v["voi"]), []).append(float(v["tia_h"]))
    boxes = dom.all("svg", kind="tia")[0].all("g", cls="box")
    if len(boxes) != len(by_voi):
        raise CaseFailure("%d TIA boxes, the store has %d VOIs" % (len(boxes), len(by_voi)))
    for (voi, values), box in zip(sorted(by_voi.items()), boxes):
        med = statistics.median([x for x in values if math.isfinite(x)])
        # 1e-12 relative: the median is one value or the mean of two, printed in shortest exact form.
        if abs(float(box.attrs["data-median"]) - med) > 1e-12 * abs(med):
            raise CaseFailure("%s: median TIA/A %s shown, %r in the store" % (voi, box.attrs["data-median"], med))
    counts = {}
    for v in vois:
        counts[(dec(v["voi"]), dec(v["function"]))] = counts.get((dec(v["voi"]), dec(v["function"])), 0) + 1
    for (voi, fn), n in counts.items():
        got = dom.all("tr", voi=voi)[0].all("td", function=fn)[0].full_text()
        if int(got) != n:
            raise CaseFailure("%s %s: %s fits counted, the store has %d" % (voi, fn, got, n))
    if len(dom.all("table", cls="failure-table")[0].all("tr")) - 1 != len(failures):
        raise CaseFailure("failure table rows differ from the store's %d failures" % len(failures))
    print("cohort: 200 patients, %d VOIs' medians and %d function counts checked" % (len(by_voi), len(counts)))
    screenshot(ctx, report, "report-cohort.png", height=1400)
    # One patient's report from the store's rows: its dose table equals the store's /targets rows.
    one = ctx.path("P00002.html")
    ctx.ok("report", ctx.path("cohort.h5"), "--patient", "P00002", "--out", one)
    with h5py.File(ctx.path("cohort.h5"), "r") as f:
        targets = [t for t in f["targets"][:] if dec(t["patient"]) == "P00002" and dec(t["kind"]) != "region"]
    dom = rendered_dom(ctx.tmp, one)
    rows = {r.attrs["data-target"]: r for r in dom.all("table", cls="dose-table")[0].all("tr") if "data-target" in r.attrs}
    for t in targets:
        for field in ("dose_Gy", "dose_u_Gy", "dose_Gy_per_GBq", "bed_Gy"):
            v = float(t[field])
            shown_equals(cell(rows[dec(t["target"])], field), v if math.isfinite(v) else None, "P00002 " + field)
    if not targets or "no measured points" not in dom.full_text():
        raise CaseFailure("the store patient's report lacks its targets or the note on what the store lacks")
    expect_refused(ctx, ["report", ctx.path("cohort.h5"), "--patient", "NOPE", "--out", ctx.path("n.html")],
                   ["NOPE", "--patient"], [ctx.path("n.html")])


def expect_refused(ctx, args, words, out, env=None):
    argv, cp = ctx.run(*args, env=env)
    if cp.returncode != 2:
        raise CaseFailure("expected exit 2: %s\nexit %d\n%s" % (shlex.join(argv), cp.returncode, cp.stderr))
    for w in words:
        if w not in cp.stderr:
            raise CaseFailure("%s: the message lacks %r:\n%s" % (shlex.join(argv), w, cp.stderr))
    for p in out:
        if os.path.exists(p):
            raise CaseFailure("%s: %s was written although the command failed" % (shlex.join(argv), p))


def case_bad_results(ctx):
    out = ctx.path("run")
    ctx.ok("run", ctx.example("snmmi-patient004"), "--out", out, "--quiet")
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        text = f.read()
    doc = json.loads(text)
    report = ctx.path("r.html")
    expect_refused(ctx, ["report", ctx.path("nothing"), "--out", report], ["nothing", "missing"], [report])
    os.makedirs(ctx.path("empty"))
    expect_refused(ctx, ["report", ctx.path("empty"), "--out", report], ["results.json", "missing"], [report])
    old = dict(doc)
    del old["format"], old["format_version"]  # the results.json of lutdose <= 0.8
    with open(ctx.path("old.json"), "w") as f:
        json.dump(old, f)
    expect_refused(ctx, ["report", ctx.path("old.json"), "--out", report], ["old.json", "format_version", "missing", "rerun"], [report])
    newer = dict(doc, format_version=99)
    with open(ctx.path("newer.json"), "w") as f:
        json.dump(newer, f)
    expect_refused(ctx, ["report", ctx.path("newer.json"), "--out", report], ["newer.json", "format_version", "99", "1"], [report])
    with open(ctx.path("broken.json"), "w") as f:
        f.write(text[: len(text) // 2])
    expect_refused(ctx, ["report", ctx.path("broken.json"), "--out", report], ["broken.json", "not valid JSON"], [report])
    bad = json.loads(text)
    bad["patients"][0]["cycles"][0]["vois"][0]["time_h"] = "soon"
    with open(ctx.path("badfield.json"), "w") as f:
        json.dump(bad, f)
    expect_refused(ctx, ["report", ctx.path("badfield.json"), "--out", report],
                   ["badfield.json", "patients[0].cycles[0].vois[0].time_h", "soon"], [report])
    inside = os.path.join(out, "report.html")  # not into the result set: its manifest would not list it
    expect_refused(ctx, ["report", out, "--out", inside], ["manifest.json", "--report"], [inside])
    os.remove(os.path.join(out, "results.json"))
    expect_refused(ctx, ["report", os.path.join(out, "results.h5"), "--out", report], ["results.json beside it"], [report])


def case_console_check_fails(ctx):
    """The console check can fail: a page with a deliberate script error must be caught."""
    need_chromium()
    page = ctx.path("bad.html")
    with open(page, "w") as f:
        f.write("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    try:
        rendered_dom(ctx.tmp, page)
    except CaseFailure as e:
        if "undefinedFunction" not in str(e):
            raise CaseFailure("caught, but without the error's text: %s" % e)
        return
    raise CaseFailure("a page with a script error passed the console check")


def case_hostile_names(ctx):
    """Names from the input are escaped: a patient id and a VOI name holding markup stay text."""
    need_chromium()
    evil = "<script>console.error('x')</script><img src=x onerror=alert(1)>"
    tac = ctx.path("tac.csv")
    with open(os.path.join(ctx.source, "examples", "snmmi-patient004", "tac.csv"), encoding="utf-8") as f:
        lines = [l for l in f.read().splitlines() if l and not l.startswith("#")]
    with open(tac, "w", encoding="utf-8") as f:
        f.write("patient," + lines[0] + "\n")
        for l in lines[1:]:
            f.write('"%s",%s\n' % (evil.replace('"', '""'), l))
    ctx.ok("run", "--tac", tac, "--activity-MBq", 7210.4, "--phantom", "icrp110-am", "--out", ctx.path("o"), "--quiet")
    ctx.ok("report", ctx.path("o"), "--out", ctx.path("evil.html"))
    dom = rendered_dom(ctx.tmp, ctx.path("evil.html"))  # no console message: the script did not run
    if dom.all("script") or dom.all("img"):
        raise CaseFailure("markup of the patient id became elements")
    if evil not in dom.all("h1")[0].full_text():
        raise CaseFailure("the patient id is not shown as text")


def case_plot_and_chromium(ctx):
    out = ctx.path("run")
    ctx.ok("run", ctx.example("snmmi-patient004"), "--out", out, "--quiet")
    ctx.ok("plot", out, "--voi", "liver", "--out", ctx.path("liver.svg"), "--scale", "log")
    with open(ctx.path("liver.svg"), encoding="utf-8") as f:
        svg = parse(f.read())
    if len(svg.all("circle", cls="point")) != 4 or not svg.all("path", cls="selected"):
        raise CaseFailure("liver.svg: expected 4 points and the selected curve")
    expect_refused(ctx, ["plot", out, "--voi", "brain", "--out", ctx.path("b.svg")], ["brain", "liver"], [ctx.path("b.svg")])
    none = {"LUTDOSE_CHROMIUM": ctx.path("no-chromium")}
    expect_refused(ctx, ["plot", out, "--voi", "liver", "--out", ctx.path("l.png")], ["install-deps.sh --browser"],
                   [ctx.path("l.png")], env=none)
    expect_refused(ctx, ["report", out, "--out", ctx.path("r.html"), "--pdf"], ["install-deps.sh --browser"],
                   [ctx.path("r.html"), ctx.path("r.pdf")], env=none)
    need_chromium()
    ctx.ok("plot", out, "--voi", "liver", "--out", ctx.path("liver.png"))
    ctx.ok("plot", out, "--voi", "liver", "--out", ctx.path("liver.pdf"))
    with open(ctx.path("liver.png"), "rb") as f:
        if f.read(4) != b"\x89PNG":
            raise CaseFailure("liver.png is not a PNG")
    shutil.copy(ctx.path("liver.svg"), os.path.join(ctx.artifacts, "plot-liver.svg"))


def case_foreign_pdf_beside(ctx):
    """Regression: with --pdf, a FILE.pdf lutdose did not write was refused only after FILE.html
    had been written (exit 2 with a new file). Both outputs are checked before anything is written."""
    need_chromium()
    out = ctx.path("run")
    ctx.ok("run", ctx.example("snmmi-patient004"), "--out", out, "--quiet")
    theirs = ctx.path("r.pdf")
    with open(theirs, "w") as f:
        f.write("someone's PDF\n")
    expect_refused(ctx, ["report", out, "--out", ctx.path("r.html"), "--pdf"], ["r.pdf", "not an earlier output"],
                   [ctx.path("r.html")])
    with open(theirs) as f:
        if f.read() != "someone's PDF\n":
            raise CaseFailure("r.pdf, not lutdose's, was changed")


def case_cohort_failures_only(ctx):
    """Regression: a store whose patients all failed showed "0" in the failures' cycle column (the
    store's 0 means the whole patient, not a cycle 0) and two empty box plots without a word."""
    ctx.ok("synth", "--patients", 3, "--seed", 7, "--out", ctx.path("cohort"), "--quiet")
    with open(ctx.path("cohort", "tacs.csv")) as f:
        rows = f.read().splitlines()
    with open(ctx.path("tacs.csv"), "w") as f:  # time_h -5 in every patient: each fails as a whole
        f.write("\n".join([rows[0]] + [re.sub(r"^([^,]*,[^,]*,[^,]*),[^,]*,", r"\1,-5,", r) for r in rows[1:]]) + "\n")
    _, cp = ctx.run("batch", "--tac", ctx.path("tacs.csv"), "--patients", ctx.path("cohort", "patients.csv"),
                    "--out", ctx.path("failed.h5"), "--threads", 1)
    if "3 failed" not in cp.stderr + cp.stdout:
        raise CaseFailure("expected 3 failed patients: %s %s" % (cp.stdout, cp.stderr))
    ctx.ok("report", ctx.path("failed.h5"), "--out", ctx.path("failed.html"))
    with open(ctx.path("failed.html"), encoding="utf-8") as f:
        dom = parse(f.read())
    rows = [r for r in dom.all("table", cls="failure-table")[0].all("tr") if "data-patient" in r.attrs]
    if len(rows) != 3:
        raise CaseFailure("expected 3 failure rows, found %d" % len(rows))
    for r in rows:
        shown = r.all("td")[1].full_text().strip()
        if shown != "whole patient":
            raise CaseFailure("failure of %s: cycle column shows %r, expected 'whole patient'" % (r.attrs["data-patient"], shown))
    if dom.full_text().count("No known values") != 2:
        raise CaseFailure("the two empty distributions do not say that there are no known values")


def case_options_without_effect(ctx):
    """Regression: --patient with a run's results and --plan with a cohort store were ignored
    (exit 0, a report of every patient / without the plan). They are refused, nothing written."""
    out = ctx.path("run")
    ctx.ok("run", ctx.example("snmmi-patient004"), "--out", out, "--quiet")
    report = ctx.path("r.html")
    expect_refused(ctx, ["report", out, "--patient", "NOPE", "--out", report], ["--patient", "NOPE", "batch store"], [report])
    ctx.ok("synth", "--patients", 2, "--seed", 7, "--out", ctx.path("cohort"), "--quiet")
    ctx.ok("batch", "--tac", ctx.path("cohort", "tacs.csv"), "--patients", ctx.path("cohort", "patients.csv"),
           "--out", ctx.path("cohort.h5"), "--threads", 1)
    with open(ctx.path("plan.json"), "w") as f:
        f.write("{}")
    expect_refused(ctx, ["report", ctx.path("cohort.h5"), "--plan", ctx.path("plan.json"), "--out", report],
                   ["--plan", "plan.json"], [report])


def case_cohort_unfinished_store(ctx):
    """Regression: the cohort report of a store still being written (a master over segments: the
    batch runs, or was killed) showed the committed patients as if they were the cohort."""
    ctx.ok("synth", "--patients", 3000, "--seed", 3, "--out", ctx.path("cohort"), "--quiet")
    store = ctx.path("live.h5")
    argv = [ctx.lutdose, "batch", "--tac", ctx.path("cohort", "tacs.csv"), "--patients", ctx.path("cohort", "patients.csv"),
            "--out", store, "--threads", "1", "--commit-interval-s", "0.1", "--progress", "never"]
    batch = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and batch.poll() is None and not os.path.exists(os.path.join(store + ".parts", "seg-000002.h5")):
        time.sleep(0.05)
    batch.kill()  # SIGKILL: the master over the committed segments stays
    batch.wait()
    if not os.path.isdir(store + ".parts"):
        raise Skip("the batch finished before it could be stopped")
    ctx.ok("report", store, "--out", ctx.path("live.html"))
    with open(ctx.path("live.html"), encoding="utf-8") as f:
        text = parse(f.read()).full_text()
    if "Unfinished store" not in text or "--resume" not in text:
        raise CaseFailure("the report of an unfinished store does not say so")


def case_print_shows_collapsed_tables(ctx):
    """Regression: the print CSS tried to show the collapsed cross-dose table with
    details>table{display:table}, which does not render a closed <details>' content: the printed
    report (--pdf) lacked it. Here the print rules are applied on screen (@media print -> all) and
    a script writes into the DOM whether the table is visible (checkVisibility: false inside the
    skipped content of a closed <details>)."""
    need_chromium()
    out = ctx.path("run")
    ctx.ok("run", ctx.example("snmmi-patient004"), "--out", out, "--quiet")
    ctx.ok("report", out, "--out", ctx.path("r.html"))
    with open(ctx.path("r.html"), encoding="utf-8") as f:
        page = f.read()
    if "<details" not in page or "@media print" not in page:
        raise CaseFailure("expected a collapsed table and print rules in the report")
    probe = ("<script>const t = document.querySelector('details table');"
             "document.body.setAttribute('data-visible', t ? String(t.checkVisibility()) : 'no table');</script></body>")
    with open(ctx.path("print.html"), "w", encoding="utf-8") as f:
        f.write(page.replace("@media print", "@media all").replace("</body>", probe))
    dom = rendered_dom(ctx.tmp, ctx.path("print.html"))
    visible = dom.all("body")[0].attrs.get("data-visible")
    if visible != "true":
        raise CaseFailure("with the print rules the collapsed table is not shown (checkVisibility: %s)" % visible)


def case_plot_png_again(ctx):
    """Regression: `lutdose plot --out fig.png` could not be run twice (a PNG carried no mark, so
    lutdose's own earlier figure was refused as someone else's file). A foreign PNG is still refused."""
    need_chromium()
    out = ctx.path("run")
    ctx.ok("run", ctx.example("snmmi-patient004"), "--out", out, "--quiet")
    fig = ctx.path("liver.png")
    ctx.ok("plot", out, "--voi", "liver", "--out", fig)
    ctx.ok("plot", out, "--voi", "liver", "--out", fig, "--scale", "log")
    with open(fig, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            raise CaseFailure("liver.png is not a PNG")
    theirs = ctx.path("theirs.png")
    shutil.copy(fig, theirs)
    with open(theirs, "r+b") as f:  # another program's PNG: the same bytes without lutdose's text chunk
        data = f.read().replace(b"lutdose plot", b"someone els!")
        f.seek(0)
        f.write(data)
    expect_refused(ctx, ["plot", out, "--voi", "liver", "--out", theirs], ["theirs.png", "not an earlier output"], [])


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}


def make_ctx(a, tmp):
    artifacts = os.path.abspath(a.artifacts or ".")
    os.makedirs(artifacts, exist_ok=True)
    return Ctx(os.path.abspath(a.lutdose), os.path.abspath(a.source), tmp, artifacts)


def main(argv):
    return e2e_driver.main(argv, "report", CASES, make_ctx, CaseFailure, Skip)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
