from datetime import date

import numpy as np
import pandas as pd
import pytest

from models.credit import Indicator, Override, Scorecard, apply_overrides, grade_of, score_customers
from pipelines.config import load_config
from tests.test_config import REPO

CARD = Scorecard(
    indicators=(
        Indicator("on_time", "payment_record", 60, ((0.95, 1.0), (0.8, 0.5)), missing=0.5),
        Indicator("days_late", "payment_record", 10, ((0, 1.0), (10, 0.4)), higher_is_better=False),
        Indicator("debt_ratio", "solvency", 30, ((0.4, 1.0), (0.7, 0.5)), higher_is_better=False,
                  missing=0.2),
    ),
    grades=(("AAA", 85), ("AA", 70), ("A", 55), ("B", 40), ("C", 0)),
)


def test_points_follow_the_bands_and_missing_values_get_their_share():
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "on_time": [0.99, 0.85, np.nan],
                          "days_late": [0.0, 12.0, 5.0], "debt_ratio": [0.3, 0.9, np.nan]})
    rating, points = score_customers(frame, CARD)
    by = points.set_index(["customer_id", "indicator"])["points"]
    assert by["a", "on_time"] == 60 and by["a", "days_late"] == 10 and by["a", "debt_ratio"] == 30
    assert by["b", "on_time"] == 30 and by["b", "days_late"] == 0 and by["b", "debt_ratio"] == 0
    assert by["c", "on_time"] == 30 and by["c", "days_late"] == 4 and by["c", "debt_ratio"] == 6
    assert list(rating["score"]) == [100, 30, 40]
    assert list(rating["computed_grade"]) == ["AAA", "C", "B"]
    assert list(rating["financial_points"]) == [30, 0, 6]
    # The grade is explained line by line: the points add up to the score.
    sums = points.groupby("customer_id")["points"].sum()
    assert sums.to_dict() == dict(zip(rating["customer_id"], rating["score"], strict=True))
    assert points.set_index(["customer_id", "indicator"]).loc[("c", "debt_ratio"), "band"] == "no data"


def test_grade_cut_offs_are_inclusive_minimums():
    assert list(grade_of(np.array([85, 84.99, 70, 55, 40, 39.9, 0]), CARD.grades)) == [
        "AAA", "AA", "AA", "A", "B", "C", "C"]


def test_an_override_holds_until_its_expiry_and_keeps_the_computed_grade_beside_it():
    rating = pd.DataFrame({"customer_id": ["a", "b"], "computed_grade": ["B", "C"]})
    overrides = [Override("b", "A", "parent company guarantee", date(2026, 12, 31))]
    during = apply_overrides(rating, overrides, date(2026, 12, 31)).set_index("customer_id")
    assert during.loc["b", "grade"] == "A" and during.loc["b", "computed_grade"] == "C"
    assert during.loc["b", "override_reason"] == "parent company guarantee"
    assert during.loc["a", "grade"] == "B" and pd.isna(during.loc["a", "override_reason"])
    after = apply_overrides(rating, overrides, date(2027, 1, 1)).set_index("customer_id")
    assert after.loc["b", "grade"] == "C"


def test_the_default_scorecard_in_kam_yaml_has_20_indicators_30_financial_points_five_groups():
    card = load_config(REPO / "kam.yaml").config.credit.scorecard()
    assert len(card.indicators) == 20
    assert sum(i.points for i in card.indicators) == 100
    assert sum(i.points for i in card.indicators if i.financial) == 30
    assert {i.group for i in card.indicators} == {
        "character", "payment_record", "operating_capacity", "solvency", "profitability"}
    assert [g for g, _ in card.grades] == ["AAA", "AA", "A", "B", "C"]


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda c: c["indicators"]["orders"].update(points=5), "indicator points add up to 101"),
    (lambda c: c["indicators"]["net_margin"].update(group="profitablity"), "is not one of character"),
    (lambda c: c["indicators"]["orders"].update(bands=[[1, 0.3], [6, 1.0]]), "from the best threshold"),
    (lambda c: c.update(overrides=[{"customer_id": "1", "grade": "AAAA", "reason": "x y z",
                                    "expires": "2027-01-01"}]), "'AAAA' is not a grade"),
])
def test_scorecard_config_errors_are_named(tmp_path, mutate, expected):
    import yaml

    from pipelines.config import ConfigError

    data = yaml.safe_load((REPO / "kam.yaml").read_text())
    mutate(data["credit"])
    path = tmp_path / "kam.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_tier_presets_and_their_errors(tmp_path):
    import yaml

    from pipelines.config import ConfigError

    data = yaml.safe_load((REPO / "kam.yaml").read_text())
    data["tiers"] = {"measure": "clv", "preset": "metals"}
    path = tmp_path / "kam.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    tiers = load_config(path).config.tiers
    assert [lvl.name for lvl in tiers.levels] == ["Diamond", "Platinum", "Gold", "Bronze", "Iron", "Lead"]
    assert [lvl.name for lvl in tiers.levels if lvl.key_account] == ["Diamond", "Platinum"]
    data["alerts"]["at_risk_tiers"] = ["VIP"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError, match=r"alerts.at_risk_tiers: \['VIP'\] are not tiers"):
        load_config(path)


def test_point_lines_stream_the_same_points_one_indicator_at_a_time():
    from models.credit import point_lines, rate_customers

    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "on_time": [0.99, 0.85, np.nan],
                          "days_late": [0.0, 12.0, 5.0], "debt_ratio": [0.3, 0.9, np.nan]})
    parts = list(point_lines(frame, CARD))
    assert [p["indicator"].unique().tolist() for p in parts] == [["on_time"], ["days_late"], ["debt_ratio"]]
    rating, points = score_customers(frame, CARD)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), points)
    pd.testing.assert_frame_equal(rate_customers(frame, CARD), rating)
    assert pd.concat(parts).groupby("customer_id")["points"].sum().tolist() == rating["score"].tolist()
