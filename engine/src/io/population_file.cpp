// The population file (population_file.h, docs/population.md).
#include "lutdose/io/population_file.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "json_number.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/models/input.h"
#include "lutdose/pipeline/options.h"
#include "lutdose/pipeline/pipeline.h"

namespace lutdose {

using Eigen::MatrixXd;
using Eigen::VectorXd;
using json = nlohmann::ordered_json;
using detail::json_number;

namespace {

// How the file's `amplitudes` member begins in format 2 (read back as the check of the format).
constexpr const char* AMPLITUDES_PER_ADMINISTERED = "per administered activity";

json numbers(const VectorXd& v) {
  json a = json::array();
  for (Eigen::Index i = 0; i < v.size(); ++i) a.push_back(json_number(v(i)));
  return a;
}

// A matrix as an array of its rows.
json rows_json(const MatrixXd& m) {
  json a = json::array();
  for (Eigen::Index r = 0; r < m.rows(); ++r) a.push_back(numbers(m.row(r).transpose()));
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

// InputError naming `key`[i] for the first known (not NaN) value of `v` that `ok` refuses.
template <class Ok>
void check_each(const VectorXd& v, const std::string& key, const std::string& where, Ok ok, const std::string& expected) {
  for (Eigen::Index i = 0; i < v.size(); ++i)
    if (!std::isnan(v(i)) && !ok(v(i)))
      throw_input_error(where, key + "[" + std::to_string(i) + "]", format_number(v(i)), expected);
}

// A k x k matrix member `key` of j, row by row (an array of k rows of k numbers); as number_vector,
// a null entry is NaN (not known) where not `finite`.
MatrixXd number_matrix(const json& j, const std::string& key, const std::string& where, Eigen::Index k, bool finite) {
  const json& v = member(j, key, where);
  if (!v.is_array() || static_cast<Eigen::Index>(v.size()) != k)
    throw_input_error(where, key, v.dump(), "a " + std::to_string(k) + " x " + std::to_string(k) + " matrix");
  MatrixXd out(k, k);
  for (Eigen::Index r = 0; r < k; ++r)
    out.row(r) = number_vector(v[static_cast<size_t>(r)].is_array() ? json{{"row", v[static_cast<size_t>(r)]}}
                                                                      : json{{"row", nullptr}},
                               "row", where + ": " + key + "[" + std::to_string(r) + "]", k, finite);
  return out;
}

// omega_structure: "diagonal" or "full"; absent means "diagonal" (files of 0.16 and earlier, and
// every file with a diagonal Omega: the member is written only for a full one, so that a diagonal
// population's file and the results' vois_sha256 are unchanged).
std::string read_omega_structure(const json& j, const std::string& where) {
  const auto s = j.find("omega_structure");
  if (s == j.end()) return "diagonal";
  if (!s->is_string() || (*s != "diagonal" && *s != "full"))
    throw_input_error(where, "omega_structure", s->dump(), "\"diagonal\" or \"full\" (absent: diagonal)");
  return s->get<std::string>();
}

// Omega: K x K, finite, symmetric, positive-definite; diagonal unless `structure` is "full".
// (lutdose 0.16 and earlier refuse a non-diagonal omega, "a diagonal matrix (this version
// estimates no covariances)": a full-Omega file is refused by them, not misread.)
MatrixXd read_omega(const json& j, const std::string& where, Eigen::Index k, const std::string& structure) {
  const json& v = member(j, "omega", where);
  const MatrixXd omega = number_matrix(j, "omega", where, k, true);
  if (!omega.isApprox(omega.transpose(), 1e-12) || Eigen::LLT<MatrixXd>(omega).info() != Eigen::Success ||
      omega.diagonal().minCoeff() <= 0)
    throw_input_error(where, "omega", v.dump(), "a symmetric positive-definite covariance matrix");
  if (structure != "full" && !omega.isDiagonal(0.0))
    throw_input_error(where, "omega", v.dump(),
                      "a diagonal matrix (omega_structure is \"diagonal\"; absent means diagonal): a full Omega "
                      "has omega_structure \"full\"");
  return omega;
}

// A finite number, or null for one the estimator could not compute (NaN).
double number_or_null(const json& j, const std::string& key, const std::string& where) {
  const json& v = member(j, key, where);
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!v.is_number() || !std::isfinite(v.get<double>())) throw_input_error(where, key, v.dump(), "a finite number or null");
  return v.get<double>();
}

int whole_number(const json& j, const std::string& key, const std::string& where, int min) {
  const double n = finite_number(j, key, where);
  if (!(n >= min) || n != std::floor(n) || n > std::numeric_limits<int>::max())
    throw_input_error(where, key, format_number(n), "a whole number >= " + std::to_string(min));
  return static_cast<int>(n);
}

bool boolean(const json& j, const std::string& key, const std::string& where) {
  const json& v = member(j, key, where);
  if (!v.is_boolean()) throw_input_error(where, key, v.dump(), "true or false");
  return v.get<bool>();
}

// The candidates fitted to the VOI kind: each a supported function, each function once, the
// chosen `function` among them.
std::vector<PopulationModel::Candidate> read_candidates(const json& j, const std::string& where,
                                                        const std::string& chosen) {
  const json& v = member(j, "candidates", where);
  if (!v.is_array() || v.empty()) throw_input_error(where, "candidates", v.dump(), "a non-empty array");
  std::vector<PopulationModel::Candidate> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string field = "candidates[" + std::to_string(i) + "]";
    const json& c = v[i];
    const json& fn = member(c, "function", where + ": " + field);
    std::string id;
    if (chosen.rfind("compartment:", 0) == 0) {  // a compartment population: its one structural model
      if (fn != chosen) throw_input_error(where, field + ".function", fn.dump(), chosen);
      id = chosen;
    } else {
      const auto* f = fn.is_string() ? models::find_exponential(fn.get<std::string>()) : nullptr;
      if (!f || !population_function_supported(f->id()))
        throw_input_error(where, field + ".function", fn.dump(), "E1p, E1, E2u or E2");
      id = f->id();
    }
    for (const auto& earlier : out)
      if (earlier.function == id)
        throw_input_error(where, field + ".function", fn.dump(), "each function once in candidates");
    const std::string w = where + ": " + field;
    out.push_back({id, number_or_null(c, "minus2_log_likelihood", w), number_or_null(c, "aicc", w),
                   number_or_null(c, "bic", w), boolean(c, "converged", w), whole_number(c, "iterations", w, 0)});
  }
  if (std::none_of(out.begin(), out.end(), [&](const auto& c) { return c.function == chosen; }))
    throw_input_error(where, "function", chosen, "one of the functions of candidates");
  return out;
}

// The estimator's figures of the chosen model: observations, -2 log L, AICc, BIC, convergence,
// iterations and the candidates.
void read_figures(const json& j, const std::string& where, PopulationModel& m) {
  m.n_observations = whole_number(j, "n_observations", where, 1);
  m.minus2_log_likelihood = number_or_null(j, "minus2_log_likelihood", where);
  m.aicc = number_or_null(j, "aicc", where);
  m.bic = number_or_null(j, "bic", where);
  m.converged = boolean(j, "converged", where);
  m.iterations = whole_number(j, "iterations", where, 0);
  // Without e_step (or null): unknown here; read_population_file makes it "laplace" for a file lutdose
  // wrote (checksum intact: 0.12 and earlier learned by the Laplace EM alone), never for a file
  // written or changed by hand.
  m.e_step.clear();
  if (const auto e = j.find("e_step"); e != j.end() && !e->is_null()) {
    if (!e->is_string() || (*e != "laplace" && *e != "sampled"))
      throw_input_error(where, "e_step", e->dump(), "\"laplace\" or \"sampled\" (or null: unknown)");
    m.e_step = e->get<std::string>();
  }
  m.candidates = read_candidates(j, where, m.function);
}

// An optional standard error member `name` of j (>= 0), into `se`: absent or null is not known, never
// zero; 0 is allowed: known exactly (a hand-written truth).
void read_log_se(const json& j, const char* name, const std::string& where, const std::string& of, double& se) {
  if (const auto v = j.find(name); v != j.end() && !v->is_null()) {
    se = finite_number(j, name, where);
    if (!(se >= 0))
      throw_input_error(where, name, format_number(se), "a standard error >= 0 of " + of + ", or null (not known)");
  }
}

// The optional standard errors of a full Omega's correlations (lutdose 0.20; population.h): a
// symmetric k x k matrix, >= 0 off the diagonal, 0 on it (rho_kk = 1 exactly), a null entry not
// known. Absent or null: not known (an older file: the MAP takes the correlations as known). Refused
// beside a diagonal Omega, which has no correlations (it would be ignored).
void read_correlation_se(const json& j, const std::string& where, Eigen::Index k, PopulationModel& m) {
  const auto v = j.find("omega_correlation_se");
  if (v == j.end() || v->is_null()) return;
  if (m.omega_structure != "full")
    throw_input_error(where, "omega_correlation_se", v->dump(),
                      "no omega_correlation_se with a diagonal Omega (omega_structure \"diagonal\" has no "
                      "correlations: it would be ignored)");
  const MatrixXd se = number_matrix(j, "omega_correlation_se", where, k, false);
  for (Eigen::Index r = 0; r < k; ++r)
    for (Eigen::Index c = 0; c < k; ++c) {
      const double x = se(r, c), mirror = se(c, r);
      const bool ok = r == c ? x == 0 : (std::isnan(x) ? std::isnan(mirror) : x >= 0 && x <= 1 && x == mirror);
      if (ok) continue;
      const auto text = [](double e) { return std::isnan(e) ? std::string("null") : format_number(e); };
      throw_input_error(where, "omega_correlation_se[" + std::to_string(r) + "][" + std::to_string(c) + "]", text(x),
                        r == c ? std::string("0 (the correlation of a parameter with itself is 1 exactly)")
                               : "a standard error >= 0 and at most 1 of the correlation (a correlation lies in "
                                 "[-1, 1]), equal to [" + std::to_string(c) + "][" + std::to_string(r) + "] (" +
                                     text(mirror) + "; the matrix is symmetric), or null (not known), null in both "
                                     "or neither");
    }
  m.omega_correlation_se = se;
}

// The optional standard errors of ln Omega_kk and of the residual error's parameters (lutdose 0.17;
// population.h): ln sigma_log (proportional), ln sigma0_MBq and ln b_proportional (combined; lutdose
// 0.19), ln sigma0_MBq (constant). Absent or null is not known (an older file: the MAP then takes
// them as known), never zero; a null entry of log_omega_se is that one not known. A residual SE of
// another error model is refused (it would be ignored; files of 0.17-0.18 have log_sigma_log_se null
// beside an additive model: accepted).
void read_population_errors(const json& j, const std::string& where, Eigen::Index k, PopulationModel& m) {
  if (const auto v = j.find("log_omega_se"); v != j.end() && !v->is_null()) {
    m.log_omega_se = number_vector(j, "log_omega_se", where, k, false);
    check_each(m.log_omega_se, "log_omega_se", where, [](double se) { return se >= 0; },
               "a standard error >= 0 of ln omega, or null (not known)");
  }
  const bool additive = has_additive_sd(m.error_model);
  for (const auto& [member, used] : {std::pair{"log_sigma_log_se", !additive},
                                     {"log_sigma0_se", additive},
                                     {"log_b_proportional_se", m.error_model == PopulationErrorModel::combined}})
    if (const auto v = j.find(member); !used && v != j.end() && !v->is_null())
      throw_input_error(where, member, v->is_number() ? format_number(v->get<double>()) : v->dump(),
                        "no " + std::string(member) + " with the " + to_string(m.error_model) +
                            " error model (a member of another error model would be ignored)");
  read_log_se(j, additive ? "log_b_proportional_se" : "log_sigma_log_se", where,
              additive ? "ln b_proportional" : "ln sigma_log", m.log_sigma_log_se);
  read_log_se(j, "log_sigma0_se", where, "ln sigma0_MBq", m.log_sigma0_se);
  read_correlation_se(j, where, k, m);
}

// The residual error of a model: error_model (absent: proportional, as every format-2 file), then
// sigma_log > 0 (proportional), or sigma0_MBq > 0 and b_proportional (>= 0 combined, 0 or absent
// constant). An additive model needs format_version 3 (lutdose 0.16 would read it as proportional).
// A residual error member of another error model than m's (sigma_log beside an additive model, sigma0_MBq
// or b_proportional beside a proportional or input one) is refused: it would be ignored (review of 0.17).
void refuse_other_error_members(const json& j, const std::string& w, PopulationErrorModel model) {
  const bool additive = has_additive_sd(model);
  for (const auto& [member, used] : {std::pair{"sigma_log", model == PopulationErrorModel::proportional},
                                     {"sigma0_MBq", additive}, {"b_proportional", additive}})
    if (const auto v = j.find(member); !used && v != j.end())
      throw_input_error(w, member, v->is_number() ? format_number(v->get<double>()) : v->dump(),
                        "no " + std::string(member) + " with the " + to_string(model) +
                            " error model (a member of another error model would be ignored)");
}

void read_error_model(const json& j, const std::string& w, int format_version, PopulationModel& m) {
  m.error_model = PopulationErrorModel::proportional;
  if (const auto e = j.find("error_model"); e != j.end()) {
    const auto model = e->is_string() ? parse_population_error_model(e->get<std::string>()) : std::nullopt;
    if (!model)
      throw_input_error(w, "error_model", e->dump(), "\"proportional\", \"combined\", \"constant\" or \"input\"");
    m.error_model = *model;
  }
  refuse_other_error_members(j, w, m.error_model);
  if (m.error_model == PopulationErrorModel::proportional) {
    m.sigma_log = finite_number(j, "sigma_log", w);
    if (!(m.sigma_log > 0)) throw_input_error(w, "sigma_log", format_number(m.sigma_log), "a relative SD > 0");
    return;
  }
  if (format_version < POPULATION_FORMAT_VERSION_ERROR_MODELS)
    throw_input_error(w, "error_model", to_string(m.error_model),
                      "proportional in a file of format_version " + std::to_string(format_version) + " (the " +
                          to_string(m.error_model) + " model needs format_version " +
                          std::to_string(POPULATION_FORMAT_VERSION_ERROR_MODELS) +
                          ": older lutdose versions would read it as proportional)");
  if (m.error_model == PopulationErrorModel::input) return;  // no parameter: each point's activity_u_MBq
  m.sigma0_MBq = finite_number(j, "sigma0_MBq", w);
  if (!(m.sigma0_MBq > 0))
    throw_input_error(w, "sigma0_MBq", format_number(m.sigma0_MBq), "an additive SD > 0 MBq");
  if (m.error_model == PopulationErrorModel::constant && !j.contains("b_proportional")) {
    m.sigma_log = 0;
    return;
  }
  m.sigma_log = finite_number(j, "b_proportional", w);
  if (m.error_model == PopulationErrorModel::combined && !(m.sigma_log >= 0))
    throw_input_error(w, "b_proportional", format_number(m.sigma_log), "a proportional coefficient >= 0");
  if (m.error_model == PopulationErrorModel::constant && m.sigma_log != 0)
    throw_input_error(w, "b_proportional", format_number(m.sigma_log), "0 (or absent) for the constant error model");
}

void read_estimates(const json& j, const std::string& w, Eigen::Index k, int format_version, PopulationModel& m);

PopulationModel read_model(const json& j, const std::string& where, int format_version) {
  PopulationModel m;
  const json& kind = member(j, "voi_kind", where);
  const json& fn = member(j, "function", where);
  if (!kind.is_string() || kind.get<std::string>().empty())
    throw_input_error(where, "voi_kind", kind.dump(), "a VOI kind (a VOI name, or tumour)");
  m.voi_kind = kind.get<std::string>();
  if (population_voi_kind(m.voi_kind) != m.voi_kind)  // tumour_1: no VOI has that kind
    throw_input_error(where, "voi_kind", m.voi_kind,
                      "a VOI kind: an organ VOI's name, or tumour for every tumour_*, tumor_* and lesion_* VOI (a "
                      "model of " + m.voi_kind + " would never be used)");
  const std::string w = where + " (" + m.voi_kind + ")";
  const auto* f = fn.is_string() ? models::find_exponential(fn.get<std::string>()) : nullptr;
  if (!f || !population_function_supported(f->id()))
    throw_input_error(w, "function", fn.dump(), "E1p, E1, E2u or E2");
  m.function = f->id();
  const Eigen::Index k = f->n_parameters();
  m.phi_names = population_parameter_names(*f);
  const json& names = member(j, "parameters", w);
  if (names != json(m.phi_names))
    throw_input_error(w, "parameters", names.dump(),
                      json(m.phi_names).dump() + ", the log parameters of " + m.function +
                          " with amplitudes per administered activity");
  read_estimates(j, w, k, format_version, m);
  return m;
}

// The estimates and figures of a model with K = `k` log parameters (after its kind, function and
// parameter names): theta, theta_se, Omega, the residual error, the population's own errors,
// shrinkage, the numbers of TACs and points and the estimator's figures.
void read_estimates(const json& j, const std::string& w, Eigen::Index k, int format_version, PopulationModel& m) {
  m.theta = number_vector(j, "theta", w, k, true);
  m.theta_se = number_vector(j, "theta_se", w, k, false);
  check_each(m.theta_se, "theta_se", w, [](double se) { return se > 0; }, "a standard error > 0, or null (not computed)");
  m.omega_structure = read_omega_structure(j, w);
  m.omega = read_omega(j, w, k, m.omega_structure);
  read_error_model(j, w, format_version, m);
  read_population_errors(j, w, k, m);
  m.shrinkage = number_vector(j, "shrinkage", w, k, false);
  // 1 - SD(eta_MAP) / omega^(1/2) (population.h) is at most 1; below 0 where the MAPs spread more
  // than omega (population learn writes such values, e.g. -8e-05). Learned, SD(eta_MAP) (divisor
  // n - 1) is about at most sqrt(n / (n - 1)) omega^(1/2) (the EM's omega: the MAPs' mean square
  // plus their posterior variance, divisor n), so shrinkage >= 1 - sqrt(2) = -0.41 even for 2 TACs;
  // below -1 (a spread twice omega's) the value is not a learned population's (review of 0.15)
  check_each(m.shrinkage, "shrinkage", w, [](double s) { return s >= -1 && s <= 1; },
             "a shrinkage from -1 to 1 (1 - SD(eta_MAP) / omega^(1/2): <= 1, and >= -1 as learned), or null "
             "(not computed)");
  m.n_patients = whole_number(j, "n_patients", w, 2);
  read_figures(j, w, m);
  if (m.n_observations < m.n_patients)  // every TAC learned from has a point
    throw_input_error(w, "n_observations", std::to_string(m.n_observations),
                      "at least n_patients (" + std::to_string(m.n_patients) + "): every TAC has a point");
}

// A string member of `j`, not empty.
std::string text_member(const json& j, const std::string& key, const std::string& where) {
  const json& v = member(j, key, where);
  if (!v.is_string() || v.get<std::string>().empty()) throw_input_error(where, key, v.dump(), "a non-empty string");
  return v.get<std::string>();
}

// A non-empty array of distinct non-empty strings.
std::vector<std::string> names_member(const json& j, const std::string& key, const std::string& where) {
  const json& v = member(j, key, where);
  std::vector<std::string> out;
  if (v.is_array())
    for (const auto& x : v)
      if (x.is_string() && !x.get<std::string>().empty() &&
          std::find(out.begin(), out.end(), x.get<std::string>()) == out.end())
        out.push_back(x.get<std::string>());
  if (!v.is_array() || v.empty() || out.size() != v.size())
    throw_input_error(where, key, v.dump(), "a non-empty array of distinct names");
  return out;
}

// A compartment population (format_version 4): structural_model and the one model of vois.
CompartmentPopulation read_compartment_population(const json& doc, const std::string& path) {
  const std::string w = path + ": structural_model";
  const json& sm = member(doc, "structural_model", path);
  if (text_member(sm, "kind", w) != "compartment") throw_input_error(w, "kind", sm.at("kind").dump(), "\"compartment\"");
  CompartmentPopulation c;
  c.model_name = text_member(sm, "model", w);
  c.model_sha256 = text_member(sm, "model_sha256", w);
  if (c.model_sha256.size() != 64 || c.model_sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw_input_error(w, "model_sha256", c.model_sha256, "the SHA-256 of the model file (64 lowercase hex digits)");
  c.free_parameters = names_member(sm, "free_parameters", w);
  c.observed_vois = names_member(sm, "observed_vois", w);
  const json& vois = doc.at("vois");
  if (vois.size() != 1) throw_input_error(path, "vois", std::to_string(vois.size()) + " entries", "1 (the compartment population)");
  const std::string where = path + ": vois[0]";
  const json& j = vois[0];
  auto& m = c.model;
  if (text_member(j, "voi_kind", where) != COMPARTMENT_POPULATION_KIND)
    throw_input_error(where, "voi_kind", j.at("voi_kind").dump(), "\"compartment\"");
  m.voi_kind = COMPARTMENT_POPULATION_KIND;
  m.function = "compartment:" + c.model_name;
  if (text_member(j, "function", where) != m.function)
    throw_input_error(where, "function", j.at("function").dump(), "\"" + m.function + "\" (structural_model.model)");
  for (const auto& n : c.free_parameters) m.phi_names.push_back("log_" + n);
  if (member(j, "parameters", where) != json(m.phi_names))
    throw_input_error(where, "parameters", j.at("parameters").dump(),
                      json(m.phi_names).dump() + ", the logs of structural_model.free_parameters");
  read_estimates(j, where, static_cast<Eigen::Index>(m.phi_names.size()), POPULATION_FORMAT_VERSION_COMPARTMENT, m);
  return c;
}

// True when the file has the member lutdose_sha256 and it matches the bytes before it (the file
// is as `population learn` wrote it), false when it has no such member (written or edited by
// hand, the member removed on purpose); InputError when the member does not match.
bool verify_own_checksum(const json& doc, const std::string& text, const std::string& path) {
  if (!doc.contains("lutdose_sha256")) return false;
  if (has_own_checksum(text)) return true;
  const json& v = doc.at("lutdose_sha256");
  throw_input_error(path, "lutdose_sha256", v.is_string() ? v.get<std::string>() : v.dump(),
                    "the SHA-256 of the file's bytes before it, as `lutdose population learn` wrote them: the file "
                    "was changed since (edited or damaged). Learn the population again with `lutdose population "
                    "learn`; to use a file changed on purpose, delete its lutdose_sha256 member (the results then "
                    "record the file as not verified)");
}

}  // namespace

namespace {

// What a learned population file records of how it was learned: the nuclide's half-life, the input
// (path, SHA-256 of its bytes), the options and the lutdose version.
void set_provenance(PopulationFile& p, const Nuclide& nuclide, const PopulationOptions& o, const std::string& input_path,
                    const std::string& input_bytes, const std::string& lutdose_version) {
  p.half_life_h = nuclide.half_life_h;
  p.input_path = input_path;
  p.input_sha256 = sha256_hex(input_bytes);
  p.options = o;
  p.lutdose_version = lutdose_version;
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
  set_provenance(p, nuclide, o, input_path, input_bytes, lutdose_version);
  return p;
}

CompartmentModelFile read_compartment_model_file(const std::string& name_or_path, const std::string& data_dir) {
  CompartmentModelFile f;
  f.path = find_compartment_model(name_or_path, data_dir);
  const std::string bytes = read_input_file(f.path, "compartment model", true);
  f.sha256 = sha256_hex(bytes);
  try {
    f.model = std::make_shared<const models::CompartmentModel>(models::CompartmentModel::from_string(bytes, f.path));
  } catch (const models::ModelError& e) {
    throw InputError(e.what());
  }
  return f;
}

PopulationFile learn_compartment_population_file(const CompartmentModelFile& model, const std::vector<TacSeries>& series,
                                                 const std::vector<double>& administered_MBq,
                                                 const std::string& data_dir, double half_life_override_h,
                                                 const PopulationOptions& o,
                                                 const std::vector<std::string>& free_parameters,
                                                 const std::string& input_path, const std::string& input_bytes,
                                                 const std::string& lutdose_version) {
  const Nuclide nuclide = load_nuclide(data_dir, "Lu-177", half_life_override_h);
  PopulationFile p;
  p.compartment = learn_compartment_population(*model.model, model.sha256,
                                               compartment_units(*model.model, series, administered_MBq),
                                               nuclide.lambda_per_h(), o, free_parameters, input_path);
  set_provenance(p, nuclide, o, input_path, input_bytes, lutdose_version);
  return p;
}

json to_json(const PopulationModel& m) {
  const json omega = rows_json(m.omega);
  json phi = json::array();
  for (const auto& n : m.phi_names) phi.push_back(n);
  // the residual error: sigma_log (proportional, as in format 2: no new member), or the additive
  // models' error_model, sigma0_MBq and b_proportional
  json error = {{"sigma_log", json_number(m.sigma_log)}};
  if (m.error_model == PopulationErrorModel::input)  // nothing estimated: each point's activity_u_MBq
    error = {{"error_model", to_string(m.error_model)}};
  else if (m.error_model != PopulationErrorModel::proportional)
    error = {{"error_model", to_string(m.error_model)}, {"sigma0_MBq", json_number(m.sigma0_MBq)},
             {"b_proportional", json_number(m.sigma_log)}};
  json out = {{"voi_kind", m.voi_kind}, {"function", m.function}, {"parameters", phi}, {"theta", numbers(m.theta)},
              {"theta_se", numbers(m.theta_se)}, {"omega", omega}};
  out.update(error);
  out.update(json{{"shrinkage", numbers(m.shrinkage)}, {"n_patients", m.n_patients}, {"n_observations", m.n_observations},
          {"minus2_log_likelihood", json_number(m.minus2_log_likelihood)}, {"aicc", json_number(m.aicc)},
          {"bic", json_number(m.bic)}, {"converged", m.converged}, {"iterations", m.iterations},
          {"e_step", m.e_step.empty() ? json(nullptr) : json(m.e_step)}, {"candidates", candidates_json(m)}});
  // the population's own estimation error (0.17): written where known, so a model without it (read
  // from an older file) is written as it was read
  if (m.log_omega_se.size() == m.theta.size()) {
    out["log_omega_se"] = numbers(m.log_omega_se);
    if (m.error_model == PopulationErrorModel::combined) out["log_b_proportional_se"] = json_number(m.log_sigma_log_se);
    if (has_additive_sd(m.error_model))
      out["log_sigma0_se"] = json_number(m.log_sigma0_se);
    else
      out["log_sigma_log_se"] = json_number(m.log_sigma_log_se);
  }
  // only for a full Omega (read_omega_structure: absent is diagonal): a diagonal model's JSON as before
  if (m.omega_structure == "full") out["omega_structure"] = "full";
  // the SEs of a full Omega's correlations (0.20): written where known, as log_omega_se
  if (m.omega_structure == "full" && m.omega_correlation_se.rows() == m.theta.size() &&
      m.omega_correlation_se.cols() == m.theta.size()) {
    out["omega_correlation_se"] = rows_json(m.omega_correlation_se);
  }
  return out;
}

std::string case_files_sha256(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string lines;
  for (const auto& [name, sha] : files) lines += sha + "  " + name + "\n";
  return sha256_hex(lines);
}

json population_vois_json(const std::vector<PopulationModel>& models) {
  json vois = json::array();
  for (const auto& m : models) vois.push_back(to_json(m));
  return vois;
}

std::string population_models_sha256(const std::vector<PopulationModel>& models) {
  return sha256_hex(population_vois_json(models).dump());
}

std::string check_compartment_learning(const CompartmentModelFile& model, const std::vector<TacSeries>& series,
                                       const std::vector<std::string>& free_parameters, const std::string& named_in) {
  compartment_free_parameters(*model.model, free_parameters, named_in, model.path);
  return unobserved_vois_note(*model.model, series);
}

void use_learned_population(RunOptions& o, const std::vector<TacSeries>& series,
                            const std::vector<double>& administered_MBq, const std::string& tac_path,
                            unsigned threads, std::vector<std::string>* notes) {
  PopulationOptions po = o.population_learning;
  po.threads = threads;
  // the input's bytes are not recorded (no population file is written): the results name the input
  if (!o.compartment_model.empty()) {  // --kinetics population --model: as population learn --model
    const auto model = read_compartment_model_file(o.compartment_model, o.data_dir);
    auto note = check_compartment_learning(model, series, o.population_free_parameters, o.population_free_parameters_name);
    if (notes && !note.empty()) notes->push_back(std::move(note));
    auto p = learn_compartment_population_file(model, series, administered_MBq, o.data_dir, o.half_life_override_h,
                                               po, o.population_free_parameters, tac_path, "", "");
    use_compartment_population(o, std::move(*p.compartment), model);
    return;
  }
  auto models = learn_population_file(series, administered_MBq, o.data_dir, o.half_life_override_h, po, tac_path,
                                      "", "")
                    .models;
  use_population_models(o, std::move(models));
}

void use_compartment_population(RunOptions& o, CompartmentPopulation c, const CompartmentModelFile& model) {
  o.population_source = {};
  o.population_source.learning = o.population_learning;
  o.population_source.learning->candidates.clear();  // the structural model is the compartment model
  o.population_source.vois_sha256 = population_models_sha256({c.model});
  o.compartment_model = model.path;
  o.compartment_model_file = model.model;
  o.compartment_population = std::make_shared<const CompartmentPopulation>(std::move(c));
}

nlohmann::ordered_json population_learning_json(const PopulationOptions& o) {
  nlohmann::ordered_json j;
  if (!o.candidates.empty()) j["candidates"] = o.candidates;
  j["error_model"] = to_string(o.error_model);
  j["omega_structure"] = omega_structure_name(o.omega_structure);
  j["e_step"] = o.sampled_e_step ? "sampled" : "laplace";
  j["max_iterations"] = o.max_iterations;
  return j;
}

void use_population_models(RunOptions& o, std::vector<PopulationModel> models) {
  o.population_source = {};
  o.population_source.learning = o.population_learning;
  o.population_source.vois_sha256 = population_models_sha256(models);
  o.population = std::make_shared<const std::vector<PopulationModel>>(std::move(models));
}

nlohmann::ordered_json structural_model_json(const CompartmentPopulation& c) {
  return {{"kind", "compartment"}, {"model", c.model_name}, {"model_sha256", c.model_sha256},
          {"free_parameters", c.free_parameters}, {"observed_vois", c.observed_vois}};
}

std::vector<PopulationModel> population_models_of(const RunOptions& o) {
  std::vector<PopulationModel> models;
  if (o.population) models = *o.population;
  if (o.compartment_population) models.push_back(o.compartment_population->model);
  return models;
}

std::string population_file_text(const PopulationFile& p) {
  const auto models = p.compartment ? std::vector<PopulationModel>{p.compartment->model} : p.models;
  const json vois = population_vois_json(models);
  const bool additive = std::any_of(models.begin(), models.end(), [](const PopulationModel& m) {
    return m.error_model != PopulationErrorModel::proportional;
  });
  json input = {{"path", p.input_path}, {"sha256", p.input_sha256}};
  if (!p.input_kind.empty()) input["kind"] = p.input_kind;
  if (!p.case_files.empty()) {
    json files = json::array();
    for (const auto& [name, sha] : p.case_files) files.push_back({{"name", name}, {"sha256", sha}});
    input["kind"] = "case-files";
    input["sha256_of"] = "the lines 'SHA256  NAME' of the case files in name order, as sha256sum prints them";
    input["case_files"] = files;
  }
  if (!p.patients_path.empty()) input["patients"] = {{"path", p.patients_path}, {"sha256", p.patients_sha256}};
  json doc = {
      {"format", POPULATION_FORMAT},
      {"format_version", additive ? POPULATION_FORMAT_VERSION_ERROR_MODELS : POPULATION_FORMAT_VERSION},
      {"lutdose_version", p.lutdose_version},
      {"estimator", "Lindstrom-Bates alternating algorithm: MAP per patient (Levenberg-Marquardt), EM step of the "
                    "linearised mixed model; candidates compared by BIC with the Laplace E-step; the chosen one "
                    "refined by the EM with importance-sampled posterior moments where e_step is \"sampled\"; "
                    "-2 log L by the Laplace approximation (FOCE); docs/methods.md §10"},
      {"error_model", additive ? "per VOI kind (vois[].error_model): combined, on the linear scale: A ~ N(f, "
                                 "sigma0_MBq^2 + (b_proportional f)^2); constant: the same with b_proportional 0; "
                                 "input: A ~ N(f, activity_u_MBq^2), each point's own; proportional (no error_model "
                                 "member), on the log scale: ln A ~ N(ln f, sigma_log^2)"
                               : "proportional, on the log scale: ln A ~ N(ln f, sigma_log^2)"},
      {"random_effects", p.options.omega_structure == OmegaStructure::full
                             ? "log-normal, phi = theta + eta, eta ~ N(0, omega), omega full (variances and "
                               "covariances; omega_structure of each VOI kind)"
                             : "log-normal, phi = theta + eta, eta ~ N(0, omega), omega diagonal"},
      {"amplitudes", std::string(AMPLITUDES_PER_ADMINISTERED) +
                         ": A_j / A0, A0 the TAC's administered activity (log_A1_per_administered, ...)"},
      {"half_life_h", p.half_life_h},
      {"input", input},
      {"options", {{"candidates", p.options.candidates}, {"selection", "lowest BIC"},
                   {"max_iterations", p.options.max_iterations}, {"tolerance", p.options.tolerance},
                   {"objective_tolerance", p.options.objective_tolerance},
                   {"plateau_iterations", p.options.plateau_iterations},
                   {"plateau_improvement", p.options.plateau_improvement},
                   {"e_step", p.options.sampled_e_step ? "sampled" : "laplace"},
                   {"omega_structure", omega_structure_name(p.options.omega_structure)}}},
      {"vois", vois}};
  if (additive) doc["options"]["error_model"] = to_string(p.options.error_model);
  if (p.compartment) {
    doc["format_version"] = POPULATION_FORMAT_VERSION_COMPARTMENT;
    doc["structural_model"] = structural_model_json(*p.compartment);
    doc["amplitudes"] = std::string(AMPLITUDES_PER_ADMINISTERED) +
                        ": the compartment model is simulated with each unit's administered activity A0, and the "
                        "population models A / A0";
    doc["options"].erase("candidates");
    doc["options"]["selection"] = "the structural model given (population learn --model)";
  }
  return with_own_checksum(doc.dump(2));
}

bool is_population_file_text(const std::string& text) {
  if (text.find(POPULATION_FORMAT) == std::string::npos) return false;  // spares parsing a case file
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  return doc.is_object() && doc.contains("format") && doc["format"] == POPULATION_FORMAT;
}

PopulationFile read_population_file(const std::string& path) {
  const std::string text = read_input_file(path, "population file", true);
  nlohmann::json parsed;
  if (const std::string problem = models::parse_json_checked(text, parsed); !problem.empty())
    throw InputError(path + ": " + problem + "; expected a population file of `lutdose population learn`");
  const json doc(parsed);
  if (!doc.is_object())
    throw_input_error(path, "the content", "not a JSON object", "a population file of `lutdose population learn`");
  const json& format = member(doc, "format", path);
  if (format != POPULATION_FORMAT) throw_input_error(path, "format", format.dump(), "\"lutdose-population\"");
  const json& version = member(doc, "format_version", path);
  if (version == 1)
    throw_input_error(path, "format_version", version.dump(),
                      std::to_string(POPULATION_FORMAT_VERSION) + " (version 1 has amplitudes in MBq, not per "
                      "administered activity: learn the population again with lutdose population learn --patients)");
  if (version != POPULATION_FORMAT_VERSION && version != POPULATION_FORMAT_VERSION_ERROR_MODELS &&
      version != POPULATION_FORMAT_VERSION_COMPARTMENT)
    throw_input_error(path, "format_version", version.dump(),
                      std::to_string(POPULATION_FORMAT_VERSION) + ", " +
                          std::to_string(POPULATION_FORMAT_VERSION_ERROR_MODELS) + " or " +
                          std::to_string(POPULATION_FORMAT_VERSION_COMPARTMENT));
  PopulationFile p;
  p.sha256 = sha256_hex(text);
  p.own_checksum_verified = verify_own_checksum(doc, text, path);
  const json& amplitudes = member(doc, "amplitudes", path);
  if (!amplitudes.is_string() || amplitudes.get<std::string>().rfind(AMPLITUDES_PER_ADMINISTERED, 0) != 0)
    throw_input_error(path, "amplitudes", amplitudes.dump(),
                      "\"" + std::string(AMPLITUDES_PER_ADMINISTERED) + ": ...\" (format 2 models amplitudes per "
                      "administered activity)");
  p.half_life_h = finite_number(doc, "half_life_h", path);
  if (!(p.half_life_h > 0))
    throw_input_error(path, "half_life_h", format_number(p.half_life_h), "a half-life > 0 [h]");
  const json& vois = member(doc, "vois", path);
  if (!vois.is_array() || vois.empty()) throw_input_error(path, "vois", vois.dump(), "a non-empty array");
  if (version == POPULATION_FORMAT_VERSION_COMPARTMENT) {
    if (!doc.contains("structural_model"))
      throw_input_error(path, "format_version", version.dump(),
                        std::to_string(POPULATION_FORMAT_VERSION) + " or " +
                            std::to_string(POPULATION_FORMAT_VERSION_ERROR_MODELS) +
                            " for populations of the exponential family (" +
                            std::to_string(POPULATION_FORMAT_VERSION_COMPARTMENT) +
                            " is a compartment population's, with a member structural_model)");
    p.compartment = read_compartment_population(doc, path);
    if (p.own_checksum_verified && p.compartment->model.e_step.empty()) p.compartment->model.e_step = "laplace";
    return p;
  }
  if (doc.contains("structural_model"))
    throw_input_error(path, "format_version", version.dump(),
                      std::to_string(POPULATION_FORMAT_VERSION_COMPARTMENT) + " with a member structural_model");
  std::set<std::string> kinds;
  for (size_t i = 0; i < vois.size(); ++i) {
    p.models.push_back(read_model(vois[i], path + ": vois[" + std::to_string(i) + "]", version.get<int>()));
    if (!kinds.insert(p.models.back().voi_kind).second)
      throw_input_error(path + ": vois[" + std::to_string(i) + "]", "voi_kind", p.models.back().voi_kind,
                        "each VOI kind once");
    if (p.own_checksum_verified && p.models.back().e_step.empty()) p.models.back().e_step = "laplace";
  }
  return p;
}

void check_compartment_population_model(const CompartmentPopulation& c, const std::string& path,
                                        const models::CompartmentModel& model, const std::string& model_path,
                                        const std::string& model_sha256) {
  if (model.name() != c.model_name)
    throw_input_error(path, "structural_model.model", c.model_name,
                      "the model given, " + model.name() + " (" + model_path + "): the population was learned with " +
                          c.model_name);
  if (model_sha256 != c.model_sha256)
    throw_input_error(path, "structural_model.model_sha256", c.model_sha256,
                      model_sha256 + ", the SHA-256 of the model file " + model_path +
                          " (the population was learned with another version of the model file: learn it again, "
                          "or give the model file it was learned with)");
  for (const auto& n : c.free_parameters)
    if (model.parameter_index(n) < 0)
      throw_input_error(path, "structural_model.free_parameters", n, "a parameter of the model " + model_path);
  if (c.observed_vois != model.observation_names())  // a record of the model's: checked, not ignored (review of 0.18)
    throw_input_error(path, "structural_model.observed_vois", nlohmann::json(c.observed_vois).dump(),
                      nlohmann::json(model.observation_names()).dump() + ", the VOIs the model " + model_path +
                          " observes");
}

void check_population_half_life(const PopulationFile& p, const std::string& path, double half_life_h) {
  if (std::abs(p.half_life_h - half_life_h) <= 1e-9 * std::abs(half_life_h)) return;
  throw_input_error(path, "half_life_h", format_number(p.half_life_h),
                    format_number(half_life_h) + " h, the half-life of this run (the population was learned with "
                                                 "another half-life: same --half-life-h and --data-dir as for learning)");
}

namespace {

// "tacs.csv, 12 patients: P1, P2, P3, P4, P5, ..." (the first five ids in order); the table
// alone for a table without a patient column (the one id "").
std::string table_and_patients(const std::string& table, const std::set<std::string>& ids) {
  if (ids.empty() || (ids.size() == 1 && ids.begin()->empty())) return table;
  std::string text = table + ", " + std::to_string(ids.size()) + (ids.size() == 1 ? " patient: " : " patients: ");
  size_t n = 0;
  for (const auto& id : ids) {
    if (n == 5) return text + ", ...";
    text += (n++ ? ", " : "") + id;
  }
  return text;
}

}  // namespace

void check_population_covers(const std::vector<PopulationModel>& models, const std::string& path,
                             const VoiPatients& vois, const std::string& table) {
  // the VOIs and patients of each kind the file lacks, in the order of the kinds' names
  std::map<std::string, std::pair<std::vector<std::string>, std::set<std::string>>> missing;
  for (const auto& [voi, patients] : vois) {
    if (find_population_model(models, voi)) continue;
    auto& m = missing[population_voi_kind(voi)];
    m.first.push_back(voi);
    m.second.insert(patients.begin(), patients.end());
  }
  if (missing.empty()) return;
  const auto& [kind, what] = *missing.begin();
  std::string names, have;
  for (const auto& v : what.first) names += (names.empty() ? "" : ", ") + v;
  for (const auto& m : models) have += (have.empty() ? "" : ", ") + m.voi_kind;
  throw_input_error(path, "the VOI kind of " + names + " (" + table_and_patients(table, what.second) + ")", kind,
                    "a VOI kind of the population file: " + have);
}

void check_population_covers(const std::vector<PopulationModel>& models, const std::string& path,
                             const std::vector<TacSeries>& series, const std::string& table) {
  VoiPatients vois;
  for (const auto& s : series) vois[s.voi].insert(s.patient);
  check_population_covers(models, path, vois, table);
}

void check_population_uncertainties(const std::vector<PopulationModel>& models, const std::string& path,
                                    const std::vector<std::string>& vois, const std::vector<std::string>& header,
                                    const std::string& table) {
  if (std::find(header.begin(), header.end(), "activity_u_MBq") != header.end()) return;
  for (const auto& voi : vois)
    if (const auto* m = find_population_model(models, voi); m && m->error_model == PopulationErrorModel::input)
      throw_input_error(table, "column activity_u_MBq", "missing",
                        "each point's standard uncertainty: the population file " + path + " models the VOI kind '" +
                            m->voi_kind + "' (VOI " + voi + ") with the input error model (each point's SD is its "
                            "activity_u_MBq)");
}

}  // namespace lutdose
