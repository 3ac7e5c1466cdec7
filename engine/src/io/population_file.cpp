// The population file (population_file.h, docs/population.md).
#include "lutdose/io/population_file.h"

#include <cmath>
#include <set>

#include "json_number.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
#include "lutdose/io/output_dir.h"

namespace lutdose {

using Eigen::MatrixXd;
using Eigen::VectorXd;
using json = nlohmann::ordered_json;
using detail::json_number;

namespace {

json numbers(const VectorXd& v) {
  json a = json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) a.push_back(json_number(v(i)));
  return a;
}

json candidates_json(const PopulationModel& m) {
  json a = json::array();
  for (const auto& c : m.candidates)
    a.push_back({{"function", c.function}, {"minus2_log_likelihood", json_number(c.minus2_log_likelihood)},
                 {"aicc", json_number(c.aicc)}, {"bic", json_number(c.bic)}, {"converged", c.converged},
                 {"iterations", c.iterations}});
  return a;
}

// The member `key` of object `j`; InputError naming `where` and `key` when it is missing.
const json& member(const json& j, const std::string& key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) throw_input_error(where, key, "missing", "a member " + key);
  return j.at(key);
}

double finite_number(const json& j, const std::string& key, const std::string& where) {
  const json& v = member(j, key, where);
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    throw_input_error(where, key, v.dump(), "a finite number");
  return v.get<double>();
}

// A vector of `n` numbers; `finite` requires every one finite, else null is NaN.
VectorXd number_vector(const json& j, const std::string& key, const std::string& where, Eigen::Index n,
                       bool finite) {
  const json& v = member(j, key, where);
  if (!v.is_array() || static_cast<Eigen::Index>(v.size()) != n)
    throw_input_error(where, key, v.dump(), "an array of " + std::to_string(n) + " numbers (one per parameter)");
  VectorXd out(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const json& x = v[static_cast<size_t>(i)];
    if (x.is_number() && std::isfinite(x.get<double>())) out(i) = x.get<double>();
    else if (!finite && x.is_null()) out(i) = std::numeric_limits<double>::quiet_NaN();
    else throw_input_error(where, key + "[" + std::to_string(i) + "]", x.dump(), "a finite number");
  }
  return out;
}

// Omega: K x K, finite, symmetric, positive-definite.
MatrixXd read_omega(const json& j, const std::string& where, Eigen::Index k) {
  const json& v = member(j, "omega", where);
  if (!v.is_array() || static_cast<Eigen::Index>(v.size()) != k)
    throw_input_error(where, "omega", v.dump(), "a " + std::to_string(k) + " x " + std::to_string(k) + " matrix");
  MatrixXd omega(k, k);
  for (Eigen::Index r = 0; r < k; ++r)
    omega.row(r) = number_vector(v[static_cast<size_t>(r)].is_array() ? json{{"row", v[static_cast<size_t>(r)]}}
                                                                        : json{{"row", nullptr}},
                                 "row", where + ": omega[" + std::to_string(r) + "]", k, true);
  if (!omega.isApprox(omega.transpose(), 1e-12) || Eigen::LLT<MatrixXd>(omega).info() != Eigen::Success ||
      omega.diagonal().minCoeff() <= 0)
    throw_input_error(where, "omega", v.dump(), "a symmetric positive-definite covariance matrix");
  if (!omega.isDiagonal(0.0))
    throw_input_error(where, "omega", v.dump(), "a diagonal matrix (this version estimates no covariances)");
  return omega;
}

PopulationModel read_model(const json& j, const std::string& where) {
  PopulationModel m;
  const json& kind = member(j, "voi_kind", where);
  const json& fn = member(j, "function", where);
  if (!kind.is_string() || kind.get<std::string>().empty())
    throw_input_error(where, "voi_kind", kind.dump(), "a VOI kind (a VOI name, or tumour)");
  m.voi_kind = kind.get<std::string>();
  const std::string w = where + " (" + m.voi_kind + ")";
  const auto* f = fn.is_string() ? models::find_exponential(fn.get<std::string>()) : nullptr;
  if (!f || !population_function_supported(f->id()))
    throw_input_error(w, "function", fn.dump(), "E1p, E1, E2u or E2");
  m.function = f->id();
  const Eigen::Index k = f->n_parameters();
  m.phi_names = population_parameter_names(*f);
  m.theta = number_vector(j, "theta", w, k, true);
  m.theta_se = number_vector(j, "theta_se", w, k, false);
  m.omega = read_omega(j, w, k);
  m.sigma_log = finite_number(j, "sigma_log", w);
  if (!(m.sigma_log > 0)) throw_input_error(w, "sigma_log", format_number(m.sigma_log), "a relative SD > 0");
  m.shrinkage = number_vector(j, "shrinkage", w, k, false);
  const double n = finite_number(j, "n_patients", w);
  if (!(n >= 2) || n != std::floor(n)) throw_input_error(w, "n_patients", format_number(n), "a whole number >= 2");
  m.n_patients = static_cast<int>(n);
  return m;
}

}  // namespace

PopulationFile learn_population_file(const std::vector<TacSeries>& series, const std::vector<double>& administered_MBq,
                                     const std::string& data_dir,
                                     double half_life_override_h, const PopulationOptions& o,
                                     const std::string& input_path, const std::string& input_bytes,
                                     const std::string& lutdose_version) {
  const Nuclide nuclide = load_nuclide(data_dir, "Lu-177", half_life_override_h);
  PopulationFile p;
  p.models = learn_population(series, administered_MBq, nuclide.lambda_per_h(), o, input_path);
  p.half_life_h = nuclide.half_life_h;
  p.input_path = input_path;
  p.input_sha256 = sha256_hex(input_bytes);
  p.options = o;
  p.lutdose_version = lutdose_version;
  return p;
}

json to_json(const PopulationModel& m) {
  json omega = json::array();
  for (Eigen::Index r = 0; r < m.omega.rows(); ++r) omega.push_back(numbers(m.omega.row(r).transpose()));
  json phi = json::array();
  for (const auto& n : m.phi_names) phi.push_back(n);
  return {{"voi_kind", m.voi_kind}, {"function", m.function}, {"parameters", phi}, {"theta", numbers(m.theta)},
          {"theta_se", numbers(m.theta_se)}, {"omega", omega}, {"sigma_log", json_number(m.sigma_log)},
          {"shrinkage", numbers(m.shrinkage)}, {"n_patients", m.n_patients}, {"n_observations", m.n_observations},
          {"minus2_log_likelihood", json_number(m.minus2_log_likelihood)}, {"aicc", json_number(m.aicc)},
          {"bic", json_number(m.bic)}, {"converged", m.converged}, {"iterations", m.iterations},
          {"candidates", candidates_json(m)}};
}

std::string population_file_text(const PopulationFile& p) {
  json vois = json::array();
  for (const auto& m : p.models) vois.push_back(to_json(m));
  json input = {{"path", p.input_path}, {"sha256", p.input_sha256}};
  if (!p.patients_path.empty()) input["patients"] = {{"path", p.patients_path}, {"sha256", p.patients_sha256}};
  const json doc = {
      {"format", POPULATION_FORMAT},
      {"format_version", POPULATION_FORMAT_VERSION},
      {"lutdose_version", p.lutdose_version},
      {"estimator", "Lindstrom-Bates alternating algorithm: MAP per patient (Levenberg-Marquardt), EM step of the "
                    "linearised mixed model; -2 log L by the Laplace approximation (FOCE); docs/methods.md §10"},
      {"error_model", "proportional, on the log scale: ln A ~ N(ln f, sigma_log^2)"},
      {"random_effects", "log-normal, phi = theta + eta, eta ~ N(0, omega), omega diagonal"},
      {"amplitudes", "per administered activity: A_j / A0, A0 the TAC's administered activity (log_A1_per_administered, ...)"},
      {"half_life_h", p.half_life_h},
      {"input", input},
      {"options", {{"candidates", p.options.candidates}, {"selection", "lowest BIC"},
                   {"max_iterations", p.options.max_iterations}, {"tolerance", p.options.tolerance},
                   {"objective_tolerance", p.options.objective_tolerance},
                   {"plateau_iterations", p.options.plateau_iterations},
                   {"plateau_improvement", p.options.plateau_improvement}}},
      {"vois", vois}};
  return with_own_checksum(doc.dump(2));
}

PopulationFile read_population_file(const std::string& path) {
  const std::string text = read_input_file(path, "population file", true);
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    throw_input_error(path, "the content", "not a JSON object", "a population file of `lutdose population learn`");
  const json& format = member(doc, "format", path);
  if (format != POPULATION_FORMAT) throw_input_error(path, "format", format.dump(), "\"lutdose-population\"");
  const json& version = member(doc, "format_version", path);
  if (version == 1)
    throw_input_error(path, "format_version", version.dump(),
                      std::to_string(POPULATION_FORMAT_VERSION) + " (version 1 has amplitudes in MBq, not per "
                      "administered activity: learn the population again with lutdose population learn --patients)");
  if (version != POPULATION_FORMAT_VERSION)
    throw_input_error(path, "format_version", version.dump(), std::to_string(POPULATION_FORMAT_VERSION));
  PopulationFile p;
  p.half_life_h = finite_number(doc, "half_life_h", path);
  if (!(p.half_life_h > 0))
    throw_input_error(path, "half_life_h", format_number(p.half_life_h), "a half-life > 0 [h]");
  const json& vois = member(doc, "vois", path);
  if (!vois.is_array() || vois.empty()) throw_input_error(path, "vois", vois.dump(), "a non-empty array");
  std::set<std::string> kinds;
  for (size_t i = 0; i < vois.size(); ++i) {
    p.models.push_back(read_model(vois[i], path + ": vois[" + std::to_string(i) + "]"));
    if (!kinds.insert(p.models.back().voi_kind).second)
      throw_input_error(path + ": vois[" + std::to_string(i) + "]", "voi_kind", p.models.back().voi_kind,
                        "each VOI kind once");
  }
  return p;
}

void check_population_half_life(const PopulationFile& p, const std::string& path, double half_life_h) {
  if (std::abs(p.half_life_h - half_life_h) <= 1e-9 * std::abs(half_life_h)) return;
  throw_input_error(path, "half_life_h", format_number(p.half_life_h),
                    format_number(half_life_h) + " h, the half-life of this run (the population was learned with "
                                                 "another half-life: same --half-life-h and --data-dir as for learning)");
}

void check_population_covers(const std::vector<PopulationModel>& models, const std::string& path,
                             const std::vector<TacSeries>& series) {
  for (const auto& s : series) {
    if (find_population_model(models, s.voi)) continue;
    std::string have;
    for (const auto& m : models) have += (have.empty() ? "" : ", ") + m.voi_kind;
    throw_input_error(path, "the VOI kind of " + s.voi, population_voi_kind(s.voi),
                      "a VOI kind of the population file: " + have);
  }
}

}  // namespace lutdose
