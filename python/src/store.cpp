// Bindings of cohorts (docs/python.md): read_store (a results store's tables), batch (lutdose
// batch into a store) and synth (a seeded synthetic cohort), with the engine calls of the CLI.
#include <pybind11/stl.h>

#include <algorithm>
#include <type_traits>

#include "bindings.h"
#include "convert.h"
#include "lutdose/cohort/batch.h"
#include "lutdose/cohort/synth.h"
#include "lutdose/error.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/store.h"
#include "lutdose/version.h"

namespace lutdose_py {

namespace {

// The header and every table of the store at `path` (read in slices, as lutdose export does).
py::tuple read_store(const std::string& path) {
  lutdose::StoreRows rows;
  lutdose::StoreIndex index;
  {
    py::gil_scoped_release release;
    index = lutdose::read_store_index(path, lutdose::StoreVersions::readable);
    lutdose::for_each_store_chunk(
        path,
        [&rows](const lutdose::StoreRows& chunk) {
          auto copy = chunk;
          rows.append(std::move(copy));
        },
        lutdose::StoreVersions::readable);
  }
  const auto& h = index.header;
  py::dict header;
  header["lutdose_version"] = h.lutdose_version;
  header["kind"] = h.kind;
  header["provenance"] = h.provenance_json;
  header["fingerprint"] = h.fingerprint;
  header["cohort"] = h.cohort;
  header["shard"] = h.shard;
  header["cohort_patients"] = h.cohort_patients;
  header["consolidated"] = index.consolidated;
  py::dict tables = tables_of(rows);
  tables["population"] = population_table(h.population);
  tables["population_omega"] = population_omega_table(h.population_omega);
  return py::make_tuple(header, tables);
}

// The command-line spelling of a Python option name (error_model: error-model).
std::string cli_option_name(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

// The cohort of `lutdose batch`: a folder of case files, or a TAC table with a patients table.
lutdose::BatchCohort cohort_of(const std::string& cases_dir, const std::string& tac, const std::string& patients,
                               const py::dict& options, const py::object& mc_samples, const py::object& mc_seed) {
  lutdose::BatchCohort c;
  const long long samples = mc_samples.is_none() ? 0 : whole_number(mc_samples, "batch", "mc_samples");
  const long long seed = mc_seed.is_none() ? 0 : whole_number(mc_seed, "batch", "mc_seed");
  lutdose_cli::throw_problems(lutdose::validate_monte_carlo(samples, seed));
  if (cases_dir.empty() == tac.empty())
    throw lutdose::InputError("command line: expected either a folder of case files (lutdose batch CASES_DIR --out "
                              "STORE.h5) or --tac TACS.csv --patients PATIENTS.csv");
  if (!cases_dir.empty()) {
    c.kind = lutdose::BatchCohort::Kind::case_files;
    c.cases_dir = cases_dir;
    take(options, "allow_external_files", c.allow_external_files, "batch");
    if (!mc_samples.is_none()) c.mc_samples = static_cast<int>(samples);
    if (!mc_seed.is_none()) c.mc_seed = static_cast<unsigned long long>(seed);
    py::dict kinetics_options;  // as lutdose batch CASES_DIR: only --kinetics and --population apply
    for (const auto& item : options) {
      const auto key = cast_argument<std::string>(item.first, "batch", "option name");
      const bool learning = key == "omega" || key == "e_step" || key == "max_iterations" ||  // kinetics="population": the learning's
                            key == "free_parameters" ||
                            ((key == "functions" || key == "error_model" || key == "model") &&
                             options.contains("kinetics") && py::str(options["kinetics"]).cast<std::string>() == "population");
      if (key == "kinetics" || key == "population" || key == "data_dir" || learning)
        kinetics_options[item.first] = item.second;
      else if (key != "allow_external_files") lutdose_cli::throw_option_with_case_files("--" + cli_option_name(key));
    }
    lutdose_cli::set_case_cohort_population(fit_args_from(kinetics_options), c);
    return c;
  }
  if (patients.empty()) lutdose::throw_input_error("command line", "--patients", "missing", "the patients table with --tac");
  py::dict fit_options;
  std::string svalues;  // --svalues FILE: one user S-value table for every patient
  for (const auto& item : options) {
    const auto key = cast_argument<std::string>(item.first, "batch", "option name");
    if (key == "phantom" || key == "body_mass_kg" || key == "activity_MBq")  // lutdose batch --tac has none
      throw py::type_error("batch: unexpected option '" + key +
                           "' (with tac= each patient's is a column of the patients table, docs/batch.md)");
    if (key == "svalues") take(options, "svalues", svalues, "batch");
    else if (key != "allow_external_files") fit_options[item.first] = item.second;
  }
  std::vector<std::string> problems;
  c.kind = lutdose::BatchCohort::Kind::tac_tables;
  c.tac_path = tac;
  c.patients_path = patients;
  const auto fit = fit_args_from(fit_options);
  c.options = lutdose_cli::make_run_options(fit, problems);
  c.learn_population = fit.kinetics == "population";  // as lutdose batch --tac --kinetics population
  c.options.dose = lutdose_cli::make_dose_options(dose_args_from(fit_options), c.options, problems);
  if (!svalues.empty()) lutdose_cli::use_user_svalues(*c.options.dose, svalues);
  if (!mc_samples.is_none()) c.options.mc_samples = static_cast<int>(samples);
  if (!mc_seed.is_none()) c.options.mc_seed = static_cast<unsigned long long>(seed);
  lutdose_cli::finish_run_options(c.options, problems);
  return c;
}

// lutdose batch: runs the cohort into the store `out`; returns the final progress counts.
py::dict batch(const std::string& cases_dir, const std::string& tac, const std::string& patients,
               const std::string& out, const py::object& threads, const py::object& resume_flag,
               const py::object& shard_text, const py::dict& options, const py::object& mc_samples,
               const py::object& mc_seed) {
  const unsigned checked_threads = threads_of(threads, "batch");  // before anything is read, as the CLI
  const bool resume = cast_argument<bool>(resume_flag, "batch", "resume");
  const auto shard = cast_argument<std::string>(shard_text, "batch", "shard");
  const auto cohort = cohort_of(cases_dir, tac, patients, options, mc_samples, mc_seed);
  // population files left out of the folder, VOIs a compartment model does not observe left out of the
  // population it learns (lutdose batch prints them)
  std::vector<std::string> notes;
  if (!cases_dir.empty()) lutdose::batch_case_files(cases_dir, &notes);
  std::string given_dir;
  take(options, "data_dir", given_dir, "batch");
  const std::string dir = data_dir_of(given_dir);
  lutdose::BatchOptions o;
  o.store_path = out;
  o.threads = checked_threads;
  o.resume = resume;
  std::tie(o.shard_index, o.shard_count) = lutdose::parse_shard(shard);
  lutdose::BatchProgress p;
  std::atomic<bool> stop{false};
  o.stop = &stop;  // Ctrl-C: the batch stops at its next commit, resumable (docs/batch.md)
  o.note = [&notes](const std::string& n) { notes.push_back(n); };  // the learning's: warnings, as lutdose batch prints them
  const auto& ref = reference_of(dir);
  run_interruptible([&] { p = lutdose::run_batch(cohort, ref, o); }, stop);
  py::dict d;
  d["total"] = p.total;
  d["committed"] = p.committed;
  d["resumed"] = p.resumed;
  d["done"] = p.done;
  d["failed"] = p.failed;
  d["patient_cycles"] = p.patient_cycles;
  d["cycles_flagged"] = p.cycles_flagged;
  d["maps_used"] = p.maps_used;
  d["maps_not_used"] = p.maps_not_used;
  d["elapsed_s"] = p.elapsed_s;
  d["notes"] = notes;
  return d;
}

// SynthOptions from the module's keywords (the fields of lutdose::SynthOptions).
lutdose::SynthOptions synth_options(const py::dict& k) {
  lutdose::SynthOptions o;
  take(k, "n_patients", o.n_patients, "synth");
  long long seed = 0;
  take(k, "seed", seed, "synth");
  if (seed < 0) lutdose::throw_input_error("command line", "--seed", std::to_string(seed), "a whole number >= 0");
  o.seed = static_cast<unsigned long long>(seed);
  take(k, "times_h", o.times_h, "synth");
  take(k, "cycles", o.cycles, "synth");
  take(k, "administered_MBq", o.administered_MBq, "synth");
  take(k, "phantom", o.phantom, "synth");
  take(k, "vois", o.vois, "synth");
  take(k, "cv_fraction", o.cv_fraction, "synth");
  take(k, "cv_clearance", o.cv_clearance, "synth");
  take(k, "tumour_mass_g", o.tumour_mass_g, "synth");
  take(k, "cv_mass", o.cv_mass, "synth");
  take(k, "population_kinetics", o.population_kinetics_path, "synth");
  take(k, "format", o.format, "synth");
  take(k, "cf_cps_per_MBq", o.cf_cps_per_MBq, "synth");
  take(k, "frame_min", o.frame_min, "synth");
  take(k, "dead_time_us", o.dead_time_us, "synth");
  std::map<std::string, std::string> noise;
  take(k, "noise", noise, "synth");
  for (const auto& [kind, spec] : noise) o.noise[kind] = lutdose::parse_synth_noise("--noise " + kind + "=" + spec, spec);
  std::vector<std::pair<double, double>> recovery;
  take(k, "recovery", recovery, "synth");
  for (const auto& [v, rc] : recovery) {
    o.recovery.volume_mL.push_back(v);
    o.recovery.rc.push_back(rc);
  }
  std::string dir;
  take(k, "data_dir", dir, "synth");
  o.data_dir = data_dir_of(dir);
  return o;
}

// lutdose synth: the cohort's files {name: text}; written to `out` as a result set when not empty.
py::dict synth(const py::dict& keywords, const std::string& out) {
  if (!out.empty()) lutdose::check_output_dir(out, lutdose::ResultKind::synth);
  const auto o = synth_options(keywords);
  std::vector<lutdose::OutputFile> files;
  {
    const auto& ref = reference_of(o.data_dir);
    py::gil_scoped_release release;
    const auto model = lutdose::make_synth_model(ref, o);
    files = lutdose::synth_cohort_files(model, LUTDOSE_VERSION);
    if (!out.empty()) lutdose::write_output_files(out, lutdose::ResultKind::synth, files, LUTDOSE_VERSION);
  }
  py::dict d;
  for (const auto& f : files) d[py::str(f.name)] = py::str(f.bytes);
  return d;
}

}  // namespace

void bind_store(py::module_& m) {
  m.def("_read_store", &read_store, py::arg("path"));
  m.def("_batch", &batch, py::arg("cases_dir"), py::arg("tac"), py::arg("patients"), py::arg("out"),
        py::arg("threads"), py::arg("resume"), py::arg("shard"), py::arg("options"), py::arg("mc_samples"),
        py::arg("mc_seed"));
  m.def("_synth", &synth, py::arg("keywords"), py::arg("out"));
}

}  // namespace lutdose_py
