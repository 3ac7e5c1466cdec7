// Seeded synthetic cohorts with known truth, for method studies (`lutdose synth`, docs/synth.md).
//
// Every VOI of every patient follows the exponential-family function E1 of the shipped population
// kinetics (data/kinetics/population_kinetics.csv, methods.md §2.2): the activity physically
// present, not decay-corrected,
//   A(t) = f A0 exp(-(lambda_bio + lambda_p) t),
// with f the fraction of the administered activity A0 and lambda_bio the biological clearance
// rate. Per patient, f and lambda_bio are log-normal (methods.md §9.3) with arithmetic means f_pop
// (methods.md §9.3's table) and the population file's mean of lambda_bio, and coefficients of
// variation cv_fraction and cv_clearance (default: the population file's sd/mean). The true TIA
// is the analytic integral f A0 / (lambda_bio + lambda_p) [MBq h]; the true dose is the engine's
// DoseCalculator applied to the true TIAs and the VOI masses.
//
// Seeding: patient k (1-based) draws from its own Mersenne Twister (boost::random::mt19937_64)
// seeded through boost::random::seed_seq with (seed low 32 bits, seed high 32 bits, k), so patient
// k is the same whatever the cohort size; Boost.Random's distributions are used because the
// std:: ones are implementation-defined.
#pragma once

#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lutdose/io/output_dir.h"
#include "lutdose/quantification/quantification.h"

namespace lutdose {

class ReferenceData;
class DoseCalculator;

//! Measurement noise of one VOI kind (methods.md §2.3): sigma(t) from the true activity f(t);
//! poisson: counting noise, the expected counts N = f(t) CF T drawn Poisson and divided by CF T.
enum class SynthNoiseModel { none, proportional, constant, combined, poisson };

struct SynthNoise {
  SynthNoiseModel model = SynthNoiseModel::none;
  double b = 0;           //!< relative SD of proportional / combined (dimensionless)
  double sigma0_MBq = 0;  //!< SD of constant / combined [MBq]
  double cf_cps_per_MBq = 0;  //!< poisson: the VOI's count sensitivity CF [cps/MBq]
  double frame_min = 0;       //!< poisson: acquisition time T per scan [min]
  //! sigma [MBq] for a true activity [MBq]: b f, sigma0, sqrt(sigma0^2 + (b f)^2), or for poisson
  //! sqrt(f / (CF T)) (the SD of N / (CF T), N Poisson with mean f CF T). Throws nothing.
  double sigma_MBq(double true_MBq) const;
  //! poisson: counts per MBq of one scan, CF x T [counts/MBq]. Throws nothing.
  double counts_per_MBq() const { return cf_cps_per_MBq * frame_min * 60.0; }
};

//! Parses the text of --noise KIND=SPEC's SPEC: "none", "proportional:B", "constant:SIGMA0_MBQ",
//! "combined:SIGMA0_MBQ:B" (B in [0, 1), SIGMA0 >= 0, finite), "poisson:CF_CPS_PER_MBQ:FRAME_MIN"
//! (CF in (0, 1e6], T in (0, 600]). InputError naming `option` and the value otherwise.
SynthNoise parse_synth_noise(const std::string& option, const std::string& text);

//! "none", "proportional:0.1", ... (the form parse_synth_noise reads). Throws nothing.
std::string to_string(const SynthNoise& n);

//! The VOI kinds noise levels are given for: "organ", "tumour" (tumour_*, tumor_*, lesion_*) and
//! "whole_body" (the VOI whole_body: the whole-body TAC, from which the dose step forms the
//! remainder of body).
const std::vector<std::string>& synth_voi_kinds();
//! The kind of a VOI name. Throws nothing.
std::string synth_voi_kind(const std::string& voi);

struct SynthOptions {
  int n_patients = 0;
  unsigned long long seed = 0;
  std::vector<double> times_h = {4, 24, 48, 96, 168};  //!< methods.md §9.1's synthetic default
  int cycles = 1;
  //! 7.4 GBq per cycle, the standard 177Lu-DOTATATE regimen (methods.md §8.1).
  double administered_MBq = 7400;
  std::string phantom = "icrp110-am";
  std::vector<std::string> vois = {"kidneys", "liver", "spleen", "tumour_1"};
  //! Per VOI kind; methods.md §9.3: proportional 5-10 % for organs, 10-20 % for small tumours.
  std::map<std::string, SynthNoise> noise = {{"organ", {SynthNoiseModel::proportional, 0.10, 0}},
                                             {"tumour", {SynthNoiseModel::proportional, 0.15, 0}}};
  //! CV of the uptake fraction f: methods.md §9.3 suggests 25-35 % [unverified]; 30 % its middle.
  double cv_fraction = 0.30;
  //! CV of lambda_bio; NaN: the population file's sd / mean for each VOI.
  double cv_clearance = std::numeric_limits<double>::quiet_NaN();
  //! Inter-patient CV of the VOI masses per VOI kind (log-normal factor of mean 1 on the phantom's
  //! or the tumour's mass); a kind without an entry: 0, every patient the same masses (the
  //! behaviour before 0.13). No sourced default: 0.
  std::map<std::string, double> cv_mass;
  double tumour_mass_g = 20;  //!< methods.md §9.3's 20 mL tumour (mass at 1.0 g/mL)
  //! A user's population entries (CSV in the format of data/kinetics/population_kinetics.csv),
  //! looked up before the shipped ones; empty: none. The only way to a whole_body VOI: no sourced
  //! whole-body kinetics are shipped.
  std::string population_kinetics_path;
  std::string data_dir;       //!< where the reference data are (their SHA-256 go to synth.json)
  //! Output: "tables" (tacs.csv + patients.csv) or "cases" (one case file per patient).
  std::string format = "tables";
  //! Case files with counts when > 0 [cps/MBq] (methods.md §9.3: about 5); else activities.
  double cf_cps_per_MBq = std::numeric_limits<double>::quiet_NaN();
  double frame_min = 30;     //!< acquisition time per point (methods.md §9.3: 20-30 min)
  double dead_time_us = 0;   //!< paralysable dead time [us] (methods.md §9.3: about 4.6); 0: none
  //! Recovery coefficients applied to the tumour VOIs' counts (partial volume); empty: none.
  RecoveryTable recovery;
};

//! Every problem of the options (naming the option, the value and what was expected), empty when
//! they are valid. Throws nothing.
std::vector<std::string> validate(const SynthOptions& o);

//! The population kinetics of one VOI, as resolved from the reference data.
struct SynthVoiModel {
  std::string voi, kind;
  double fraction_mean = 0;       //!< f_pop, fraction of A0 (methods.md §9.3)
  double lambda_bio_mean_per_h = 0;  //!< population file's mean
  double cv_fraction = 0, cv_clearance = 0;
  double cv_mass = 0;  //!< inter-patient CV of the mass (0: the mass below for every patient)
  double mass_g = std::numeric_limits<double>::quiet_NaN();  //!< phantom's or the tumour's
  std::string source;  //!< where f_pop and lambda_bio come from
};

//! The options resolved against the reference data: per VOI its population kinetics and mass, the
//! physical decay constant and the dose calculator of the phantom.
struct SynthModel {
  SynthOptions options;
  double lambda_p_per_h = 0;
  std::string nuclide_source;
  std::vector<SynthVoiModel> vois;
  std::shared_ptr<const DoseCalculator> dose;
};

//! Resolves the options (validated first: InputError listing every problem). InputError for a VOI
//! without population kinetics or uptake fraction, an unknown phantom, a VOI the phantom cannot map.
SynthModel make_synth_model(const ReferenceData& ref, const SynthOptions& o);

//! One VOI of one cycle of a synthetic patient: its true parameters, truth and measurements.
struct SynthVoi {
  std::string voi, kind;
  double fraction = 0;           //!< f of this patient
  double lambda_bio_per_h = 0;   //!< of this patient
  double lambda_eff_per_h = 0;   //!< lambda_bio + lambda_p
  double amplitude_MBq = 0;      //!< f A0
  double tia_MBq_h = 0;          //!< true TIA, f A0 / lambda_eff
  double mass_g = 0;              //!< this patient's mass (the model's, times its log-normal factor)
  double dose_Gy = 0;            //!< true absorbed dose (self + cross, DoseCalculator)
  std::vector<double> true_MBq;      //!< A(t_i) without noise
  std::vector<double> measured_MBq;  //!< with the kind's noise
};

struct SynthCycle {
  int cycle = 1;
  double administered_MBq = 0;
  std::vector<SynthVoi> vois;
};

struct SynthPatient {
  std::string id;  //!< "P" + index, at least 5 digits (P00001): the same whatever the cohort size
  int index = 0;   //!< 1-based
  std::vector<SynthCycle> cycles;
};

//! Patient `index` (1-based) of the cohort: parameters drawn from its own stream (header comment),
//! the same kinetics in every cycle, noise drawn per cycle. InputError when a noise draw stays
//! <= 0 after 1000 tries (a noise level far above the activity). Thread-safe for a const model.
SynthPatient synth_patient(const SynthModel& model, int index);

//! The case file (docs/case-file.md) of a patient: activities, or counts with the calibration
//! factor, dead time (observed camera rate) and recovery of the options. Throws nothing.
std::string synth_case_json(const SynthModel& model, const SynthPatient& p);

//! The name of patient p's case file: "case-" + id + ".json". Throws nothing.
std::string synth_case_name(const SynthPatient& p);

//! The output files of a cohort of patients 1..n (docs/synth.md): tacs.csv and patients.csv, or
//! one case file per patient; truth.csv; synth.json (seed, options, data versions). Throws
//! InputError from synth_patient.
std::vector<OutputFile> synth_cohort_files(const SynthModel& model, const std::string& lutdose_version);

}  // namespace lutdose
