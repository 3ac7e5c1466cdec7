// lutdose: the command-line program. Only argument parsing and calls into the engine library.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "huge_page_heap.h"
#include "lutdose/io/data_dir.h"
#include "lutdose/io/case_file.h"
#include "lutdose/io/input_file.h"
#include "lutdose/error.h"
#include "lutdose/models/exponential.h"
#include "lutdose/notice.h"
#include "lutdose/io/output_dir.h"
#include "lutdose/pipeline/pipeline.h"
#include "lutdose/planning/planning.h"
#include "lutdose/planning/run_history.h"
#include "lutdose/io/plan_json.h"
#include "lutdose/io/plan_options.h"
#include "lutdose/io/results.h"
#include "lutdose/io/store.h"
#include "lutdose/dosimetry/svalues.h"
#include "lutdose/version.h"
#include "batch.h"
#include "fit.h"
#include "plan_args.h"
#include "report.h"
#include "lutdose/io/run_files.h"
#include "run_options.h"
#include "synth.h"
#include "population.h"

using lutdose_cli::FitArgs;
using lutdose_cli::add_fit_options;
using lutdose_cli::choose;
using lutdose_cli::throw_problems;
using lutdose_cli::make_run_options;
using lutdose_cli::finish_run_options;

namespace {

// results.h5 of `lutdose run`: a results store (docs/store.md) holding this run's patients, with the
// input file verbatim (`inputs`: name, text pairs) and its SHA-256 `sha`.
std::string run_store_image(const lutdose::RunResult& result,
                            const std::vector<std::pair<std::string, std::string>>& inputs, const std::string& sha) {
  auto header = lutdose::store_header_of(result.provenance, "run");
  header.cohort = nlohmann::json{{"input_kind", lutdose::to_string(result.provenance.options.input_kind)},
                                 {"input", result.provenance.options.tac_path}, {"sha256", sha}}.dump();
  std::vector<std::string> patients;
  for (const auto& c : result.cycles)
    if (std::find(patients.begin(), patients.end(), c.patient) == patients.end()) patients.push_back(c.patient);
  header.cohort_patients = static_cast<long long>(patients.size());
  return lutdose::store_image(header, lutdose::store_rows(result, result.provenance.options.tac_path, sha), inputs);
}

}  // namespace

int main(int argc, char** argv) {
#ifdef LUTDOSE_HUGE_PAGE_HEAP
  lutdose_cli::use_huge_page_heap();
#endif
  CLI::App app{
      "lutdose " LUTDOSE_VERSION
      ": patient dosimetry for 177Lu peptide receptor radionuclide therapy.\n"
      "TACs (activity in MBq at hours after the reference time) -> fits -> time-integrated "
      "activities (MBq h) -> absorbed doses (Gy). Exit status: 0 success, 2 bad input, 1 internal "
      "error; batch: 3 when some patients failed.",
      "lutdose"};
  app.set_version_flag("--version", "lutdose " LUTDOSE_VERSION);
  app.require_subcommand(1);

  FitArgs run_args;
  std::string out_dir, phantom;
  lutdose_cli::DoseArgs run_dose;
  double body_mass_kg = NAN;
  std::string svalues;
  bool quiet = false;
  auto* run = app.add_subcommand(
      "run",
      "Full pipeline, from a case file (counts or activities with their calibration) or a TAC "
      "table: quantify, fit every VOI, integrate to TIA, compute self-doses; writes "
      "DIR/results.json, DIR/results.csv and DIR/results.h5 and prints a table.");
  std::string case_path;
  run->add_option("case", case_path,
                  "Case file (JSON, docs/case-file.md); its fit and dose options replace the "
                  "command-line ones");
  add_fit_options(run, run_args, false);
  std::string phantom_help = "Phantom / S-value set:";
  for (const auto& [n, d] : lutdose::phantoms()) phantom_help += "\n  " + n + ": " + d;
  run->add_option("--phantom", phantom, phantom_help);
  run->add_option("--out", out_dir,
                  "Output directory: new, empty, or holding an earlier lutdose run result set, which is "
                  "replaced as a whole in one step (docs/results.md)")
      ->required();
  lutdose_cli::add_dose_options(run, run_dose);
  run->add_option("--body-mass-kg", body_mass_kg, "Patient body mass [kg] (for --cross-scaling body-mass)");
  run->add_option("--svalues", svalues,
                  "User S-value table (CSV: target, source, s_mGy_per_MBq_s, target_mass_g; "
                  "docs/svalues.md) instead of a phantom");
  long long mc_samples = 0, mc_seed = 0;  // used when given (count > 0); checked by validate_monte_carlo
  run->add_option("--mc-samples", mc_samples,
                  "Monte Carlo cross-check of the dose uncertainty with N samples, 0 to 1000000 (refits each VOI); "
                  "overrides the case's uncertainty.monte_carlo_samples");
  run->add_option("--mc-seed", mc_seed, "Seed of the Monte Carlo (default 20261124, or the case's)");
  run->add_flag("--quiet", quiet, "Do not print the table");
  bool run_report = false;
  run->add_flag("--report", run_report, "Also write DIR/report.html, the HTML report of the run (docs/report.md)");
  bool allow_external = false;  // files named in a case file outside its folder (docs/case-file.md)
  run->add_flag("--allow-external-files", allow_external,
                "Let the case file name files outside its folder (absolute paths, '..', links)");
  run->footer(
      "VOI names: kidney_left, kidney_right, kidneys, liver, spleen (every phantom); red_marrow, "
      "whole_body, lungs, pancreas, salivary_glands, thyroid (icrp89-*); tumour_*, tumor_*, lesion_* "
      "are tumours and need mass_g or volume_mL.\n"
      "Mass: mean of mass_g, else mean of volume_mL x density, else the phantom's mass.\n"
      "With --tac, --activity-MBq and --phantom are required; with a case file they come from the "
      "file.\n"
      "Examples: lutdose run examples/snmmi-patient004/case.json --out out/p004\n"
      "          lutdose run --tac examples/snmmi-patient004/tac.csv --activity-MBq 7210.4 "
      "--phantom icrp110-am --out out/p004\n"
      "Formats and fields: docs/case-file.md, docs/tac-format.md, docs/results.md, "
      "docs/store.md (results.h5); methods: docs/methods.md.");

  lutdose_cli::FitCommand fit(app);

  // plan
  std::string plan_case, plan_history, plan_out, plan_strategy, plan_prediction, plan_data_dir, plan_population;
  int plan_cycles = 0;
  double plan_a_min = NAN, plan_a_max = NAN, plan_a_std = NAN, plan_safety = NAN, plan_cv = NAN;
  std::vector<std::string> plan_limits;
  bool plan_text = false, plan_allow_incomplete = false;
  auto* plan = app.add_subcommand(
      "plan",
      "Next-cycle prescription (docs/plan.md): from a case file (its cycles are run first) or a "
      "dose history table, predict each organ at risk's Gy/GBq, and give the largest activity that "
      "keeps every cumulative dose and BED under its limit. Prints JSON (stable fields of "
      "design.md §4.5) or, with --text, a summary with the reasoning.");
  plan->add_option("case", plan_case, "Case file (its \"plan\" block gives the options)");
  plan->add_option("--history", plan_history,
                   "Dose history CSV: cycle, administered_MBq, target, dose_Gy; optional bed_Gy, g, t_eff_h, incomplete");
  plan->add_option("--strategy", plan_strategy, "equal-split (default), fixed-until-limit or max-bed");
  plan->add_option("--prediction", plan_prediction, "previous (default), mean or bayes");
  plan->add_option("--planned-cycles", plan_cycles, "Total number of cycles planned (default 4)");
  plan->add_option("--a-min-MBq", plan_a_min, "Lowest activity to prescribe [MBq] (default 0)");
  plan->add_option("--a-max-MBq", plan_a_max, "Highest activity to prescribe [MBq] (default 7400)");
  plan->add_option("--a-standard-MBq", plan_a_std, "Fixed activity of fixed-until-limit [MBq] (default 7400)");
  plan->add_option("--safety-k", plan_safety,
                   "Prescribe with the prediction's k-sigma upper bound (default 1; 0: none)");
  plan->add_option("--prediction-cv", plan_cv, "Relative uncertainty of the prediction (default 0.10)");
  plan->add_option("--limit", plan_limits,
                   "An extra limit TARGET:QUANTITY:VALUE, e.g. 'kidney*:bed_Gy:28' (adds to "
                   "data/radiobiology/limits.csv; the strictest applies)");
  plan->add_option("--out", plan_out,
                   "Write the JSON to this file (new, or an earlier plan: replaced in one step) instead of "
                   "standard output");
  plan->add_flag("--text", plan_text, "Print a readable summary with the reasoning instead of JSON");
  plan->add_flag("--allow-incomplete", plan_allow_incomplete,
                 "Apply limits to doses known to be incomplete (no whole_body VOI, no marrow self-dose) instead "
                 "of giving no prescription; the result is marked incomplete, without P(exceed) for those targets");
  plan->add_option("--data-dir", plan_data_dir, "Reference data directory");
  plan->add_option("--population", plan_population,
                   "Population file (lutdose population learn): the case's VOIs are fitted by MAP with it as prior, "
                   "as lutdose run CASE.json --population does (a case file only; the case's fit.population, if "
                   "any, must be the same file; docs/population.md)")
      ->check(lutdose_cli::population_file_path);
  plan->add_flag("--allow-external-files", allow_external,
                 "Let the case file name files outside its folder (absolute paths, '..', links)");
  plan->footer("Examples: lutdose plan examples/synthetic-two-cycles/case.json --text\n"
               "          lutdose plan --history doses.csv --strategy fixed-until-limit");

  std::string info_phantom, info_svalues, info_data_dir;
  auto* info = app.add_subcommand("info", "Reference data: lutdose info svalues lists the S-value sets, "
                                          "or one set's sources, targets, masses and VOI names; "
                                          "lutdose info licences prints the licences.");
  auto* info_sv = info->add_subcommand("svalues", "S-value sets; with --phantom or --svalues, that set's "
                                                  "sources, targets with masses, and the VOI names it maps");
  info_sv->add_option("--phantom", info_phantom, "A set to describe");
  info_sv->add_option("--svalues", info_svalues, "A user S-value table to check and describe");
  info_sv->add_option("--data-dir", info_data_dir, "Reference data directory");
  auto* info_lic = info->add_subcommand("licences", "The licence of lutdose and the terms of each shipped data "
                                                    "set (the NOTICE file)");
  info->require_subcommand(1);

  lutdose_cli::SynthCommand synth(app);
  lutdose_cli::PopulationCommand population(app);
  lutdose_cli::BatchCommand batch(app);
  lutdose_cli::ReportCommand report(app);
  lutdose_cli::PlotCommand plot(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "lutdose: " << e.what() << "\n(see lutdose --help)\n";
    return 2;
  }

  try {
    if (run->parsed()) {
      lutdose::check_output_dir(out_dir, lutdose::ResultKind::run);  // path problems before any work
      lutdose::RunResult result;
      std::vector<std::pair<std::string, std::string>> inputs;
      std::string input_sha256;  // of the input file as analysed
      if (!case_path.empty()) {
        if (!run_args.tac.empty())
          lutdose::throw_input_error("command line", "--tac", run_args.tac,
                                     "either a case file or --tac, not both");
        for (const char* opt : {"--activity-MBq", "--phantom", "--function", "--functions",
                                "--error-model", "--aicc-k", "--trapezoid-head", "--reject-correlated",
                                "--trapezoid-body", "--trapezoid-tail", "--integration", "--model-averaging",
                                "--combined-sigma0-MBq", "--combined-b", "--reduced", "--model",
                                "--half-life-h", "--tumour-method", "--sphere-composition",
                                "--density-g-per-mL", "--mass-scaling", "--cross-scaling",
                                "--body-mass-kg", "--svalues"})
          if (run->count(opt) > 0)
            lutdose::throw_input_error("command line", opt, "given with a case file",
                                       "the option in the case file (its \"fit\", \"dose\" or "
                                       "cycle blocks), not on the command line");
        for (const auto& [opt, text] : lutdose_cli::learning_only_options(run_args))
          if (!text.empty())  // options of --kinetics population's learning, which one case file cannot do
            lutdose::throw_input_error("command line", opt, text,
                                       std::string("no ") + opt + " with a case file: it is an option of "
                                       "--kinetics population's learning from a cohort (fit, run --tac, batch)");
        std::optional<lutdose::Kinetics> kinetics;  // replaces the case's fit.kinetics, as --mc-samples its samples
        if (run->count("--kinetics")) kinetics = lutdose_cli::case_file_kinetics(run_args.kinetics);
        auto c = lutdose::load_case_file(case_path, allow_external);
        if (kinetics) c.fit.kinetics = *kinetics;
        lutdose::use_case_population(c, run_args.population, kinetics);  // the case's fit.population or --population
        throw_problems(lutdose::validate_monte_carlo(mc_samples, mc_seed));
        if (run->count("--mc-samples")) c.mc_samples = static_cast<int>(mc_samples);
        if (run->count("--mc-seed")) c.mc_seed = static_cast<unsigned long long>(mc_seed);
        result = lutdose::run_case(c, lutdose::find_data_dir(run_args.data_dir));
        inputs.emplace_back("case_json", c.text);  // exactly the bytes analysed
        inputs.emplace_back("case_json_sha256", c.sha256);
        input_sha256 = c.sha256;
      } else {
        if (run_args.tac.empty())
          throw lutdose::InputError("command line: no input; expected a case file (lutdose run CASE.json "
                                    "--out DIR) or --tac TAC.csv");
        lutdose_cli::TacRunArgs tac_args{run_args, run_dose, phantom, svalues, body_mass_kg, {}, {}};
        if (run->count("--mc-samples")) tac_args.mc_samples = mc_samples;
        if (run->count("--mc-seed")) tac_args.mc_seed = mc_seed;
        auto o = lutdose_cli::make_tac_run_options(tac_args);
        std::string tac_bytes;  // read once: exactly the bytes analysed are stored
        const auto series = lutdose::read_tac_table(run_args.tac, &tac_bytes);
        lutdose_cli::learn_if_population_kinetics(run_args, series, o);
        lutdose_cli::check_previous_cycles_input(series, o, run_args.tac);
        result = lutdose::run_tac_table(series, o);
        input_sha256 = lutdose::sha256_hex(tac_bytes);
        inputs.emplace_back("tac_csv_sha256", input_sha256);
        inputs.emplace_back("tac_csv", std::move(tac_bytes));
      }
      const auto doc = lutdose::to_json(result, true);
      std::vector<lutdose::OutputFile> files{{"results.json", doc.dump(2) + "\n"},
                                             {"results.csv", lutdose::to_csv(result)},
                                             {"results.h5", run_store_image(result, inputs, input_sha256)}};
      if (run_report)
        files.push_back({"report.html", lutdose_cli::run_report_html(files[0].bytes, input_sha256,
                                                                     lutdose::find_data_dir(run_args.data_dir))});
      lutdose::write_output_files(out_dir, lutdose::ResultKind::run, files, result.provenance.lutdose_version);
      if (!quiet) {
        lutdose::print_table(result, std::cout);
        std::cout << "\nwritten: " << out_dir << "/results.json, results.csv, results.h5, "
                  << (run_report ? "report.html, " : "") << "manifest.json\n";
      }
    } else if (population.parsed()) {
      population.run();
    } else if (synth.parsed()) {
      synth.run();
    } else if (batch.parsed()) {
      return batch.run();
    } else if (report.parsed()) {
      return report.run();
    } else if (plot.parsed()) {
      return plot.run();
    } else if (plan->parsed()) {
      lutdose_cli::PlanArgs pa;
      pa.case_path = plan_case;
      pa.history_path = plan_history;
      pa.strategy = plan_strategy;
      pa.prediction = plan_prediction;
      pa.data_dir = plan_data_dir;
      pa.population = plan_population;
      if (plan->count("--planned-cycles")) pa.planned_cycles = plan_cycles;
      if (plan->count("--a-min-MBq")) pa.a_min_MBq = plan_a_min;
      if (plan->count("--a-max-MBq")) pa.a_max_MBq = plan_a_max;
      if (plan->count("--a-standard-MBq")) pa.a_standard_MBq = plan_a_std;
      if (plan->count("--safety-k")) pa.safety_k = plan_safety;
      if (plan->count("--prediction-cv")) pa.prediction_cv = plan_cv;
      pa.limits = plan_limits;
      pa.allow_incomplete = plan_allow_incomplete;
      pa.allow_external_files = allow_external;
      const auto planned = lutdose_cli::run_plan(pa);
      const auto& result = planned.result;
      const auto& delivered_u = planned.delivered_u;
      const nlohmann::ordered_json& plan_doc = planned.document;
      const std::string json_text = plan_doc.dump(2) + "\n";
      if (plan_text) {
        std::cout << "next cycle " << result.next_cycle << ": "
                  << (result.stop ? std::string("STOP, no further cycle")
                    : std::isnan(result.activity_MBq)
                        ? std::string("no prescription (a limit cannot be evaluated: incomplete dose)")
                        : lutdose::format_number(std::round(result.activity_MBq)) + " MBq" +
                              (result.incomplete ? " (INCOMPLETE doses, see below)" : ""))
                  << "\n";
        if (result.binding.quantity == "incomplete_dose")
        {
          std::string names;
          for (const auto& t : result.targets)
            if (!t.incomplete.empty()) names += (names.empty() ? "" : ", ") + t.name;
          std::cout << "not evaluable: the limits on " << names << " (incomplete doses, see below)\n";
        }
        else if (!result.binding.target.empty())
          std::cout << "bound by " << result.binding.target << ": " << result.binding.quantity << " limit "
                    << lutdose::format_number(result.binding.limit) << " Gy\n";
        else if (!result.binding.quantity.empty())
          std::cout << "bound by " << result.binding.quantity << " = " << lutdose::format_number(result.binding.limit)
                    << (result.binding.quantity.rfind("a_", 0) == 0 ? " MBq" : "") << "\n";
        for (const auto& line : result.reasoning) std::cout << "  - " << line << "\n";
        for (const auto& d : delivered_u.value_or(std::vector<lutdose::DeliveredDoseUncertainty>{}))
          if (d.incomplete())
            std::cout << "  - delivered dose of " << d.target << " in cycle " << d.cycle
                      << ": uncertainty incomplete (unknown for " << nlohmann::json(d.missing_inputs).dump() << ")\n";
      }
      if (plan->count("--out")) {
        // An earlier plan may be replaced only if its bytes match the checksum lutdose recorded
        // in it (unedited), and it is a plan; nothing else.
        lutdose::write_file_atomically(plan_out, lutdose::with_own_checksum(json_text), [](const std::string& content) {
          if (!lutdose::has_own_checksum(content)) return false;
          const auto j = nlohmann::json::parse(content, nullptr, false);
          return j.is_object() && j.contains("next_cycle") && j.contains("activity_MBq") && j.contains("targets");
        });
      } else if (!plan_text) {
        std::cout << json_text;
      }
    } else if (info_lic->parsed()) {
      std::cout << lutdose::kNoticeText;
    } else if (info_sv->parsed()) {
      const std::string dir = lutdose::find_data_dir(info_data_dir);
      if (info_phantom.empty() && info_svalues.empty()) {
        std::cout << "S-value sets (lutdose run --phantom NAME):\n";
        for (const auto& [n, d] : lutdose::phantoms()) std::cout << "  " << n << "  " << d << "\n";
        std::cout << "  user  a user-supplied table (--svalues FILE; docs/svalues.md)\n"
                  << "Details: lutdose info svalues --phantom NAME\n";
      } else {
        const auto set = info_svalues.empty() ? lutdose::load_svalue_set(dir, info_phantom)
                                              : lutdose::load_user_svalue_table(info_svalues);
        const auto map = info_svalues.empty() ? lutdose::load_voi_region_map(dir, info_phantom)
                                              : lutdose::user_voi_region_map(set);
        std::cout << set.name << ": " << set.description << "\nfiles:";
        for (const auto& f : set.files) std::cout << " " << f;
        std::cout << "\nS in mGy/(MBq s); reference body mass " << set.body_mass_g << " g\n"
                  << "\nVOI names (lutdose) -> source region(s) -> target region:\n";
        for (const auto& [voi, m] : map) {
          std::cout << "  " << voi << " -> ";
          for (size_t i = 0; i < m.source_regions.size(); ++i) std::cout << (i ? "; " : "") << m.source_regions[i];
          std::cout << " -> " << m.target_region << "\n";
        }
        std::cout << "  tumour_*, tumor_*, lesion_* -> sphere S-values or local deposition\n";
        if (!set.whole_body_source.empty())
          std::cout << "  whole_body -> remainder of body (source " << set.whole_body_source << ")\n";
        std::cout << "\nsources (" << set.sources.size() << "):\n";
        for (const auto& src : set.sources) std::cout << "  " << src << "\n";
        std::cout << "\ntargets (" << set.targets.size() << "), mass g:\n";
        for (const auto& t : set.targets) {
          const auto it = set.target_mass_g.find(t);
          std::cout << "  " << t << "  " << (it == set.target_mass_g.end() ? std::string("-") : lutdose::format_number(it->second)) << "\n";
        }
      }
    } else if (fit.parsed()) {
      return fit.run();
    }
  } catch (const lutdose::InputError& e) {
    std::cerr << "lutdose: error: " << e.what() << "\n";
    return 2;
  } catch (const lutdose::OutputError& e) {  // full disk, I/O error: earlier results are intact
    std::cerr << "lutdose: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lutdose: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
