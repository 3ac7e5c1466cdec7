#include "lutdose/radiobiology/cycle_bed.h"

#include <cmath>
#include <utility>

namespace lutdose {

std::optional<ActivityCurve> remainder_curve(const std::map<std::string, ActivityCurve>& curves,
                                             const std::vector<TargetDose>& doses) {
  if (!curves.count("whole_body")) return std::nullopt;
  std::vector<std::string> organs;
  for (const auto& d : doses)
    if (d.kind == "organ" && curves.count(d.target)) organs.push_back(d.target);
  ActivityCurve rb;
  bool exponential = curves.at("whole_body").exponential();
  for (const auto& o : organs) exponential = exponential && curves.at(o).exponential();
  if (exponential) {
    rb = curves.at("whole_body");
    for (const auto& o : organs)
      for (size_t i = 0; i < curves.at(o).c_MBq.size(); ++i) {
        rb.c_MBq.push_back(-curves.at(o).c_MBq[i]);
        rb.k_per_h.push_back(curves.at(o).k_per_h[i]);
      }
  } else {
    const ActivityCurve wb = curves.at("whole_body");
    std::vector<ActivityCurve> parts;
    for (const auto& o : organs) parts.push_back(curves.at(o));
    rb.general = [wb, parts](double t) {
      double a = wb(t);
      for (const auto& p : parts) a -= p(t);
      return a;
    };
  }
  for (const auto& [name, c] : curves) rb.scales_h.insert(rb.scales_h.end(), c.scales_h.begin(), c.scales_h.end());
  return rb;
}

namespace {

// The exponential tail of sum_parts g A(t) [Gy/h] from the latest tail start of the parts on
// (an exponential part is its own tail); none (from_h infinite) when a part has no tail.
ExpTail dose_rate_tail(const std::vector<std::pair<double, const ActivityCurve*>>& parts) {
  ExpTail tail;
  double from = 0;
  for (const auto& [g, c] : parts) {
    if (!c->exponential() && !std::isfinite(c->tail_from_h)) return tail;
    if (!c->exponential()) from = std::max(from, c->tail_from_h);
  }
  for (const auto& [g, c] : parts) {
    const bool own = c->exponential();
    const auto& cs = own ? c->c_MBq : c->tail_c_MBq;
    const auto& ks = own ? c->k_per_h : c->tail_k_per_h;
    const double start = own ? 0.0 : c->tail_from_h;
    for (size_t i = 0; i < cs.size(); ++i) {
      tail.rate.a_Gy_per_h.push_back(g * cs[i] * std::exp(-ks[i] * (from - start)));
      tail.rate.lambda_per_h.push_back(ks[i]);
    }
  }
  tail.from_h = from;
  return tail;
}

}  // namespace

void add_cycle_bed(const TissueTable& tissue, const std::map<std::string, ActivityCurve>& curves,
                   const std::map<std::string, double>& tia_MBq_h, double horizon_h, double lambda_p,
                   std::vector<TargetDose>& doses) {
  for (auto& d : doses) {
    const TissueParameters* p = tissue.find(d.target);
    if (!p || !(d.dose_Gy > 0)) continue;
    ExpSum rate;
    std::vector<std::pair<double, const ActivityCurve*>> parts;  // (Gy per MBq h, curve)
    bool exponential = true;
    std::vector<double> scales{1.0 / lambda_p};
    for (const auto& [source, gy] : d.contributions_Gy) {
      const auto tia = tia_MBq_h.find(source);
      if (!curves.count(source) || tia == tia_MBq_h.end() || tia->second == 0) continue;
      const double g = gy / tia->second;
      const ActivityCurve& c = curves.at(source);
      parts.emplace_back(g, &c);
      exponential = exponential && c.exponential();
      scales.insert(scales.end(), c.scales_h.begin(), c.scales_h.end());
      for (size_t i = 0; i < c.c_MBq.size(); ++i) {
        rate.a_Gy_per_h.push_back(g * c.c_MBq[i]);
        rate.lambda_per_h.push_back(c.k_per_h[i]);
      }
    }
    if (parts.empty()) continue;
    BedResult b;
    if (exponential && std::isinf(horizon_h)) {
      b = bed_closed_form(rate, *p);
      d.bed_method = "closed form (sum of exponentials)";
    } else {
      const ExpTail tail = dose_rate_tail(parts);
      b = bed_numeric([&parts](double t) {
                        double r = 0;
                        for (const auto& [g, c] : parts) r += g * (*c)(t);
                        return r;
                      },
                      horizon_h, *p, scales, &tail);
      d.bed_method = "numerical (Boost.Odeint, Dormand-Prince)";
    }
    // BED scales with the dose actually reported (the curve integrates to it up to rounding)
    d.bed_g = b.g;
    d.bed_Gy = bed_from_dose(d.dose_Gy, b.g, p->alpha_beta_Gy);
    d.eqd2_Gy = eqd2(d.bed_Gy, p->alpha_beta_Gy);
    d.alpha_beta_Gy = p->alpha_beta_Gy;
    d.repair_half_time_h = p->repair_half_time_h;
  }
}

std::optional<double> tumour_repopulation_Gy(double first_h, double last_h, double kickoff_d, double alpha_per_Gy,
                                             double t_pot_d) {
  const double T_d = (last_h - first_h) / 24.0;
  if (!(T_d > kickoff_d)) return std::nullopt;
  return std::log(2.0) * (T_d - kickoff_d) / (alpha_per_Gy * t_pot_d);
}

}  // namespace lutdose
