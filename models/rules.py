"""IF-THEN rules that explain a label, from a decision tree pruned into a short rule list.

Method (chosen by measurement, see benchmarks/README.md): grow a CART tree on the business-unit
features, turn every leaf that predicts the label into a rule (the conditions on its path), then
(1) merge repeated tests of a feature into its tightest bound, (2) drop conditions one at a time
while the rule's precision does not fall (C4.5-rules style generalisation), which lets a leaf deep
in the tree shed the splits that only routed it there, (3) keep at most `max_conditions` per rule
and (4) pick at most `max_rules` rules greedily by how many still-uncovered positives they add.
This recovered a planted two-part rule exactly in well under a second at 100k rows, where RIPPER
took minutes and returned dozens of rules.

Each threshold is replaced by the roundest number that splits the training rows the same way
(recency_days > 140, not > 140.5) *before* the rules are scored, so the text a salesperson reads
is exactly the rule whose coverage, precision and lift are reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted


@dataclass(frozen=True)
class Condition:
    feature: int
    above: bool  # True: x > threshold, False: x <= threshold
    threshold: float

    def mask(self, X: np.ndarray) -> np.ndarray:
        column = X[:, self.feature]
        return column > self.threshold if self.above else column <= self.threshold

    def text(self, names: list[str]) -> str:
        name = names[self.feature]
        if "=" in name and 0 <= self.threshold < 1:  # a one-hot column "industry=Retail"
            column, value = name.split("=", 1)
            return f"{column} {'=' if self.above else '!='} {value}"
        return f"{name} {'>' if self.above else '<='} {_fmt(self.threshold)}"

    def sql(self, names: list[str]) -> str:
        """The condition as a SQL predicate over the feature table (one-hots as equalities)."""
        name = names[self.feature]
        if "=" in name and 0 <= self.threshold < 1:
            column, value = name.split("=", 1)
            value = value.replace("'", "''")
            return f"{column} {'=' if self.above else '<>'} '{value}'"
        return f"{name} {'>' if self.above else '<='} {_fmt(self.threshold)}"


@dataclass(frozen=True)
class Rule:
    conditions: tuple[Condition, ...]
    coverage: float  # share of all rows the rule matches
    precision: float  # share of matched rows that carry the label
    lift: float  # precision over the label's base rate
    support: int  # matched rows with the label

    def mask(self, X: np.ndarray) -> np.ndarray:
        out = np.ones(len(X), dtype=bool)
        for c in self.conditions:
            out &= c.mask(X)
        return out

    def text(self, names: list[str]) -> str:
        return " AND ".join(c.text(names) for c in self.conditions) or "always"

    def sql(self, names: list[str]) -> str:
        return " AND ".join(f"({c.sql(names)})" for c in self.conditions) or "TRUE"


def score_rule(conditions: list[Condition] | tuple[Condition, ...], mask: np.ndarray, y: np.ndarray) -> Rule:
    """The rule with these conditions scored on labels `y`, `mask` being the rows it matches."""
    hits = int(mask.sum())
    precision = float(y[mask].mean()) if hits else 0.0
    base = float(y.mean())
    return Rule(tuple(conditions), coverage=hits / len(y), precision=precision,
                lift=precision / base if base else float("nan"), support=int(y[mask].sum()))


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def nice_threshold(lo: float, hi: float) -> float:
    """The number with fewest decimals in [lo, hi): splits the data exactly as a tree split
    between the observed values lo and hi does (x <= t keeps lo, x > t keeps hi), in the form
    a person would write it (140, not 140.5; 0.849, not 0.84949)."""
    for decimals in range(-6, 10):
        step = 10.0**-decimals
        t = math.ceil(lo / step - 1e-9) * step
        t = round(t, max(decimals, 0))
        if lo <= t < hi:
            return float(t)
    return float(lo)


class _Splits:
    """Sorted distinct values per feature, to turn a tree threshold into a nice one."""

    def __init__(self, X: np.ndarray):
        self.X = X
        self.values: dict[int, np.ndarray] = {}

    def nice(self, feature: int, threshold: float) -> float:
        if feature not in self.values:
            self.values[feature] = np.unique(self.X[:, feature])
        v = self.values[feature]
        i = int(np.searchsorted(v, threshold, side="right"))
        if i == 0 or i == len(v):
            return threshold
        return nice_threshold(float(v[i - 1]), float(v[i]))


def _merge(conditions: list[Condition]) -> list[Condition]:
    """Keep only the tightest bound per (feature, direction): x > 3 AND x > 5 is x > 5."""
    best: dict[tuple[int, bool], Condition] = {}
    for c in conditions:
        key = (c.feature, c.above)
        old = best.get(key)
        if old is None or (c.threshold > old.threshold if c.above else c.threshold < old.threshold):
            best[key] = c
    return sorted(best.values(), key=lambda c: (c.feature, not c.above))


def _leaf_paths(tree, splits: _Splits) -> list[list[Condition]]:
    """Conditions on the path to every leaf whose majority class is 1."""
    t = tree.tree_
    paths: list[list[Condition]] = []
    stack = [(0, [])]
    while stack:
        node, conds = stack.pop()
        left, right = t.children_left[node], t.children_right[node]
        if left == right:  # leaf
            if t.value[node][0][1] > t.value[node][0][0]:
                paths.append(conds)
            continue
        f = int(t.feature[node])
        thr = splits.nice(f, float(t.threshold[node]))
        stack.append((right, conds + [Condition(f, True, thr)]))
        stack.append((left, conds + [Condition(f, False, thr)]))
    return paths


FALSE_HIT_COST = 10.0  # a re-cut threshold may admit one false hit for every ten more hits
PRECISION_SLACK = 0.005  # a condition whose removal costs less precision than this is dropped
REFINE_PASSES = 3


class RuleInducer(ClassifierMixin, BaseEstimator):
    """Explain a binary label with at most `max_rules` rules of at most `max_conditions` each.

    fit(X, y) learns `rules_` (ordered by how many positives each adds), `base_rate_`, and predicts
    1 where any rule fires. Fit on at most `sample_size` rows (a fixed-seed sample), so the same
    seed gives the same rule text.
    """

    def __init__(self, max_rules: int = 5, max_conditions: int = 3, max_depth: int = 6,
                 min_leaf_share: float = 0.002, min_precision: float = 0.5,
                 sample_size: int = 200_000, random_state: int = 0):
        self.max_rules = max_rules
        self.max_conditions = max_conditions
        self.max_depth = max_depth
        self.min_leaf_share = min_leaf_share
        self.min_precision = min_precision
        self.sample_size = sample_size
        self.random_state = random_state

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).astype(bool)
        rng = check_random_state(self.random_state)
        if len(X) > self.sample_size:
            rows = np.sort(rng.choice(len(X), self.sample_size, replace=False))
            X, y = X[rows], y[rows]
        # column-major: every condition reads one feature column, hundreds of times per fit (a
        # strided column of a row-major matrix took most of the fit at 200k rows)
        X = np.asfortranarray(X)
        self.classes_ = np.array([False, True])
        self.base_rate_ = float(y.mean())
        self.rules_: list[Rule] = []
        if y.all() or not y.any():
            return self
        tree = DecisionTreeClassifier(
            max_depth=self.max_depth, min_samples_leaf=max(1, int(self.min_leaf_share * len(X))),
            random_state=rng.randint(2**31 - 1),
        ).fit(X, y)
        splits = _Splits(X)
        candidates = {}
        for path in _leaf_paths(tree, splits):
            conds = _merge(path)
            for _ in range(REFINE_PASSES):  # cuts interact: re-cut until they settle
                refined = self._refine(conds, X, y, splits)
                if refined == conds:
                    break
                conds = refined
            conds = self._generalise(conds, X, y)
            candidates.setdefault(tuple(conds), None)
        self.rules_ = self._select([list(c) for c in candidates], X, y)
        return self

    def _precision(self, conds: list[Condition], X: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        mask = np.ones(len(X), dtype=bool)
        for c in conds:
            mask &= c.mask(X)
        hits = int(mask.sum())
        return (float(y[mask].mean()) if hits else 0.0), int(y[mask].sum())

    def _refine(self, conds: list[Condition], X: np.ndarray, y: np.ndarray,
                splits: _Splits) -> list[Condition]:
        """Re-cut each threshold given the rule's other conditions.

        The tree chose each cut for the rows that reached its node, before the later splits;
        once the rule is whole, the best cut on a feature can lie elsewhere (a negative the tree
        excluded with an extra condition may be excludable by a tighter bound on the first).
        The cut maximises hits minus `FALSE_HIT_COST` times false hits among the rows the other
        conditions admit.
        """
        conds = list(conds)
        for i, c in enumerate(conds):
            mask = np.ones(len(X), dtype=bool)
            for j, other in enumerate(conds):
                if j != i:
                    mask &= other.mask(X)
            values, labels = X[mask, c.feature], y[mask]
            if not len(values):
                continue
            order = np.argsort(-values if c.above else values, kind="stable")
            v, hit = values[order], labels[order]
            score = np.cumsum(np.where(hit, 1.0, -FALSE_HIT_COST))
            last = np.r_[v[1:] != v[:-1], True]  # cut only between distinct values
            best = int(np.flatnonzero(last)[np.argmax(score[last])])
            if best + 1 < len(v):
                cut = splits.nice(c.feature, (v[best] + v[best + 1]) / 2)
            else:  # everything admitted: the loosest cut the data allows
                cut = splits.nice(c.feature, v[best] - 1e-9 if c.above else v[best])
                cut = min(cut, v[best] - 1e-12) if c.above else max(cut, v[best])
            conds[i] = Condition(c.feature, c.above, cut)
        return conds

    def _generalise(self, conds: list[Condition], X: np.ndarray, y: np.ndarray) -> list[Condition]:
        """Drop conditions while precision holds (within PRECISION_SLACK of the rule's own: one
        mislabelled customer must not buy a condition), then down to `max_conditions`."""
        precision, _ = self._precision(conds, X, y)
        floor = precision - PRECISION_SLACK
        while conds:
            trials = []
            for i in range(len(conds)):
                rest = conds[:i] + conds[i + 1:]
                p, pos = self._precision(rest, X, y)
                trials.append((p, pos, -i, rest))
            p, _, _, rest = max(trials, key=lambda t: (t[0], t[1], t[2]))
            if p >= floor - 1e-12 or len(conds) > self.max_conditions:
                conds = rest
            else:
                break
        return conds

    def _select(self, candidates: list[list[Condition]], X: np.ndarray, y: np.ndarray) -> list[Rule]:
        """Greedy cover: add the rule with the most uncovered positives, precision permitting."""
        masks = []
        for conds in candidates:
            mask = np.ones(len(X), dtype=bool)
            for c in conds:
                mask &= c.mask(X)
            masks.append(mask)
        covered = np.zeros(len(X), dtype=bool)
        chosen: list[Rule] = []
        remaining = list(range(len(candidates)))
        while remaining and len(chosen) < self.max_rules:
            best, best_key = None, None
            for i in remaining:
                m = masks[i]
                hits = int(m.sum())
                if not hits:
                    continue
                precision = float(y[m].mean())
                gain = int((y & m & ~covered).sum()) - int((~y & m & ~covered).sum())
                key = (gain, precision, -len(candidates[i]), -i)
                if precision >= self.min_precision and gain > 0 and (best_key is None or key > best_key):
                    best, best_key = i, key
            if best is None:
                break
            remaining.remove(best)
            covered |= masks[best]
            chosen.append(self._score(candidates[best], masks[best], y))
        return chosen

    def _score(self, conds: list[Condition], mask: np.ndarray, y: np.ndarray) -> Rule:
        return score_rule(conds, mask, y)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "rules_")
        X = np.asarray(X, dtype=np.float64)
        out = np.zeros(len(X), dtype=bool)
        for rule in self.rules_:
            out |= rule.mask(X)
        return out

    def evaluate(self, X, y) -> list[Rule]:
        """The rules re-scored on (X, y), e.g. on all customers or on held-out ones."""
        check_is_fitted(self, "rules_")
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y).astype(bool)
        return [self._score(list(r.conditions), r.mask(X), y) for r in self.rules_]

    def fidelity(self, X, y) -> float:
        """Share of rows where "some rule fires" agrees with the label."""
        return float((self.predict(X) == np.asarray(y).astype(bool)).mean())

    def texts(self, names: list[str]) -> list[str]:
        check_is_fitted(self, "rules_")
        return [r.text(names) for r in self.rules_]
