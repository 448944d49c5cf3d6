"""The week's mining model: a night between refits places customers with it and re-scores its rules,
exactly as the fit night scored them; the model survives the warehouse; refits happen on the
refit weekday, after a gap, or when the configuration changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from benchmarks.mining_step import synthetic_features
from models.rules import RuleInducer
from pipelines import mining_frames as frames
from pipelines import mining_model, weekly_model
from pipelines.config import MiningConfig, load_config
from pipelines.mining import MARTS, mine
from pipelines.nightly import run_nightly
from pipelines.warehouse import Warehouse
from tests.conftest import DEMO_AS_OF

AS_OF = date.fromisoformat(DEMO_AS_OF)  # a Sunday: the default refit night


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def fitted():
    features, labels = synthetic_features(20_000)
    config = MiningConfig()
    seg = frames.segment(features, None, config)
    X, names = frames.rule_matrix(features)
    targets = frames.label_targets(features, seg, labels)
    return features, labels, config, seg, X, names, targets, frames.induce(X, names, targets, config)


def test_rule_table_scores_each_rule_as_the_inducer_does(fitted):
    features, _, config, _, X, names, targets, sets = fitted
    table = frames.rule_table(features, sets, targets, AS_OF, "t").to_pylist()
    assert {r["target"] for r in table} == {s.target for s in sets} and len(sets) >= 4
    for rule_set in sets:
        _, y = targets[rule_set.target]
        inducer = RuleInducer(max_rules=config.rules.max_rules, max_conditions=config.rules.max_conditions,
                              max_depth=config.rules.max_depth, min_leaf_share=config.rules.min_leaf_share,
                              sample_size=config.rules.sample_size, random_state=config.seed).fit(X, y)
        expected = inducer.evaluate(X, y)
        rows = [r for r in table if r["target"] == rule_set.target]
        assert [r["rule"] for r in rows] == [rule.text(names) for rule in expected]
        assert [r["customers"] for r in rows] == [rule.support for rule in expected]
        assert [r["coverage"] for r in rows] == pytest.approx([rule.coverage for rule in expected])
        assert [r["precision"] for r in rows] == pytest.approx([rule.precision for rule in expected])
        assert [r["fidelity"] for r in rows] == pytest.approx([inducer.fidelity(X, y)] * len(rows))


def test_the_fit_nights_model_places_its_own_customers_where_the_fit_did(fitted):
    features, _, config, seg, *_ = fitted
    placed = frames.place(features, seg.model, config)
    assert (placed.segment_id == seg.segment_id).mean() >= 0.999
    assert placed.names == seg.names and set(placed.status.values()) == {"kept"}


def test_a_later_night_is_scored_on_its_own_customers(fitted):
    features, labels, config, seg, _, _, _, sets = fitted
    later = features.copy()
    later["monetary_12m"] *= 0.5  # every customer bought half as much
    placed = frames.place(later, seg.model, config)
    targets = frames.label_targets(later, placed, labels)
    before = frames.rule_table(features, sets, frames.label_targets(features, seg, labels), AS_OF, "t")
    after = frames.rule_table(later, sets, targets, AS_OF, "t")
    assert after.column("rule").to_pylist() == before.column("rule").to_pylist()  # the same rules ...
    assert after.column("coverage").to_pylist() != before.column("coverage").to_pylist()  # ... re-scored


def test_the_refit_day_is_the_latest_refit_weekday_on_or_before_the_night():
    assert weekly_model.refit_day(AS_OF, 6) == AS_OF
    assert weekly_model.refit_day(AS_OF + timedelta(days=3), 6) == AS_OF
    assert weekly_model.refit_day(AS_OF - timedelta(days=1), 6) == AS_OF - timedelta(days=7)


def _rules(warehouse: Warehouse, day: date) -> list[tuple]:
    rows = warehouse.read("segment_rule").to_pylist()
    return sorted((r["target"], r["rule_no"], r["rule"]) for r in rows if r["as_of_date"] == day)


def test_the_nights_after_a_refit_keep_its_segments_and_rules(demo_workspace):
    """Sunday fits; Monday and Tuesday place and re-score; a re-run of Tuesday changes nothing; a
    changed configuration refits; a night with no model since the refit day fits one."""
    settings = load_config(demo_workspace.config)
    warehouse = Warehouse(settings.warehouse_path)
    steps = ["extract", "stage", "build", "mine"]
    nights = [AS_OF + timedelta(days=d) for d in range(3)]
    results = [{r.step: r for r in run_nightly(day, settings, steps=steps)}["mine"] for day in nights]
    assert [r.details["model_fitted"] for r in results] == [AS_OF.isoformat()] * 3
    models = warehouse.read(mining_model.MODEL_TABLE).to_pylist()
    assert [m["fit_date"] for m in models] == [AS_OF]
    assert _rules(warehouse, nights[1]) == _rules(warehouse, nights[0]) == _rules(warehouse, nights[2])
    segments = warehouse.read("customer_segment").to_pandas()
    by_night = segments.pivot(index="customer_id", columns="as_of_date", values="segment_id")
    assert by_night.notna().all().all()
    names = segments.groupby("segment_id")["segment_name"].nunique()
    assert (names == 1).all()  # an id means the same segment all week

    before = {t: sorted(map(repr, warehouse.read(t).to_pylist())) for t in MARTS}
    mine(settings, nights[2])
    assert {t: sorted(map(repr, warehouse.read(t).to_pylist())) for t in MARTS} == before

    mining = settings.config.mining
    rules = mining.rules.model_copy(update={"max_rules": 2})
    changed = replace(settings, config=settings.config.model_copy(
        update={"mining": mining.model_copy(update={"rules": rules})}))
    assert mine(changed, nights[2]).details["model_fitted"] == nights[2].isoformat()
    assert max(r["rule_no"] for r in warehouse.read("segment_rule").to_pylist()
               if r["as_of_date"] == nights[2]) <= 2

    gap = AS_OF + timedelta(days=8)  # a Monday whose Sunday never ran
    assert mine(settings, gap).details["model_fitted"] == gap.isoformat()
    assert np.isin([gap], [m["fit_date"] for m in warehouse.read(mining_model.MODEL_TABLE).to_pylist()])
