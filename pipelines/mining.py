"""Mine: segments, the rules that explain them, and cross-sell offers, as marts.

Reads the staging tables, `customer_value` and `customer_product_line` (so it runs after `build`), builds
`customer_features` (transforms/marts/customer_features.sql) and each customer's product-line
basket. On a refit night (pipelines/mining_model.py) it clusters, matching last night's
`customer_segment` for stable ids, induces the rules and keeps both in `kam_mining_model`; on the
nights between it places customers with that model and re-scores its rules. It writes six marts,
each replacing only its own as-of date's rows so history stays and a re-run is idempotent:

- customer_features: one row per customer and as-of date (what the models saw, business units)
- customer_segment: one row per customer and as-of date (segment id and name)
- segment_profile: one row per segment (kept, new or vanished) and as-of date
- segment_rule: one row per IF-THEN rule explaining a segment or a label, and as-of date
- cross_sell_rule: one row per association rule between product lines, and as-of date
- account_next_best: one row per customer, offered product line and as-of date
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import mining_frames as frames
from pipelines import mining_model
from pipelines.config import Settings
from pipelines.duckdb_session import Session, sql_file
from pipelines.marts import expose_staging
from pipelines.results import StepResult
from pipelines.warehouse import Warehouse, writes_beside

MARTS = ("customer_features", "customer_segment", "segment_profile", "segment_rule", "cross_sell_rule",
         "account_next_best")


def last_night(warehouse: Warehouse, as_of: date) -> pd.DataFrame | None:
    """The latest customer_segment snapshot before `as_of` (None on the first night)."""
    if not warehouse.exists("customer_segment"):
        return None
    data = warehouse.dataset("customer_segment")
    dates = pc.unique(data.to_table(columns=["as_of_date"]).column("as_of_date")).to_pylist()
    earlier = [d for d in dates if d < as_of]
    if not earlier:
        return None
    day = max(earlier)
    table = data.to_table(columns=["customer_id", "segment_id", "segment_name"],
                          filter=pc.field("as_of_date") == pa.scalar(day, pa.date32()))
    return table.to_pandas()


def _labels(session: Session, settings: Settings) -> dict[str, np.ndarray]:
    labels = {}
    for name, condition in settings.config.mining.rules.labels.items():
        sql = f"SELECT COALESCE(({condition}), FALSE) AS y FROM customer_features ORDER BY customer_id"
        labels[name] = np.asarray(session.con.execute(sql).fetchnumpy()["y"], dtype=bool)
    return labels


def mine(settings: Settings, as_of: date, *, run_id: str | None = None,
         on_table: Callable[[str, int], None] | None = None) -> StepResult:
    started = time.perf_counter()
    config = settings.config.mining
    run_id = run_id or f"mine-{as_of.isoformat()}"
    warehouse = Warehouse(settings.warehouse_path)
    result = StepResult("mine")
    with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session:
        for table in ("customer_value", "customer_product_line"):
            if not warehouse.exists(table):
                raise RuntimeError(f"{table} is missing: mining reads what build measured; "
                                   f"run `kam build --as-of {as_of}` first")
        # build measured the order history (customer_value, customer_product_line): not joined again
        expose_staging(session, settings, order_history=False)
        session.expose("customer_value")
        session.expose("customer_product_line")
        session.materialize("customer_features", sql_file("marts", "customer_features"))
        feature_table = session.con.execute(
            "SELECT * FROM customer_features ORDER BY customer_id").to_arrow_table()
        features = feature_table.to_pandas()
        labels = _labels(session, settings)
        # dictionary-encoded: a million customers' baskets as categoricals, not Python strings
        baskets = session.con.execute(
            "SELECT customer_id, product_line FROM customer_product_line ORDER BY ALL").to_arrow_table()
        lines = pa.table({c: pc.dictionary_encode(baskets[c]) for c in baskets.column_names}).to_pandas()
    timings = {}
    night = f"as_of_date = '{as_of.isoformat()}'"
    # each table is written while the next is computed (its write overlaps the models' work)
    with writes_beside(warehouse) as beside:
        def keep(name: str, table: pa.Table) -> None:
            beside.write(name, table, replace_where=night)
            result.rows[name] = table.num_rows

        keep("customer_features", feature_table.append_column(
            "run_id", pa.array([run_id] * feature_table.num_rows, pa.string())))
        kept = mining_model.kept_model(warehouse, as_of, config)
        tick = time.perf_counter()
        if kept is None:
            seg = frames.segment(features, last_night(warehouse, as_of), config)
        else:
            seg = frames.place(features, kept.segments, config)
        timings["segments"] = time.perf_counter() - tick
        keep("customer_segment", frames.customer_segment_table(features, seg, as_of, run_id))
        keep("segment_profile", frames.segment_profile_table(features, seg, config, as_of, run_id))

        tick = time.perf_counter()
        targets = frames.label_targets(features, seg, labels)
        if kept is None:
            X, names = frames.rule_matrix(features)
            rule_sets = frames.induce(X, names, targets, config)
            fitted = mining_model.MiningModel(as_of, mining_model.fingerprint(config), seg.model, rule_sets)
        else:
            rule_sets = kept.rules
        keep("segment_rule", frames.rule_table(features, rule_sets, targets, as_of, run_id))
        timings["rules"] = time.perf_counter() - tick

        tick = time.perf_counter()
        matrix, items, ids = frames.baskets_matrix(features["customer_id"], lines)
        cross, offers = frames.cross_sell(matrix, items, ids, config, as_of, run_id)
        keep("cross_sell_rule", cross)
        keep("account_next_best", offers)
        timings["cross_sell"] = time.perf_counter() - tick
    if on_table:
        for name, rows in result.rows.items():
            on_table(name, rows)

    if kept is None:  # after the marts it explains: a crash before this refits tomorrow
        mining_model.save(warehouse, fitted)

    key_segment = frames.key_account_segment(features, seg)
    result.details = {
        "segments": [(sid, seg.names[sid], seg.status[sid], int((seg.segment_id == sid).sum()))
                     for sid in sorted(seg.names)],
        "vanished": seg.vanished,
        "key_account_segment": key_segment,
        "quality": seg.quality,
        "timings": timings,
        "model_fitted": (kept.fit_date if kept else as_of).isoformat(),
    }
    if seg.vanished:
        result.notes.append("segments vanished since last night: "
                            + ", ".join(f"{i} ({n})" for i, n in sorted(seg.vanished.items())))
    new = [i for i, s in seg.status.items() if s == "new"]
    if new:
        result.notes.append("new segments tonight: " + ", ".join(f"{i} ({seg.names[i]})" for i in new))
    if kept is not None:
        result.notes.append(f"segments and rules of the model fitted on {kept.fit_date} (refitted on "
                            f"{calendar.day_name[config.refit_weekday]}s)")
    result.seconds = time.perf_counter() - started
    return result
