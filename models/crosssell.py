"""Cross-sell: association rules over the product lines each customer buys, and next-best offers.

A basket here is the set of product lines a customer bought, so there are as many baskets as
customers and only tens of items. That shape suits a level-wise (Apriori) search over bit-packed
item columns: the customers holding an itemset are the AND of its items' bit columns, and its
support is a popcount. 200k baskets are 25 kB per column, so a whole search runs in milliseconds
in a few megabytes, where a one-hot DataFrame Apriori (mlxtend's default) materialises every
candidate as a dense boolean frame and needs gigabytes.

Rules have one product line as consequent ("customers who buy A and B also buy C"): that is what
a salesperson can offer, and it keeps the per-account recommendation one rule per line.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np


@dataclass(frozen=True)
class AssociationRule:
    antecedent: tuple[int, ...]
    consequent: int
    support: float  # share of baskets holding antecedent and consequent
    confidence: float  # of baskets holding the antecedent, the share also holding the consequent
    lift: float  # confidence over the consequent's own support
    count: int  # baskets holding antecedent and consequent

    def text(self, items: list[str]) -> str:
        return f"{' + '.join(items[i] for i in self.antecedent)} => {items[self.consequent]}"


def pack(matrix: np.ndarray) -> np.ndarray:
    """(baskets, items) booleans -> (items, bytes) bit columns."""
    return np.packbits(np.asarray(matrix, dtype=bool), axis=0).T.copy()


def frequent_itemsets(bits: np.ndarray, n: int, min_count: int, max_len: int) -> dict[tuple, int]:
    """Every itemset of up to `max_len` items held by at least `min_count` of `n` baskets."""
    counts = np.bitwise_count(bits).sum(axis=1, dtype=np.int64)
    level = {(i,): bits[i] for i in range(len(bits)) if counts[i] >= min_count}
    found = {key: int(counts[key[0]]) for key in level}
    size = 1
    while level and size < max_len:
        keys = sorted(level)
        prefix: dict[tuple, list[tuple]] = {}
        for key in keys:
            prefix.setdefault(key[:-1], []).append(key)
        nxt = {}
        for group in prefix.values():
            for a, b in combinations(group, 2):
                key = a + b[-1:]
                if any(key[:i] + key[i + 1:] not in level for i in range(len(key) - 1)):
                    continue  # a subset is infrequent, so the itemset is too (Apriori)
                column = level[a] & bits[b[-1]]
                count = int(np.bitwise_count(column).sum(dtype=np.int64))
                if count >= min_count:
                    nxt[key] = column
                    found[key] = count
        level = nxt
        size += 1
    return found


def association_rules(matrix: np.ndarray, *, min_support: float = 0.001, min_confidence: float = 0.3,
                      min_lift: float = 1.0, max_len: int = 3) -> list[AssociationRule]:
    """Rules A => c with support, confidence and lift at or above the thresholds.

    Ordered by lift, then confidence, then support, then item numbers: same data, same order.
    """
    matrix = np.asarray(matrix, dtype=bool)
    n = len(matrix)
    if n == 0:
        return []
    min_count = max(1, int(np.ceil(min_support * n - 1e-9)))
    found = frequent_itemsets(pack(matrix), n, min_count, max_len)
    rules = []
    for itemset, count in found.items():
        if len(itemset) < 2:
            continue
        for c in itemset:
            antecedent = tuple(i for i in itemset if i != c)
            confidence = count / found[antecedent]
            lift = confidence / (found[(c,)] / n)
            if confidence >= min_confidence and lift >= min_lift:
                rules.append(AssociationRule(antecedent, c, count / n, confidence, lift, count))
    rules.sort(key=lambda r: (-r.lift, -r.confidence, -r.support, r.antecedent, r.consequent))
    return rules


@dataclass(frozen=True)
class Offers:
    """Long table of offers: basket row, offered item, the suggesting rule's index, rank (1 = best)."""

    row: np.ndarray
    item: np.ndarray
    rule: np.ndarray
    rank: np.ndarray


def next_best(matrix: np.ndarray, rules: list[AssociationRule], top: int = 3) -> Offers:
    """Per basket, up to `top` items it lacks that a rule whose antecedent it holds suggests.

    Each offered item carries the one rule that suggests it most confidently (then by lift, then
    by the rule order); offers rank by that rule's confidence. Baskets repeat a lot (ten product
    lines make at most 1,024 distinct ones), so offers are worked out once per distinct basket
    and then handed to every customer holding it.
    """
    matrix = np.asarray(matrix, dtype=bool)
    n = len(matrix)
    if n == 0 or not rules:
        empty = np.zeros(0, dtype=np.int64)
        return Offers(empty, empty, empty, empty)
    distinct, inverse = _distinct_rows(matrix)
    per = _offers(distinct, rules, top)
    counts = np.bincount(per.row, minlength=len(distinct))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    row = np.repeat(np.arange(n), counts[inverse])
    starts = np.concatenate([[0], np.cumsum(counts[inverse])[:-1]])
    index = first[inverse][row] + np.arange(len(row)) - starts[row]
    return Offers(row=row, item=per.item[index], rule=per.rule[index], rank=per.rank[index])


def _distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, index of each row's distinct row); an integer code per row when it fits
    (np.unique over rows is twenty times slower than over one integer column)."""
    if matrix.shape[1] <= 62:
        code = matrix.astype(np.int64) @ (np.int64(1) << np.arange(matrix.shape[1], dtype=np.int64))
        codes, first, inverse = np.unique(code, return_index=True, return_inverse=True)
        return matrix[first], inverse.reshape(-1)
    distinct, inverse = np.unique(matrix, axis=0, return_inverse=True)
    return distinct, inverse.reshape(-1)


def _offers(matrix: np.ndarray, rules: list[AssociationRule], top: int) -> Offers:
    n, items = matrix.shape
    best = np.full((n, items), -1, dtype=np.int32)
    order = sorted(range(len(rules)), key=lambda i: (-rules[i].confidence, -rules[i].lift, i))
    for i in order:
        r = rules[i]
        fires = ~matrix[:, r.consequent] & (best[:, r.consequent] < 0)
        for a in r.antecedent:
            fires &= matrix[:, a]
        best[fires, r.consequent] = i
    row, item = np.nonzero(best >= 0)
    rule = best[row, item].astype(np.int64)
    confidence = np.array([rules[i].confidence for i in rule], dtype=float)
    position = np.empty(len(rules), dtype=np.int64)
    position[order] = np.arange(len(rules))
    sequence = np.lexsort((position[rule], -confidence, row))
    row, item, rule = row[sequence], item[sequence], rule[sequence]
    rank = np.arange(len(row)) - np.searchsorted(row, row, side="left") + 1
    keep = rank <= top
    return Offers(row=row[keep], item=item[keep], rule=rule[keep], rank=rank[keep])
