// A cohort of case files (cohort/batch.h): every *.json of a folder but lutdose's own files.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "batch_input.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/error.h"
#include "lutdose/io/case_file.h"
#include "lutdose/io/input_file.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/population_file.h"
#include "lutdose/io/run_files.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/version.h"

namespace lutdose {

namespace {

// A name batch_case_files lists (before the check of its content): "*.json" but lutdose's own files.
bool listed_as_case_file(const std::string& name) {
  const auto& own = result_set_names();  // manifest.json, synth.json
  return name.size() >= 6 && name.compare(name.size() - 5, 5, ".json") == 0 &&
         std::find(own.begin(), own.end(), name) == own.end();
}

// The file at `path` is a population file (is_population_file_text); false when it cannot be read.
bool is_population_file_at(const std::string& path) {
  try {
    return is_population_file_text(read_input_file(path, "case file", true));
  } catch (const InputError&) {
    return false;  // a case file that cannot be read: its error is given when it is loaded
  }
}

}  // namespace

std::vector<std::string> batch_case_files(const std::string& dir, std::vector<std::string>* left_out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw_input_error("command line", "CASES_DIR", dir, "a folder of case files (*.json)");
  std::vector<std::string> names;
  fs::directory_iterator it(dir, ec), end;
  if (ec) throw InputError(dir + ": cannot read the folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!listed_as_case_file(name) || it->is_directory(ec)) continue;
    names.push_back(name);
  }
  if (ec) throw InputError(dir + ": cannot read the folder: " + ec.message());
  std::sort(names.begin(), names.end());
  std::vector<std::string> cases;
  for (auto& name : names) {
    if (!is_population_file_at(dir + "/" + name)) {
      cases.push_back(std::move(name));
    } else if (left_out) {
      left_out->push_back(dir + "/" + name + ": a population file (format " + POPULATION_FORMAT +
                          "), not a case file: left out");
    }
  }
  return cases;
}

void check_outside_case_folder(const std::string& path, const std::string& dir, const std::string& option) {
  namespace fs = std::filesystem;
  std::error_code ec, ec_dir;
  const fs::path file = fs::absolute(path, ec);
  const fs::path folder = fs::weakly_canonical(file.parent_path(), ec), cases = fs::weakly_canonical(dir, ec_dir);
  if (ec || ec_dir || folder != cases || !listed_as_case_file(file.filename().string())) return;
  throw_input_error("command line", option, path,
                    "a file not directly in the folder of case files " + dir + " being learned from: a *.json file directly "
                    "in it is read as a case file by lutdose batch and population learn of the folder (write it "
                    "beside the folder or in a subfolder of it)");
}

namespace batch_detail {

namespace {

std::string stem_of(const std::string& name) { return name.substr(0, name.size() - 5); }

// The cohort's --kinetics override, when given.
void set_kinetics(FitOptions& fit, const std::optional<Kinetics>& kinetics) {
  if (kinetics) fit.kinetics = *kinetics;
}

// The patient key of a loaded case: its id, else the file's stem.
std::string key_of(const CaseFile& c, const std::string& name) {
  return c.patient_id.empty() ? stem_of(name) : c.patient_id;
}

// The SHA-256 of what a case is computed from: its case file and the files it names
// (dose.svalues, fit.model, fit.population; with their fields), or, without such files, the case
// file's own SHA-256 (as in lutdose <= 0.12, whose stores' cohorts stay resumable). A named file that cannot
// be read counts as "unreadable" (the case then fails when it is run, with the reason).
std::string case_inputs_sha256(const CaseFile& c) {
  if (c.named_files.empty()) return c.sha256;
  std::string list = c.sha256 + "\n";
  for (const auto& [field, path] : c.named_files) {
    std::string sha;
    try {
      sha = sha256_hex(read_input_file(path, field, true));
    } catch (const InputError&) {
      sha = "unreadable";
    }
    list += field + "\t" + sha + "\n";
  }
  return sha256_hex(list);
}

// The listing's SHA-256 of the case file `path`: case_inputs_sha256 of the case, or, for a case
// file that does not load, of its bytes ("unreadable" when it cannot be read); the item fails when
// it is run, with the reason.
std::string listed_sha256(const std::string& path, bool allow_external_files) {
  try {
    return case_inputs_sha256(load_case_file(path, allow_external_files));
  } catch (const std::exception&) {  // the reason is given when the item is run
  }
  try {
    return sha256_hex(read_input_file(path, "case file", true));
  } catch (const InputError&) {
    return "unreadable";
  }
}

class CaseItem : public BatchItem {
 public:
  CaseItem(const BatchCohort& cohort, std::string name, std::string planned_sha256)
      : cohort_(cohort), name_(std::move(name)), planned_sha256_(std::move(planned_sha256)) {}

  StoreRows compute(const ReferenceData& ref) const override {
    std::string patient = stem_of(name_);
    return guarded_rows([&] { return patient; }, name_, [&] {
      auto c = load_case_file(cohort_.cases_dir + "/" + name_, cohort_.allow_external_files);
      set_kinetics(c.fit, cohort_.kinetics);
      patient = key_of(c, name_);
      if (case_inputs_sha256(c) != planned_sha256_)
        throw InputError(name_ + ": the file or a file it names (dose.svalues, fit.model, fit.population) changed "
                                 "during the batch (its SHA-256 differs from the one recorded in the store's cohort); "
                                 "expected case files and their files that stay as they are");
      RunOptions o = run_options_from_case(use_cohort_population(c), ref, cohort_.mc_samples, cohort_.mc_seed);
      if (learned()) use_learned(o);  // --kinetics population: the population learned from the folder
      read_run_files(o, ref);
      check_cohort_population(o);
      return store_rows(run_case(c, o, ref), name_, c.sha256);
    });
  }

 private:
  // --kinetics population: the cohort's population is learned, not read from a file.
  bool learned() const {
    const auto& co = cohort_.options;
    return (co.population || co.compartment_population) && co.population_source.path.empty();
  }

  // The learned population into the case's options: a compartment population with its model, unless the
  // case names a model (fit.model), which read_run_files then checks against the population's.
  void use_learned(RunOptions& o) const {
    const auto& co = cohort_.options;
    o.population = co.population;
    o.population_source = co.population_source;
    o.compartment_population = co.compartment_population;
    if (!co.compartment_population || !o.compartment_model.empty()) return;
    o.compartment_model = co.compartment_model;
    o.compartment_model_file = co.compartment_model_file;
  }

  // The case with the cohort's population: --population FILE (use_case_population: the case's
  // own file must have the same bytes), or the learned one (the case may name none).
  CaseFile& use_cohort_population(CaseFile& c) const {
    if (learned()) {
      if (!c.population_file.empty())
        throw_input_error(name_, "fit.population", c.population_file,
                          "no population file with --kinetics population (the population is learned from the "
                          "folder's case files; choose one)");
      check_case_fit_options(c, "the population learned by --kinetics population");
    }
    use_case_population(c, cohort_.options.population_source.path, cohort_.kinetics);
    return c;
  }

  // The population file read for the case has the bytes of the cohort's (--population FILE, read
  // before the batch and recorded in the store's fingerprint).
  void check_cohort_population(const RunOptions& o) const {
    if (cohort_.options.population_source.path.empty()) return;  // none, or learned
    if (o.population_source.sha256 != cohort_.options.population_source.sha256)
      throw InputError(name_ + ": the population file " + o.population_source.path + " has the SHA-256 " +
                       o.population_source.sha256 + "; expected " + cohort_.options.population_source.sha256 +
                       ", that of --population " + cohort_.options.population_source.path +
                       " when the batch started (the file changed during the batch?)");
  }

  const BatchCohort& cohort_;
  std::string name_, planned_sha256_;
};

class CaseInput : public BatchInput {
 public:
  CaseInput(const BatchCohort& cohort, const ReferenceData& ref) : cohort_(cohort), ref_(ref) {
    names_ = batch_case_files(cohort.cases_dir);
    if (names_.empty())
      throw InputError(cohort.cases_dir + ": no case files (*.json, other than lutdose's own " +
                       "manifest.json and synth.json, and population files); expected a folder of case files");
    std::string list;
    for (const auto& name : names_) {
      std::string sha = listed_sha256(cohort.cases_dir + "/" + name, cohort.allow_external_files);
      list += name + "\t" + sha + "\n";
      sha256_.push_back(std::move(sha));
    }
    nlohmann::ordered_json j;
    j["input"] = "case-files";
    j["case_files"] = names_.size();
    j["list_sha256"] = sha256_hex(list);
    cohort_text_ = j.dump();
  }
  std::size_t size() const override { return names_.size(); }
  std::string cohort() const override { return cohort_text_; }
  Provenance provenance() const override {
    Provenance p;
    p.lutdose_version = LUTDOSE_VERSION;
    p.options.input_kind = InputKind::case_file;
    p.options.data_dir = ref_.data_dir();
    if (cohort_.mc_samples >= 0) p.options.mc_samples = cohort_.mc_samples;
    if (cohort_.mc_seed > 0) p.options.mc_seed = cohort_.mc_seed;
    set_kinetics(p.options.fit, cohort_.kinetics);
    // --population FILE or --kinetics population: the population every case uses (its source and
    // models go into the store's provenance, fingerprint and /population table)
    p.options.population = cohort_.options.population;
    p.options.compartment_population = cohort_.options.compartment_population;
    p.options.population_source = cohort_.options.population_source;
    p.nuclide = ref_.nuclide(p.options.nuclide);
    p.tissue_file = ref_.tissue().path;
    return p;
  }
  std::string patient_of(std::size_t i) override {
    try {
      return key_of(load_case_file(cohort_.cases_dir + "/" + names_.at(i), cohort_.allow_external_files), names_[i]);
    } catch (const std::exception&) {
      return stem_of(names_.at(i));
    }
  }
  void seek(std::size_t i) override { next_ = i; }
  std::unique_ptr<BatchItem> read() override {
    const std::size_t i = next_++;
    return std::make_unique<CaseItem>(cohort_, names_.at(i), sha256_.at(i));
  }

 private:
  const BatchCohort& cohort_;
  const ReferenceData& ref_;
  std::vector<std::string> names_, sha256_;
  std::string cohort_text_;
  std::size_t next_ = 0;
};

}  // namespace

std::unique_ptr<BatchInput> open_case_input(const BatchCohort& cohort, const ReferenceData& reference) {
  return std::make_unique<CaseInput>(cohort, reference);
}

void learn_cases_population(BatchCohort& cohort, const ReferenceData& reference, unsigned threads,
                            std::vector<std::string>& notes) {
  // the TACs as population learn CASES_DIR reads them, with the half-life of the reference data's Lu-177
  // (batch refuses --half-life-h with case files); learned as batch --tac --kinetics population learns
  cohort.options.data_dir = reference.data_dir();
  cohort.options.half_life_override_h = 0;
  auto cases = read_case_folder_tacs(cohort.cases_dir, reference.data_dir(), 0, cohort.allow_external_files);
  use_learned_population(cohort.options, cases.series, cases.administered_MBq, cohort.cases_dir, threads, &notes);
}

}  // namespace batch_detail

namespace {

// The TACs of one case file with their administered activities, appended to `series` and
// `administered_MBq`; InputError naming the file when its half-life is not `half_life_h`.
void add_case_tacs(const CaseFile& c, const std::string& name, const std::string& data_dir, double half_life_h,
                   std::vector<TacSeries>& series, std::vector<double>& administered_MBq) {
  const Nuclide n = load_nuclide(data_dir, c.nuclide, c.half_life_override_h);
  if (std::abs(n.half_life_h - half_life_h) > 1e-9 * half_life_h)
    throw_input_error(c.path, "the half-life of " + c.nuclide, format_number(n.half_life_h) + " h",
                      format_number(half_life_h) + " h, the half-life of the learning (--half-life-h, --data-dir): "
                                                   "one population has one physical decay");
  auto q = quantify_case(c, n.lambda_per_h());
  for (auto& s : q.series) {
    if (s.patient.empty()) s.patient = batch_detail::key_of(c, name);
    administered_MBq.push_back(q.administered_MBq.at(s.cycle));
    series.push_back(std::move(s));
  }
}

}  // namespace

CaseFolderTacs read_case_folder_tacs(const std::string& dir, const std::string& data_dir, double half_life_override_h,
                                     bool allow_external_files) {
  const auto names = batch_case_files(dir);
  if (names.empty()) throw_input_error("command line", "CASES_DIR", dir, "a folder with case files (*.json)");
  const double half_life_h = load_nuclide(data_dir, "Lu-177", half_life_override_h).half_life_h;
  CaseFolderTacs out;
  std::map<std::string, std::string> file_of_patient;
  for (const auto& name : names) {
    const auto c = load_case_file(dir + "/" + name, allow_external_files);
    const std::string patient = batch_detail::key_of(c, name);
    if (const auto [it, fresh] = file_of_patient.emplace(patient, name); !fresh)
      throw_input_error(c.path, "patient", patient, "one case file per patient (also in " + it->second + ")");
    add_case_tacs(c, name, data_dir, half_life_h, out.series, out.administered_MBq);
    out.files.emplace_back(name, c.sha256);
  }
  return out;
}

void set_case_files_input(PopulationFile& p, std::vector<std::pair<std::string, std::string>> files) {
  p.input_sha256 = case_files_sha256(files);
  p.case_files = std::move(files);
}

PopulationFile learn_population_from_cases(const std::string& dir, const std::string& data_dir,
                                           double half_life_override_h, const PopulationOptions& o,
                                           bool allow_external_files, const std::string& lutdose_version) {
  auto cases = read_case_folder_tacs(dir, data_dir, half_life_override_h, allow_external_files);
  auto p = learn_population_file(cases.series, cases.administered_MBq, data_dir, half_life_override_h, o, dir, "",
                                 lutdose_version);
  set_case_files_input(p, std::move(cases.files));
  return p;
}

}  // namespace lutdose
