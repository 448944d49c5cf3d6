"""Rule induction on a planted two-part churn rule: recovered, short, exact, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from models.rules import Condition, RuleInducer, nice_threshold
from tests.planted_mining import CHURN_FEATURES, planted_churn


@pytest.fixture(scope="module")
def churn():
    return planted_churn(100_000, seed=1)


@pytest.fixture(scope="module")
def model(churn):
    X, y, _, _ = churn
    return RuleInducer(max_rules=5, max_conditions=3, random_state=0).fit(X[:70_000], y[:70_000])


def test_planted_churn_rule_is_recovered_with_few_short_precise_rules(churn, model):
    X, y, part_a, part_b = churn
    held_out = slice(70_000, None)
    assert 0 < len(model.rules_) <= 5
    assert all(len(r.conditions) <= 3 for r in model.rules_)
    fired = model.predict(X[held_out])
    assert y[held_out][fired].mean() >= 0.99  # precision against the planted rule
    for part in (part_a[held_out], part_b[held_out]):
        best = max((r.mask(X[held_out]) & part).sum() / part.sum() for r in model.rules_)
        assert best >= 0.90
    assert model.fidelity(X[held_out], y[held_out]) >= 0.99


def test_rule_text_is_in_business_units(model):
    texts = model.texts(CHURN_FEATURES)
    assert "recency_days > 140 AND service_cases_12m > 4" in texts
    assert "payment_delay_days > 25 AND on_time_rate <= 0.849" in texts


def test_same_seed_gives_identical_rule_text_and_a_sample_keeps_it_stable(churn):
    X, y, _, _ = churn
    runs = [RuleInducer(sample_size=30_000, random_state=5).fit(X, y).texts(CHURN_FEATURES)
            for _ in range(2)]
    assert runs[0] == runs[1]


def test_reported_metrics_are_a_recount_of_the_rule_text(churn, model):
    X, y, _, _ = churn
    base = y.mean()
    for rule in model.evaluate(X, y):
        # Re-evaluate the rule from its printed form, independently of the mask code.
        mask = np.ones(len(X), dtype=bool)
        for part in rule.text(CHURN_FEATURES).split(" AND "):
            name, op, value = part.split(" ")
            column = X[:, CHURN_FEATURES.index(name)]
            mask &= column > float(value) if op == ">" else column <= float(value)
        assert rule.coverage == pytest.approx(mask.mean(), abs=1e-12)
        assert rule.precision == pytest.approx(y[mask].mean(), abs=1e-12)
        assert rule.lift == pytest.approx(y[mask].mean() / base, abs=1e-9)
        assert rule.support == int(y[mask].sum())


def test_limits_hold_on_a_label_no_short_rule_explains():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 6))
    y = (X[:, :4].sum(axis=1) + rng.normal(0, 0.5, len(X))) > 1.0  # an oblique boundary
    model = RuleInducer(max_rules=3, max_conditions=2, random_state=0).fit(X, y)
    assert 0 < len(model.rules_) <= 3
    assert all(len(r.conditions) <= 2 for r in model.rules_)
    assert all(r.precision >= 0.5 for r in model.rules_)


def test_one_hot_columns_read_as_equalities():
    names = ["industry=Retail", "orders_12m"]
    assert Condition(0, True, 0.0).text(names) == "industry = Retail"
    assert Condition(0, False, 0.0).text(names) == "industry != Retail"
    assert Condition(1, True, 24.0).text(names) == "orders_12m > 24"
    assert Condition(0, False, 0.0).sql(names) == "industry <> 'Retail'"
    assert Condition(1, False, 2.5).sql(names) == "orders_12m <= 2.5"


@pytest.mark.parametrize(("lo", "hi", "nice"), [(140, 141, 140), (0.849, 0.85, 0.849),
                                                (12.37, 19.2, 13), (0, 1, 0), (-3.5, -3.2, -3.5)])
def test_nice_threshold_is_the_roundest_number_that_splits_the_same_way(lo, hi, nice):
    t = nice_threshold(lo, hi)
    assert lo <= t < hi
    assert t == pytest.approx(nice)
