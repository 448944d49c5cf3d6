"""Association rules over product lines against a brute-force count, and next-best offers."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from models.crosssell import association_rules, frequent_itemsets, next_best, pack
from tests.planted_mining import LINES, PLANTED_PAIRS, planted_baskets


@pytest.fixture(scope="module")
def baskets():
    return planted_baskets(20_000, seed=4)


def _brute_count(sets: list[frozenset], items: tuple) -> int:
    wanted = frozenset(items)
    return sum(1 for s in sets if wanted <= s)


def test_every_rule_metric_matches_a_brute_force_count(baskets):
    rules = association_rules(baskets, min_support=0.001, min_confidence=0.1, min_lift=0.0)
    sets = [frozenset(np.flatnonzero(row)) for row in baskets]
    n = len(sets)
    assert len(rules) > 50
    for r in rules:
        both = _brute_count(sets, r.antecedent + (r.consequent,))
        ante = _brute_count(sets, r.antecedent)
        cons = _brute_count(sets, (r.consequent,))
        assert r.count == both
        assert abs(r.support - both / n) <= 1e-4
        assert abs(r.confidence - both / ante) <= 1e-4
        assert abs(r.lift - (both / ante) / (cons / n)) <= 1e-4


def test_frequent_itemsets_are_exactly_those_above_min_support():
    matrix = planted_baskets(3_000, seed=8)
    sets = [frozenset(np.flatnonzero(row)) for row in matrix]
    min_count = 30
    found = frequent_itemsets(pack(matrix), len(matrix), min_count, max_len=3)
    expected = {}
    for size in (1, 2, 3):
        for items in combinations(range(len(LINES)), size):
            count = _brute_count(sets, items)
            if count >= min_count:
                expected[items] = count
    assert found == expected


def test_planted_affinities_are_the_strongest_rules(baskets):
    rules = association_rules(baskets, min_support=0.01, min_confidence=0.5, min_lift=1.5, max_len=2)
    pairs = {(LINES[r.antecedent[0]], LINES[r.consequent]) for r in rules}
    for a, b, _ in PLANTED_PAIRS:
        assert (a, b) in pairs
    top = {(LINES[r.antecedent[0]], LINES[r.consequent]) for r in rules[:3]}
    assert top <= {(a, b) for a, b, _ in PLANTED_PAIRS} | {(b, a) for a, b, _ in PLANTED_PAIRS}


def test_thresholds_filter_the_rules(baskets):
    loose = association_rules(baskets, min_support=0.001, min_confidence=0.1, min_lift=0.0)
    strict = association_rules(baskets, min_support=0.02, min_confidence=0.4, min_lift=1.2)
    assert 0 < len(strict) < len(loose)
    assert all(r.support >= 0.02 and r.confidence >= 0.4 and r.lift >= 1.2 for r in strict)


def test_next_best_offers_lines_the_account_lacks_with_the_most_confident_rule(baskets):
    rules = association_rules(baskets, min_support=0.001, min_confidence=0.2, min_lift=1.0)
    offers = next_best(baskets, rules, top=3)
    assert len(offers.row) > 1000
    per_row = np.bincount(offers.row, minlength=len(baskets))
    assert per_row.max() <= 3
    for row, item, rule, rank in zip(offers.row[:2000], offers.item[:2000], offers.rule[:2000],
                                     offers.rank[:2000], strict=True):
        basket = baskets[row]
        r = rules[rule]
        assert not basket[item] and r.consequent == item and basket[list(r.antecedent)].all()
        applicable = [q.confidence for q in rules
                      if q.consequent == item and basket[list(q.antecedent)].all()]
        assert r.confidence == max(applicable)
        assert rank in (1, 2, 3)
    # Offers of one account come best first.
    first = offers.row == offers.row[0]
    conf = [rules[i].confidence for i in offers.rule[first]]
    assert conf == sorted(conf, reverse=True)


def test_same_data_gives_the_same_rules_in_the_same_order(baskets):
    a = association_rules(baskets, min_support=0.005)
    b = association_rules(baskets.copy(), min_support=0.005)
    assert [r.text(LINES) for r in a] == [r.text(LINES) for r in b]
