"""The segment model and segment rules a week of nights shares (`kam_mining_model`).

Refitting k-means and inducing the rules again every night moved every rule's thresholds a
little (segment 1 at 1M: `monetary_12m <= 310.6`, then 268, then 309.7 on three nights), so every
CRM account's segment rule changed every night though few customers changed segment; and the
fits took 12 s of a 17 s mining step. So the model is fitted on one as-of weekday
(`mining.refit_weekday`), and on a night with no model fitted since the last such day (the first
night, a gap in the schedule) or whose configuration changed; the nights in between place each
customer with it and score its rules on tonight's customers.

How a week's model is stored and found again: pipelines/weekly_model.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date

from pipelines import weekly_model
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
    return weekly_model.fingerprint({"seed": config.seed, "segments": config.segments.model_dump(),
                                     "rules": config.rules.model_dump()})


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
    """This week's model for the night `as_of`, or None when tonight fits one."""
    row = weekly_model.kept_row(warehouse, MODEL_TABLE, as_of, config.refit_weekday, fingerprint(config))
    return None if row is None else _from_json(row["fit_date"], row["fingerprint"], row["model"])


def save(warehouse: Warehouse, model: MiningModel) -> None:
    """Store the model fitted tonight (a re-run replaces its own night's row)."""
    weekly_model.save_row(warehouse, MODEL_TABLE, model.fit_date, model.fingerprint, _to_json(model))
