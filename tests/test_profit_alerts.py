import numpy as np
import pandas as pd

from models.alerts import customer_alerts
from models.profit import cost_parts, whale_curve


def test_only_configured_cost_parts_appear_and_each_is_its_own_column():
    frame = pd.DataFrame({"orders": [10, 0], "service_cases": [2, 0], "complaints": [1, 0], "returns": [3, 0],
                          "return_credit": [50.0, 0.0], "freight": [80.0, None],
                          "receivable_amount_days": [36500.0, 0.0]})
    parts = cost_parts(frame, per_order=5, per_return=10, return_credits=True, capital_rate_yearly=0.1)
    assert list(parts.columns) == ["cost_orders", "cost_returns", "cost_payment_delay"]
    assert parts.loc[0].to_dict() == {"cost_orders": 50.0, "cost_returns": 80.0, "cost_payment_delay": 10.0}
    assert parts.loc[1].sum() == 0
    assert list(cost_parts(frame).columns) == []
    assert cost_parts(frame, freight=True)["cost_freight"].tolist() == [80.0, 0.0]


def test_whale_curve_ranks_by_profit_and_rises_above_total_before_falling_back():
    curve = whale_curve(["a", "b", "c", "d"], [300.0, -100.0, 0.0, -100.0])
    assert curve["customer_id"].tolist() == ["a", "c", "b", "d"]  # tie at -100 broken by id
    assert curve["cumulative_profit"].tolist() == [300.0, 300.0, 200.0, 100.0]
    assert curve["cumulative_profit_share"].tolist() == [3.0, 3.0, 2.0, 1.0]
    assert curve["customer_share"].iloc[-1] == 1.0


def _frame(**overrides):
    base = {"customer_id": ["c1"], "tier": ["Major"], "baseline_tier": ["VIP"], "revenue_12m": [100.0],
            "revenue_prior_12m": [100.0], "orders_12m": [6], "orders_prior_12m": [6],
            "probability_alive": [0.9], "clv": [10.0], "complaints_12m": [0],
            "median_days_late": [0.0], "gross_margin_12m": [50.0], "cost_to_serve_12m": [10.0],
            "profit_12m": [40.0], "product_lines_12m": [3]}
    base.update({k: [v] for k, v in overrides.items()})
    return pd.DataFrame(base)


RULES = dict(top_tiers=["VIP", "Major", "Ordinary"], declining_drop=0.4, at_risk_probability=0.5,
             complaints=3, days_late=15, costs_more_than_it_earns=True, narrow_max_lines=1)


def test_a_healthy_customer_has_no_alert():
    assert customer_alerts(_frame(), **RULES).empty


def test_each_rule_fires_with_its_figures_in_the_reason():
    cases = {
        "declining": dict(revenue_12m=55.0, revenue_prior_12m=100.0),
        "at_risk": dict(probability_alive=0.3),
        "repeat_complainer": dict(complaints_12m=4),
        "late_payer": dict(median_days_late=31.0),
        "costs_more_than_it_earns": dict(profit_12m=-5.0, cost_to_serve_12m=55.0),
        "narrow_buyer": dict(product_lines_12m=1),
    }
    expected_text = {"declining": "-45%", "at_risk": "30%", "repeat_complainer": "4 complaints",
                     "late_payer": "median 31 days", "costs_more_than_it_earns": "profit -5",
                     "narrow_buyer": "only 1"}
    for alert, change in cases.items():
        found = customer_alerts(_frame(**change), **RULES)
        assert found["alert"].tolist() == [alert]
        assert expected_text[alert] in found["reason"].iloc[0], found["reason"].iloc[0]


def test_thresholds_are_respected_and_unconfigured_rules_do_not_run():
    just_short = _frame(revenue_12m=61.0, revenue_prior_12m=100.0, orders_12m=4, complaints_12m=2,
                        median_days_late=14.9)
    assert customer_alerts(just_short, **RULES).empty
    small = _frame(tier="Small", baseline_tier="Small", revenue_12m=10.0, probability_alive=0.1,
                   product_lines_12m=1)
    assert customer_alerts(small, **RULES).empty  # declining/at-risk/narrow are for top tiers only
    assert customer_alerts(_frame(complaints_12m=9), top_tiers=["VIP"]).empty
    assert np.array_equal(customer_alerts(_frame(complaints_12m=9, median_days_late=20), **RULES)["alert"],
                          ["repeat_complainer", "late_payer"])


def test_a_fall_in_orders_alone_is_declining_and_one_order_a_year_is_not():
    fewer_orders = customer_alerts(_frame(orders_12m=3, orders_prior_12m=6), **RULES)
    assert fewer_orders["alert"].tolist() == ["declining"]
    assert "orders 3 vs 6 (-50%)" in fewer_orders["reason"].iloc[0]
    one_order = _frame(revenue_12m=0.0, orders_12m=0, orders_prior_12m=1)
    assert customer_alerts(one_order, **RULES, declining_min_orders=2).empty
