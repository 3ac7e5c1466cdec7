// Seeded synthetic 177Lu-DOTATATE cohort (the kinetics of ../shared/peers/make_cohort.py, own
// code): every VOI a sum of exponentials in effective rates, amplitudes and half-lives with
// log-normal inter-patient factors (CV 30 % and 22 %), proportional Gaussian noise. Used by the
// small seeded studies in the unit tests and by the full ones in benchmarks/.
#pragma once

#include <Eigen/Dense>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lutdose/kinetics/fitting.h"

namespace lutdose::cohort {

constexpr double A0_MBQ = 7400;
inline double physical_half_life_h() { return 6.647 * 24.0; }  // ICRP-107, methods.md §0
inline double lambda_p_per_h() { return std::log(2.0) / physical_half_life_h(); }

//! One term of a VOI: weight (negative: uptake) and effective half-life [h].
struct Term {
  double weight, half_life_h;
};
struct VoiKind {
  std::string name;
  double fraction;  //!< amplitude as a fraction of A0
  std::vector<Term> terms;
};
//! The four VOI kinds of make_cohort.py (the remainder of body left out).
inline const std::vector<VoiKind>& voi_kinds() {
  static const std::vector<VoiKind> k = {
      {"kidneys", 0.02, {{0.85, 56.0}, {0.15, 3.0}}},
      {"liver", 0.055, {{1.0, 70.0}, {-1.0, 1.0}}},
      {"spleen", 0.02, {{1.0, 70.0}, {-1.0, 2.0}}},
      {"tumour", 0.006, {{1.0, 90.0}, {-1.0, 6.0}}},
  };
  return k;
}

//! Log-normal factor with mean 1 and the given CV.
inline double lognormal(std::mt19937_64& rng, double cv) {
  const double s2 = std::log(1 + cv * cv);
  std::normal_distribution<double> n(-s2 / 2, std::sqrt(s2));
  return std::exp(n(rng));
}

struct Tac {
  Eigen::VectorXd time_h, activity_MBq;
  double true_tia_MBq_h = 0;  //!< exact integral 0..inf of the noise-free curve
};

//! One TAC of a VOI kind on the schedule `t_h` with proportional noise `noise_cv`.
inline Tac draw(std::mt19937_64& rng, const VoiKind& kind, const Eigen::VectorXd& t_h, double noise_cv) {
  const double amplitude = A0_MBQ * kind.fraction * lognormal(rng, 0.30);
  std::vector<double> half_lives;
  for (const auto& term : kind.terms) {
    double h;
    do h = term.half_life_h * lognormal(rng, 0.22);
    while (h >= physical_half_life_h());  // effective half-life below the physical one
    half_lives.push_back(h);
  }
  if (kind.terms.size() == 2 && kind.terms[1].weight < 0)  // uptake shorter than clearance
    while (half_lives[1] >= half_lives[0]) half_lives[1] = kind.terms[1].half_life_h * lognormal(rng, 0.22);
  Tac tac;
  tac.time_h = t_h;
  tac.activity_MBq = Eigen::VectorXd::Zero(t_h.size());
  std::normal_distribution<double> noise(0.0, noise_cv);
  for (size_t m = 0; m < kind.terms.size(); ++m) {
    const double c = amplitude * kind.terms[m].weight, k = std::log(2.0) / half_lives[m];
    tac.true_tia_MBq_h += c / k;
    for (Eigen::Index i = 0; i < t_h.size(); ++i) tac.activity_MBq(i) += c * std::exp(-k * t_h(i));
  }
  for (Eigen::Index i = 0; i < t_h.size(); ++i)
    tac.activity_MBq(i) = std::max(tac.activity_MBq(i) * (1 + noise(rng)), 1e-6 * amplitude);
  return tac;
}

//! Coverage, bias and spread of the TIAs of fit_tac on `count` TACs of one VOI kind.
struct Study {
  int n = 0;             //!< TACs
  int with_u = 0;        //!< TACs whose intervals are known
  int in68 = 0, in95 = 0;  //!< true TIA inside the 68.27 % / 95 % interval
  double sum_error = 0, sum_error2 = 0;  //!< relative TIA errors (estimate / true - 1)
  double coverage68() const { return with_u ? static_cast<double>(in68) / with_u : NAN; }
  double coverage95() const { return with_u ? static_cast<double>(in95) / with_u : NAN; }
  double bias() const { return sum_error / n; }
  double spread() const { return std::sqrt(std::max(sum_error2 / n - bias() * bias(), 0.0)); }
};

//! With ErrorModel::combined the stated sigmas are b = noise_cv and sigma0 = combined_sigma0_fraction
//! times the TAC's largest activity.
inline Study run_study(const VoiKind& kind, const Eigen::VectorXd& t_h, double noise_cv, int count,
                       unsigned long long seed, const FitOptions& options, double combined_sigma0_fraction = 0.02) {
  std::mt19937_64 rng(seed);
  Study s;
  for (int k = 0; k < count; ++k) {
    const Tac tac = draw(rng, kind, t_h, noise_cv);
    FitOptions o = options;
    if (o.error_model == ErrorModel::combined) {
      o.combined_b = noise_cv;
      o.combined_sigma0_MBq = combined_sigma0_fraction * tac.activity_MBq.maxCoeff();
    }
    const TacFit fit = fit_tac(tac.time_h, tac.activity_MBq, Eigen::VectorXd(), lambda_p_per_h(), o, "study");
    const double e = fit.tia_MBq_h / tac.true_tia_MBq_h - 1;
    ++s.n;
    s.sum_error += e;
    s.sum_error2 += e * e;
    if (!std::isfinite(fit.tia_ci95_MBq_h.low)) continue;
    ++s.with_u;
    const double truth = tac.true_tia_MBq_h;
    s.in68 += fit.tia_ci68_MBq_h.low <= truth && truth <= fit.tia_ci68_MBq_h.high;
    s.in95 += fit.tia_ci95_MBq_h.low <= truth && truth <= fit.tia_ci95_MBq_h.high;
  }
  return s;
}

}  // namespace lutdose::cohort
