"""lutdose: patient dosimetry for 177Lu PRRT, from Python (docs/python.md).

The functions here are a thin layer over the C++ engine that the ``lutdose`` program runs: the
same options, the same checks and messages, the same numbers. Tables come back as pandas
DataFrames, vectors and matrices as numpy arrays. Units are in the names: ``time_h`` [h],
``activity_MBq`` [MBq], ``tia_MBq_h`` [MBq h], ``dose_Gy`` [Gy], ``mass_g`` [g]. A value that is
not known is NaN, never 0.

Errors: bad input raises :class:`InputError` (a ``ValueError``) with the message ``lutdose``
would print; an internal error raises ``RuntimeError``; a failed write ``OSError``.

Options keep the command line's names with ``_`` for ``-`` and its texts, e.g.
``function="E2u"``, ``error_model="constant"``, ``trapezoid_tail="fit"`` (``lutdose run --help``).
"""

import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from . import _lutdose
from ._lutdose import InputError, CandidateFit, TacFit

__version__ = _lutdose.__version__

__all__ = [
    "InputError", "FitResult", "RunResult", "Store", "fit_tac", "fit_many", "run_case", "run_tac",
    "dose", "bed", "plan", "batch", "read_store", "synth", "reference_data", "data_dir",
]


def _pandas():
    import pandas  # imported when a table is made: `import lutdose` does not need it
    return pandas


def data_dir():
    """The reference data directory the module uses: $LUTDOSE_DATA_DIR when set, else the
    installed one beside the package (<prefix>/share/lutdose), else the engine's search (the
    configured install prefix, then the source tree of the build)."""
    if os.environ.get("LUTDOSE_DATA_DIR"):
        return ""  # the engine checks and uses it
    parents = Path(__file__).resolve().parents  # <prefix>/lib/pythonX.Y/dist-packages/lutdose
    if len(parents) > 4:
        candidate = parents[4] / "share" / "lutdose"
        if (candidate / "decay" / "Lu-177.json").is_file():
            return str(candidate)
    return ""


def _frame(columns):
    return _pandas().DataFrame(columns)


def _tables(tables):
    return {name: _frame(cols) for name, cols in tables.items()}


def _population_path(population):
    """A population file's path as given, None for none; an empty path is refused as the command
    line refuses --population '' (it would read as no population at all)."""
    if not isinstance(population, (str, os.PathLike)):
        return population  # None (no population), or a value of another type the engine refuses by name
    path = os.fspath(population)
    if path == "":
        raise InputError("population is ''; expected a population file (lutdose population learn), or None for none")
    return path


def _options(options, data_dir_arg):
    opts = {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in options.items() if v is not None}
    if "population" in opts:
        opts["population"] = _population_path(opts["population"])
    opts["data_dir"] = data_dir_arg if data_dir_arg is not None else data_dir()
    return opts


def _number(value, where, name, expected="a number"):
    """`value` as a float, else an InputError naming `where` and `name` (not float()'s bare ValueError);
    a text is refused even when it reads as a number, as the other arguments of numbers refuse it."""
    try:
        if isinstance(value, (str, bytes, bool, np.bool_)):  # True is not the number 1
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {name} is '{value}'; expected {expected}, not {type(value).__name__}") from None


def _text(value, where, name):
    """`value` if it is a text, else an InputError naming `where` and `name` (not pybind11's TypeError)."""
    if not isinstance(value, str):
        raise InputError(f"{where}: {name} is '{value}'; expected a text, not {type(value).__name__}")
    return value


def _column(values, dtype=None):
    arr = np.asarray(values, dtype=dtype)
    return np.ascontiguousarray(arr.reshape(-1))


def _is_missing(v):
    """None, NaN, pandas' NA and NaT (a CSV file of the DataFrame has an empty cell there)."""
    if v is None:
        return True
    if isinstance(v, (str, bytes)):
        return False
    try:
        return bool(_pandas().isna(v))
    except (TypeError, ValueError):  # not a scalar
        return False


def _cell_text(v):
    """A value of a text column as the cell a CSV file of it holds: None, NaN, NA and NaT are
    empty, a number its shortest text (1.5 stays "1.5", so the table's checks see it), True "True"."""
    if _is_missing(v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def _texts(values):
    """A text column's cells (_cell_text); a column of texts only is taken as it is, one of whole
    numbers as their texts (pandas' infer_dtype looks at every value in C: a cohort's 10^5 names
    without a Python call each)."""
    arr = _column(values, object)
    kind = _pandas().api.types.infer_dtype(arr, skipna=False)
    if kind == "string":
        return arr.tolist()
    if kind == "integer":  # a cycle column of whole numbers: their texts without a call per cell
        try:
            return arr.astype(np.int64).astype(str).tolist()
        except OverflowError:  # beyond 64 bits: each one's text, which the table's checks refuse
            pass
    return [_cell_text(v) for v in arr]


def _tac_columns(df):
    """The TAC columns of a DataFrame or dict of columns (docs/tac-format.md), unconverted but to
    the texts of voi, patient and cycle: the engine's TAC table checks refuse what `lutdose fit`
    refuses, with its messages (a missing column too)."""
    if not hasattr(df, "__getitem__") or not hasattr(df, "__contains__") or isinstance(df, (str, bytes, os.PathLike)):
        raise InputError(f"expected a TAC table: a DataFrame or a dict of columns, not {type(df).__name__}")
    cols = {}
    for name in ("voi", "patient", "cycle"):
        if name in df:
            cols[name] = _texts(df[name])
    for name in ("time_h", "activity_MBq", "activity_u_MBq", "volume_mL", "mass_g"):
        if name in df:
            cols[name] = _numbers(df[name])
    return cols


def _numbers(values):
    """A number column as numpy: integer and float columns (also objects that are all integers or
    floats). Anything else (bools, texts, dates, durations, pandas' NA) as its cell texts, which
    the engine's checks read as `lutdose fit` reads a CSV file of it: "1_0" or True is refused by
    line, column and value, not taken as 10 or 1."""
    try:
        arr = _column(values)
    except (TypeError, ValueError):  # ragged (a list holding lists): each value's text, as a CSV cell
        return [_cell_text(v) for v in _column(values, object)]
    if arr.dtype.kind in "iuf":
        return np.ascontiguousarray(arr, dtype=float)
    if arr.dtype.kind == "O" and _pandas().api.types.infer_dtype(arr, skipna=False) in (
            "integer", "floating", "mixed-integer-float"):
        return np.ascontiguousarray(arr, dtype=float)
    return [_cell_text(v) for v in _column(values, object)]


class FitResult:
    """The fit of one TAC (as `lutdose fit` gives it).

    Attributes: ``tia_MBq_h``, ``tia_u_MBq_h`` (standard uncertainty, k = 1; NaN when unknown),
    ``tia_u_dof``, ``tia_ci95_MBq_h`` (low, high), ``function`` (the selected id, or
    "trapezoid"), ``method``, ``accepted``, ``selection`` (why), ``parameter_names``,
    ``parameters`` (numpy: A in MBq, lambda_bio in 1/h), ``covariance`` (numpy), ``candidates``
    (DataFrame, one row per candidate), ``flags`` (of the selected fit), ``notes``, ``fit`` (the
    engine's TacFit with every detail) and ``json`` (the document `lutdose fit` prints).
    """

    def __init__(self, fit, lambda_p_per_h, json_text):
        self.fit = fit
        self.lambda_p_per_h = lambda_p_per_h
        self.json = json_text
        self.tia_MBq_h = fit.tia_MBq_h
        self.tia_u_MBq_h = fit.tia_u_MBq_h
        self.tia_u_dof = fit.tia_u_dof
        self.tia_ci95_MBq_h = fit.tia_ci95_MBq_h
        self.function = fit.function
        self.method = fit.method
        self.accepted = fit.accepted
        self.selection = fit.selection
        self.notes = list(fit.notes)
        chosen = fit.candidates[fit.selected] if fit.selected >= 0 else None
        self.selected = chosen
        self.parameter_names = list(chosen.parameter_names) if chosen else []
        self.parameters = np.array(chosen.parameters) if chosen else np.array([])
        self.covariance = np.array(chosen.covariance) if chosen else np.empty((0, 0))
        self.flags = list(chosen.flags) + list(chosen.warnings) if chosen else []

    @property
    def candidates(self):
        """One row per candidate function: fitted, accepted, AICc, Akaike weight, TIA and its u."""
        rows = [{"function": c.function, "fitted": c.fitted, "accepted": c.accepted,
                 "n_parameters": c.n_parameters, "aicc": c.aicc, "akaike_weight": c.akaike_weight,
                 "r_squared": c.r_squared, "tia_MBq_h": c.tia_MBq_h, "tia_u_MBq_h": c.tia_u_MBq_h,
                 "flags": "; ".join(list(c.flags) + list(c.warnings))} for c in self.fit.candidates]
        return _frame(rows)

    def curve(self, t_h):
        """A(t) [MBq] of the selected function at times t_h [h] (numpy in, numpy out; the
        physical decay included). NaN everywhere when the result is the trapezoid fallback."""
        t = _column(t_h, float)
        if self.selected is None:
            return np.full(t.shape, np.nan)
        return np.asarray(_lutdose._curve(self.function, self.parameters, self.lambda_p_per_h, t))

    def __repr__(self):
        return (f"FitResult(function={self.function!r}, tia_MBq_h={self.tia_MBq_h:.6g}, "
                f"tia_u_MBq_h={self.tia_u_MBq_h:.3g}, accepted={self.accepted})")


def fit_tac(time_h, activity_MBq, *, activity_u_MBq=None, function="auto", functions=None,
            error_model=None, aicc_k=None, integration=None, trapezoid_head=None,
            trapezoid_body=None, trapezoid_tail=None, model_averaging=False, combined_sigma0_MBq=None,
            combined_b=None, reject_correlated=False, half_life_h=None, voi="tac", population=None,
            administered_MBq=None, data_dir=None):
    """Fits one TAC and integrates it, as `lutdose fit` does.

    time_h: times after the reference time [h], increasing. activity_MBq: activities present
    [MBq], not decay-corrected. activity_u_MBq: their standard uncertainties [MBq] (for
    error_model="input"). function: "auto" (AICc among `functions`, default E1, E2u, E2) or an id
    (E1, E1p, E2u, E2, E2b, E3u). error_model: proportional (default for organs),
    proportional-model (default for tumour VOIs), constant, combined or input. voi: the VOI name
    (tumour_*, lesion_* change the default error model; with a population, its VOI kind).
    population: a population file (`lutdose population learn`): the MAP fit with the population of
    the VOI's kind as prior, as `lutdose fit --population FILE`; it needs administered_MBq, the
    net administered activity [MBq] (as --activity-MBq), and the individual-fit options at their
    defaults (docs/population.md). Returns a :class:`FitResult`. Raises InputError with `lutdose
    fit`'s message for bad values or options.
    """
    times = _numbers(time_h)
    cols = {"voi": _texts([voi] * len(times)), "time_h": times, "activity_MBq": _numbers(activity_MBq)}
    if activity_u_MBq is not None:
        cols["activity_u_MBq"] = _numbers(activity_u_MBq)
    opts = _options(dict(function=function, functions=functions, error_model=error_model, aicc_k=aicc_k,
                         integration=integration, trapezoid_head=trapezoid_head, trapezoid_body=trapezoid_body,
                         trapezoid_tail=trapezoid_tail, model_averaging=model_averaging,
                         combined_sigma0_MBq=combined_sigma0_MBq, combined_b=combined_b,
                         reject_correlated=reject_correlated, half_life_h=half_life_h,
                         population=population, activity_MBq=administered_MBq), data_dir)
    return FitResult(*_lutdose._fit_tac(cols, opts))


def fit_many(df, *, threads=0, candidates=False, data_dir=None, **options):
    """Fits every TAC of a long DataFrame (columns patient, cycle, voi, time_h, activity_MBq;
    optional activity_u_MBq) on up to `threads` threads (0 to 256 as `lutdose batch --threads`;
    0: every core), one block of whole patients each, without the GIL.

    The options are fit_tac's (function, error_model, ...). Returns a DataFrame with one row per
    TAC in `lutdose fit --format csv`'s order, whatever `threads` (patient, cycle, voi, function, method, fit_ok, n_points, tia_MBq_h,
    tia_u_MBq_h, tia_u_dof, tia_ci95_low_MBq_h, tia_ci95_high_MBq_h; the columns of the store's
    /vois table, docs/store.md); with candidates=True a pair (vois, candidates). The TIAs are
    `lutdose fit`'s for the same table. ``fit_many.last_seconds`` holds the fit time [s],
    ``fit_many.last_threads`` the threads used (at most one per patient).
    """
    opts = _options(options, data_dir)
    tables, seconds, used = _lutdose._fit_many(_tac_columns(df), opts, threads, "DataFrame",
                                                bool(candidates))
    fit_many.last_seconds, fit_many.last_threads = seconds, used
    vois = _frame(tables["vois"])
    keep = ["patient", "cycle", "voi", "function", "method", "fit_ok", "n_points", "tia_MBq_h", "tia_u_MBq_h",
            "tia_u_dof", "tia_ci95_low_MBq_h", "tia_ci95_high_MBq_h"]
    vois = vois[keep]
    return (vois, _frame(tables["candidates"])) if candidates else vois


fit_many.last_seconds = float("nan")
fit_many.last_threads = 0


class RunResult:
    """The results of a run, as `lutdose run` writes them.

    ``vois`` (one row per VOI: fit, TIA, mass, dose), ``doses`` (one row per target: self,
    cross, total dose [Gy], its u, BED, EQD2), ``budget`` (the GUM budget terms of each VOI
    target's dose), ``candidates``, ``cumulative`` (sums over cycles), ``notes``: DataFrames with
    the columns of the results store (docs/store.md). ``to_json()``: the text of results.json;
    ``json``: it parsed; ``table``: the table `lutdose run` prints; ``csv``: results.csv.
    """

    def __init__(self, json_text, tables, table_text, csv_text):
        self._json_text = json_text
        self._tables = tables
        self.table = table_text
        self.csv = csv_text

    def to_json(self):
        """The text of results.json, byte for byte what `lutdose run` writes."""
        return self._json_text

    @property
    def json(self):
        return json.loads(self._json_text)

    def _df(self, name):
        return _frame(self._tables[name])

    vois = property(lambda self: self._df("vois"), doc="One row per VOI of each cycle.")
    doses = property(lambda self: self._df("targets"), doc="One row per dosed target of each cycle.")
    budget = property(lambda self: self._df("budget"), doc="GUM budget terms of the VOI targets' doses.")
    candidates = property(lambda self: self._df("candidates"), doc="Every candidate fit of every VOI.")
    cumulative = property(lambda self: self._df("cumulative"), doc="Doses summed over a patient's cycles.")
    notes = property(lambda self: self._df("notes"), doc="Notes and warnings of fits and dose steps.")

    def __repr__(self):
        return f"RunResult({len(self._tables['vois']['voi'])} VOIs, {len(self._tables['targets']['target'])} targets)"


DICT_CASE_NAME = "case (dict)"  # the input of run_case(dict) in results and messages


def _renamed(value, old, new):
    """`value` (texts, lists, dicts, tuples of them; other values as they are) with the text `old`
    replaced by `new`: the temporary file of a case dict by its stable name."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, (list, tuple)):
        return type(value)(_renamed(v, old, new) for v in value)
    if isinstance(value, dict):
        return {k: _renamed(v, old, new) for k, v in value.items()}
    return value


def run_case(case, *, allow_external_files=False, mc_samples=None, mc_seed=None, data_dir=None):
    """Runs a case file (docs/case-file.md) as `lutdose run CASE.json` does: quantification,
    fits, TIAs, doses with their budgets, BED. `case`: a path, or a dict with the file's content
    (written to a temporary folder first; files it names must then be absolute paths with
    allow_external_files=True; results and messages name it "case (dict)", DICT_CASE_NAME).
    mc_samples / mc_seed override the case's Monte Carlo settings.
    Returns a :class:`RunResult`."""
    dd = data_dir if data_dir is not None else globals()["data_dir"]()
    if isinstance(case, dict):
        with tempfile.TemporaryDirectory(prefix="lutdose-case-") as tmp:
            path = os.path.join(tmp, "case.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(case, f, indent=2)
            try:
                out = _lutdose._run_case(path, allow_external_files, mc_samples, mc_seed, dd)
            except InputError as e:
                raise InputError(str(e).replace(path, DICT_CASE_NAME)) from None
            return RunResult(*_renamed(out, path, DICT_CASE_NAME))
    return RunResult(*_lutdose._run_case(os.fspath(case), allow_external_files, mc_samples, mc_seed, dd))


def run_tac(tac, *, administered_MBq, phantom=None, svalues=None, body_mass_kg=None, mc_samples=None,
            mc_seed=None, data_dir=None, **options):
    """Runs a TAC table as `lutdose run --tac TAC --activity-MBq A --phantom P` does.

    tac: a path to a TAC table (read as the program reads it: the results.json is then the
    program's, byte for byte) or a DataFrame with its columns (voi, time_h, activity_MBq;
    optional patient, cycle, activity_u_MBq, volume_mL, mass_g). administered_MBq: net administered activity
    [MBq]. phantom: icrp110-am, icrp110-af, icrp89-male, icrp89-female (or svalues: a user
    S-value table). The other options are `lutdose run`'s (function, error_model,
    tumour_method, mass_scaling, ...). Returns a :class:`RunResult`."""
    opts = dict(options, activity_MBq=administered_MBq, phantom=phantom, svalues=svalues,
                body_mass_kg=body_mass_kg)
    opts = _options(opts, data_dir)
    if isinstance(tac, (str, os.PathLike)):
        return RunResult(*_lutdose._run_tac(None, os.fspath(tac), opts, mc_samples, mc_seed))
    return RunResult(*_lutdose._run_tac(_tac_columns(tac), "DataFrame", opts, mc_samples, mc_seed))


class Store:
    """A results store (docs/store.md) read into DataFrames: ``patients``, ``vois``,
    ``candidates``, ``targets``, ``budget``, ``cumulative``, ``failures``, ``notes``,
    ``points`` (the TAC points each VOI was fitted from; empty for a store older than format 6),
    ``population`` (the population models of population kinetics; empty without),
    ``population_omega`` (their Omega's elements; empty without, and for a store older than
    format 5, whose format-5 ``population`` columns are None); ``header``
    (version, kind, provenance JSON, fingerprint, cohort, shard)."""

    def __init__(self, header, tables):
        self.header = header
        self.tables = _tables(tables)
        for name, df in self.tables.items():
            setattr(self, name, df)

    def __repr__(self):
        return f"Store({len(self.patients)} patient-cycles, {len(self.vois)} VOIs, {len(self.failures)} failures)"


def read_store(path):
    """Reads a results store (results.h5 of `lutdose run`, or a `lutdose batch` store) into a
    :class:`Store` of DataFrames, with the engine's reader (the rows `lutdose export` writes)."""
    return Store(*_lutdose._read_store(os.fspath(path)))


def batch(cases_dir=None, *, out, tac=None, patients=None, threads=0, resume=False, shard="1/1",
          allow_external_files=False, mc_samples=None, mc_seed=None, data_dir=None, **options):
    """Runs `lutdose batch`: every case file of `cases_dir`, or the TAC table `tac` with the
    patients table `patients` (docs/batch.md), into the store `out` (new, or the one to
    resume), on `threads` threads (0: every core) without the GIL. Options are `lutdose batch`'s
    fit and dose options with TAC tables; with case files only ``kinetics`` and ``population``,
    and with ``kinetics="population"`` the learning's ``functions``, ``error_model``, ``omega``,
    ``e_step`` and ``max_iterations``, or ``model`` and ``free_parameters`` for a compartment
    population (the others belong in the case files: InputError). A population file in `cases_dir` is
    left out with a warning (UserWarning) naming it. Returns (progress counts dict,
    :class:`Store`)."""
    for name, value in (("cases_dir", cases_dir), ("tac", tac), ("patients", patients)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise InputError(f"batch: {name} is a {type(value).__name__}; expected a path to a "
                             f"{'folder of case files' if name == 'cases_dir' else name.replace('tac', 'TAC') + ' table'} "
                             "(a DataFrame: write it with to_csv first)")
    opts = _options(options, data_dir)
    if allow_external_files:
        opts["allow_external_files"] = True
    progress = _lutdose._batch(os.fspath(cases_dir) if cases_dir else "", os.fspath(tac) if tac else "",
                               os.fspath(patients) if patients else "", os.fspath(out), threads, resume, shard,
                               opts, mc_samples, mc_seed)
    for note in progress.pop("notes"):  # population files in the folder, VOIs a learned population's model
        # does not observe: left out, not silently
        warnings.warn(note, stacklevel=2)
    return progress, read_store(out)


class Cohort:
    """A synthetic cohort (docs/synth.md): ``tacs`` and ``patients`` (tables format) or
    ``cases`` ({name: case-file dict}, cases format), ``truth`` (true TIA [MBq h] and dose [Gy]
    per patient, cycle, VOI) as DataFrames, ``synth`` (seed, options, data versions) and
    ``files`` ({name: text}, what `lutdose synth` writes)."""

    def __init__(self, files):
        pd = _pandas()
        self.files = files
        read = lambda name: pd.read_csv(io.StringIO(files[name]), comment="#", float_precision="round_trip") if name in files else None
        self.tacs = read("tacs.csv")
        self.patients = read("patients.csv")
        self.truth = read("truth.csv")
        self.synth = json.loads(files["synth.json"]) if "synth.json" in files else None
        self.cases = {n: json.loads(t) for n, t in files.items() if n.startswith("case-")}


def synth(n_patients, *, seed=0, out=None, times_h=None, cycles=None, administered_MBq=None, phantom=None,
          vois=None, noise=None, cv_fraction=None, cv_clearance=None, cv_mass=None, population_kinetics=None,
          tumour_mass_g=None, format=None, cf_cps_per_MBq=None, frame_min=None, dead_time_us=None, recovery=None,
          data_dir=None):
    """A seeded synthetic cohort with known truth, as `lutdose synth` makes it (docs/synth.md).

    n_patients, seed; times_h [h]; cycles; administered_MBq [MBq per cycle]; phantom; vois;
    noise: {"organ": "proportional:0.1", "tumour": "proportional:0.15"} (KIND: SPEC as --noise);
    ("poisson:CF:T" for counting noise); cv_fraction, cv_clearance; cv_mass: {"organ": 0.2}
    (KIND: CV as --cv-mass); population_kinetics: a population file (needed for a whole_body VOI);
    tumour_mass_g [g]; format "tables" or "cases"; cf_cps_per_MBq,
    frame_min, dead_time_us, recovery [(V_mL, RC), ...] for counts. When `out` is given, the
    files are written there as `lutdose synth --out` writes them. Returns a :class:`Cohort`."""
    kw = dict(n_patients=n_patients, seed=seed, times_h=times_h, cycles=cycles, administered_MBq=administered_MBq,
              phantom=phantom, vois=vois, noise=noise, cv_fraction=cv_fraction, cv_clearance=cv_clearance,
              cv_mass=cv_mass, population_kinetics=os.fspath(population_kinetics) if population_kinetics else None,
              tumour_mass_g=tumour_mass_g, format=format, cf_cps_per_MBq=cf_cps_per_MBq, frame_min=frame_min,
              dead_time_us=dead_time_us, recovery=recovery)
    kw = _options(kw, data_dir)
    return Cohort(_lutdose._synth(kw, os.fspath(out) if out else ""))


def reference_data(data_dir=None):
    """The reference data the engine uses, as DataFrames: ``phantoms`` (name, description,
    body_mass_g), ``masses`` (target region masses [g]), ``svalues`` (phantom, target, source,
    s_mGy_per_MBq_s, s_u_mGy_per_MBq_s), ``voi_map`` (VOI names to regions), ``tissues``
    (alpha/beta [Gy], repair half-time [h]), ``limits`` (organ-at-risk limits [Gy]); and
    ``data_dir``. Returned as a dict."""
    d = _lutdose._reference_data(data_dir if data_dir is not None else globals()["data_dir"]())
    out = {name: _frame(cols) for name, cols in d.items() if isinstance(cols, dict)}
    out["data_dir"] = d["data_dir"]
    return out


class DoseResult:
    """Doses of one cycle from TIAs: ``doses`` (one row per target: self, cross and total dose
    [Gy], u (k = 1), dof, 95 % interval, Gy/GBq), ``budget`` (the GUM budget terms [Gy] of each
    VOI target), ``notes`` and ``remainder_tia_MBq_h``."""

    def __init__(self, doses, budget, notes, remainder_tia_MBq_h):
        self.doses = _frame(doses)
        self.budget = _frame(budget)
        self.notes = list(notes)
        self.remainder_tia_MBq_h = remainder_tia_MBq_h


def _by_voi(values, vois, default, name):
    """The values of `name` in the order of `vois` (a dict or Series by VOI, or a list), as floats."""
    if values is None:
        return [default] * len(vois)
    if isinstance(values, dict) or hasattr(values, "to_dict"):
        values = dict(values)
        return [_number(values.get(v, default), "dose", f"{name} of {v}") for v in vois]
    return [_number(x, "dose", name) for x in values]


def dose(tia_MBq_h, *, phantom=None, tia_u_MBq_h=None, mass_g=None, administered_MBq=float("nan"), svalues=None,
         body_mass_kg=None, tumour_method=None, sphere_composition=None, density_g_per_mL=None, mass_scaling=None,
         cross_scaling=None, data_dir=None):
    """The MIRD dose step alone: TIAs [MBq h] of the VOIs of one cycle to the absorbed dose [Gy] of
    every target, with its GUM budget, as `lutdose run` computes it after the fits.

    tia_MBq_h: {voi: TIA} (dict or pandas Series). tia_u_MBq_h: {voi: u} [MBq h] (default
    unknown, NaN: the dose's u is then NaN). mass_g: {voi: mass} [g] (default: the phantom's;
    tumours need one). phantom: icrp110-am, icrp110-af, icrp89-male, icrp89-female (or svalues: a
    user table). administered_MBq: for Gy/GBq. Other options as `lutdose run --tac`.
    Returns a :class:`DoseResult`."""
    vois = [_text(v, "dose", "VOI of tia_MBq_h") for v in dict(tia_MBq_h).keys()]
    for name, values in (("tia_u_MBq_h", tia_u_MBq_h), ("mass_g", mass_g)):
        extra = [v for v in dict(values or {}) if v not in vois] if isinstance(values, dict) or hasattr(values, "to_dict") else []
        if extra:
            raise InputError(f"dose: {name} names '{extra[0]}'; expected a VOI of tia_MBq_h ({', '.join(map(str, vois))})")
    opts = {k: v for k, v in dict(phantom=phantom, svalues=svalues, body_mass_kg=body_mass_kg,
                                   tumour_method=tumour_method, sphere_composition=sphere_composition,
                                   density_g_per_mL=density_g_per_mL, mass_scaling=mass_scaling,
                                   cross_scaling=cross_scaling).items() if v is not None}
    opts["data_dir"] = data_dir if data_dir is not None else globals()["data_dir"]()
    nan = float("nan")
    return DoseResult(*_lutdose._dose(vois, _by_voi(tia_MBq_h, vois, nan, "tia_MBq_h"),
                                      _by_voi(tia_u_MBq_h, vois, nan, "tia_u_MBq_h"), _by_voi(mass_g, vois, nan, "mass_g"),
                                      _number(administered_MBq, "dose", "administered_MBq"), opts))


def bed(dose_Gy=None, *, t_eff_h=None, a_Gy_per_h=None, lambda_per_h=None, target=None, alpha_beta_Gy=None,
        repair_half_time_h=None, data_dir=None):
    """BED and EQD2 [Gy] of a dose delivered by an exponential dose rate (methods.md §8, closed form).

    Either dose_Gy [Gy] with t_eff_h [h] (a mono-exponential dose rate with that effective
    half-life), or the dose rate's terms a_Gy_per_h [Gy/h] and lambda_per_h [1/h]. The tissue:
    `target` (a name of the tissue table, e.g. "kidney_left") and/or alpha_beta_Gy [Gy] and
    repair_half_time_h [h]. Returns a dict: dose_Gy, g (Lea-Catcheside), bed_Gy, eqd2_Gy and the
    tissue parameters used."""
    dose_Gy, t_eff_h, alpha_beta_Gy, repair_half_time_h = (
        None if v is None else _number(v, "bed", name) for v, name in
        ((dose_Gy, "dose_Gy"), (t_eff_h, "t_eff_h"), (alpha_beta_Gy, "alpha_beta_Gy"), (repair_half_time_h, "repair_half_time_h")))
    if a_Gy_per_h is not None:
        a_Gy_per_h = [_number(a, "bed", "a_Gy_per_h") for a in np.atleast_1d(a_Gy_per_h)]
    if lambda_per_h is not None:
        lambda_per_h = [_number(x, "bed", "lambda_per_h") for x in np.atleast_1d(lambda_per_h)]
    if dose_Gy is None and a_Gy_per_h is None:
        raise InputError("bed: no dose given; give dose_Gy and t_eff_h, or a_Gy_per_h and lambda_per_h")
    if dose_Gy is not None:
        if not float(dose_Gy) >= 0 or not np.isfinite(float(dose_Gy)):
            raise InputError(f"bed: dose_Gy is '{float(dose_Gy):.10g}'; expected the absorbed dose, a finite number >= 0 [Gy]")
        if t_eff_h is None or a_Gy_per_h is not None:
            raise InputError("bed: dose_Gy needs t_eff_h (and no a_Gy_per_h); or give a_Gy_per_h and lambda_per_h")
        if not float(t_eff_h) > 0 or not np.isfinite(float(t_eff_h)):
            raise InputError(f"bed: t_eff_h is {t_eff_h}; expected the effective half-life, a number > 0 [h]")
        lam = np.log(2) / float(t_eff_h)
        a_Gy_per_h, lambda_per_h = [float(dose_Gy) * lam], [lam]
    nan = float("nan")
    return _lutdose._bed([float(a) for a in np.atleast_1d(a_Gy_per_h)], [float(x) for x in np.atleast_1d(lambda_per_h)],
                         "" if target is None else _text(target, "bed", "target"),
                         nan if alpha_beta_Gy is None else float(alpha_beta_Gy),
                         nan if repair_half_time_h is None else float(repair_half_time_h),
                         data_dir if data_dir is not None else globals()["data_dir"]())


def plan(case=None, *, history=None, strategy=None, prediction=None, planned_cycles=None, a_min_MBq=None,
         a_max_MBq=None, a_standard_MBq=None, safety_k=None, prediction_cv=None, limits=None,
         allow_incomplete=False, allow_external_files=False, data_dir=None, population=None):
    """The next-cycle prescription, as `lutdose plan` computes it (docs/plan.md).

    case: a case file (its cycles are run first, its "plan" block gives the options), or
    history: a dose history CSV (cycle, administered_MBq, target, dose_Gy; optional bed_Gy, g,
    t_eff_h, incomplete). strategy: equal-split, fixed-until-limit or max-bed; prediction:
    previous, mean or bayes; a_*_MBq [MBq]; limits: ["kidney*:bed_Gy:28", ...] (one limit may be
    given as a text alone: "kidney*:bed_Gy:28"); population: a
    population file (with a case: its VOIs by MAP with it as prior, as --population). Returns the plan
    document (dict): next_cycle, activity_MBq [MBq], binding limit, targets, reasoning, ...
    ``plan.last_json`` holds its text, byte for byte what `lutdose plan` prints."""
    kw = dict(case=os.fspath(case) if case is not None else None,
              history=os.fspath(history) if history is not None else None, strategy=strategy,
              prediction=prediction, planned_cycles=planned_cycles, a_min_MBq=a_min_MBq, a_max_MBq=a_max_MBq,
              a_standard_MBq=a_standard_MBq, safety_k=safety_k, prediction_cv=prediction_cv,
              limits=[limits] if isinstance(limits, str) else limits,  # one limit as a text: a list of it
              allow_incomplete=allow_incomplete, allow_external_files=allow_external_files,
              population=_population_path(population),
              data_dir=data_dir if data_dir is not None else globals()["data_dir"]())
    text = _lutdose._plan({k: v for k, v in kw.items() if v is not None})
    plan.last_json = text
    return json.loads(text)


plan.last_json = ""
