#include "lutdose/kinetics/voi_fit_options.h"

#include "lutdose/dosimetry/svalues.h"

namespace lutdose {

FitOptions fit_options_for(const std::string& voi, const FitOptions& o) {
  FitOptions v = o;
  if (o.error_model_by_voi_kind && is_tumour_voi(voi)) v.error_model = ErrorModel::proportional_model;
  return v;
}

}  // namespace lutdose
