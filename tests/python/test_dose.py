"""dose, bed and plan: the dose step alone gives the run's doses from the run's TIAs and masses;
BED against its closed form for a mono-exponential; plan equal to `lutdose plan`."""
import math

import numpy as np
import pytest

import lutdose
from conftest import cli, cli_error


def test_dose_from_run_tias_equals_run(source):
    tac = f"{source}/examples/snmmi-patient004/tac.csv"
    r = lutdose.run_tac(tac, administered_MBq=7210.4, phantom="icrp110-am")
    v = r.vois.set_index("voi")
    d = lutdose.dose(v.tia_MBq_h.to_dict(), tia_u_MBq_h=v.tia_u_MBq_h.to_dict(), mass_g=v.mass_g.to_dict(),
                     phantom="icrp110-am", administered_MBq=7210.4)
    got = d.doses.set_index("target")
    want = r.doses.set_index("target")
    for target in want.index:
        # The same DoseCalculator on the same TIAs and masses: the same doubles.
        assert got.loc[target, "dose_Gy"] == want.loc[target, "dose_Gy"], target
        assert got.loc[target, "self_Gy"] == want.loc[target, "self_Gy"], target
        assert got.loc[target, "dose_Gy_per_GBq"] == want.loc[target, "dose_Gy_per_GBq"], target
    assert set(d.budget.target) == set(v.index)


def test_dose_without_u_is_unknown_not_zero():
    d = lutdose.dose({"liver": 50000.0, "kidneys": 8000.0}, phantom="icrp110-am")
    assert d.doses.dose_Gy.gt(0).all()
    assert d.doses.set_index("target").loc["liver", "dose_u_Gy"] != 0
    assert np.isnan(d.doses.set_index("target").loc["liver", "dose_u_Gy"])


def test_dose_bad_option_has_cli_message(source, tmp_path):
    tac = f"{source}/examples/snmmi-patient004/tac.csv"
    expected = cli_error("run", "--tac", tac, "--activity-MBq", "7000", "--phantom", "icrp110-am",
                         "--mass-scaling", "cubic", "--out", tmp_path / "out")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.dose({"liver": 1.0}, phantom="icrp110-am", mass_scaling="cubic")
    assert str(e.value) == expected


def test_bed_mono_exponential_closed_form():
    # Mono-exponential dose rate delivered in full: G = lambda / (lambda + mu) (Dale 1985), so
    # BED = D (1 + G D / (alpha/beta)); computed here by hand, compared to 1e-12 (rounding).
    D, t_eff, ab, trep = 10.0, 50.0, 2.6, 2.8
    lam, mu = math.log(2) / t_eff, math.log(2) / trep
    g = lam / (lam + mu)
    r = lutdose.bed(D, t_eff_h=t_eff, alpha_beta_Gy=ab, repair_half_time_h=trep)
    assert r["g"] == pytest.approx(g, rel=1e-12)
    assert r["bed_Gy"] == pytest.approx(D * (1 + g * D / ab), rel=1e-12)
    assert r["eqd2_Gy"] == pytest.approx(r["bed_Gy"] / (1 + 2 / ab), rel=1e-12)


def test_bed_tissue_of_target():
    tissues = lutdose.reference_data()["tissues"]
    row = tissues[tissues.target.str.startswith("kidney")].iloc[0]
    r = lutdose.bed(5.0, t_eff_h=40.0, target="kidney_left")
    assert r["alpha_beta_Gy"] == row.alpha_beta_Gy and r["repair_half_time_h"] == row.repair_half_time_h
    with pytest.raises(lutdose.InputError, match="t_eff_h is -1.0"):
        lutdose.bed(5.0, t_eff_h=-1.0, target="kidney_left")
    with pytest.raises(lutdose.InputError, match="target is 'liver_x'"):
        lutdose.bed(5.0, t_eff_h=40.0, target="liver_x")
    with pytest.raises(lutdose.InputError, match="lambda_per_h is '0'"):
        lutdose.bed(a_Gy_per_h=[1.0], lambda_per_h=[0.0], alpha_beta_Gy=3.0, repair_half_time_h=1.0)


def test_plan_equals_cli(source):
    case = f"{source}/examples/synthetic-two-cycles/case.json"
    expected = cli("plan", case).stdout
    doc = lutdose.plan(case)
    assert lutdose.plan.last_json == expected
    assert doc["next_cycle"] == 3


def test_plan_bad_option_has_cli_message(source):
    case = f"{source}/examples/synthetic-two-cycles/case.json"
    expected = cli_error("plan", case, "--strategy", "greedy")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.plan(case, strategy="greedy")
    assert str(e.value) == expected


@pytest.mark.parametrize("kw, message", [
    (dict(mass_g={"liver": 0.0}), r"mass_g of liver is '0'; expected a mass from 0\.001"),
    (dict(mass_g={"liver": -5.0}), r"mass_g of liver is '-5'; expected a mass from"),
    (dict(mass_g={"liver": float("inf")}), r"mass_g of liver is 'inf'; expected a mass from"),
    (dict(tia_u_MBq_h={"liver": -1.0}), r"tia_u_MBq_h of liver is '-1'; expected"),
    (dict(administered_MBq=0.0), r"administered_MBq is '0'; expected"),
    (dict(administered_MBq=-7400.0), r"administered_MBq is '-7400'; expected"),
    (dict(tia_u_MBq_h={"kidneys": 1.0}), r"tia_u_MBq_h.*'kidneys'.*expected a VOI of tia_MBq_h"),
    (dict(mass_g={"kidneys": 300.0}), r"mass_g.*'kidneys'.*expected a VOI of tia_MBq_h"),
])
def test_dose_refuses_bad_values(kw, message):
    # Regression: only the TIA was checked; these gave inf/NaN/0 doses or a u of 0 shown as known.
    with pytest.raises(lutdose.InputError, match=message):
        lutdose.dose({"liver": 50000.0}, phantom="icrp110-am", **kw)


def test_dose_refuses_no_tia():
    with pytest.raises(lutdose.InputError, match=r"tia_MBq_h.*expected at least one VOI"):
        lutdose.dose({}, phantom="icrp110-am")


@pytest.mark.parametrize("a, lam, what", [
    ([-1.0], [0.1], "dose_Gy is '-10'"),                 # review of 0.15 (F5): gave dose -10 Gy, BED -5.8 Gy
    ([1.0, -1.0], [0.5, 0.01], "dose_Gy is '-98'"),      # gave -98 Gy
    ([1.0, -2.0], [0.01, 0.5], "the sum of a_Gy_per_h is '-1'"),  # a dose rate below 0 at t = 0
    ([200.0, -1.0], [0.5, 0.01], "the slowest term's a_Gy_per_h is '-1'"),  # dose 300 Gy, but below 0 late
    # re-review of 0.16 (B): a zero slowest term hid the negative late rate; a dip in the middle
    ([0.0, -1.0, 20.0], [0.01, 0.1, 1.0], "the slowest term's a_Gy_per_h is '-1'"),
    ([10.0, -12.0, 3.0], [2.0, 0.5, 0.01], "the dose rate at t = ")])
def test_bed_refuses_a_negative_dose_or_dose_rate(a, lam, what):
    # A negative term alone is fine (an uptake curve: a_1 e^-l1 t - a_1 e^-l2 t); a dose rate that
    # is negative at the start, at late times (its slowest term) or in total is not a dose.
    with pytest.raises(lutdose.InputError, match=what):
        lutdose.bed(a_Gy_per_h=a, lambda_per_h=lam, alpha_beta_Gy=3.0, repair_half_time_h=1.0)
    up = lutdose.bed(a_Gy_per_h=[1.0, -1.0], lambda_per_h=[0.01, 0.5], alpha_beta_Gy=3.0, repair_half_time_h=1.0)
    assert up["dose_Gy"] == pytest.approx(1 / 0.01 - 1 / 0.5, rel=1e-12)  # closed form: sum a_i / l_i


@pytest.mark.parametrize("a, lam", [([-(0.1 + 0.2), 0.1, 0.2], [1.0, 0.05, 0.01]),
                                    ([0.1, 0.2, -(0.1 + 0.2)], [0.05, 0.01, 1.0]),
                                    ([2.0, 0.5], [0.3, 0.01])])
def test_bed_takes_uptake_curves_whose_terms_cancel_at_zero(a, lam):
    # Re-review of 0.16 (A): an E3u-like uptake curve, a1 e^-l1 t + a2 e^-l2 t - (a1 + a2) e^-l3 t, sums
    # to -2.8e-17 at t = 0 in floating point (0.1 + 0.2 rounds) and was refused as a negative dose rate.
    r = lutdose.bed(a_Gy_per_h=a, lambda_per_h=lam, alpha_beta_Gy=3.0, repair_half_time_h=1.0)
    assert r["dose_Gy"] == pytest.approx(sum(x / y for x, y in zip(a, lam)), rel=1e-12)  # sum a_i / l_i


def test_bed_refuses_negative_dose_and_missing_tissue():
    with pytest.raises(lutdose.InputError, match=r"dose_Gy is '-1'; expected"):
        lutdose.bed(-1.0, t_eff_h=40.0, target="kidney_left")
    # Regression: said "alpha_beta_Gy is '0'" when no tissue parameters were given.
    with pytest.raises(lutdose.InputError, match=r"give target or alpha_beta_Gy and repair_half_time_h"):
        lutdose.bed(5.0, t_eff_h=40.0)
    with pytest.raises(lutdose.InputError, match=r"give target or alpha_beta_Gy and repair_half_time_h"):
        lutdose.bed(5.0, t_eff_h=40.0, alpha_beta_Gy=3.0)
    # Regression: a TypeError from float(None).
    with pytest.raises(lutdose.InputError, match=r"give dose_Gy and t_eff_h, or a_Gy_per_h and lambda_per_h"):
        lutdose.bed()


def test_dose_with_user_svalues_needs_no_phantom(tmp_path):
    # Review of 0.15 (F3): svalues= alone was refused ("phantom is 'missing'"), though the docs give
    # "phantom ... (or svalues)". A one-target table: the self-dose is TIA x 3600 s/h x S.
    table = tmp_path / "s.csv"
    table.write_text("target,source,s_mGy_per_MBq_s,target_mass_g\nliver,liver,1.4e-05,1800.0\n")
    out = lutdose.dose({"liver": 1000.0}, svalues=str(table))
    liver = out.doses[out.doses.target == "liver"].iloc[0]
    assert liver.dose_Gy == pytest.approx(1000.0 * 3600 * 1.4e-5 / 1000, rel=1e-12)  # mGy -> Gy, rounding only


def test_dose_refuses_a_phantom_beside_svalues(tmp_path):
    # Noticed in 0.16: phantom= beside svalues= was ignored without a word (the table's S-values used).
    table = tmp_path / "s.csv"
    table.write_text("target,source,s_mGy_per_MBq_s,target_mass_g\nliver,liver,1.4e-05,1800.0\n")
    with pytest.raises(lutdose.InputError) as e:
        lutdose.dose({"liver": 1000.0}, phantom="icrp110-af", svalues=str(table))
    assert "phantom" in str(e.value) and "icrp110-af" in str(e.value) and "svalues" in str(e.value)
