import numpy as np
import pytest

from models.pyramid import abc_classes, assign_tiers, rank_order, tier_counts

SHARES = [0.01, 0.04, 0.15, 0.80]
NAMES = ["VIP", "Major", "Ordinary", "Small"]


@pytest.mark.parametrize("n", [1, 7, 99, 100, 101, 1234, 10_000, 99_999])
def test_tier_counts_sum_to_n_and_stay_within_one_customer_of_each_share(n):
    counts = tier_counts(n, SHARES)
    assert sum(counts) == n
    for count, share in zip(counts, SHARES, strict=True):
        assert abs(count - share * n) <= 1


def test_tiers_follow_the_ranking_and_ties_break_by_customer_id():
    measure = np.array([5.0, 100.0, 5.0, 0.0, 50.0])
    ids = np.array(["c", "a", "b", "e", "d"])
    tiers, rank = assign_tiers(measure, ids, ["Top", "Rest"], [0.4, 0.6])
    # ranking: a(100), d(50), b(5, id before c), c(5), e(0)
    assert list(rank) == [4, 1, 3, 5, 2]
    assert list(tiers) == ["Rest", "Top", "Rest", "Rest", "Top"]


def test_tiers_do_not_depend_on_input_order():
    rng = np.random.default_rng(1)
    measure = rng.lognormal(size=1000).round(0)  # many ties
    ids = np.array([f"c{i:04d}" for i in range(1000)])
    tiers, _ = assign_tiers(measure, ids, NAMES, SHARES)
    perm = rng.permutation(1000)
    tiers_shuffled, _ = assign_tiers(measure[perm], ids[perm], NAMES, SHARES)
    assert dict(zip(ids[perm], tiers_shuffled, strict=True)) == dict(zip(ids, tiers, strict=True))


def test_abc_classes_cut_cumulative_value_and_put_zero_value_in_c():
    measure = np.array([70.0, 15.0, 10.0, 5.0, 0.0])
    ids = np.array(["a", "b", "c", "d", "e"])
    # before: a 0%, b 70%, c 85%, d 95%, e 100% (and zero)
    assert list(abc_classes(measure, ids, 0.80, 0.95)) == ["A", "A", "B", "C", "C"]


def test_abc_with_no_value_at_all_is_all_c():
    assert list(abc_classes(np.zeros(3), np.array(["a", "b", "c"]))) == ["C", "C", "C"]


def test_a_given_ranking_gives_what_ranking_again_gives():
    rng = np.random.default_rng(3)
    measure = np.round(rng.gamma(1.0, 100.0, 500), 0)  # rounded: many ties, broken by id
    measure[rng.random(500) < 0.2] = 0.0
    ids = np.array([f"c{i:04d}" for i in rng.permutation(500)])
    order = rank_order(measure, ids)
    tiers, rank = assign_tiers(measure, ids, NAMES, SHARES)
    tiers_given, rank_given = assign_tiers(measure, ids, NAMES, SHARES, order)
    assert list(tiers_given) == list(tiers) and list(rank_given) == list(rank)
    assert list(abc_classes(measure, ids, 0.8, 0.95, order)) == list(abc_classes(measure, ids, 0.8, 0.95))
