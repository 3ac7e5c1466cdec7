#include "lutdose/planning/planning.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "lutdose/io/csv.h"
#include "lutdose/error.h"
#include "lutdose/io/input_file.h"
namespace lutdose {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

//! Numbers in the reasoning: 4 significant digits, whole numbers from 1000 up.
std::string fmt(double x) {
  if (std::isnan(x)) return "n/a";
  if (std::isinf(x)) return x > 0 ? "unbounded" : "-unbounded";
  char buf[48];
  if (std::fabs(x) >= 1000)
    std::snprintf(buf, sizeof buf, "%.0f", x);
  else
    std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

std::string percent(double p) {
  if (std::isnan(p)) return "n/a";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.4g %%", 100.0 * p);
  return buf;
}

//! "P(exceed) = 15.87 %", or "P(exceed) < 0.0001 %" for tiny values.
std::string p_exceed_text(double p) {
  if (p > 0 && p < 1e-6) return "P(exceed) < 0.0001 %";
  return "P(exceed) = " + percent(p);
}

std::string join(const std::vector<std::string>& parts, const std::string& sep = ", ") {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? sep : "") + parts[i];
  return s;
}

//! 1 - Phi(z), the upper tail of the standard normal distribution.
double upper_tail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

//! Dose per activity of a delivered cycle [Gy/GBq].
double gy_per_gbq(const CycleRecord& c) { return c.dose_Gy / (c.administered_MBq / 1000.0); }

//! The cycle dose x >= 0 whose BED is b: x + G x^2/(a/b) = b (0 for b <= 0). The root
//! (a/b)(-1 + sqrt(1 + 4 G b/(a/b)))/(2 G), written as 2 b/(1 + sqrt(1 + 4 G b/(a/b))) so that
//! it stays exact as G -> 0 (no cancellation).
double dose_for_bed(double bed_Gy, double g, double alpha_beta_Gy) {
  if (!(bed_Gy > 0)) return 0.0;
  return 2.0 * bed_Gy / (1.0 + std::sqrt(1.0 + 4.0 * g * bed_Gy / alpha_beta_Gy));
}

//! The best match of a name among patterns: an exact pattern first, else the longest "x*".
template <class Item, class PatternOf>
const Item* best_match(const std::vector<const Item*>& items, PatternOf pattern_of,
                       const std::string& name) {
  const Item* best = nullptr;
  size_t best_len = 0;
  for (const Item* it : items) {
    const std::string& p = pattern_of(*it);
    if (p == name) return it;
    if (target_matches(p, name) && (best == nullptr || p.size() > best_len)) {
      best = it;
      best_len = p.size();
    }
  }
  return best;
}

std::string describe_limit(const Limit& l) {
  return "'" + l.target_pattern + "' " + l.quantity + " " + fmt(l.value) + " Gy" +
         (l.source.empty() ? "" : " (" + l.source + ")");
}

void check_options(const PlanOptions& o) {
  const std::string w = "plan options";
  auto finite_ge = [&](double x, double lo, const std::string& field, const std::string& expected) {
    if (!(std::isfinite(x) && x >= lo)) throw_input_error(w, field, format_number(x), expected);
  };
  if (o.planned_cycles < 1)
    throw_input_error(w, "planned_cycles", std::to_string(o.planned_cycles), "a whole number >= 1");
  finite_ge(o.a_min_MBq, 0, "a_min_MBq", "a finite activity >= 0 MBq");
  finite_ge(o.a_max_MBq, o.a_min_MBq, "a_max_MBq",
            "a finite activity >= a_min_MBq (" + format_number(o.a_min_MBq) + " MBq)");
  if (!(std::isfinite(o.a_standard_MBq) && o.a_standard_MBq > 0))
    throw_input_error(w, "a_standard_MBq", format_number(o.a_standard_MBq), "a finite activity > 0 MBq");
  finite_ge(o.safety_k, 0, "safety_k", "a finite number >= 0");
  finite_ge(o.prediction_cv, 0, "prediction_cv", "a finite relative uncertainty >= 0");
  for (const auto& l : o.limits) {
    const std::string wl = w + ", limit '" + l.target_pattern + "'";
    if (l.target_pattern.empty()) throw_input_error(wl, "target_pattern", "", "a target name or 'name*'");
    if (l.quantity != "dose_Gy" && l.quantity != "bed_Gy")
      throw_input_error(wl, "quantity", l.quantity, "dose_Gy or bed_Gy");
    if (!(std::isfinite(l.value) && l.value > 0))
      throw_input_error(wl, "value", format_number(l.value), "a finite limit > 0 Gy");
  }
  for (const auto& p : o.priors) {
    const std::string wp = w + ", prior '" + p.target_pattern + "'";
    if (!(std::isfinite(p.mean_Gy_per_GBq) && p.mean_Gy_per_GBq > 0))
      throw_input_error(wp, "mean_Gy_per_GBq", format_number(p.mean_Gy_per_GBq), "a finite number > 0");
    if (!(std::isfinite(p.sd_Gy_per_GBq) && p.sd_Gy_per_GBq > 0))
      throw_input_error(wp, "sd_Gy_per_GBq", format_number(p.sd_Gy_per_GBq), "a finite number > 0");
  }
}

//! Checks the history; returns the administered activity per cycle number.
std::map<int, double> check_history(const std::vector<TargetHistory>& history) {
  if (history.empty())
    throw_input_error("plan: dose history", "the number of targets", "0",
                      "at least one target with its delivered cycles");
  std::set<std::string> names;
  std::map<int, std::pair<double, std::string>> admin;  // cycle -> (MBq, first target giving it)
  for (const auto& h : history) {
    const std::string w = "plan: dose history, target '" + h.target + "'";
    if (h.target.empty()) throw_input_error("plan: dose history", "a target name", "", "a non-empty name");
    if (!names.insert(h.target).second) throw_input_error(w, "the target", h.target, "each target once");
    int previous = 0;
    for (const auto& c : h.cycles) {
      if (c.cycle <= previous)
        throw_input_error(w, "cycle", std::to_string(c.cycle),
                          previous == 0 ? std::string("a whole number >= 1")
                                        : "cycles strictly increasing (after " + std::to_string(previous) + ")");
      previous = c.cycle;
      const std::string wc = w + ", cycle " + std::to_string(c.cycle);
      if (!(std::isfinite(c.administered_MBq) && c.administered_MBq > 0))
        throw_input_error(wc, "administered_MBq", format_number(c.administered_MBq), "a finite activity > 0 MBq");
      if (!(std::isfinite(c.dose_Gy) && c.dose_Gy >= 0))
        throw_input_error(wc, "dose_Gy", format_number(c.dose_Gy), "a finite dose >= 0 Gy");
      if (!std::isnan(c.bed_Gy) && !(std::isfinite(c.bed_Gy) && c.bed_Gy >= c.dose_Gy))
        throw_input_error(wc, "bed_Gy", format_number(c.bed_Gy),
                          "a finite BED >= dose_Gy (" + format_number(c.dose_Gy) + " Gy), or none");
      if (!std::isnan(c.g) && !(c.g >= 0 && c.g <= 1))
        throw_input_error(wc, "g", format_number(c.g), "a G factor in [0, 1], or none");
      if (!std::isnan(c.t_eff_h) && !(std::isfinite(c.t_eff_h) && c.t_eff_h > 0))
        throw_input_error(wc, "t_eff_h", format_number(c.t_eff_h), "a finite half-life > 0 h, or none");
      const auto [it, inserted] = admin.emplace(c.cycle, std::make_pair(c.administered_MBq, h.target));
      if (!inserted && std::fabs(it->second.first - c.administered_MBq) > 1e-9 * it->second.first)
        throw_input_error(wc, "administered_MBq", format_number(c.administered_MBq),
                          "the activity of cycle " + std::to_string(c.cycle) + " given for target '" +
                              it->second.second + "' (" + format_number(it->second.first) +
                              " MBq): one administered activity per cycle");
    }
  }
  std::map<int, double> out;
  for (const auto& [cycle, a] : admin) out[cycle] = a.first;
  return out;
}

//! Working state of one limited target.
struct Work {
  const TargetHistory* h = nullptr;
  std::vector<const Limit*> limits;        // all matching limits
  const Limit* dose_limit = nullptr;       // strictest dose limit
  const Limit* bed_limit = nullptr;        // strictest BED limit
  const TissueParameters* tissue = nullptr;
  std::string method;                      // prediction method with its inputs
  double d = kNaN, u = kNaN, d_safe = kNaN;  // [Gy/GBq]
  double sum_dose = 0, sum_bed = kNaN;       // delivered [Gy]
  double g = kNaN;                           // G of the planned cycle
  std::string g_from;
  bool use_dose = false, use_bed = false;    // limits applied by the strategy
  double a_dose = kInf, a_bed = kInf;        // activity each applied limit allows [MBq]
  std::string incomplete;                    // what the delivered doses lack (joined), empty if complete
  std::string note;                          // their minor omissions (joined), empty if none
  double remaining_dose() const { return dose_limit ? dose_limit->value - sum_dose : kNaN; }
  double remaining_bed() const { return bed_limit ? bed_limit->value - sum_bed : kNaN; }
  double alpha_beta() const { return tissue ? tissue->alpha_beta_Gy : kNaN; }
};

//! The distinct non-empty texts of one CycleRecord field (incomplete or note) of a target, joined.
std::string distinct_of(const TargetHistory& h, std::string CycleRecord::*field) {
  std::vector<std::string> seen;
  for (const auto& c : h.cycles)
    if (!(c.*field).empty() && std::find(seen.begin(), seen.end(), c.*field) == seen.end())
      seen.push_back(c.*field);
  return join(seen, "; ");
}

//! G of a delivered cycle from its record: g, else t_eff_h with the tissue's T_rep.
double record_g(const CycleRecord& c, const TissueParameters* t) {
  if (!std::isnan(c.g)) return c.g;
  if (!std::isnan(c.t_eff_h) && t && t->repair_half_time_h > 0)
    return g_mono_exponential(c.t_eff_h, t->repair_half_time_h);
  return kNaN;
}

//! BED of a delivered cycle: bed_Gy, else from dose_Gy and G.
double record_bed(const CycleRecord& c, const TissueParameters* t) {
  if (!std::isnan(c.bed_Gy)) return c.bed_Gy;
  const double g = record_g(c, t);
  if (!std::isnan(g) && t && t->alpha_beta_Gy > 0) return bed_from_dose(c.dose_Gy, g, t->alpha_beta_Gy);
  return kNaN;
}

void predict(Work& w, const PlanOptions& o, const std::vector<const PopulationPrior*>& priors) {
  const auto& cycles = w.h->cycles;
  const std::string where = "plan: target '" + w.h->target + "'";
  const double cv = o.prediction_cv;
  if (o.prediction == Prediction::bayes) {
    const PopulationPrior* prior =
        best_match(priors, [](const PopulationPrior& p) -> const std::string& { return p.target_pattern; },
                   w.h->target);
    if (!prior)
      throw_input_error(where, "the population prior", "missing",
                        "a prior matching the target (data/radiobiology/population_gy_per_gbq.csv) "
                        "for the bayes prediction");
    // Normal-normal update: prior N(m, s^2); each cycle's d_j observed with SD cv d_j.
    double precision = 1.0 / (prior->sd_Gy_per_GBq * prior->sd_Gy_per_GBq);
    double weighted = prior->mean_Gy_per_GBq * precision;
    std::vector<std::string> seen;
    for (const auto& c : cycles) {
      const double dj = gy_per_gbq(c), sj = cv * dj;
      if (!(sj > 0))
        throw_input_error(where + ", cycle " + std::to_string(c.cycle),
                          "the SD of the observed Gy/GBq (prediction_cv x d)", format_number(sj),
                          "> 0 for the bayes prediction (prediction_cv > 0 and dose_Gy > 0)");
      precision += 1.0 / (sj * sj);
      weighted += dj / (sj * sj);
      seen.push_back(fmt(dj));
    }
    w.d = weighted / precision;
    w.u = 1.0 / std::sqrt(precision);
    w.method = "bayes (prior " + fmt(prior->mean_Gy_per_GBq) + " +- " + fmt(prior->sd_Gy_per_GBq) +
               " Gy/GBq for '" + prior->target_pattern + "'" +
               (prior->source.empty() ? "" : " [" + prior->source + "]") + " updated with " +
               std::to_string(cycles.size()) + " cycle(s)" +
               (seen.empty() ? "" : " of " + join(seen) + " Gy/GBq") + " at CV " + percent(cv) + ")";
    return;
  }
  if (cycles.empty())
    throw_input_error(where, "the delivered cycles", "none",
                      "at least one cycle for the '" + to_string(o.prediction) +
                          "' prediction (or the bayes prediction with a population prior)");
  if (o.prediction == Prediction::previous) {
    const CycleRecord& c = cycles.back();
    w.d = gy_per_gbq(c);
    w.method = "previous (cycle " + std::to_string(c.cycle) + ": " + fmt(c.dose_Gy) + " Gy / " +
               fmt(c.administered_MBq / 1000.0) + " GBq)";
  } else {
    double s = 0;
    std::vector<std::string> seen;
    for (const auto& c : cycles) {
      s += gy_per_gbq(c);
      seen.push_back(fmt(gy_per_gbq(c)));
    }
    w.d = s / static_cast<double>(cycles.size());
    w.method = "mean (of " + join(seen) + " Gy/GBq over " + std::to_string(cycles.size()) + " cycle(s))";
  }
  w.u = cv * w.d;
}

//! Sums of delivered dose and BED, and G of the planned cycle; errors if a BED limit lacks inputs.
void budgets(Work& w) {
  const auto& cycles = w.h->cycles;
  const std::string where = "plan: target '" + w.h->target + "'";
  const TissueParameters* t = w.tissue;
  w.sum_dose = 0;
  for (const auto& c : cycles) w.sum_dose += c.dose_Gy;
  if (w.bed_limit) {
    const std::string why = "for the BED limit " + describe_limit(*w.bed_limit);
    if (!t) throw_input_error(where, "the tissue parameters", "missing", "alpha/beta (and T_rep) " + why);
    if (!(std::isfinite(t->alpha_beta_Gy) && t->alpha_beta_Gy > 0))
      throw_input_error(where, "alpha_beta_Gy", format_number(t->alpha_beta_Gy), "a finite number > 0 Gy " + why);
  }
  // Delivered BED.
  double sum_bed = 0;
  for (const auto& c : cycles) {
    const double b = record_bed(c, t);
    if (std::isnan(b) && w.bed_limit) {
      const std::string wc = where + ", cycle " + std::to_string(c.cycle);
      const std::string why = " for the BED limit " + describe_limit(*w.bed_limit);
      if (!std::isnan(c.t_eff_h))  // t_eff_h given, but no T_rep to turn it into G
        throw_input_error(wc, "the tissue's repair_half_time_h", format_number(t->repair_half_time_h),
                          "a repair half-time > 0 h to compute G from t_eff_h" + why);
      throw_input_error(wc, "bed_Gy, g and t_eff_h", "missing", "one of them to compute the cycle's BED" + why);
    }
    sum_bed += b;
  }
  w.sum_bed = sum_bed;
  // G of the planned cycle: that of the latest cycle that gives one.
  for (auto it = cycles.rbegin(); it != cycles.rend() && std::isnan(w.g); ++it) {
    const std::string cyc = "cycle " + std::to_string(it->cycle);
    if (!std::isnan(it->g)) {
      w.g = it->g;
      w.g_from = cyc + "'s g";
    } else if (!std::isnan(it->t_eff_h) && t && t->repair_half_time_h > 0) {
      w.g = g_mono_exponential(it->t_eff_h, t->repair_half_time_h);
      w.g_from = cyc + "'s t_eff_h " + fmt(it->t_eff_h) + " h with T_rep " + fmt(t->repair_half_time_h) +
                 " h (G = lambda/(lambda + mu))";
    } else if (!std::isnan(it->bed_Gy) && it->dose_Gy > 0 && t && t->alpha_beta_Gy > 0) {
      w.g = (it->bed_Gy - it->dose_Gy) * t->alpha_beta_Gy / (it->dose_Gy * it->dose_Gy);
      w.g_from = cyc + "'s bed_Gy and dose_Gy (G = (BED - D) (alpha/beta)/D^2)";
    }
  }
  if (std::isnan(w.g) && w.bed_limit)
    throw_input_error(where, "the G factor of the next cycle", "missing",
                      "a delivered cycle with g, t_eff_h (and T_rep) or bed_Gy for the BED limit " +
                          describe_limit(*w.bed_limit));
}

//! P(cumulative dose > limit): d ~ N(d_hat, u^2), cycle dose d A.
double p_exceed_dose(double remaining_Gy, double d, double u, double a_GBq) {
  const double mean = d * a_GBq, sd = u * a_GBq;
  if (!(sd > 0)) return mean > remaining_Gy ? 1.0 : 0.0;
  return upper_tail((remaining_Gy - mean) / sd);
}

//! P(cumulative BED > limit): the BED budget is passed when d > d*, d* A the dose whose BED is
//! the remaining budget.
double p_exceed_bed(double remaining_bed_Gy, double d, double u, double a_GBq, double g, double ab) {
  if (!(a_GBq > 0)) return remaining_bed_Gy < 0 ? 1.0 : 0.0;
  const double d_star = dose_for_bed(remaining_bed_Gy, g, ab) / a_GBq;
  if (!(u > 0)) return d > d_star ? 1.0 : 0.0;
  return upper_tail((d_star - d) / u);
}


//! A strictly parsed whole number >= 1.
int parse_cycle(const std::string& text, const std::string& where) {
  double x;
  if (!parse_double(text, x) || !(x >= 1 && x <= static_cast<double>(MAX_CYCLE_NUMBER)) || x != std::floor(x))
    throw_input_error(where, "cycle", text, "a whole number from 1 to " + std::to_string(MAX_CYCLE_NUMBER));
  return static_cast<int>(x);
}

double parse_number(const std::string& text, const std::string& where, const std::string& field,
                    double lo, bool lo_inclusive, const std::string& expected) {
  double x;
  if (!parse_double(text, x) || !std::isfinite(x) || (lo_inclusive ? x < lo : x <= lo))
    throw_input_error(where, field, text, expected);
  return x;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string to_string(Prediction p) {
  switch (p) {
    case Prediction::previous: return "previous";
    case Prediction::mean: return "mean";
    case Prediction::bayes: return "bayes";
  }
  return "?";
}

std::string to_string(Strategy s) {
  switch (s) {
    case Strategy::equal_split: return "equal-split";
    case Strategy::fixed_until_limit: return "fixed-until-limit";
    case Strategy::max_bed: return "max-bed";
  }
  return "?";
}

Prediction parse_prediction(const std::string& s) {
  if (s == "previous") return Prediction::previous;
  if (s == "mean") return Prediction::mean;
  if (s == "bayes") return Prediction::bayes;
  throw_input_error("--prediction", "the prediction", s, "previous, mean or bayes");
}

Strategy parse_strategy(const std::string& s) {
  std::string t = s;
  std::replace(t.begin(), t.end(), '_', '-');
  if (t == "equal-split") return Strategy::equal_split;
  if (t == "fixed-until-limit") return Strategy::fixed_until_limit;
  if (t == "max-bed") return Strategy::max_bed;
  throw_input_error("--strategy", "the strategy", s, "equal-split, fixed-until-limit or max-bed");
}

Limit parse_limit(const std::string& text) {
  const std::string expected =
      "TARGET:QUANTITY:VALUE with QUANTITY dose_Gy or bed_Gy and VALUE > 0 Gy (e.g. kidney*:bed_Gy:28)";
  const auto p2 = text.rfind(':');
  const auto p1 = p2 == std::string::npos || p2 == 0 ? std::string::npos : text.rfind(':', p2 - 1);
  if (p1 == std::string::npos || p1 == 0) throw_input_error("--limit", "the limit", text, expected);
  Limit l;
  l.target_pattern = trim(text.substr(0, p1));
  l.quantity = trim(text.substr(p1 + 1, p2 - p1 - 1));
  l.source = "command line";
  double v;
  if (l.target_pattern.empty() || (l.quantity != "dose_Gy" && l.quantity != "bed_Gy") ||
      !parse_double(text.substr(p2 + 1), v) || !std::isfinite(v) || !(v > 0))
    throw_input_error("--limit", "the limit", text, expected);
  l.value = v;
  return l;
}

bool target_matches(const std::string& pattern, const std::string& name) {
  if (!pattern.empty() && pattern.back() == '*')
    return name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  return pattern == name;
}

double g_mono_exponential(double t_eff_h, double repair_half_time_h) {
  const double lambda = std::log(2.0) / t_eff_h, mu = std::log(2.0) / repair_half_time_h;
  return lambda / (lambda + mu);
}

double activity_for_bed_MBq(double bed_Gy, double d_Gy_per_GBq, double g, double alpha_beta_Gy) {
  if (!(d_Gy_per_GBq > 0)) return kInf;
  return 1000.0 * dose_for_bed(bed_Gy, g, alpha_beta_Gy) / d_Gy_per_GBq;
}

//! Says which limits rest on incomplete doses, why and what input would complete them. Without
//! allow_incomplete: no prescription (activity NaN, binding "incomplete_dose") and true.
template <class Say>
bool refuse_incomplete(const std::vector<Work>& work, const PlanOptions& o, PlanResult& r, const Say& say) {
  for (const auto& w : work) {
    if (w.incomplete.empty()) continue;
    std::vector<std::string> limits;
    for (const auto* l : w.limits) limits.push_back(describe_limit(*l));
    say((o.allow_incomplete ? "Warning: " + w.h->target + "'s dose is incomplete (" + w.incomplete +
                                  "); its limits are applied to it anyway (--allow-incomplete): the dose is an "
                                  "underestimate, the result is marked incomplete and no P(exceed) is given for it."
                            : "The limit" + std::string(limits.size() > 1 ? "s " : " ") + join(limits) + " on " +
                                  w.h->target + " cannot be evaluated: its dose is incomplete (" + w.incomplete +
                                  ")."));
    if (!o.allow_incomplete && r.binding.quantity.empty()) r.binding = {w.h->target, "incomplete_dose", kNaN};
  }
  if (o.allow_incomplete) return false;
  r.activity_MBq = kNaN;
  say("No prescription: a limit that cannot be evaluated is not applied silently. Supply the missing input, or "
      "run with --allow-incomplete to prescribe from the incomplete doses (marked in the result).");
  return true;
}

// ---------------------------------------------------------------------------------------------

namespace {

// plan_next_cycle step by step: each step adds its reasoning to the result as it goes.
class Planner {
 public:
  Planner(const PlanOptions& o, PlanResult& r) : o_(o), r_(r) {}

  void say(const std::string& s) { r_.reasoning.push_back(s); }
  void say_inputs(const std::map<int, double>& admin, int n_rem);
  void collect_targets(const std::vector<TargetHistory>& history);
  void say_limits(const std::vector<std::string>& unlimited);
  void predict_and_budget();
  void fill_targets(double a_MBq);
  void stop_all_delivered(int done);
  bool stop_at_reached_limit();
  void allowed_activities(int n_rem, double& a_limits, Binding& limit_binding);
  bool refused_incomplete();
  double prescribe(double a_limits, const Binding& limit_binding);
  void say_consequences(double a_MBq);

 private:
  const PlanOptions& o_;
  PlanResult& r_;
  std::vector<Work> work_;

  // A limit on an incomplete dose is not evaluated unless allowed (refused after step 3).
  bool skipped(const Work& w) const { return !w.incomplete.empty() && !o_.allow_incomplete; }
  void stop_if_reached(Work& w, bool used, const Limit* l, double cumulative, double remaining, const char* what);
  void allowed_activity(Work& w, int n_split, double& a_limits, Binding& limit_binding);
};

// Step 0: inputs.
void Planner::say_inputs(const std::map<int, double>& admin, int n_rem) {
  std::vector<std::string> a;
  for (const auto& [cycle, mbq] : admin) a.push_back(std::to_string(cycle) + ": " + fmt(mbq));
  say("Inputs: " +
      (admin.empty() ? std::string("no delivered cycle") : "delivered cycles (MBq) " + join(a)) +
      "; planning cycle " + std::to_string(r_.next_cycle) + " of " + std::to_string(o_.planned_cycles) +
      " planned (" + std::to_string(std::max(n_rem, 0)) + " remaining including this one); strategy " +
      to_string(o_.strategy) + ", prediction " + to_string(o_.prediction) + ", safety k = " + fmt(o_.safety_k) +
      ", prediction CV " + percent(o_.prediction_cv) + ", activity bounds [" + fmt(o_.a_min_MBq) + ", " +
      fmt(o_.a_max_MBq) + "] MBq" +
      (o_.strategy == Strategy::fixed_until_limit ? ", standard activity " + fmt(o_.a_standard_MBq) + " MBq"
                                                  : std::string()) +
      ".");
}

// Limits -> targets; tissue parameters by exact name, else the longest matching "name*".
void Planner::collect_targets(const std::vector<TargetHistory>& history) {
  using TissueEntry = std::pair<const std::string, TissueParameters>;
  std::vector<const TissueEntry*> tissue_items;
  for (const auto& e : o_.tissue) tissue_items.push_back(&e);
  std::vector<std::string> unlimited;
  for (const auto& h : history) {
    Work w;
    w.h = &h;
    for (const auto& l : o_.limits) {
      if (!target_matches(l.target_pattern, h.target)) continue;
      w.limits.push_back(&l);
      const Limit*& strictest = l.quantity == "dose_Gy" ? w.dose_limit : w.bed_limit;
      if (!strictest || l.value < strictest->value) strictest = &l;
    }
    if (w.limits.empty()) {
      unlimited.push_back(h.target);
      continue;
    }
    const auto* found = best_match(
        tissue_items, [](const TissueEntry& e) -> const std::string& { return e.first; }, h.target);
    w.tissue = found ? &found->second : nullptr;
    w.incomplete = distinct_of(h, &CycleRecord::incomplete);
    w.note = distinct_of(h, &CycleRecord::note);
    if (!w.note.empty()) say("Note: " + h.target + "'s dose: " + w.note + "; its limits are evaluated (a minor underestimate, docs/plan.md).");
    r_.incomplete = r_.incomplete || !w.incomplete.empty();
    work_.push_back(std::move(w));
  }
  say_limits(unlimited);
}

// Which targets each limit applies to; the targets without a limit.
void Planner::say_limits(const std::vector<std::string>& unlimited) {
  for (const auto& l : o_.limits) {
    std::vector<std::string> hit;
    for (const auto& w : work_)
      if (target_matches(l.target_pattern, w.h->target)) hit.push_back(w.h->target);
    say("Limit " + describe_limit(l) +
        (hit.empty() ? ": matches no target of the history and is not applied."
                     : " applies to " + join(hit) + "."));
  }
  if (!unlimited.empty())
    say("No limit applies to " + join(unlimited) + ": not constrained and not planned.");
  if (work_.empty()) say("Warning: no limit applies to any target, so no dose or BED limit constrains the activity.");
}

// Step 1: prediction; step 2: budgets.
void Planner::predict_and_budget() {
  std::vector<const PopulationPrior*> priors;
  for (const auto& p : o_.priors) priors.push_back(&p);
  const bool max_bed = o_.strategy == Strategy::max_bed;
  for (auto& w : work_) {
    predict(w, o_, priors);
    w.d_safe = w.d + o_.safety_k * w.u;
    say(w.h->target + ": predicted " + fmt(w.d) + " Gy/GBq by " + w.method + ", u = " + fmt(w.u) +
        " Gy/GBq; prescribing with d + k u = " + fmt(w.d) + " + " + fmt(o_.safety_k) + " x " + fmt(w.u) +
        " = " + fmt(w.d_safe) + " Gy/GBq.");
    budgets(w);
    w.use_bed = w.bed_limit != nullptr;
    w.use_dose = w.dose_limit != nullptr && !(max_bed && w.use_bed);
    std::vector<std::string> parts;
    if (w.dose_limit)
      parts.push_back("cumulative dose " + fmt(w.sum_dose) + " Gy of the " + fmt(w.dose_limit->value) +
                      " Gy limit, remaining R = " + fmt(w.remaining_dose()) + " Gy" +
                      (w.use_dose ? "" : " (reported, not applied: max-bed uses the BED limit)"));
    if (w.bed_limit)
      parts.push_back("cumulative BED " + fmt(w.sum_bed) + " Gy of the " + fmt(w.bed_limit->value) +
                      " Gy limit, remaining R_BED = " + fmt(w.remaining_bed()) + " Gy, G = " + fmt(w.g) +
                      " from " + w.g_from + ", alpha/beta = " + fmt(w.alpha_beta()) + " Gy");
    say(w.h->target + ": " + join(parts, "; ") + ".");
  }
}

// The result's targets at activity a_MBq [MBq] (NaN: no prescription).
void Planner::fill_targets(double a_MBq) {
  const double a = a_MBq / 1000.0;
  for (const auto& w : work_) {
    TargetPlan t;
    t.name = w.h->target;
    t.prediction_method = w.method;
    t.predicted_dose_Gy_per_GBq = w.d;
    t.predicted_u_Gy_per_GBq = w.u;
    t.predicted_dose_Gy = w.d * a;
    t.g = w.g;
    if (!std::isnan(w.g) && w.alpha_beta() > 0)
      t.predicted_bed_Gy = bed_from_dose(t.predicted_dose_Gy, w.g, w.alpha_beta());
    t.cumulative_dose_Gy = w.sum_dose + t.predicted_dose_Gy;
    t.cumulative_bed_Gy = w.sum_bed + t.predicted_bed_Gy;
    if (w.dose_limit) {
      t.limit_dose_Gy = w.dose_limit->value;
      t.p_exceed_dose = p_exceed_dose(w.remaining_dose(), w.d, w.u, a);
    }
    if (w.bed_limit) {
      t.limit_bed_Gy = w.bed_limit->value;
      t.p_exceed_bed = p_exceed_bed(w.remaining_bed(), w.d, w.u, a, w.g, w.alpha_beta());
    }
    t.max_activity_MBq = std::fmin(w.a_dose, w.a_bed);  // NaN: not computed
    t.incomplete = w.incomplete;
    t.note = w.note;
    // never from an incomplete dose, nor without a prescription
    if (!w.incomplete.empty() || std::isnan(a)) t.p_exceed_dose = t.p_exceed_bed = kNaN;
    r_.targets.push_back(t);
  }
}

// All planned cycles delivered: stop.
void Planner::stop_all_delivered(int done) {
  r_.stop = true;
  r_.activity_MBq = 0;
  r_.binding = {"", "planned_cycles", static_cast<double>(o_.planned_cycles)};
  for (auto& w : work_) w.a_dose = w.a_bed = kNaN;
  say("Stop: all " + std::to_string(o_.planned_cycles) + " planned cycles are delivered (last cycle " +
      std::to_string(done) + "); no further cycle, activity 0 MBq.");
  fill_targets(0);
}

void Planner::stop_if_reached(Work& w, bool used, const Limit* l, double cumulative, double remaining,
                              const char* what) {
  if (!used || !(remaining <= 0)) return;
  say("Stop: " + w.h->target + "'s cumulative " + what + " " + fmt(cumulative) +
      " Gy has reached its limit of " + fmt(l->value) + " Gy (" + describe_limit(*l) +
      "); no further cycle, activity 0 MBq.");
  if (!r_.stop) r_.binding = {w.h->target, l->quantity, l->value};
  r_.stop = true;
  (l->quantity == "dose_Gy" ? w.a_dose : w.a_bed) = 0;
}

// A limit already reached or exceeded: stop (true, with the result's targets filled).
bool Planner::stop_at_reached_limit() {
  for (auto& w : work_) {
    if (skipped(w)) continue;
    stop_if_reached(w, w.use_dose, w.dose_limit, w.sum_dose, w.remaining_dose(), "dose");
    stop_if_reached(w, w.use_bed, w.bed_limit, w.sum_bed, w.remaining_bed(), "BED");
  }
  if (!r_.stop) return false;
  for (auto& w : work_) {
    if (w.a_dose != 0) w.a_dose = kNaN;
    if (w.a_bed != 0) w.a_bed = kNaN;
  }
  r_.activity_MBq = 0;
  fill_targets(0);
  return true;
}

// Step 3: the activity each applied limit allows; the smallest in a_limits, its limit in
// limit_binding.
void Planner::allowed_activities(int n_rem, double& a_limits, Binding& limit_binding) {
  const bool fixed = o_.strategy == Strategy::fixed_until_limit;
  const int n_split = fixed ? 1 : n_rem;  // fixed: the whole remaining budget may go to this cycle
  for (auto& w : work_) {
    if (skipped(w)) {
      w.a_dose = w.a_bed = kNaN;
      continue;
    }
    allowed_activity(w, n_split, a_limits, limit_binding);
  }
}

// The activity one target's applied limits allow, the remaining budgets split over n_split cycles.
void Planner::allowed_activity(Work& w, int n_split, double& a_limits, Binding& limit_binding) {
  const double n = static_cast<double>(n_split);
  std::vector<std::string> parts;
  if (w.use_dose) {
    const double rem = w.remaining_dose();
    w.a_dose = w.d_safe > 0 ? 1000.0 * rem / (n * w.d_safe) : kInf;
    parts.push_back("the dose limit allows " + fmt(w.a_dose) + " MBq (A = R/(N d_safe) = " + fmt(rem) +
                    " Gy / (" + std::to_string(n_split) + " x " + fmt(w.d_safe) + " Gy/GBq))");
    if (w.a_dose < a_limits) {
      a_limits = w.a_dose;
      limit_binding = {w.h->target, "dose_Gy", w.dose_limit->value};
    }
  }
  if (w.use_bed) {
    const double per_cycle = w.remaining_bed() / n;
    w.a_bed = activity_for_bed_MBq(per_cycle, w.d_safe, w.g, w.alpha_beta());
    parts.push_back("the BED limit allows " + fmt(w.a_bed) + " MBq (cycle BED b(A) = d_safe A + G (d_safe A)^2/(alpha/beta) = R_BED/N = " +
                    fmt(w.remaining_bed()) + " Gy / " + std::to_string(n_split) + " = " + fmt(per_cycle) + " Gy)");
    if (w.a_bed < a_limits) {
      a_limits = w.a_bed;
      limit_binding = {w.h->target, "bed_Gy", w.bed_limit->value};
    }
  }
  if (o_.strategy == Strategy::fixed_until_limit) {
    const double a_lim = std::min(w.a_dose, w.a_bed);
    w.a_dose = std::min(w.a_dose, o_.a_standard_MBq);
    w.a_bed = std::min(w.a_bed, o_.a_standard_MBq);
    parts.push_back(a_lim >= o_.a_standard_MBq
                        ? "the standard " + fmt(o_.a_standard_MBq) + " MBq keeps it within its limits"
                        : "the standard " + fmt(o_.a_standard_MBq) +
                              " MBq would pass a limit, so this is its last cycle, reduced to " + fmt(a_lim) + " MBq");
  }
  say(w.h->target + ": " + join(parts, "; ") + ".");
}

// Limits on incomplete doses: no prescription unless allowed (true, with the result's targets
// filled); the others' bounds are reported.
bool Planner::refused_incomplete() {
  if (!refuse_incomplete(work_, o_, r_, [this](const std::string& s) { say(s); })) return false;
  fill_targets(kNaN);
  return true;
}

// Step 4: the minimum of the allowed activities, then the clamp to the bounds [MBq].
double Planner::prescribe(double a_limits, const Binding& limit_binding) {
  double a = a_limits;
  if (o_.strategy == Strategy::fixed_until_limit) {
    if (o_.a_standard_MBq <= a_limits) {
      a = o_.a_standard_MBq;
      r_.binding = {"", "a_standard", o_.a_standard_MBq};
      say("Fixed until limit: the standard activity " + fmt(a) + " MBq keeps every target within its limits" +
          (work_.empty() ? "" : " (the limits would allow up to " + fmt(a_limits) + " MBq)") + ".");
    } else {
      r_.binding = limit_binding;
      say("Fixed until limit: last cycle, reduced to " + fmt(a) + " MBq by " + limit_binding.target + "'s " +
          limit_binding.quantity + " limit of " + fmt(limit_binding.limit) +
          " Gy (the standard " + fmt(o_.a_standard_MBq) + " MBq would pass it); later cycles stop.");
    }
  } else if (std::isinf(a)) {
    r_.binding = {"", "a_max", o_.a_max_MBq};
    say("No applied limit bounds the activity.");
  } else {
    r_.binding = limit_binding;
    say("Binding: " + limit_binding.target + "'s " + limit_binding.quantity + " limit of " +
        fmt(limit_binding.limit) + " Gy, the smallest allowed activity: " + fmt(a) + " MBq.");
  }
  if (a > o_.a_max_MBq) {
    say("Clamped to A_max = " + fmt(o_.a_max_MBq) + " MBq (" +
        (std::isinf(a) ? std::string("no limit bounds the activity") : "the limits allow " + fmt(a) + " MBq") + ").");
    a = o_.a_max_MBq;
    r_.binding = {"", "a_max", o_.a_max_MBq};
  } else if (a < o_.a_min_MBq) {
    say("Raised to A_min = " + fmt(o_.a_min_MBq) + " MBq from the " + fmt(a) +
        " MBq the limits allow: warning, this exceeds the limit-derived activity (see the probabilities).");
    a = o_.a_min_MBq;
    r_.binding = {"", "a_min", o_.a_min_MBq};
  } else {
    say("Within the activity bounds [" + fmt(o_.a_min_MBq) + ", " + fmt(o_.a_max_MBq) + "] MBq: no clamp.");
  }
  r_.activity_MBq = a;
  return a;
}

// Step 5: the consequences at the prescribed activity.
void Planner::say_consequences(double a_MBq) {
  fill_targets(a_MBq);
  for (const auto& t : r_.targets) {
    std::vector<std::string> parts;
    if (!std::isnan(t.limit_dose_Gy))
      parts.push_back("cumulative dose " + fmt(t.cumulative_dose_Gy) + " Gy (limit " + fmt(t.limit_dose_Gy) +
                      " Gy, " + p_exceed_text(t.p_exceed_dose) + ")");
    if (!std::isnan(t.limit_bed_Gy))
      parts.push_back("cumulative BED " + fmt(t.cumulative_bed_Gy) + " Gy (limit " + fmt(t.limit_bed_Gy) +
                      " Gy, " + p_exceed_text(t.p_exceed_bed) + ")");
    say("At " + fmt(a_MBq) + " MBq, " + t.name + " is predicted " + fmt(t.predicted_dose_Gy) + " Gy" +
        (std::isnan(t.predicted_bed_Gy) ? std::string() : " (BED " + fmt(t.predicted_bed_Gy) + " Gy)") +
        " this cycle: " + join(parts, "; ") + ".");
  }
}

}  // namespace

PlanResult plan_next_cycle(const std::vector<TargetHistory>& history, const PlanOptions& options) {
  const PlanOptions& o = options;
  check_options(o);
  const std::map<int, double> admin = check_history(history);

  PlanResult r;
  r.options = o;
  const int done = admin.empty() ? 0 : admin.rbegin()->first;
  r.next_cycle = done + 1;
  const int n_rem = o.planned_cycles - done;
  Planner planner(o, r);
  planner.say_inputs(admin, n_rem);
  planner.collect_targets(history);
  planner.predict_and_budget();
  if (n_rem <= 0) {
    planner.stop_all_delivered(done);
    return r;
  }
  if (planner.stop_at_reached_limit()) return r;
  double a_limits = kInf;
  Binding limit_binding;
  planner.allowed_activities(n_rem, a_limits, limit_binding);
  if (r.incomplete && planner.refused_incomplete()) return r;
  planner.say_consequences(planner.prescribe(a_limits, limit_binding));
  return r;
}

// ---------------------------------------------------------------------------------------------

std::vector<TargetHistory> read_dose_history(const std::string& csv_path) {
  const CsvTable t = read_csv(csv_path);
  const std::vector<std::string> known = {"cycle", "administered_MBq", "target", "dose_Gy",
                                          "bed_Gy", "t_eff_h", "g", "incomplete"};
  const std::string known_list = "one of " + join(known);
  std::set<std::string> seen;
  for (const auto& h : t.header) {
    if (std::find(known.begin(), known.end(), h) == known.end())
      throw_input_error(csv_path + ": header", "the column", h, known_list);
    if (!seen.insert(h).second) throw_input_error(csv_path + ": header", "the column", h, "each column once");
  }
  for (const char* required : {"cycle", "administered_MBq", "target", "dose_Gy"})
    if (t.column(required) < 0)
      throw_input_error(csv_path + ": header", "the column '" + std::string(required) + "'", "missing",
                        "the columns cycle, administered_MBq, target, dose_Gy (optional: bed_Gy, t_eff_h, g, incomplete)");
  if (t.rows.empty())
    throw_input_error(csv_path, "the number of rows", "0", "at least one delivered cycle");
  const int cc = t.column("cycle"), ca = t.column("administered_MBq"), ct = t.column("target"),
            cd = t.column("dose_Gy"), cb = t.column("bed_Gy"), ce = t.column("t_eff_h"), cg = t.column("g"),
            ci = t.column("incomplete");

  std::vector<TargetHistory> out;
  std::map<std::string, size_t> index;
  std::map<std::pair<std::string, int>, int> line_of;       // (target, cycle) -> line
  std::map<int, std::pair<double, int>> admin;                // cycle -> (MBq, line)
  for (const auto& row : t.rows) {
    const std::string where = csv_path + ":" + std::to_string(row.line);
    auto cell = [&](int c) -> const std::string& { return row.cells[static_cast<size_t>(c)]; };
    auto plausible = [&](double x, int c, const char* field, const PlausibleRange& range, const char* what) {
      if (!range.contains(x)) throw_input_error(where, field, cell(c), std::string(what) + " " + range.text());
    };
    CycleRecord rec;
    rec.cycle = parse_cycle(cell(cc), where);
    rec.administered_MBq =
        parse_number(cell(ca), where, "administered_MBq", 0, false, "a finite activity > 0 MBq");
    plausible(rec.administered_MBq, ca, "administered_MBq", ACTIVITY_RANGE_MBQ, "an activity");
    const std::string target = cell(ct);
    if (const std::string p = name_problem(target); !p.empty())
      throw_input_error(where, "target", target, "a target name (this one is " + p + ")");
    rec.dose_Gy = parse_number(cell(cd), where, "dose_Gy", 0, true, "a finite dose >= 0 Gy");
    plausible(rec.dose_Gy, cd, "dose_Gy", DOSE_RANGE_GY, "a dose");
    if (cb >= 0 && !cell(cb).empty()) {
      rec.bed_Gy = parse_number(cell(cb), where, "bed_Gy", rec.dose_Gy, true,
                                "a finite BED >= dose_Gy (" + format_number(rec.dose_Gy) + " Gy), or empty");
      plausible(rec.bed_Gy, cb, "bed_Gy", DOSE_RANGE_GY, "a BED");
    }
    if (ce >= 0 && !cell(ce).empty()) {
      rec.t_eff_h = parse_number(cell(ce), where, "t_eff_h", 0, false, "a finite half-life > 0 h, or empty");
      plausible(rec.t_eff_h, ce, "t_eff_h", HALF_LIFE_RANGE_H, "an effective half-life");
    }
    if (cg >= 0 && !cell(cg).empty()) {
      rec.g = parse_number(cell(cg), where, "g", 0, true, "a G factor in [0, 1], or empty");
      if (rec.g > 1) throw_input_error(where, "g", cell(cg), "a G factor in [0, 1], or empty");
    }
    if (ci >= 0) rec.incomplete = cell(ci);
    const auto [dup, fresh] = line_of.emplace(std::make_pair(target, rec.cycle), row.line);
    if (!fresh)
      throw_input_error(where, "cycle", cell(cc),
                        "one row per target and cycle (target '" + target + "' cycle " + cell(cc) +
                            " is already on line " + std::to_string(dup->second) + ")");
    const auto [a, first] = admin.emplace(rec.cycle, std::make_pair(rec.administered_MBq, row.line));
    if (!first && std::fabs(a->second.first - rec.administered_MBq) > 1e-9 * a->second.first)
      throw_input_error(where, "administered_MBq", cell(ca),
                        "the activity of cycle " + cell(cc) + " on line " + std::to_string(a->second.second) +
                            " (" + format_number(a->second.first) + " MBq): one administered activity per cycle");
    if (admin.size() > MAX_CYCLES)
      throw_input_error(where, "cycle", cell(cc), "at most " + std::to_string(MAX_CYCLES) + " cycles (the limit)");
    auto it = index.find(target);
    if (it == index.end()) {
      it = index.emplace(target, out.size()).first;
      out.push_back({target, {}});
    }
    out[it->second].cycles.push_back(rec);
  }
  for (auto& h : out)
    std::sort(h.cycles.begin(), h.cycles.end(),
              [](const CycleRecord& x, const CycleRecord& y) { return x.cycle < y.cycle; });
  return out;
}

std::vector<Limit> load_limits(const std::string& data_dir) {
  const CsvTable t = read_csv(data_dir + "/radiobiology/limits.csv");
  const auto [cp, cq, cv, cs] = t.require<4>({"target_pattern", "quantity", "value", "source"});
  std::vector<Limit> out;
  for (const auto& row : t.rows) {
    const std::string where = t.path + ":" + std::to_string(row.line);
    Limit l;
    l.target_pattern = row.cells[static_cast<size_t>(cp)];
    l.quantity = row.cells[static_cast<size_t>(cq)];
    l.source = row.cells[static_cast<size_t>(cs)];
    if (l.target_pattern.empty()) throw_input_error(where, "target_pattern", "", "a target name or 'name*'");
    if (l.quantity != "dose_Gy" && l.quantity != "bed_Gy")
      throw_input_error(where, "quantity", l.quantity, "dose_Gy or bed_Gy");
    l.value = parse_number(row.cells[static_cast<size_t>(cv)], where, "value", 0, false, "a finite limit > 0 Gy");
    out.push_back(l);
  }
  return out;
}

std::vector<PopulationPrior> load_population_priors(const std::string& data_dir) {
  const CsvTable t = read_csv(data_dir + "/radiobiology/population_gy_per_gbq.csv");
  const auto [cp, cm, cs, cr] = t.require<4>({"target_pattern", "mean_Gy_per_GBq", "sd_Gy_per_GBq", "source"});
  std::vector<PopulationPrior> out;
  for (const auto& row : t.rows) {
    const std::string where = t.path + ":" + std::to_string(row.line);
    PopulationPrior p;
    p.target_pattern = row.cells[static_cast<size_t>(cp)];
    p.source = row.cells[static_cast<size_t>(cr)];
    if (p.target_pattern.empty()) throw_input_error(where, "target_pattern", "", "a target name or 'name*'");
    p.mean_Gy_per_GBq = parse_number(row.cells[static_cast<size_t>(cm)], where, "mean_Gy_per_GBq", 0, false,
                                     "a finite number > 0 Gy/GBq");
    p.sd_Gy_per_GBq = parse_number(row.cells[static_cast<size_t>(cs)], where, "sd_Gy_per_GBq", 0, false,
                                   "a finite number > 0 Gy/GBq");
    out.push_back(p);
  }
  return out;
}

}  // namespace lutdose
