// Absorbed dose by the MIRD schema (methods.md §5-6): D(target) = sum over sources of
// TIA(source) x S(target <- source), for every target of the S-value set and every VOI.
//
//  * Organ VOIs (kidney_left, liver, ...) are sources and targets. Their self-dose S is scaled to
//    the patient's mass: electron part Delta_e/m (1/m) and photon part (S_ref - Delta_e/m_ref)
//    (m_ref/m)^(2/3) (electron-photon, default), or S_ref m_ref/m (inverse mass). Cross-dose S is
//    the phantom's, unscaled or scaled by the body-mass ratio.
//  * A whole_body VOI turns the activity outside the organ VOIs into a remainder-of-body source
//    (Cloutier 1973): TIA_RB = TIA_WB - sum TIA_h and S(T <- RB) = S(T <- WB) m_WB/m_RB -
//    sum_h S(T <- h) m_h/m_RB with m_RB = m_WB - sum m_h.
//  * Tumours (tumour_*, tumor_*, lesion_*) get self-dose from sphere S-values or local deposition.
//  * Every other target region of the set (red marrow, total body, ...) gets cross-dose.
// The standard uncertainty follows the GUM with named, independent inputs (fit, calibration
// factor, recovery coefficient, volume, S-value), whose sensitivities are taken numerically from
// the same dose function, so correlations (a CF common to all VOIs, the volume entering both RC
// and mass, the remainder's dependence on every organ TIA) are carried exactly to first order.
// D [Gy] = TIA [MBq h] * S [mGy/(MBq s)] * 3600 s/h * 1e-3 Gy/mGy.
#pragma once

#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lutdose/dosimetry/uncertainty.h"

#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/dosimetry/svalues.h"

namespace lutdose {

//! Tumour self-dose: sphere S-values, or local deposition of the electron energy (methods.md §6).
enum class TumourMethod { sphere, local_deposition };
//! "sphere" or "local". Throws nothing.
std::string to_string(TumourMethod m);
//! Parses "sphere" or "local"; throws InputError (option --tumour-method) otherwise.
TumourMethod parse_tumour_method(const std::string& s);

//! Scaling of organ self-dose S-values to the patient's mass (methods.md §6.3).
enum class MassScaling {
  electron_photon,  //!< Delta_e/m + (S_ref - Delta_e/m_ref) (m_ref/m)^(2/3)
  inverse_mass,     //!< S_ref m_ref / m
};
//! "electron-photon" or "inverse-mass". Throws nothing.
std::string to_string(MassScaling m);
//! Parses "electron-photon" or "inverse-mass"; throws InputError (option --mass-scaling) otherwise.
MassScaling parse_mass_scaling(const std::string& s);

//! Scaling of cross-dose S-values.
enum class CrossScaling {
  none,       //!< the phantom's values
  body_mass,  //!< times m_body,phantom / m_body,patient (needs the patient's body mass)
};
//! "none" or "body-mass". Throws nothing.
std::string to_string(CrossScaling m);
//! Parses "none" or "body-mass"; throws InputError (option --cross-scaling) otherwise.
CrossScaling parse_cross_scaling(const std::string& s);

//! How the red-marrow TIA is obtained (methods.md §6.5): not at all; blood: TIA_RM = TIAC_blood x
//! RMBLR x m_RM from blood samples; image: TIA_RM = TIA of the VOI l2l4_voi / l2l4_fraction.
enum class MarrowMethod { none, blood, image };
//! "none", "blood" or "image". Throws nothing.
std::string to_string(MarrowMethod m);
//! Parses "none", "blood" or "image"; an empty optional for anything else. Throws nothing.
std::optional<MarrowMethod> parse_marrow_method(const std::string& text);

//! Red (active) marrow (methods.md §6.5). The marrow's TIA becomes the source VOI red_marrow.
struct MarrowOptions {
  MarrowMethod method = MarrowMethod::none;
  //! Marrow-to-blood activity concentration ratio. 1.0 for 177Lu-DOTATATE, whose marrow
  //! concentration equals the blood's (Forrer et al., K38); 0.36 is Sgouros' (1993) general value.
  double rmblr = 1.0;
  //! If given: RMBLR = RMECFF / (1 - hematocrit) (extracellular-fluid form, 0.19; [unverified]).
  double rmecff = std::numeric_limits<double>::quiet_NaN();
  double mass_g = std::numeric_limits<double>::quiet_NaN();  //!< patient's; default the phantom's
  //! Image method: fraction of the whole red marrow in the L2-L4 VOI (no default: the reference
  //! fraction is not verified here, so it must be stated).
  double l2l4_fraction = std::numeric_limits<double>::quiet_NaN();
  std::string l2l4_voi = "marrow_l2l4";
};

struct DoseOptions {
  //! S-value set: a phantom name, or "user" with svalue_table.
  std::string phantom;
  std::string svalue_table;  //!< path of a user-supplied S-value table (phantom "user")
  TumourMethod tumour_method = TumourMethod::sphere;
  std::string sphere_composition = "100%/0%";
  //! Density that turns an organ's volume_mL into mass_g [g/mL]. 1.03 g/mL is the soft-tissue
  //! density of the sphere table (data/PROVENANCE.md §3); tumours use their composition's density.
  double organ_density_g_per_mL = 1.03;
  MassScaling mass_scaling = MassScaling::electron_photon;
  CrossScaling cross_scaling = CrossScaling::none;
  double body_mass_g = std::numeric_limits<double>::quiet_NaN();  //!< the patient's
  MarrowOptions marrow;
};

//! One VOI of a cycle as the dose step sees it, with the inputs of its uncertainty budget.
struct DoseSourceInput {
  std::string voi;
  double tia_MBq_h = 0;
  double tia_u_MBq_h = 0;  //!< from the fit; NaN when unknown (the dose's u is then unknown)
  //! Degrees of freedom of tia_u_MBq_h (infinite: stated; n - K: estimated from the residuals).
  double tia_u_dof = std::numeric_limits<double>::infinity();
  double mean_mass_g = std::numeric_limits<double>::quiet_NaN();
  double mean_volume_mL = std::numeric_limits<double>::quiet_NaN();
  std::string calibration;  //!< name of the calibration factor the TIA scales with ("" if none)
  double u_rel_cf = 0;      //!< u(CF)/CF, common to every VOI with the same calibration
  double u_rel_rc = 0;      //!< u(RC)/RC of the VOI's recovery coefficient (common to its points)
  double dln_rc_dln_volume = 0;  //!< d ln RC / d ln V at the VOI's volume
  double u_rel_volume = 0;  //!< u(V)/V, entering RC and mass together
  double s_factor = 1.0;    //!< multiplies the self-S (Monte Carlo samples of the S-value)
};

//! One term of an uncertainty budget: the named input and its contribution c_i u_i [Gy].
struct BudgetTerm {
  std::string input;
  double u_Gy = 0;  //!< NaN when the input's uncertainty is unknown
  double dof = std::numeric_limits<double>::infinity();  //!< degrees of freedom of the input's u
};

struct TargetDose {
  std::string target;  //!< VOI name, or the set's region name
  std::string kind;    //!< "organ", "tumour" or "region"
  std::string region;  //!< phantom region, sphere composition or "local deposition"
  std::string method;
  double mass_g = std::numeric_limits<double>::quiet_NaN();
  std::string mass_source;
  double reference_mass_g = std::numeric_limits<double>::quiet_NaN();
  double s_reference_mGy_per_MBq_s = std::numeric_limits<double>::quiet_NaN();  //!< phantom self-S
  double s_mGy_per_MBq_s = std::numeric_limits<double>::quiet_NaN();  //!< self-S used
  double self_Gy = 0;
  double cross_Gy = 0;
  double dose_Gy = 0;
  double dose_u_Gy = 0;  //!< GUM, k = 1; NaN when an input it depends on has no known u
  //! Welch-Satterthwaite effective degrees of freedom of dose_u_Gy (infinite when every input's
  //! u is stated; NaN when dose_u_Gy is unknown).
  double dose_u_dof = std::numeric_limits<double>::infinity();
  //! dose_Gy +- k dose_u_Gy with k from dose_u_dof (lutdose/uncertainty.h): 68.27 % and 95 %.
  Interval dose_ci68_Gy, dose_ci95_Gy;
  //! The inputs the dose depends on whose uncertainty is unknown (the budget is incomplete).
  std::vector<std::string> u_missing;
  double dose_u_mc_Gy = std::numeric_limits<double>::quiet_NaN();  //!< Monte Carlo SD, if run
  double dose_mc_mean_Gy = std::numeric_limits<double>::quiet_NaN();
  double dose_Gy_per_GBq = std::numeric_limits<double>::quiet_NaN();
  //! Radiobiology (targets with tissue parameters; NaN otherwise).
  double bed_Gy = std::numeric_limits<double>::quiet_NaN();
  double eqd2_Gy = std::numeric_limits<double>::quiet_NaN();
  double bed_g = std::numeric_limits<double>::quiet_NaN();  //!< Lea-Catcheside G of the cycle
  double alpha_beta_Gy = std::numeric_limits<double>::quiet_NaN();
  double repair_half_time_h = std::numeric_limits<double>::quiet_NaN();
  std::string bed_method;  //!< "closed form" or "numerical"
  std::vector<std::pair<std::string, double>> contributions_Gy;  //!< per source, in Gy
  //! d dose_Gy / d x_i for each relative input x_i (nominal 1) of the cycle, in the order of
  //! CycleDoses::input_names; the budget term of input i is |c_i| u_i.
  std::vector<double> sensitivity_Gy;
};

//! The budget of a target: the nonzero terms |c_i| u_i [Gy], largest first, unknown (NaN) last.
//! names, u_rel (relative standard uncertainties, dimensionless) and dof are in the order of
//! t.sensitivity_Gy (CycleDoses::input_names, input_u_rel, input_dof); a missing dof is infinite.
//! Throws nothing.
std::vector<BudgetTerm> uncertainty_budget(const TargetDose& t, const std::vector<std::string>& names,
                                           const std::vector<double>& u_rel,
                                           const std::vector<double>& dof = {});

//! Sets dose_u_Gy (NaN with u_missing when a needed input's u_rel is NaN), dose_u_dof
//! (Welch-Satterthwaite) and both intervals from the sensitivities and the inputs' relative
//! uncertainties and degrees of freedom (same order as sensitivity_Gy). Used for one cycle's doses
//! and for the sums over cycles. sensitivity_Gy [Gy per unit relative input], dose_Gy and the
//! outputs u_Gy, ci68, ci95 [Gy]; u_dof dimensionless. Throws nothing.
void combine_uncertainty(const std::vector<double>& sensitivity_Gy, const std::vector<std::string>& names,
                         const std::vector<double>& u_rel, const std::vector<double>& dof, double dose_Gy,
                         double& u_Gy, double& u_dof, Interval& ci68, Interval& ci95,
                         std::vector<std::string>& u_missing);

struct CycleDoses {
  std::vector<TargetDose> targets;  //!< VOIs first (input order), then the set's other regions
  std::vector<std::string> input_names;  //!< the named inputs of the GUM budget
  std::vector<double> input_u_rel;       //!< their relative standard uncertainties (NaN: unknown)
  std::vector<double> input_dof;         //!< their degrees of freedom (infinite: stated)
  double remainder_tia_MBq_h = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::string> notes;
};

//! Everything the dose step needs, loaded once per run.
class DoseCalculator {
 public:
  //! Loads the S-value set of options.phantom (or the user table options.svalue_table), its VOI
  //! map and the sphere table from data_dir. Throws InputError for an organ density that is not
  //! > 0, a nuclide other than Lu-177 (the shipped S-values are for Lu-177), phantom "user"
  //! without a table, an unknown phantom or sphere composition, a bad data or user file, and
  //! cross-scaling body-mass without the patient's body mass or the phantom's.
  DoseCalculator(const std::string& data_dir, const Nuclide& nuclide, DoseOptions options);
  //! The same from an S-value set indexed before (ReferenceData::phantom, read_run_files): reads no
  //! file, and the set is shared, not copied (the calculator copies only the sphere table, the
  //! nuclide and the options): the per-patient constructor of a batch. `svalues` is the set chosen
  //! by options.phantom (or the user table), `spheres` the table of options.sphere_composition.
  //! Throws InputError as the other constructor, std::logic_error for a null `svalues`.
  DoseCalculator(std::shared_ptr<const IndexedSValueSet> svalues, SphereTable spheres, const Nuclide& nuclide,
                 DoseOptions options);

  //! Doses to every target from the cycle's VOIs. Throws InputError for a VOI name the set
  //! cannot map (listing the names it can), overlapping VOIs, a tumour without mass or outside
  //! the sphere table, a whole-body TIA smaller than the organs' sum, a remainder without a
  //! whole-body source in the set. `where` names the cycle in messages. TIAs [MBq h] in `vois`,
  //! administered_MBq [MBq] (for Gy/GBq); doses in Gy (dose.h header comment).
  CycleDoses compute(const std::vector<DoseSourceInput>& vois, double administered_MBq,
                     const std::string& where) const;

  //! The VOI names this set maps (besides tumour_*/lesion_* and whole_body). Throws nothing.
  std::vector<std::string> mapped_vois() const;
  //! The loaded S-value set, the options as used (phantom "user" for a table), the sphere table
  //! and the VOI map. Throw nothing.
  const SValueSet& svalue_set() const { return svalues_->set; }
  const DoseOptions& options() const { return options_; }
  const SphereTable& sphere_table() const { return spheres_; }
  const std::map<std::string, VoiRegionMap>& voi_map() const { return svalues_->voi_map; }

  //! Self-S of an organ VOI of the set at mass m [g] under the chosen scaling [mGy/(MBq s)].
  //! Throws std::out_of_range for a VOI the set does not map (see mapped_vois()), InputError when
  //! the set lacks one of its S-values or masses.
  double organ_self_s(const std::string& voi, double mass_g) const;
  //! Relative standard uncertainty of an organ VOI's self-S where the set publishes one, else 0
  //! (also for an unmapped VOI); dimensionless. Throws InputError when a mapped S-value is absent.
  double self_s_u_rel(const std::string& voi) const;
  //! Self-S of a tumour of mass m [g] [mGy/(MBq s)] by the tumour method; `where` names it in
  //! errors. Throws InputError (sphere method) for a mass outside the sphere table.
  double tumour_self_s(double mass_g, const std::string& where) const;

 private:
  class Cycle;  // one call of compute(), step by step (dose.cpp)
  Nuclide nuclide_;
  DoseOptions options_;
  std::shared_ptr<const IndexedSValueSet> svalues_;
  SphereTable spheres_;
  void check_options() const;  // the checks that need no S-values
  void check_set() const;      // the checks of the options against the set
};

}  // namespace lutdose
