"""The mining step's logic as functions from frames to mart tables, with no I/O.

pipelines/mining.py reads the inputs from the warehouse and writes what these return; tests and
the benchmark call them directly on hand-made or synthetic frames. Every random choice takes its
seed from the configuration, so the same inputs and the same as-of date give the same tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from models.crosssell import association_rules, next_best
from models.rules import Condition, RuleInducer, score_rule
from models.segment_identity import (
    first_ids,
    match_segments,
    previous_centroids,
    segment_names,
)
from models.segments import SampledKMeans, SkewScaler, inertia, nearest, quality
from pipelines.config import CATEGORY_COLUMNS, FEATURE_COLUMNS, MiningConfig

MAX_CATEGORIES = 12  # one-hot columns per category for the rules (the most common values)


@dataclass(frozen=True)
class SegmentModel:
    """What places a customer in a segment: the scaling of the features and the centres (in the
    scaled space) with their segment ids and names. Kept as plain lists, so it is stored as JSON
    and read back to the same floats."""

    log_columns: tuple[int, ...]
    low: list[float]
    high: list[float]
    mean: list[float]
    scale: list[float]
    centers: list[list[float]]
    ids: list[int]
    names: dict[int, str]
    k_scores: dict[int, float]

    @classmethod
    def of(cls, scaler: SkewScaler, centers: np.ndarray, ids, names: dict[int, str],
           k_scores: dict[int, float]) -> SegmentModel:
        return cls(tuple(int(c) for c in scaler.log_columns), scaler.low_.tolist(), scaler.high_.tolist(),
                   scaler.mean_.tolist(), scaler.scale_.tolist(), np.asarray(centers, np.float64).tolist(),
                   [int(i) for i in ids], {int(i): str(n) for i, n in names.items()},
                   {int(k): float(v) for k, v in k_scores.items()})

    def scaler(self) -> SkewScaler:
        scaler = SkewScaler(log_columns=self.log_columns)
        scaler.low_, scaler.high_ = np.asarray(self.low), np.asarray(self.high)
        scaler.mean_, scaler.scale_ = np.asarray(self.mean), np.asarray(self.scale)
        return scaler


@dataclass
class Segmentation:
    """Tonight's segment per customer, and what happened to last night's segments."""

    segment_id: np.ndarray  # per feature row
    names: dict[int, str]
    status: dict[int, str]  # "first", "kept" or "new"; vanished ids are in `vanished`
    moved: dict[int, float]  # distance the centre moved since last night (scaled units)
    vanished: dict[int, str] = field(default_factory=dict)
    k_scores: dict[int, float] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    model: SegmentModel | None = None  # what placed the customers, to keep for the week


def segment(features: pd.DataFrame, previous: pd.DataFrame | None, config: MiningConfig) -> Segmentation:
    """Cluster the customers and give each cluster last night's id and name where it matches.

    `previous` holds last night's customer_id, segment_id and segment_name (None on the first
    night); last night's centroids are taken in tonight's scaled space (models/segment_identity.py).
    """
    cfg = config.segments
    columns = list(cfg.features)
    X = features[columns].to_numpy(dtype=np.float64)
    scaler = SkewScaler(log_columns=tuple(columns.index(c) for c in cfg.log_features)).fit(X)
    Z = scaler.transform(X)
    before = None
    if previous is not None and not previous.empty:
        # last night's segment of each customer (-1 for a new one), by position, not a dict lookup
        # per customer (3 s at a million)
        position = pd.Index(previous["customer_id"]).get_indexer(features["customer_id"])
        last = previous["segment_id"].to_numpy(dtype=np.int64)
        before = np.where(position >= 0, last[np.maximum(position, 0)], -1).astype(np.int64)
        old_ids, old_centers = previous_centroids(Z, before)
    model = SampledKMeans(k_range=(cfg.k_min, cfg.k_max), sample_size=cfg.sample_size, n_init=cfg.n_init,
                          silhouette_size=cfg.silhouette_size,
                          k_margin=cfg.k_switch_margin, random_state=config.seed)
    model.fit(Z, previous_centers=None if before is None else old_centers)
    centers = model.cluster_centers_
    fresh = segment_names(centers, columns)
    if before is None:
        ids = first_ids(centers)
        names = {int(i): fresh[j] for j, i in enumerate(ids)}
        status = dict.fromkeys(names, "first")
        moved: dict[int, float] = {}
        vanished: dict[int, str] = {}
    else:
        old_names = dict(zip(previous["segment_id"], previous["segment_name"], strict=False))
        matching = match_segments(centers, old_ids, old_centers, cfg.match_max_distance)
        ids = matching.ids
        names, status, moved = {}, {}, {}
        for j, i in enumerate(int(x) for x in ids):
            kept = i in old_names
            names[i] = old_names[i] if kept else fresh[j]
            status[i] = "kept" if kept else "new"
            if kept:
                moved[i] = float(matching.distance[j])
        names = _unique(names)
        vanished = {int(i): str(n) for i, n in old_names.items() if int(i) not in names}
    labels = np.asarray(ids)[model.labels_]
    metrics = quality(Z, model.labels_, sample_size=cfg.silhouette_size * 2, random_state=config.seed)
    metrics.update(inertia=model.inertia_, k=float(len(centers)))
    kept = SegmentModel.of(scaler, centers, ids, names, model.k_choice_.scores)
    return Segmentation(segment_id=labels, names=names, status=status, moved=moved, vanished=vanished,
                        k_scores=model.k_choice_.scores, quality=metrics, model=kept)


def place(features: pd.DataFrame, model: SegmentModel, config: MiningConfig) -> Segmentation:
    """Each customer in the segment of the nearest centre of a model fitted on an earlier night.

    Nothing is refitted, so every segment keeps its id, its name and its centre (moved 0); the
    quality figures are tonight's customers' under that model."""
    cfg = config.segments
    Z = model.scaler().transform(features[list(cfg.features)].to_numpy(dtype=np.float64))
    centers = np.asarray(model.centers, dtype=np.float64)
    which = nearest(Z, centers)
    names = dict(model.names)
    metrics = quality(Z, which, sample_size=cfg.silhouette_size * 2, random_state=config.seed)
    metrics.update(inertia=inertia(Z, which, centers), k=float(len(centers)))
    return Segmentation(segment_id=np.asarray(model.ids, dtype=np.int64)[which], names=names,
                        status=dict.fromkeys(names, "kept"), moved=dict.fromkeys(names, 0.0),
                        k_scores=dict(model.k_scores), quality=metrics, model=model)


def _unique(names: dict[int, str]) -> dict[int, str]:
    seen: dict[str, int] = {}
    out = {}
    for i in sorted(names):
        seen[names[i]] = seen.get(names[i], 0) + 1
        out[i] = names[i] if seen[names[i]] == 1 else f"{names[i]} ({seen[names[i]]})"
    return out


def customer_segment_table(features: pd.DataFrame, seg: Segmentation, as_of: date, run_id: str) -> pa.Table:
    """customer_segment: one row per customer and as-of date."""
    ids = seg.segment_id
    return pa.table({
        "customer_id": pa.array(features["customer_id"].astype(str).to_numpy(), pa.string()),
        "segment_id": pa.array(ids, pa.int64()),
        "segment_name": pa.array(pd.Series(ids).map(seg.names).to_numpy(dtype=object), pa.string()),
        "as_of_date": pa.array([as_of] * len(ids), pa.date32()),
        "run_id": pa.array([run_id] * len(ids), pa.string()),
    })


def segment_profile_table(features: pd.DataFrame, seg: Segmentation, config: MiningConfig,
                          as_of: date, run_id: str) -> pa.Table:
    """segment_profile: one row per segment (vanished ones too) and as-of date.

    Size, shares of customers, revenue and profit (gross margin), key-account share, the median
    of every feature, how far the centre moved since last night, and the run's quality metrics.
    """
    frame = features.assign(segment_id=seg.segment_id)
    total_revenue = float(frame["monetary_12m"].sum()) or 1.0
    total_margin = float(frame["margin_12m"].sum()) or 1.0
    grouped = frame.groupby("segment_id", sort=True)
    medians = grouped[list(FEATURE_COLUMNS)].median()
    rows = []
    for sid, part in grouped:
        sid = int(sid)
        row = {
            "segment_id": sid, "segment_name": seg.names[sid], "status": seg.status[sid],
            "customers": len(part), "share_of_customers": len(part) / len(frame),
            "share_of_revenue": float(part["monetary_12m"].sum()) / total_revenue,
            "share_of_profit": float(part["margin_12m"].sum()) / total_margin,
            "key_account_share": float(part["key_account"].astype(bool).mean()),
            "centre_moved": seg.moved.get(sid, float("nan")),
        }
        row.update({f"median_{c}": float(medians.loc[sid, c]) for c in FEATURE_COLUMNS})
        rows.append(row)
    for sid, name in sorted(seg.vanished.items()):
        row = {"segment_id": sid, "segment_name": name, "status": "vanished", "customers": 0,
               "share_of_customers": 0.0, "share_of_revenue": 0.0, "share_of_profit": 0.0,
               "key_account_share": float("nan"), "centre_moved": float("nan")}
        row.update({f"median_{c}": float("nan") for c in FEATURE_COLUMNS})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["silhouette"] = seg.quality["silhouette"]
    table["davies_bouldin"] = seg.quality["davies_bouldin"]
    table["k_chosen"] = len(seg.names)
    table["k_silhouettes"] = json.dumps({str(k): round(v, 4) for k, v in sorted(seg.k_scores.items())})
    return _stamp(pa.Table.from_pandas(table, preserve_index=False), as_of, run_id)


def rule_matrix(features: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Features in business units plus one-hot columns "industry=X" for the commonest values."""
    parts = [features[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64)]
    names = list(FEATURE_COLUMNS)
    for column in CATEGORY_COLUMNS:
        values = features[column].astype(str)
        counts = values.value_counts()
        top = sorted(counts.index[:MAX_CATEGORIES], key=lambda v: (-counts[v], v))
        for value in top:
            parts.append((values == value).to_numpy(dtype=np.float64)[:, None])
            names.append(f"{column}={value}")
    return np.hstack(parts), names


@dataclass(frozen=True)
class RuleSet:
    """The rules explaining one target, each a tuple of conditions (feature name, above, threshold):
    by name, so they can be re-scored on another night's customers and stored as JSON."""

    target: str
    segment_id: int | None
    rules: tuple[tuple[tuple[str, bool, float], ...], ...]
    fidelity_holdout: float


def induce(X: np.ndarray, names: list[str], targets: dict[str, tuple[int | None, np.ndarray]],
           config: MiningConfig) -> list[RuleSet]:
    """The rules explaining each target (a segment or a configured label), learned on all customers.

    `fidelity_holdout` is the honest estimate: the same learner fitted on a fixed-seed share of
    customers, scored on the rest it never saw."""
    cfg = config.rules
    rng = np.random.default_rng(config.seed)
    holdout = rng.random(len(X)) < cfg.holdout_share
    X_fit, X_held = X[~holdout], X[holdout]  # copied once, not once per target
    sets = []
    for target, (segment_id, y) in targets.items():
        if y.all() or not y.any():
            continue

        def learner():
            return RuleInducer(max_rules=cfg.max_rules, max_conditions=cfg.max_conditions,
                               max_depth=cfg.max_depth, min_leaf_share=cfg.min_leaf_share,
                               sample_size=cfg.sample_size, random_state=config.seed)

        fidelity_holdout = float("nan")
        if holdout.any() and y[~holdout].any() and not y[~holdout].all():
            fidelity_holdout = learner().fit(X_fit, y[~holdout]).fidelity(X_held, y[holdout])
        inducer = learner().fit(X, y)
        rules = tuple(tuple((names[c.feature], bool(c.above), float(c.threshold)) for c in r.conditions)
                      for r in inducer.rules_)
        sets.append(RuleSet(target, segment_id, rules, fidelity_holdout))
    return sets


def _condition_column(features: pd.DataFrame, name: str) -> np.ndarray:
    """A rule matrix column (`rule_matrix`) by name, whether or not tonight's matrix has it."""
    if name in features.columns:
        return features[name].to_numpy(dtype=np.float64)
    column, value = name.split("=", 1)  # a one-hot column "industry=Retail"
    return (features[column].astype(str) == value).to_numpy(dtype=np.float64)


def rule_table(features: pd.DataFrame, sets: list[RuleSet], targets: dict[str, tuple[int | None, np.ndarray]],
               as_of: date, run_id: str) -> pa.Table:
    """segment_rule: one row per rule of each set, coverage, precision, lift and fidelity measured
    on tonight's customers (a target with no rule set, or whose label tonight is all or nothing,
    has no rows)."""
    rows = []
    columns: dict[str, np.ndarray] = {}
    for rule_set in sets:
        if rule_set.target not in targets:
            continue
        _, y = targets[rule_set.target]
        if y.all() or not y.any():
            continue
        scored, fired = [], np.zeros(len(y), dtype=bool)
        for rule in rule_set.rules:
            names = [name for name, _, _ in rule]
            conditions = [Condition(i, above, threshold) for i, (_, above, threshold) in enumerate(rule)]
            for name in names:
                if name not in columns:
                    columns[name] = _condition_column(features, name)
            X = np.column_stack([columns[name] for name in names]) if names else np.empty((len(y), 0))
            mask = np.ones(len(y), dtype=bool)
            for condition in conditions:
                mask &= condition.mask(X)
            fired |= mask
            scored.append((score_rule(conditions, mask, y), names))
        fidelity = float((fired == y).mean())
        for n, (rule, names) in enumerate(scored, start=1):
            rows.append({
                "target": rule_set.target, "segment_id": rule_set.segment_id, "rule_no": n,
                "rule": rule.text(names), "rule_sql": rule.sql(names),
                "conditions": len(rule.conditions), "coverage": rule.coverage,
                "precision": rule.precision, "lift": rule.lift, "customers": rule.support,
                "rules_in_set": len(rule_set.rules), "fidelity": fidelity,
                "fidelity_holdout": rule_set.fidelity_holdout, "base_rate": float(y.mean()),
            })
    schema = pa.schema([
        ("target", pa.string()), ("segment_id", pa.int64()), ("rule_no", pa.int64()),
        ("rule", pa.string()), ("rule_sql", pa.string()), ("conditions", pa.int64()),
        ("coverage", pa.float64()),
        ("precision", pa.float64()), ("lift", pa.float64()), ("customers", pa.int64()),
        ("rules_in_set", pa.int64()), ("fidelity", pa.float64()), ("fidelity_holdout", pa.float64()),
        ("base_rate", pa.float64()),
    ])
    table = pa.Table.from_pylist(rows, schema=schema)
    return _stamp(table, as_of, run_id)


def _stamp(table: pa.Table, as_of: date, run_id: str) -> pa.Table:
    n = table.num_rows
    return (table.append_column("as_of_date", pa.array([as_of] * n, pa.date32()))
            .append_column("run_id", pa.array([run_id] * n, pa.string())))


def _spread(per_category: np.ndarray, values: pd.Series) -> np.ndarray:
    """Per-row positions from per-category ones (-1 for a missing value, as get_indexer gives)."""
    codes = values.cat.codes.to_numpy()
    return np.where(codes >= 0, per_category[codes], -1)


def baskets_matrix(customers: pd.Series, lines: pd.DataFrame) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(customers x product lines booleans, line names, customer ids) for customers who bought.

    Lines of customers missing from `customers` are ignored. Hash lookups (pandas indexers), not
    string sorts: at a million customers this is the difference between 0.3 s and 10 s.
    """
    customer = lines["customer_id"].astype("category")
    line = lines["product_line"].astype("category")
    items = sorted(line.cat.categories.astype(str).unique())
    everyone = pd.Index(customers.astype(str))
    # looked up once per distinct value, then spread by the categorical codes
    row = _spread(everyone.get_indexer(customer.cat.categories.astype(str)), customer)
    col = _spread(pd.Index(items).get_indexer(line.cat.categories.astype(str)), line)
    inside = row >= 0
    matrix = np.zeros((len(everyone), len(items)), dtype=bool)
    matrix[row[inside], col[inside]] = True
    bought = matrix.any(axis=1)
    return matrix[bought], items, everyone.to_numpy(dtype=object)[bought]


def cross_sell(matrix: np.ndarray, items: list[str], ids: np.ndarray, config: MiningConfig,
               as_of: date, run_id: str) -> tuple[pa.Table, pa.Table]:
    """(cross_sell_rule, account_next_best) tables."""
    cfg = config.cross_sell
    rules = association_rules(matrix, min_support=cfg.min_support, min_confidence=cfg.min_confidence,
                              min_lift=cfg.min_lift, max_len=cfg.max_len)
    texts = [r.text(items) for r in rules]
    rule_table = pa.table({
        "rule_id": pa.array(np.arange(1, len(rules) + 1), pa.int64()),
        "antecedent": pa.array([[items[i] for i in r.antecedent] for r in rules], pa.list_(pa.string())),
        "consequent": pa.array([items[r.consequent] for r in rules], pa.string()),
        "rule": pa.array(texts, pa.string()),
        "support": pa.array([r.support for r in rules], pa.float64()),
        "confidence": pa.array([r.confidence for r in rules], pa.float64()),
        "lift": pa.array([r.lift for r in rules], pa.float64()),
        "customers": pa.array([r.count for r in rules], pa.int64()),
    })
    offers = next_best(matrix, rules, top=cfg.offers_per_account)
    confidence = np.array([r.confidence for r in rules])
    lift = np.array([r.lift for r in rules])
    offer_table = pa.table({
        "customer_id": pa.array(ids[offers.row], pa.string()),
        "rank": pa.array(offers.rank, pa.int64()),
        "product_line": pa.array(np.asarray(items, dtype=object)[offers.item], pa.string()),
        "rule_id": pa.array(offers.rule + 1, pa.int64()),
        "because": pa.array(np.asarray(texts, dtype=object)[offers.rule] if len(offers.rule) else [],
                            pa.string()),
        "confidence": pa.array(confidence[offers.rule] if len(offers.rule) else [], pa.float64()),
        "lift": pa.array(lift[offers.rule] if len(offers.rule) else [], pa.float64()),
    })
    return _stamp(rule_table, as_of, run_id), _stamp(offer_table, as_of, run_id)


def label_targets(features: pd.DataFrame, seg: Segmentation,
                  labels: dict[str, np.ndarray]) -> dict[str, tuple[int | None, np.ndarray]]:
    """What the rules explain: every segment (one against the rest), then each configured label."""
    targets: dict[str, tuple[int | None, np.ndarray]] = {}
    for sid in sorted(seg.names):
        targets[f"segment {sid}: {seg.names[sid]}"] = (sid, seg.segment_id == sid)
    for name, y in labels.items():
        targets[name] = (None, np.asarray(y, dtype=bool))
    return targets


def key_account_segment(features: pd.DataFrame, seg: Segmentation) -> int:
    """The segment with the largest share of key accounts (ties: the larger revenue)."""
    frame = pd.DataFrame({"segment_id": seg.segment_id, "key": features["key_account"].astype(bool),
                          "revenue": features["monetary_12m"]})
    stats = frame.groupby("segment_id").agg(share=("key", "mean"), revenue=("revenue", "sum"))
    return int(stats.sort_values(["share", "revenue"], ascending=False).index[0])
