// `lutdose synth`: option parsing and output only; the generator is lutdose/cohort/synth.h.
#include "synth.h"

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
  options_.seed = 20261124;
  cmd_->add_option("--patients", options_.n_patients, "Number of patients (1 to 1000000)")->required();
  cmd_->add_option("--seed", options_.seed, "Seed; patient k draws from its own stream (docs/synth.md)")
      ->capture_default_str();
  cmd_->add_option("--times-h", options_.times_h, "Imaging times [h after administration], separated by commas")
      ->delimiter(',')
      ->capture_default_str();
  cmd_->add_option("--cycles", options_.cycles, "Cycles per patient (same kinetics, new noise)")->capture_default_str();
  cmd_->add_option("--activity-MBq", options_.administered_MBq, "Administered activity per cycle [MBq]")
      ->capture_default_str();
  cmd_->add_option("--phantom", options_.phantom, "Phantom of the true doses and organ masses")->capture_default_str();
  cmd_->add_option("--vois", options_.vois,
                   "VOIs (commas): kidneys, kidney_left, kidney_right, liver, spleen, tumour_*, tumor_*, lesion_*")
      ->delimiter(',')
      ->capture_default_str();
  cmd_->add_option("--noise", noise_,
                   "Noise per VOI kind, repeatable: KIND=SPEC, KIND organ or tumour, SPEC none, proportional:B, "
                   "constant:SIGMA0_MBQ or combined:SIGMA0_MBQ:B (default organ=proportional:0.1, "
                   "tumour=proportional:0.15; methods.md §9.3)");
  cmd_->add_option("--cv-fraction", options_.cv_fraction,
                   "Inter-patient CV of the uptake fraction f (log-normal; methods.md §9.3: 25-35 %)")
      ->capture_default_str();
  cmd_->add_option("--cv-clearance", options_.cv_clearance,
                   "Inter-patient CV of lambda_bio (log-normal; default: sd/mean of the population file)");
  cmd_->add_option("--tumour-mass-g", options_.tumour_mass_g, "Mass of every tumour VOI [g]")->capture_default_str();
  cmd_->add_option("--data-dir", data_dir_, "Reference data directory");
  cmd_->add_option("--out", out_, "Output directory: new or empty (or an earlier lutdose set)")->required();
  cmd_->add_flag("--quiet", quiet_, "Print nothing on success");
  cmd_->footer("Example: lutdose synth --patients 100 --seed 7 --times-h 4,24,96,168 --out cohort");
}

void SynthCommand::run() const {
  lutdose::check_output_dir(out_);  // path problems before any work
  lutdose::SynthOptions o = options_;
  for (const auto& text : noise_) {
    const auto eq = text.find('=');
    if (eq == std::string::npos)
      lutdose::throw_input_error("command line", "--noise", text, "KIND=SPEC, e.g. organ=proportional:0.1");
    o.noise[text.substr(0, eq)] = lutdose::parse_synth_noise("--noise " + text, text.substr(eq + 1));
  }
  o.data_dir = lutdose::find_data_dir(data_dir_);
  const auto ref = lutdose::ReferenceData::load(o.data_dir);
  const auto model = lutdose::make_synth_model(ref, o);
  const auto f = lutdose::synth_cohort_files(model, LUTDOSE_VERSION);
  lutdose::write_output_files(out_,
                              {{"tacs.csv", f.tacs_csv},
                               {"patients.csv", f.patients_csv},
                               {"truth.csv", f.truth_csv},
                               {"synth.json", f.synth_json}},
                              LUTDOSE_VERSION);
  if (!quiet_)
    std::cout << "synthetic cohort: " << o.n_patients << " patients x " << o.cycles << " cycles x " << o.vois.size()
              << " VOIs\nwritten: " << out_ << "/tacs.csv, patients.csv, truth.csv, synth.json, manifest.json\n";
}

}  // namespace lutdose_cli
