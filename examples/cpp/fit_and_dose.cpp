// Fits a left-kidney time-activity curve and computes its absorbed dose with lutdose's engine.
// Usage: fit_and_dose [DATA_DIR]   (default: the data of the installed lutdose package)
#include <cstdio>

#include "lutdose/dosimetry/dose.h"
#include "lutdose/dosimetry/nuclide.h"
#include "lutdose/io/data_dir.h"
#include "lutdose/kinetics/fitting.h"

int main(int argc, char** argv) {
  const std::string data_dir = lutdose::find_data_dir(argc > 1 ? argv[1] : LUTDOSE_EXAMPLE_DATA_DIR);
  const lutdose::Nuclide lu177 = lutdose::load_nuclide(data_dir, "Lu-177");
  // Activity in the left kidney [MBq] at hours after the infusion, not decay-corrected: the curve
  // 120 MBq x 2^(-t / 50 h) rounded to 0.01 MBq, so the TIA is about 120 x 50 / ln 2 MBq h.
  Eigen::VectorXd t_h(4), a_MBq(4);
  t_h << 4, 24, 72, 168;
  a_MBq << 113.53, 86.04, 44.23, 11.69;
  const lutdose::TacFit fit = lutdose::fit_tac(t_h, a_MBq, Eigen::VectorXd(), lu177.lambda_per_h(),
                                               lutdose::FitOptions{}, "kidney_left");
  lutdose::DoseOptions dose_options;
  dose_options.phantom = "icrp110-am";  // OpenDose S-values of the ICRP 110 adult male
  const lutdose::DoseCalculator doses(data_dir, lu177, dose_options);
  lutdose::DoseSourceInput kidney{"kidney_left", fit.tia_MBq_h, fit.tia_u_MBq_h, fit.tia_u_dof};
  const lutdose::TargetDose d = doses.compute({kidney}, 7400.0, "example").targets.front();
  std::printf("data directory: %s\n", data_dir.c_str());
  std::printf("kidney_left: function %s, TIA = %.1f +- %.1f MBq h\n", fit.function.c_str(),
              fit.tia_MBq_h, fit.tia_u_MBq_h);
  std::printf("kidney_left: mass %.3f g, dose = %.4f +- %.4f Gy (%.4f Gy/GBq for 7400 MBq)\n",
              d.mass_g, d.dose_Gy, d.dose_u_Gy, d.dose_Gy_per_GBq);
}
