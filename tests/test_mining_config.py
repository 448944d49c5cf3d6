"""The mining section of kam.yaml: defaults that load, and mistakes named with their key path."""

from __future__ import annotations

import pytest

from pipelines.config import ConfigError, load_config
from tests.test_config import REPO, _write


def test_repo_config_mines_with_the_documented_defaults():
    mining = load_config(REPO / "kam.yaml").config.mining
    assert (mining.segments.k_min, mining.segments.k_max) == (2, 8)
    assert mining.rules.max_rules == 4 and mining.rules.max_conditions == 3
    assert mining.rules.labels["lost"] == "status = 'LOST'"
    assert mining.cross_sell.min_support == 0.001


@pytest.mark.parametrize(
    ("mining", "expected"),
    [
        ({"segments": {"k_min": 6, "k_max": 3}}, "mining.segments: k_min (6) must not exceed k_max (3)"),
        ({"segments": {"features": ["orders_12m", "revenue"]}}, "'revenue' is not a customer feature"),
        ({"segments": {"k_min": 1}}, "mining.segments.k_min"),
        ({"rules": {"max_rule": 3}}, "mining.rules.max_rule: unknown key"),
        ({"cross_sell": {"min_support": 0}}, "mining.cross_sell.min_support"),
    ],
)
def test_mining_mistakes_are_named(tmp_path, mining, expected):
    path = _write(tmp_path, lambda d: d.update(mining=mining))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
