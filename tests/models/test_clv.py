"""CLV models against the literature (CDNOW), against themselves (simulation) and at the extremes."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln, gammaln, hyp2f1

from models.clv import (
    BetaGeoModel,
    GammaGammaModel,
    customer_lifetime_value,
    customer_summary,
    history_flags,
    holdout_evaluation,
)
from models.clv.simulate import simulate_bgnbd, simulate_spend

CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"


@pytest.fixture(scope="module")
def summary(cdnow):
    return customer_summary(cdnow, CALIBRATION_END)


@pytest.fixture(scope="module")
def bgnbd(summary):
    return BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])


def rel(value, expected):
    return abs(value - expected) / abs(expected)


def test_cdnow_summary_is_built_the_way_the_paper_counts(summary, cdnow):
    assert len(summary) == 2357
    assert summary["frequency"].sum() == 2457
    # Customer 1 bought on Jan 1, Jan 18 and Aug 2 1997 (and again in December, after calibration).
    first = summary.loc[1]
    assert first["frequency"] == 2
    assert first["recency"] == pytest.approx(213 / 7)
    assert first["T"] == pytest.approx(272 / 7)
    assert first["monetary"] == pytest.approx((29.73 + 14.96) / 2)
    assert summary["recency"].le(summary["T"]).all()


def test_same_day_purchases_are_one_purchase_with_the_summed_amount():
    tx = pd.DataFrame({"customer_id": ["a", "a", "a", "a"],
                       "date": ["2024-01-01", "2024-01-08", "2024-01-08", "2024-02-01"],
                       "amount": [10.0, 5.0, 7.0, 30.0]})
    row = customer_summary(tx, "2024-01-29").loc["a"]  # the February purchase is after the period
    assert row["frequency"] == 1
    assert row["monetary"] == pytest.approx(12.0)
    assert row["recency"] == pytest.approx(1.0)
    assert row["T"] == pytest.approx(4.0)


def test_bgnbd_reproduces_fader_hardie_lee_on_cdnow(bgnbd):
    expected = {"r": 0.24259, "alpha": 4.41353, "a": 0.79289, "b": 2.42575}
    for name, value in expected.items():
        assert rel(bgnbd.params_[name], value) < 1e-3, (name, bgnbd.params_[name])
    assert bgnbd.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)
    assert bgnbd.converged_


def test_gamma_gamma_reproduces_the_published_fit_on_the_946_repeat_buyers(summary):
    model = GammaGammaModel().fit(summary["frequency"], summary["monetary"])
    assert model.n_customers_ == 946
    expected = {"p": 6.2488, "q": 3.7446, "v": 15.4477}
    for name, value in expected.items():
        assert rel(model.params_[name], value) < 1e-3, (name, model.params_[name])
    assert model.log_likelihood_ == pytest.approx(-4055.92, abs=0.01)


def test_cdnow_holdout_matches_the_published_prediction(cdnow):
    result = holdout_evaluation(cdnow, HOLDOUT_END, 39)
    assert str(result.calibration_end.date()) == CALIBRATION_END
    assert result.totals["calibration_repeat_purchases"] == 2457
    assert result.totals["actual"] == 1882
    assert result.totals["predicted"] == pytest.approx(1653, abs=2)
    assert result.totals["correlation"] == pytest.approx(0.626, abs=0.003)
    buckets = result.by_bucket.set_index("bucket")
    assert list(buckets.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert buckets["customers"].sum() == 2357
    assert buckets["actual_total"].sum() == 1882
    # The calibration plot rises with past frequency, in the data and in the model.
    assert buckets["actual_mean"].is_monotonic_increasing or buckets["actual_mean"].iloc[-1] > 3
    assert buckets["predicted_mean"].is_monotonic_increasing


def test_closed_form_prediction_equals_the_textbook_formula_where_that_one_is_stable(bgnbd):
    r, alpha, a, b = (bgnbd.params_[k] for k in ("r", "alpha", "a", "b"))
    x = np.array([0.0, 1, 2, 5, 10])
    t_x = np.array([0.0, 5, 20, 30, 35])
    T = np.full(5, 38.86)
    t = 39.0
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    num = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
    den = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    textbook = (a + b + x - 1) / (a - 1) * num / den
    ours = bgnbd.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)
    np.testing.assert_allclose(ours, textbook, rtol=1e-9)


def test_log_likelihood_matches_a_direct_evaluation(bgnbd, summary):
    from models.clv.bgnbd import _prepare, customer_log_likelihood, log_likelihood

    r, alpha, a, b = (bgnbd.params_[k] for k in ("r", "alpha", "a", "b"))
    x, t_x, T = (summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    direct = (np.exp(betaln(a, b + x) - betaln(a, b) + gammaln(r + x) - gammaln(r)
                     + r * np.log(alpha) - (r + x) * np.log(alpha + T))
              + (x > 0) * np.exp(betaln(a + 1, np.maximum(b + x - 1, 1e-9)) - betaln(a, b)
                                 + gammaln(r + x) - gammaln(r) + r * np.log(alpha)
                                 - (r + x) * np.log(alpha + t_x)))
    ours = customer_log_likelihood((r, alpha, a, b), x, t_x, T)
    np.testing.assert_allclose(ours, np.log(direct), rtol=1e-10)
    # The rearranged sum used for fitting is the same number, at the optimum and away from it.
    assert log_likelihood((r, alpha, a, b), _prepare(x, t_x, T))[0] == pytest.approx(ours.sum(), rel=1e-12)
    away = (0.5, 2.0, 1.5, 0.9)
    assert log_likelihood(away, _prepare(x, t_x, T))[0] == pytest.approx(
        customer_log_likelihood(away, x, t_x, T).sum(), rel=1e-12)


def test_analytic_gradient_agrees_with_finite_differences(summary):
    from models.clv import bgnbd as bg
    from models.clv import gamma_gamma as gg

    data = bg._prepare(summary["frequency"], summary["recency"], summary["T"])
    point = np.array([0.3, 5.0, 0.7, 2.0])
    _, grad = bg.log_likelihood(point, data)
    for j in range(4):
        h = 1e-6 * point[j]
        up, down = point.copy(), point.copy()
        up[j] += h
        down[j] -= h
        numeric = (bg.log_likelihood(up, data)[0] - bg.log_likelihood(down, data)[0]) / (2 * h)
        assert grad[j] == pytest.approx(numeric, rel=1e-5)
    repeat = summary[summary["frequency"] > 0]
    x, m = repeat["frequency"].to_numpy(float), repeat["monetary"].to_numpy(float)
    gdata = gg._prepare(x, m)
    for point in ([5.0, 3.0, 12.0], [6.2488, 3.7446, 15.4477]):
        assert gg.log_likelihood(point, gdata)[0] == pytest.approx(
            gg.customer_log_likelihood(point, x, m).sum(), rel=1e-12)
    point = np.array([5.0, 3.0, 12.0])
    _, grad = gg.log_likelihood(point, gdata)
    for j in range(3):
        h = 1e-6 * point[j]
        up, down = point.copy(), point.copy()
        up[j] += h
        down[j] -= h
        numeric = (gg.log_likelihood(up, gdata)[0] - gg.log_likelihood(down, gdata)[0]) / (2 * h)
        assert grad[j] == pytest.approx(numeric, rel=1e-5)


def extreme_customers():
    """Every combination of very active, inactive and very old customers."""
    twenty_years = 20 * 52.18
    freq = np.array([0, 1, 2, 10, 100, 500, 1000], dtype=float)
    ages = np.array([0.0, 0.5, 1.0, 52.0, 520.0, twenty_years])
    x, T = (a.ravel() for a in np.meshgrid(freq, ages))
    rows = []
    for recency_share in (0.0, 0.5, 1.0):  # recency = 0, mid, recency = T
        t_x = np.where(x > 0, T * recency_share, 0.0)
        rows.append((x, t_x, T))
    x, t_x, T = (np.concatenate(parts) for parts in zip(*rows, strict=True))
    return x, t_x, T


@pytest.mark.parametrize("params", [
    {"r": 0.24259, "alpha": 4.41353, "a": 0.79289, "b": 2.42575},
    {"r": 5.0, "alpha": 0.5, "a": 3.0, "b": 0.2},
    {"r": 0.05, "alpha": 200.0, "a": 0.1, "b": 20.0},
])
def test_no_nan_or_inf_for_very_active_very_old_or_brand_new_customers(params):
    from models.clv.bgnbd import _prepare, customer_log_likelihood, log_likelihood

    model = BetaGeoModel()
    model.params_ = dict(params)
    x, t_x, T = extreme_customers()
    keep = (x == 0) | (t_x > 0) | (T > 0)
    x, t_x, T = x[keep], t_x[keep], T[keep]
    x[(T == 0)] = 0
    t_x[x == 0] = 0
    alive = model.conditional_probability_alive(x, t_x, T)
    expected = model.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, T)
    ll = customer_log_likelihood(tuple(params.values()), x, t_x, T)
    total, grad = log_likelihood(tuple(params.values()), _prepare(x, t_x, T))
    assert np.isfinite(total) and np.all(np.isfinite(grad))
    assert total == pytest.approx(ll.sum(), rel=1e-10)
    for arr in (alive, expected, ll):
        assert np.all(np.isfinite(arr))
    assert np.all((alive >= 0) & (alive <= 1))
    assert np.all(expected >= 0)
    # A customer who bought 1,000 times and last bought today is surely alive and buys on.
    busy = (x == 1000) & (t_x == T) & (T > 52)
    assert np.all(alive[busy] > 0.99)
    # The same customer silent for 20 years is surely gone.
    gone = (x == 1000) & (t_x == 0.5 * T) & (T > 1000)
    assert np.all(alive[gone] < 1e-6)


def test_gamma_gamma_and_clv_stay_finite_at_the_extremes(bgnbd, summary):
    spend = GammaGammaModel().fit(summary["frequency"], summary["monetary"])
    x, t_x, T = extreme_customers()
    monetary = np.where(x > 0, 1e4, 0.0)
    value = customer_lifetime_value(bgnbd, spend, x, t_x, T, monetary, periods=24, margin=0.3)
    assert np.all(np.isfinite(value)) and np.all(value >= 0)
    avg = spend.conditional_expected_average_profit(x, monetary)
    assert np.all(np.isfinite(avg))
    # Without repeats the estimate is the population mean; with 1,000 repeats almost one's own mean.
    assert avg[x == 0] == pytest.approx(spend.population_mean_spend)
    assert np.all(np.abs(avg[x == 1000] - 1e4) / 1e4 < 0.01)


def test_customers_with_too_little_history_get_flagged_estimates_not_errors(bgnbd):
    x = np.array([0.0, 0.0, 3.0])
    t_x = np.array([0.0, 0.0, 20.0])
    T = np.array([0.0, 30.0, 30.0])
    expected = bgnbd.conditional_expected_number_of_purchases_up_to_time(10, x, t_x, T)
    assert np.all(np.isfinite(expected)) and np.all(expected > 0)
    assert list(history_flags(x, T)) == ["new", "no_repeat", ""]
    # A brand-new customer is predicted like the average newcomer.
    assert expected[0] == pytest.approx(float(bgnbd.expected_number_of_purchases_up_to_time(10)), rel=1e-9)


def test_bad_summaries_are_rejected_with_a_reason():
    with pytest.raises(ValueError, match="recency exceeds T"):
        BetaGeoModel().fit([1, 2], [5.0, 10.0], [4.0, 12.0])
    with pytest.raises(ValueError, match="whole repeat purchases"):
        BetaGeoModel().fit([1.5], [1.0], [2.0])
    with pytest.raises(RuntimeError, match="fit the model first"):
        BetaGeoModel().conditional_probability_alive([1], [1], [2])


def test_clv_discounts_and_scales_with_margin(bgnbd, summary):
    spend = GammaGammaModel().fit(summary["frequency"], summary["monetary"])
    args = (summary["frequency"], summary["recency"], summary["T"], summary["monetary"])
    undiscounted = customer_lifetime_value(bgnbd, spend, *args, discount_rate=0.0)
    discounted = customer_lifetime_value(bgnbd, spend, *args, discount_rate=0.02)
    half = customer_lifetime_value(bgnbd, spend, *args, discount_rate=0.0, margin=0.5)
    assert np.all(discounted < undiscounted)
    np.testing.assert_allclose(half, undiscounted / 2)
    # Undiscounted CLV over a year is expected purchases over 52 weeks times expected spend.
    purchases = bgnbd.conditional_expected_number_of_purchases_up_to_time(52, *args[:3])
    avg = spend.conditional_expected_average_profit(args[0], args[3])
    np.testing.assert_allclose(undiscounted, purchases * avg, rtol=1e-9)
    own = customer_lifetime_value(bgnbd, None, *args, discount_rate=0.0, order_value=np.full(len(avg), 10.0))
    np.testing.assert_allclose(own, purchases * 10.0, rtol=1e-9)


@pytest.fixture(scope="module")
def simulated():
    n = 80_000
    rng = np.random.default_rng(7)
    T = rng.uniform(1, 104, n)
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}
    x, t_x, T = simulate_bgnbd(n, T, **truth, seed=11)
    spend_truth = {"p": 6.0, "q": 4.0, "v": 15.0}
    monetary = simulate_spend(x, **spend_truth, seed=12)
    return truth, spend_truth, x, t_x, T, monetary


def test_bgnbd_recovers_simulated_parameters_within_three_standard_errors(simulated):
    truth, _, x, t_x, T, _ = simulated
    model = BetaGeoModel().fit(x, t_x, T)
    for name, value in truth.items():
        se = model.standard_errors_[name]
        assert 0 < se < 0.2 * value
        assert abs(model.params_[name] - value) < 3 * se, (name, model.params_[name], se)


def test_gamma_gamma_recovers_simulated_parameters_within_three_standard_errors(simulated):
    _, truth, x, _, _, monetary = simulated
    model = GammaGammaModel().fit(x, monetary)
    for name, value in truth.items():
        se = model.standard_errors_[name]
        assert 0 < se < 0.2 * value
        assert abs(model.params_[name] - value) < 3 * se, (name, model.params_[name], se)


def test_simulated_data_fits_better_at_the_truth_than_far_from_it(simulated):
    """Guards the simulator itself: if it drew from another model, the recovery test would be vacuous."""
    from models.clv.bgnbd import _prepare, log_likelihood

    truth, _, x, t_x, T, _ = simulated
    data = _prepare(x, t_x, T)
    at_truth = log_likelihood(tuple(truth.values()), data)[0]
    for name in truth:
        moved = dict(truth, **{name: truth[name] * 1.3})
        assert log_likelihood(tuple(moved.values()), data)[0] < at_truth - 10


def test_hypergeometric_series_agrees_with_scipy_where_scipy_works_and_is_finite_where_it_fails():
    from scipy.special import hyp2f1 as scipy_hyp2f1

    from models.clv._hyp import _series, hyp2f1_safe

    rng = np.random.default_rng(0)
    a, b = rng.uniform(-5, 5, 500), rng.uniform(-1, 4, 500)
    c, z = a + b + rng.uniform(15, 60, 500), rng.uniform(0, 0.999, 500)
    reference = scipy_hyp2f1(a, b, c, z)
    ok = np.isfinite(reference)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(_series(a, b, c, z)[ok], reference[ok], rtol=1e-12)
    # Where SciPy overflows (large c, z near 1) the true value is near 1.
    assert not np.isfinite(scipy_hyp2f1(-2.8, 2.0, 1102.2, 0.99))
    assert hyp2f1_safe(-2.8, 2.0, 1102.2, 0.99) == pytest.approx(1 - 2.8 * 2 / 1102.2 * 0.99, abs=1e-4)


def test_pareto_nbd_reproduces_the_published_cdnow_fit(summary):
    from models.clv import ParetoNBDModel

    model = ParetoNBDModel().fit(summary["frequency"], summary["recency"], summary["T"])
    # Fader & Hardie's note on the Pareto/NBD (CDNOW, 39-week calibration): r 0.553, alpha 10.578,
    # s 0.606, beta 11.669, log-likelihood -9,594.98.
    expected = {"r": 0.5533, "alpha": 10.578, "s": 0.6061, "beta": 11.669}
    for name, value in expected.items():
        assert rel(model.params_[name], value) < 2e-3, (name, model.params_[name])
    assert model.log_likelihood_ == pytest.approx(-9594.98, abs=0.01)
    predicted = model.conditional_expected_number_of_purchases_up_to_time(
        39, summary["frequency"], summary["recency"], summary["T"])
    assert 1550 < predicted.sum() < 1800  # close to BG/NBD's 1,653 (actual 1,882)


@pytest.mark.parametrize("params", [(0.5533, 10.578, 0.6061, 11.669), (5.0, 0.5, 3.0, 0.2),
                                    (0.05, 200.0, 0.1, 20.0)])
def test_pareto_nbd_stays_finite_at_the_extremes(params):
    from models.clv import ParetoNBDModel
    from models.clv.pareto_nbd import customer_log_likelihood

    x, t_x, T = extreme_customers()
    x[T == 0] = 0
    t_x[x == 0] = 0
    model = ParetoNBDModel()
    model.params_ = dict(zip(("r", "alpha", "s", "beta"), params, strict=True))
    alive = model.conditional_probability_alive(x, t_x, T)
    expected = model.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, T)
    for arr in (customer_log_likelihood(params, x, t_x, T), alive, expected):
        assert np.all(np.isfinite(arr))
    assert np.all((alive >= 0) & (alive <= 1))
    assert np.all(alive[(t_x == T) & (T > 0)] == 1.0)  # bought at the very end: surely alive
