// `lutdose synth`: option parsing and output only; the generator is lutdose/cohort/synth.h.
#include "synth.h"

#include <cmath>
#include <iostream>

#include "lutdose/error.h"
#include "lutdose/io/data_dir.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/pipeline/reference_data.h"
#include "lutdose/version.h"

namespace lutdose_cli {

SynthCommand::SynthCommand(CLI::App& app) {
  cmd_ = app.add_subcommand(
      "synth",
      "Seeded synthetic cohort with known truth (docs/synth.md): writes DIR/tacs.csv (TACs with noise), "
      "DIR/patients.csv, DIR/truth.csv (true TIA and dose per patient, cycle, VOI) and DIR/synth.json "
      "(seed, options, data versions).");
  cmd_->add_option("--patients", options_.n_patients, "Number of patients (1 to 1000000)")->required();
  cmd_->add_option("--seed", seed_, "Seed, 0 to 2^63 - 1; patient k draws from its own stream (docs/synth.md)")
      ->capture_default_str();
  cmd_->add_option("--times-h", options_.times_h, "Imaging times [h after administration], separated by commas")
      ->delimiter(',')
      ->capture_default_str();
  cmd_->add_option("--cycles", options_.cycles, "Cycles per patient (same kinetics, new noise)")->capture_default_str();
  cmd_->add_option("--activity-MBq", options_.administered_MBq, "Administered activity per cycle [MBq]")
      ->capture_default_str();
  cmd_->add_option("--phantom", options_.phantom, "Phantom of the true doses and organ masses")->capture_default_str();
  cmd_->add_option("--vois", options_.vois,
                   "VOIs (commas): kidneys, kidney_left, kidney_right, liver, spleen, tumour_*, tumor_*, lesion_*, "
                   "whole_body (with --population-kinetics)")
      ->delimiter(',')
      ->capture_default_str();
  cmd_->add_option("--noise", noise_,
                   "Noise per VOI kind, repeatable: KIND=SPEC, KIND organ, tumour or whole_body (no default), SPEC none, proportional:B, "
                   "constant:SIGMA0_MBQ, combined:SIGMA0_MBQ:B or poisson:CF_CPS_PER_MBQ:FRAME_MIN (counting noise) "
                   "(default organ=proportional:0.1, tumour=proportional:0.15; methods.md §9.3)");
  cmd_->add_option("--cv-fraction", options_.cv_fraction,
                   "Inter-patient CV of the uptake fraction f (log-normal; methods.md §9.3: 25-35 %)")
      ->capture_default_str();
  cmd_->add_option("--cv-clearance", options_.cv_clearance,
                   "Inter-patient CV of lambda_bio (log-normal; default: sd/mean of the population file)");
  cmd_->add_option("--cv-mass", cv_mass_,
                   "Inter-patient CV of the VOI masses (log-normal, mean the phantom's or --tumour-mass-g), "
                   "repeatable: KIND=CV (KIND organ or tumour) or CV for both (default 0: the same masses "
                   "for every patient)");
  cmd_->add_option("--population-kinetics", options_.population_kinetics_path,
                   "Population entries (CSV as data/kinetics/population_kinetics.csv) used before the shipped "
                   "ones; needed for a whole_body VOI (no sourced whole-body kinetics are shipped)");
  cmd_->add_option("--tumour-mass-g", options_.tumour_mass_g, "Mass of every tumour VOI [g]")->capture_default_str();
  cmd_->add_option("--format", options_.format,
                   "tables (tacs.csv + patients.csv, docs/tac-format.md) or cases (one case file per patient, "
                   "case-PATIENT.json, docs/case-file.md)")
      ->capture_default_str();
  cmd_->add_option("--cf-cps-per-MBq", options_.cf_cps_per_MBq,
                   "Case files with counts from this calibration factor [cps/MBq] (methods.md §9.3: about 5)");
  cmd_->add_option("--frame-min", options_.frame_min, "Acquisition time per scan [min] (with counts)")
      ->capture_default_str();
  cmd_->add_option("--dead-time-us", options_.dead_time_us,
                   "Paralysable dead time [us] (with counts; methods.md §1.3: about 4.6); 0: none")
      ->capture_default_str();
  cmd_->add_option("--recovery", recovery_,
                   "Partial volume of the tumour VOIs (with counts): recovery coefficients V_mL:RC separated by "
                   "commas, volumes increasing (e.g. 1:0.35,10:0.62,100:0.86)")
      ->delimiter(',');
  cmd_->add_option("--data-dir", data_dir_, "Reference data directory");
  cmd_->add_option("--out", out_, "Output directory: new or empty (or an earlier lutdose synth set)")->required();
  cmd_->add_flag("--quiet", quiet_, "Print nothing on success");
  cmd_->footer("Example: lutdose synth --patients 100 --seed 7 --times-h 4,24,96,168 --out cohort");
}

void SynthCommand::run() const {
  lutdose::check_output_dir(out_, lutdose::ResultKind::synth);  // path problems before any work
  lutdose::SynthOptions o = options_;
  if (seed_ < 0) lutdose::throw_input_error("command line", "--seed", std::to_string(seed_), "a whole number >= 0");
  o.seed = static_cast<unsigned long long>(seed_);
  for (const auto& text : noise_) {
    const auto eq = text.find('=');
    if (eq == std::string::npos)
      lutdose::throw_input_error("command line", "--noise", text, "KIND=SPEC, e.g. organ=proportional:0.1");
    o.noise[text.substr(0, eq)] = lutdose::parse_synth_noise("--noise " + text, text.substr(eq + 1));
  }
  for (const auto& text : cv_mass_) {
    const auto eq = text.find('=');
    const std::string value = eq == std::string::npos ? text : text.substr(eq + 1);
    double cv = NAN;
    try {
      size_t used = 0;
      cv = std::stod(value, &used);
      if (used != value.size()) cv = NAN;
    } catch (const std::exception&) {
      cv = NAN;
    }
    if (std::isnan(cv))
      lutdose::throw_input_error("command line", "--cv-mass", text, "KIND=CV or CV, e.g. organ=0.2 or 0.2");
    if (eq != std::string::npos) o.cv_mass[text.substr(0, eq)] = cv;
    else
      for (const char* kind : {"organ", "tumour"}) o.cv_mass[kind] = cv;  // whole_body: the phantom's mass
  }
  for (const auto& pair : recovery_) {
    const auto colon = pair.find(':');
    double v = NAN, rc = NAN;
    try {
      size_t used_v = 0, used_rc = 0;
      v = std::stod(pair.substr(0, colon), &used_v);
      rc = std::stod(pair.substr(colon + 1), &used_rc);
      if (colon == std::string::npos || used_v != colon || used_rc != pair.size() - colon - 1) v = NAN;
    } catch (const std::exception&) {
      v = NAN;
    }
    if (std::isnan(v) || std::isnan(rc))
      lutdose::throw_input_error("command line", "--recovery", pair, "V_mL:RC pairs, e.g. 1:0.35,10:0.62");
    o.recovery.volume_mL.push_back(v);
    o.recovery.rc.push_back(rc);
  }
  o.data_dir = lutdose::find_data_dir(data_dir_);
  const auto ref = lutdose::ReferenceData::load(o.data_dir);
  const auto model = lutdose::make_synth_model(ref, o);
  const auto files = lutdose::synth_cohort_files(model, LUTDOSE_VERSION);
  lutdose::write_output_files(out_, lutdose::ResultKind::synth, files, LUTDOSE_VERSION);
  if (!quiet_)
    std::cout << "synthetic cohort: " << o.n_patients << " patients x " << o.cycles << " cycles x " << o.vois.size()
              << " VOIs\nwritten: " << out_ << " (" << files.size() << " files and manifest.json: "
              << (o.format == "cases" ? "case-*.json" : "tacs.csv, patients.csv") << ", truth.csv, synth.json)\n";
}

}  // namespace lutdose_cli
