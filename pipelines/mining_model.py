"""The segment model and segment rules a week of nights shares (`kam_mining_model`).

Refitting k-means and inducing the rules again every night moved every rule's thresholds a
little (segment 1 at 1M: `monetary_12m <= 310.6`, then 268, then 309.7 on three nights), so every
CRM account's segment rule changed every night though few customers changed segment; and the
fits took 12 s of a 17 s mining step. So the model is fitted on one as-of weekday
(`mining.refit_weekday`), and on a night with no model fitted since the last such day (the first
night, a gap in the schedule) or whose configuration changed; the nights in between place each
customer with it and score its rules on tonight's customers.

Which model a night uses depends only on its as-of date and what earlier nights stored, so a
re-run or a backfill of the same nights gives the same tables.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import MiningConfig
from pipelines.mining_frames import RuleSet, SegmentModel
from pipelines.warehouse import Warehouse

MODEL_TABLE = "kam_mining_model"


@dataclass(frozen=True)
class MiningModel:
    fit_date: date
    fingerprint: str
    segments: SegmentModel
    rules: list[RuleSet]


def fingerprint(config: MiningConfig) -> str:
    """The configuration that shapes the model: a change to it means a refit."""
    shaping = {"seed": config.seed, "segments": config.segments.model_dump(),
               "rules": config.rules.model_dump()}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def refit_day(as_of: date, weekday: int) -> date:
    """The latest scheduled refit day on or before `as_of`."""
    return as_of - timedelta(days=(as_of.weekday() - weekday) % 7)


def _to_json(model: MiningModel) -> str:
    return json.dumps({"segments": asdict(model.segments), "rules": [asdict(r) for r in model.rules]})


def _from_json(fit_date: date, fingerprint_: str, text: str) -> MiningModel:
    data = json.loads(text)
    seg = data["segments"]
    seg["log_columns"] = tuple(seg["log_columns"])
    seg["names"] = {int(k): v for k, v in seg["names"].items()}
    seg["k_scores"] = {int(k): v for k, v in seg["k_scores"].items()}
    rules = [RuleSet(r["target"], r["segment_id"],
                     tuple(tuple((name, bool(above), float(t)) for name, above, t in rule)
                           for rule in r["rules"]),
                     float(r["fidelity_holdout"]))
             for r in data["rules"]]
    return MiningModel(fit_date, fingerprint_, SegmentModel(**seg), rules)


def kept_model(warehouse: Warehouse, as_of: date, config: MiningConfig) -> MiningModel | None:
    """This week's model for the night `as_of`, or None when tonight fits one.

    Tonight fits on the refit weekday, when refit_weekday is null, and when no model of this
    configuration was fitted after the last refit day and before tonight (a model fitted on
    tonight's date is the one a re-run of tonight fits again)."""
    if config.refit_weekday is None or not warehouse.exists(MODEL_TABLE):
        return None
    start = refit_day(as_of, config.refit_weekday)
    if start == as_of:
        return None
    stored = warehouse.dataset(MODEL_TABLE).to_table(
        filter=(pc.field("fit_date") >= pa.scalar(start, pa.date32()))
        & (pc.field("fit_date") < pa.scalar(as_of, pa.date32()))
        & (pc.field("fingerprint") == fingerprint(config))).to_pylist()
    if not stored:
        return None
    latest = max(stored, key=lambda row: row["fit_date"])
    return _from_json(latest["fit_date"], latest["fingerprint"], latest["model"])


def save(warehouse: Warehouse, model: MiningModel) -> None:
    """Store the model fitted tonight (a re-run replaces its own night's row)."""
    table = pa.table({"fit_date": pa.array([model.fit_date], pa.date32()),
                      "fingerprint": pa.array([model.fingerprint], pa.string()),
                      "model": pa.array([_to_json(model)], pa.string())})
    warehouse.write(MODEL_TABLE, table, replace_where=f"fit_date = '{model.fit_date.isoformat()}'")
