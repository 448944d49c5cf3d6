"""The mining step's Python part (pipelines/mining_frames.py) on synthetic customer features.

Features carry planted segments (tests/planted_mining.py) mapped onto the real feature columns
with the skew real ones have, plus the planted churn rule and product-line baskets, so the step
does the same work it does on the warehouse: scale, choose k, cluster, name, explain every
segment and label with rules, mine cross-sell rules and offers. Reading the features from the
warehouse is timed by the nightly benchmark (`kam mine`), not here.
"""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from pipelines import mining_frames as frames
from pipelines.config import FEATURE_COLUMNS, MiningConfig
from tests.planted_mining import LINES, planted_baskets, planted_churn, planted_segments

AS_OF = date(2026, 11, 22)


def synthetic_features(n: int, seed: int = 1) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    config = MiningConfig()
    X, _ = planted_segments(n, seed=seed, features=len(config.segments.features))
    frame = {}
    for j, name in enumerate(config.segments.features):
        column = X[:, j].astype(np.float64)
        frame[name] = np.exp(2 + column) if name in config.segments.log_features else column
    churn_X, churn, _, _ = planted_churn(n, seed=seed)
    for j, name in enumerate(["recency_days", "service_cases_12m", "payment_delay_days", "on_time_rate"]):
        frame[name] = churn_X[:, j]
    rng = np.random.default_rng(seed)
    for name in FEATURE_COLUMNS:
        frame.setdefault(name, rng.gamma(2.0, 3.0, n))
    features = pd.DataFrame(frame)
    features.insert(0, "customer_id", [f"C{i:08d}" for i in range(n)])
    features["industry"] = rng.choice(["Machinery", "Automotive", "Food", "Chemicals", "Retail"], n)
    features["region"] = rng.choice(["North", "South", "East", "West"], n)
    top = features["monetary_12m"].rank(ascending=False, method="first") <= 0.05 * n
    features["key_account"] = top.to_numpy()
    return features, {"key_account": top.to_numpy(), "lost": churn}


def run_mine_step(n: int) -> dict:
    config = MiningConfig()
    features, labels = synthetic_features(n)
    basket = planted_baskets(n, seed=1)
    rows, cols = np.nonzero(basket)
    lines = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()[rows],
                          "product_line": np.asarray(LINES)[cols]})
    timings = {}
    started = time.perf_counter()
    seg = frames.segment(features, None, config)
    timings["segments_s"] = time.perf_counter() - started
    tick = time.perf_counter()
    X, names = frames.rule_matrix(features)
    targets = frames.label_targets(features, seg, labels)
    rule_sets = frames.induce(X, names, targets, config)
    rules = frames.rule_table(features, rule_sets, targets, AS_OF, "bench")
    timings["rules_s"] = time.perf_counter() - tick
    tick = time.perf_counter()  # a night between refits: the week's model places and re-scores
    kept = frames.place(features, seg.model, config)
    frames.rule_table(features, rule_sets, frames.label_targets(features, kept, labels), AS_OF, "bench")
    timings["kept_model_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    matrix, items, ids = frames.baskets_matrix(features["customer_id"], lines)
    cross, offers = frames.cross_sell(matrix, items, ids, config, AS_OF, "bench")
    timings["cross_sell_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    frames.customer_segment_table(features, seg, AS_OF, "bench")
    frames.segment_profile_table(features, seg, config, AS_OF, "bench")
    timings["tables_s"] = time.perf_counter() - tick
    lost = rules.filter(pc.equal(rules.column("target"), "lost"))
    figures = {k: round(v, 3) for k, v in timings.items()}
    return {"seconds": round(time.perf_counter() - started, 3), **figures, "k": len(seg.names),
            "rule_rows": rules.num_rows, "lost_rules": lost.column("rule").to_pylist(),
            "offers": offers.num_rows, "cross_sell_rules": cross.num_rows}
