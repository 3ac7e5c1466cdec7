// A cohort as a long TAC table and a patients table (cohort/batch.h, docs/batch.md), read
// streaming: a first pass lists the patients (their rows must be contiguous) and hashes the
// files; the batch then reads each patient's rows in order, and checks them with the TAC
// table's own row checks (TacRowParser).
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "batch_input.h"
#include "lutdose/dosimetry/svalues.h"
#include "lutdose/error.h"
#include "lutdose/io/csv.h"
#include "lutdose/io/input_file.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/io/population_file.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/version.h"

namespace lutdose::batch_detail {

namespace {

// One row of the patients table.
struct PatientRecord {
  CsvRow row;
  std::string raw;  // the row's lines as in the file
};

// Columns of the patients table (-1: absent).
struct PatientColumns {
  int patient = -1, cycle = -1, activity = -1, phantom = -1, body_mass = -1;
  std::map<std::string, int> mass_g;  // VOI -> column of mass_g_<VOI>

  //! `need_phantom`: the batch needs the phantom column; learning a population needs only the
  //! patient and the administered activity.
  PatientColumns(const std::vector<std::string>& header, const std::string& path, bool need_phantom = true) {
    for (size_t i = 0; i < header.size(); ++i) {
      const auto& h = header[i];
      const int c = static_cast<int>(i);
      int* known = h == "patient" ? &patient : h == "cycle" ? &cycle : h == "administered_MBq" ? &activity
                 : h == "phantom" ? &phantom : h == "body_mass_kg" ? &body_mass : nullptr;
      const bool mass = h.rfind("mass_g_", 0) == 0 && h.size() > 7;
      if ((known && *known >= 0) || (mass && mass_g.count(h.substr(7))))
        throw_input_error(path + ": header", "column " + std::to_string(i + 1), h, "each column once");
      if (known) *known = c;
      else if (mass) mass_g[h.substr(7)] = c;
      else
        throw_input_error(path + ": header", "column " + std::to_string(i + 1), h,
                          "one of the patients-table columns patient, cycle, administered_MBq, phantom, "
                          "body_mass_kg, mass_g_<VOI>");
    }
    for (const auto& [name, col] : {std::pair{"patient", patient}, {"administered_MBq", activity}, {"phantom", phantom}})
      if (col < 0 && (need_phantom || std::string(name) != "phantom"))
        throw InputError(path + ": header: the required column '" + std::string(name) +
                         "' is missing; expected columns patient, administered_MBq, phantom (and optionally "
                         "cycle, body_mass_kg, mass_g_<VOI>)");
  }
};

// A number of a patients-table cell > 0 within `range`; NaN for an empty optional cell.
double cell_number(const CsvRow& row, int col, const char* column, const PlausibleRange& range, double scale,
                   const std::string& path, bool optional) {
  const std::string& text = row.cells.at(static_cast<size_t>(col));
  if (optional && text.empty()) return std::numeric_limits<double>::quiet_NaN();
  double x;
  const std::string loc = path + ":" + std::to_string(row.line);
  if (!parse_double(text, x) || !std::isfinite(x) || !(x > 0))
    throw_input_error(loc, std::string("column ") + column, text, "a finite number > 0");
  if (!range.contains(x * scale))
    throw_input_error(loc, std::string("column ") + column, text, "a value " + range.text() +
                                                                      (scale != 1 ? " (after the unit's conversion)" : ""));
  return x;
}

// The cycle of a patients-table row (1 without a cycle column).
int cell_cycle(const CsvRow& row, int col, const std::string& path) {
  if (col < 0) return 1;
  const std::string& text = row.cells.at(static_cast<size_t>(col));
  double x;
  if (!parse_double(text, x) || x < 1 || x != std::floor(x) || x > static_cast<double>(MAX_CYCLE_NUMBER))
    throw_input_error(path + ":" + std::to_string(row.line), "column cycle", text,
                      "a whole number from 1 to " + std::to_string(MAX_CYCLE_NUMBER));
  return static_cast<int>(x);
}

// The patient's rows by cycle (cycle 0 for all in a table without a cycle column); InputError
// naming the row for a cycle (or, without a cycle column, the patient) twice.
std::map<int, const PatientRecord*> rows_by_cycle(const std::vector<PatientRecord>& records, const PatientColumns& c,
                                                  const std::string& patient, const std::string& path) {
  std::map<int, const PatientRecord*> out;
  for (const auto& r : records) {
    const int cycle = c.cycle < 0 ? 0 : cell_cycle(r.row, c.cycle, path);
    if (!out.emplace(cycle, &r).second)
      throw_input_error(path + ":" + std::to_string(r.row.line), "patient " + patient,
                        c.cycle < 0 ? "in a second row" : "cycle " + std::to_string(cycle) + " again",
                        "one row per patient" + std::string(c.cycle < 0 ? " (the table has no cycle column)" : " and cycle"));
  }
  return out;
}

// Everything the patients table says about one patient.
struct PatientFacts {
  std::map<int, const PatientRecord*> by_cycle;  // a table without a cycle column: cycle 0 for all
  std::string phantom;
  double body_mass_kg = std::numeric_limits<double>::quiet_NaN();
};

// The name a patients-table phantom cell may hold with a user S-value table (--svalues FILE): the
// table's set name, as `run --svalues` reports it (its options' phantom), or an empty cell.
const char* const kUserPhantom = "user";

// A row's phantom: its cell; with the batch's --svalues table, "user", the cell being empty or
// "user" (another phantom would be silently replaced by the table: an error).
std::string phantom_of(const PatientRecord& r, const PatientColumns& c, const std::string& patient,
                       const std::string& path, const std::string& user_table) {
  const std::string cell = c.phantom < 0 ? std::string() : r.row.cells.at(static_cast<size_t>(c.phantom));
  if (user_table.empty()) return cell;
  if (!cell.empty() && cell != kUserPhantom)
    throw_input_error(path + ":" + std::to_string(r.row.line), "column phantom of patient " + patient, cell,
                      "an empty cell or 'user': --svalues " + user_table + " gives every patient's S-values");
  return kUserPhantom;
}

// The patient's rows of the patients table, checked (one per cycle, the same phantom and body mass).
// `user_table`: the batch's --svalues table (empty: none), phantom_of.
PatientFacts patient_facts(const std::vector<PatientRecord>& records, const PatientColumns& c,
                           const std::string& patient, const std::string& path, const std::string& user_table) {
  if (records.empty())
    throw InputError(path + ": no row for patient " + patient + "; expected one row per patient (and cycle)");
  PatientFacts f;
  f.by_cycle = rows_by_cycle(records, c, patient, path);
  for (const auto& r : records) {
    const std::string loc = path + ":" + std::to_string(r.row.line);
    const std::string phantom = phantom_of(r, c, patient, path, user_table);
    const double kg = c.body_mass < 0 ? f.body_mass_kg : cell_number(r.row, c.body_mass, "body_mass_kg", MASS_RANGE_G, 1000, path, true);
    if (&r != &records.front() && (phantom != f.phantom || !(kg == f.body_mass_kg || (std::isnan(kg) && std::isnan(f.body_mass_kg)))))
      throw_input_error(loc, "phantom and body_mass_kg of patient " + patient, phantom + ", " + format_number(kg),
                        "the same in every cycle of a patient (" + f.phantom + ", " + format_number(f.body_mass_kg) + ")");
    f.phantom = phantom;
    f.body_mass_kg = kg;
  }
  if (f.phantom.empty())
    throw_input_error(path + ":" + std::to_string(records.front().row.line), "column phantom", "",
                      "a phantom name (lutdose info svalues)");
  return f;
}

// The table's mass of a VOI fills the TAC rows without mass_g; a TAC mass that differs is an error.
void apply_mass(TacSeries& s, const CsvRow& row, int col, const std::string& path, const std::string& tac_path) {
  const std::string column = "mass_g_" + s.voi;
  const double m = cell_number(row, col, column.c_str(), MASS_RANGE_G, 1, path, true);
  if (std::isnan(m)) return;
  for (size_t j = 0; j < s.mass_g.size(); ++j) {
    if (std::isnan(s.mass_g[j])) s.mass_g[j] = m;
    else if (s.mass_g[j] != m)
      throw_input_error(tac_path + ":" + std::to_string(s.lines[j]), "column mass_g of " + s.where(),
                        format_number(s.mass_g[j]),
                        "the mass of " + path + ":" + std::to_string(row.line) + " " + column + " (" + format_number(m) +
                            " g) or an empty cell");
  }
}

// A non-empty mass_g_<X> cell of the patient's rows for a VOI X its TAC rows do not have is an
// error (a typo in the header would otherwise leave the phantom's mass in place).
void check_mass_columns(const PatientFacts& f, const PatientColumns& c, const std::vector<TacSeries>& series,
                        const std::string& path) {
  std::set<std::string> vois;
  for (const auto& s : series) vois.insert(s.voi);
  std::string list;
  for (const auto& v : vois) list += (list.empty() ? "" : ", ") + v;
  for (const auto& [voi, col] : c.mass_g) {
    if (vois.count(voi)) continue;
    for (const auto& [cycle, r] : f.by_cycle) {
      const std::string& text = r->row.cells.at(static_cast<size_t>(col));
      if (!text.empty())
        throw_input_error(path + ":" + std::to_string(r->row.line), "column mass_g_" + voi, text,
                          "an empty cell: the patient's TAC rows have no VOI '" + voi + "' (its VOIs: " + list + ")");
    }
  }
}

// A phantom of the reference data; else an error naming the patients-table cell and the known phantoms.
void check_phantom(const ReferenceData& ref, const PatientFacts& f, const PatientColumns& c, const std::string& path) {
  try {
    ref.phantom(f.phantom);
  } catch (const InputError&) {
    std::string known;
    for (const auto& [name, description] : phantoms()) known += (known.empty() ? "" : ", ") + name;
    const auto& row = f.by_cycle.begin()->second->row;
    throw_input_error(path + ":" + std::to_string(row.line), "column phantom", row.cells.at(static_cast<size_t>(c.phantom)),
                      "one of the phantoms " + known + " (lutdose info svalues)");
  }
}

// The options of one patient: the shared ones with its phantom, body mass and activity per cycle;
// its VOI masses into `series`.
RunOptions patient_options(const RunOptions& shared, const PatientFacts& f, const PatientColumns& c,
                           std::vector<TacSeries>& series, const std::string& path, const std::string& tac_path) {
  RunOptions o = shared;
  o.dose->phantom = f.phantom;
  o.dose->body_mass_g = f.body_mass_kg * 1000.0;
  std::set<int> cycles;
  for (auto& s : series) {
    cycles.insert(s.cycle);
    const auto it = f.by_cycle.find(c.cycle < 0 ? 0 : s.cycle);
    if (it == f.by_cycle.end())
      throw InputError(path + ": no row for patient " + s.patient + ", cycle " + std::to_string(s.cycle) +
                       " (its TACs start at " + tac_path + ":" + std::to_string(s.lines.front()) +
                       "); expected one row per patient and cycle");
    if (const auto m = c.mass_g.find(s.voi); m != c.mass_g.end()) apply_mass(s, it->second->row, m->second, path, tac_path);
  }
  check_mass_columns(f, c, series, path);
  for (const auto& [cycle, r] : f.by_cycle) {
    if (c.cycle >= 0 && !cycles.count(cycle))
      throw InputError(path + ":" + std::to_string(r->row.line) + ": patient " + series.front().patient + ", cycle " +
                       std::to_string(cycle) + " has no rows in " + tac_path + "; expected TACs for every cycle listed");
    const double a = cell_number(r->row, c.activity, "administered_MBq", ACTIVITY_RANGE_MBQ, 1, path, false);
    if (c.cycle < 0) o.administered_MBq = a;
    for (int cy : cycles)
      if (c.cycle < 0 || cy == cycle) o.administered_by_cycle_MBq[cy] = a;
  }
  return o;
}

// A patient id longer than the store's name columns stops the whole batch before anything is
// written (exit 2), named with its file and line: the store could not even record its failure
// under its id. The ids' other problems fail their patient when it is run.
void check_id_length(const std::string& id, const std::string& path, int line) {
  if (id.size() > STORE_NAME_BYTES)
    throw_input_error(path + ":" + std::to_string(line), "column patient", id, key_name_expected(id, "a patient id"));
}

// A patient of the TAC table: where its rows start and how many there are.
struct TacPatient {
  std::string id;
  CsvReader::Position start;
  std::size_t rows = 0;
};

}  // namespace

namespace {

// The patients table, read whole (one small row per patient and cycle): rows by patient.
struct PatientsTable {
  std::string path, sha256;
  std::unique_ptr<PatientColumns> columns;
  std::map<std::string, std::vector<PatientRecord>> rows;
  std::vector<std::string> order;  // patients in the order of their first row

  explicit PatientsTable(const std::string& p, bool need_phantom = true) : path(p) {
    CsvReader reader(path);
    columns = std::make_unique<PatientColumns>(reader.header(), path, need_phantom);
    PatientRecord r;
    while (reader.next(r.row, &r.raw)) {
      const std::string& id = r.row.cells.at(static_cast<size_t>(columns->patient));
      check_id_length(id, path, r.row.line);
      auto& list = rows[id];
      if (list.empty()) order.push_back(id);
      list.push_back(std::move(r));
    }
    sha256 = reader.sha256();
  }
};

// The batch's user S-value table (--svalues), empty without one.
const std::string& user_table_of(const BatchCohort& cohort) {
  if (!cohort.options.dose) throw std::logic_error("open_tac_input: the cohort's options have no dose options");
  return cohort.options.dose->svalue_table;
}

class TacItem : public BatchItem {
 public:
  TacItem(const BatchCohort& cohort, const PatientsTable& patients, const std::vector<std::string>& header,
          std::string id, std::vector<CsvRow> rows, std::string raw)
      : cohort_(cohort), patients_(patients), header_(header), id_(std::move(id)), rows_(std::move(rows)),
        raw_(std::move(raw)) {}

  StoreRows compute(const ReferenceData& ref) const override {
    const std::string source = file_name_of(cohort_.tac_path) + " + " + file_name_of(cohort_.patients_path);
    return guarded_rows([&] { return id_; }, source, [&] {
      static const std::vector<PatientRecord> none;
      const auto it = patients_.rows.find(id_);
      const auto& records = it == patients_.rows.end() ? none : it->second;
      std::string bytes = raw_;
      for (const auto& r : records) bytes += r.raw;
      if (rows_.empty())
        throw InputError(cohort_.tac_path + ": no rows for patient " + id_ + " (" + patients_.path + ":" +
                         std::to_string(records.front().row.line) + "); expected its TACs");
      if (id_.empty())
        throw_input_error(cohort_.tac_path + ":" + std::to_string(rows_.front().line), "column patient", "",
                          "a patient id in every row");
      TacRowParser parser(header_, cohort_.tac_path);
      for (const auto& row : rows_) parser.add(row);
      auto series = parser.take();
      const std::string& user_table = cohort_.options.dose->svalue_table;
      const auto facts = patient_facts(records, *patients_.columns, id_, patients_.path, user_table);
      if (user_table.empty()) check_phantom(ref, facts, *patients_.columns, patients_.path);
      const auto o = patient_options(cohort_.options, facts, *patients_.columns, series, patients_.path, cohort_.tac_path);
      return store_rows(run_tac_table(series, o, ref), source, sha256_hex(bytes));
    });
  }

 private:
  const BatchCohort& cohort_;
  const PatientsTable& patients_;
  const std::vector<std::string>& header_;
  std::string id_;
  std::vector<CsvRow> rows_;
  std::string raw_;
};

class TacInput : public BatchInput {
 public:
  TacInput(const BatchCohort& cohort, const ReferenceData& ref)
      : cohort_(cohort), ref_(ref), patients_(cohort.patients_path, user_table_of(cohort).empty()),
        reader_(cohort.tac_path) {
    if (!cohort.options.dose) throw std::logic_error("open_tac_input: the cohort's options have no dose options");
    TacRowParser header_check(reader_.header(), cohort.tac_path);
    patient_col_ = header_check.patient_column();
    voi_col_ = header_check.voi_column();
    if (patient_col_ < 0)
      throw InputError(cohort.tac_path + ": header: the column 'patient' is missing; expected it in a cohort's TAC "
                       "table (docs/batch.md)");
    list_patients();
    check_model_observes_table();
    // a population without a VOI kind of the cohort, or of the input error model beside a table without
    // activity_u_MBq, is a bad invocation, found before the batch starts
    if (const auto& o = cohort.options; o.population) {
      check_population_covers(*o.population, o.population_source.path, uncovered_, cohort.tac_path);
      std::vector<std::string> vois;
      for (const auto& kv : voi_covered_) vois.push_back(kv.first);
      check_population_uncertainties(*o.population, o.population_source.path, vois, reader_.header(),
                                     cohort.tac_path);
    }
    std::set<std::string> in_tac;
    for (const auto& p : tac_patients_) in_tac.insert(p.id);
    for (const auto& id : patients_.order)
      if (!in_tac.count(id)) table_only_.push_back(id);  // fail when run: no TACs
  }
  std::size_t size() const override { return tac_patients_.size() + table_only_.size(); }
  std::string cohort() const override {
    nlohmann::ordered_json j;
    j["input"] = "tac-tables";
    j["tac_table"] = {{"name", file_name_of(cohort_.tac_path)}, {"sha256", tac_sha256_}};
    j["patients_table"] = {{"name", file_name_of(cohort_.patients_path)}, {"sha256", patients_.sha256}};
    j["patients"] = size();
    return j.dump();
  }
  Provenance provenance() const override;
  std::string patient_of(std::size_t i) override {
    return i < tac_patients_.size() ? tac_patients_[i].id : table_only_.at(i - tac_patients_.size());
  }
  void seek(std::size_t i) override {
    next_ = i;
    if (i < tac_patients_.size()) reader_.seek(tac_patients_[i].start);
  }
  std::unique_ptr<BatchItem> read() override;

 private:
  void list_patients();
  void note_voi(const std::string& voi, const std::string& patient);
  void note_observed(const std::string& voi);
  void check_model_observes_table() const;
  const BatchCohort& cohort_;
  const ReferenceData& ref_;
  PatientsTable patients_;
  CsvReader reader_;
  int patient_col_ = -1, voi_col_ = -1;
  //! With a population (the first pass): whether each VOI name's kind is in it, and the patients
  //! of the VOIs whose kind is not (only those: memory does not grow with a covered cohort).
  std::map<std::string, bool> voi_covered_;
  VoiPatients uncovered_;
  //! With a compartment population: whether a VOI the model observes is in the table, else the
  //! table's first VOI names (for the message).
  bool any_observed_ = false;
  std::set<std::string> unobserved_;
  std::string tac_sha256_;
  std::vector<TacPatient> tac_patients_;
  std::vector<std::string> table_only_;
  std::size_t next_ = 0;
};

// The first pass: every patient's first row and row count (with a population, the patients of
// each VOI); a patient seen again after another is an InputError (the batch reads one patient's
// rows at a time).
void TacInput::list_patients() {
  std::map<std::string, int> first_line;
  CsvRow row;
  for (;;) {
    const auto at = reader_.position();
    if (!reader_.next(row)) break;
    const std::string& id = row.cells.at(static_cast<size_t>(patient_col_));
    if (cohort_.options.population) note_voi(row.cells.at(static_cast<size_t>(voi_col_)), id);
    if (cohort_.options.compartment_population) note_observed(row.cells.at(static_cast<size_t>(voi_col_)));
    if (tac_patients_.empty() || tac_patients_.back().id != id) {
      check_id_length(id, cohort_.tac_path, row.line);
      if (const auto [it, is_new] = first_line.emplace(id, row.line); !is_new)
        throw_input_error(cohort_.tac_path + ":" + std::to_string(row.line), "column patient", id,
                          "each patient's rows together (its rows began at line " + std::to_string(it->second) +
                              ", then another patient's came): sort the table by patient");
      tac_patients_.push_back({id, at, 0});
    }
    ++tac_patients_.back().rows;
  }
  if (tac_patients_.empty())
    throw InputError(cohort_.tac_path + ": no data rows; expected one row per patient, VOI and time point");
  tac_sha256_ = reader_.sha256();
}

// Notes a row's VOI for the population check: its patient when the VOI's kind is not covered.
void TacInput::note_voi(const std::string& voi, const std::string& patient) {
  const auto [it, is_new] = voi_covered_.try_emplace(voi, false);
  if (is_new) it->second = find_population_model(*cohort_.options.population, voi) != nullptr;
  if (!it->second) uncovered_[voi].insert(patient);
}

void TacInput::note_observed(const std::string& voi) {
  if (any_observed_) return;
  const auto& observed = cohort_.options.compartment_population->observed_vois;
  if (std::find(observed.begin(), observed.end(), voi) != observed.end()) any_observed_ = true;
  else if (unobserved_.size() < 5) unobserved_.insert(voi);
}

// A compartment population whose model observes none of the table's VOIs would fail every patient:
// a bad invocation, refused before the batch starts (0.19 failed each patient, exit 3; review of 0.19).
void TacInput::check_model_observes_table() const {
  const auto& c = cohort_.options.compartment_population;
  if (!c || any_observed_) return;
  const std::string& path = cohort_.options.population_source.path;
  std::string found, observed;
  for (const auto& v : unobserved_) found += (found.empty() ? "" : ", ") + v;
  for (const auto& v : c->observed_vois) observed += (observed.empty() ? "" : ", ") + v;
  throw_input_error(cohort_.tac_path, "column voi", found + (unobserved_.size() == 5 ? ", ..." : ""),
                    "at least one VOI the model " + c->model_name + " observes (" + observed +
                        "): the structural model of the population " +
                        (path.empty() ? std::string("learned by --kinetics population") : path));
}

std::unique_ptr<BatchItem> TacInput::read() {
  const std::size_t i = next_++;
  if (i >= tac_patients_.size())
    return std::make_unique<TacItem>(cohort_, patients_, reader_.header(), table_only_.at(i - tac_patients_.size()),
                                     std::vector<CsvRow>{}, std::string());
  const auto& p = tac_patients_[i];
  std::vector<CsvRow> rows(p.rows);
  std::string raw, line_raw;
  for (auto& row : rows) {
    if (!reader_.next(row, &line_raw)) throw std::runtime_error(cohort_.tac_path + ": the file ended early (changed during the batch?)");
    raw += line_raw;
  }
  if (rows.front().cells.at(static_cast<size_t>(patient_col_)) != p.id)
    throw std::runtime_error(cohort_.tac_path + ": the file changed during the batch");
  return std::make_unique<TacItem>(cohort_, patients_, reader_.header(), p.id, std::move(rows), std::move(raw));
}

// The shared options and, for the S-value sets, every phantom the patients table names (sorted):
// the same in every shard and resumed run.
Provenance TacInput::provenance() const {
  Provenance p;
  p.lutdose_version = LUTDOSE_VERSION;
  p.options = cohort_.options;
  p.options.tac_path = file_name_of(cohort_.tac_path);
  p.nuclide = ref_.nuclide(p.options.nuclide, p.options.half_life_override_h);
  p.tissue_file = ref_.tissue().path;
  if (const auto& table = cohort_.options.user_svalue_set) {  // --svalues: one table for every patient, as run
    p.svalue_files = table->set.files;
    p.svalue_files.push_back("spheres/pytheranostics_spheres.json");
    p.svalue_set_description = table->set.description;
    return p;
  }
  p.options.dose->phantom = "per patient (" + file_name_of(cohort_.patients_path) + ")";
  std::set<std::string> phantoms, files;
  for (const auto& [id, records] : patients_.rows)
    for (const auto& r : records) phantoms.insert(r.row.cells.at(static_cast<size_t>(patients_.columns->phantom)));
  for (const auto& name : phantoms) {
    try {
      for (const auto& f : ref_.phantom(name)->set.files) files.insert(f);
      p.svalue_set_description += (p.svalue_set_description.empty() ? "per patient: " : ", ") + name;
    } catch (const InputError&) {
      // an unknown phantom fails its patients when they are run
    }
  }
  p.svalue_files.assign(files.begin(), files.end());
  p.svalue_files.push_back("spheres/pytheranostics_spheres.json");
  p.tissue_file = ref_.tissue().path;
  return p;
}

}  // namespace

std::unique_ptr<BatchInput> open_tac_input(const BatchCohort& cohort, const ReferenceData& reference) {
  return std::make_unique<TacInput>(cohort, reference);
}

void learn_cohort_population(BatchCohort& cohort, unsigned threads, std::vector<std::string>& notes) {
  const auto series = read_tac_table(cohort.tac_path);
  const auto administered_MBq = administered_activities_MBq(series, cohort.patients_path, cohort.tac_path);
  use_learned_population(cohort.options, series, administered_MBq, cohort.tac_path, threads, &notes);
}

}  // namespace lutdose::batch_detail

namespace lutdose {

std::vector<double> administered_activities_MBq(const std::vector<TacSeries>& series, const std::string& patients_path,
                                                const std::string& tac_path, std::string* sha256) {
  using namespace batch_detail;
  const PatientsTable table(patients_path, false);
  const PatientColumns& c = *table.columns;
  std::map<std::string, std::map<int, const PatientRecord*>> by_patient;
  for (const auto& [id, records] : table.rows) by_patient[id] = rows_by_cycle(records, c, id, patients_path);
  std::vector<double> out;
  for (const auto& s : series) {
    const std::string which = "patient " + s.patient + (c.cycle < 0 ? "" : ", cycle " + std::to_string(s.cycle));
    const auto p = by_patient.find(s.patient);
    const auto r = p == by_patient.end() ? nullptr : p->second.count(c.cycle < 0 ? 0 : s.cycle)
                                                         ? p->second.at(c.cycle < 0 ? 0 : s.cycle) : nullptr;
    if (!r)
      throw_input_error(patients_path, "administered_MBq of " + which, "missing",
                        "a row for every patient" + std::string(c.cycle < 0 ? "" : " and cycle") + " of " + tac_path +
                            " (its TACs start at line " + std::to_string(s.lines.empty() ? 0 : s.lines.front()) +
                            "): population amplitudes are per administered activity");
    const std::string loc = patients_path + ":" + std::to_string(r->row.line);
    if (r->row.cells.at(static_cast<size_t>(c.activity)).empty())
      throw_input_error(loc, "administered_MBq of " + which, "", "an administered activity in MBq > 0");
    out.push_back(cell_number(r->row, c.activity, "administered_MBq", ACTIVITY_RANGE_MBQ, 1, patients_path, false));
  }
  if (sha256) *sha256 = table.sha256;
  return out;
}

}  // namespace lutdose
