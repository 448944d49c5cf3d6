"""The nightly job as named steps — the one entry point shared by the `kam` CLI and the Airflow DAG.

Each step reads its inputs from the warehouse and writes its outputs there, so any step can be run
alone, re-run, or run by a different process (an Airflow worker) than the one before it. Every step
run through here is recorded in the run ledger (`pipelines/ledger.py`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import date, timedelta

from pipelines.config import Settings, load_config
from pipelines.ledger import new_run_id, recorded
from pipelines.results import StepResult
from pipelines.warehouse import Warehouse

# Each step's function, as "module:function": imported when the step runs, so `kam` starts without
# importing every step's libraries (scikit-learn, SciPy and pandas took ~2 s of each start; `kam run`
# imports the later steps' modules while the first step's child runs, pipelines/step_process.py).
STEPS: dict[str, str] = {
    "extract": "pipelines.extract:extract",
    "stage": "pipelines.staging:stage",
    "validate": "pipelines.quality.validate:validate",
    "build": "pipelines.marts:build",
    "mine": "pipelines.mining:mine",
    "check": "pipelines.quality.validate:check",
    "publish": "pipelines.publish:publish",
    "maintain": "pipelines.maintenance:maintain",
}


def step_module(step: str) -> str:
    return STEPS[step].split(":")[0]


def step_function(step: str) -> Callable[..., StepResult]:
    module, name = STEPS[step].split(":")
    return getattr(importlib.import_module(module), name)


STEP_HELP = {
    "extract": "land tonight's batch of every mapped source table in raw (incremental where configured)",
    "stage": "type, check and de-duplicate entities into stg_*, quarantine_* and the customer xref",
    "validate": "check every staged entity against its expectation suite: failing rows to quarantine_* "
                "(run id, expectation, reason code); stop rules fail the run before anything is built",
    "build": "build the value marts (customer_value with CLV, profit and stable tiers, whale_curve, "
             "customer_alert, credit_rating, clv_holdout) and crm_account_tier",
    "mine": "segments, the rules that explain them and cross-sell offers (customer_segment, "
            "segment_profile, segment_rule, cross_sell_rule, account_next_best)",
    "check": "check the marts against their suites and invariants (tier shares, one tier per customer); "
             "a failure stops the run before publish",
    "publish": "write crm_account_tier into the CRM (changed rows only, one transaction)",
    "maintain": "compact small files and vacuum old versions (on the configured weekday, or forced)",
}

# Options a step takes beyond (settings, as_of); anything else given to run_step is not passed on.
_STEP_OPTIONS = {"extract": {"full_refresh", "on_table"}, "stage": {"full_refresh", "on_table"},
                 "build": {"rerate_credit", "on_table"}, "mine": {"on_table"}, "maintain": {"force"},
                 "publish": {"force"}, "validate": {"on_table"}, "check": {"on_table"}}
# Airflow runs extraction as one task per raw table (pipelines/orchestration.py).
_STEP_OPTIONS["extract"] = _STEP_OPTIONS["extract"] | {"tables"}


# Steps after which the BI DuckDB file (pipelines/bi.py) is rebuilt on the marts' current versions.
BI_REFRESH_STEPS = ("build", "mine", "maintain")


def _settings(config: str | Settings | None) -> Settings:
    return config if isinstance(config, Settings) else load_config(config)


def run_step(step: str, as_of: date, config: str | Settings | None = None, *,
             run_id: str | None = None, on_start: Callable[[str], None] | None = None,
             **options) -> StepResult:
    """Run one step for an as-of date, recorded in the ledger under `run_id` (a new one if none).

    `on_start` is called once the ledger shows the step running, before it does any work."""
    settings = _settings(config)
    run_id = run_id or new_run_id(as_of)
    kwargs = {k: v for k, v in options.items() if k in _STEP_OPTIONS.get(step, ()) and v is not None}
    if step in ("extract", "publish", "validate", "check", "maintain"):
        kwargs["run_id"] = run_id
    with recorded(Warehouse(settings.warehouse_path), run_id, as_of, step) as rec:
        if on_start:
            on_start(step)
        rec.result = step_function(step)(settings, as_of, **kwargs)
    if step in BI_REFRESH_STEPS:  # the BI file's views move to the marts' new versions
        from pipelines.bi import refresh_bi

        refresh_bi(settings)
    return rec.result


def run_nightly(as_of: date, config: str | Settings | None = None, *,
                steps: list[str] | None = None, run_id: str | None = None,
                before: Callable[[str], None] | None = None,
                after: Callable[[StepResult], None] | None = None, **options) -> list[StepResult]:
    settings = _settings(config)
    run_id = run_id or new_run_id(as_of)
    results = []
    for step in steps or list(STEPS):
        if before:
            before(step)
        result = run_step(step, as_of, settings, run_id=run_id, **options)
        results.append(result)
        if after:
            after(result)
    return results


def backfill(first: date, last: date, config: str | Settings | None = None, *,
             steps: list[str] | None = None, **options) -> list[list[StepResult]]:
    """Run the nightly job for every date from `first` to `last`, oldest first.

    Nights already extracted are replayed from their raw batches (the sources are not read for a
    past date raw already knows), so a backfill gives the same marts as the nights run in turn.
    """
    if last < first:
        raise ValueError(f"backfill range is empty: {first} is after {last}")
    settings = _settings(config)
    nights = []
    day = first
    while day <= last:
        nights.append(run_nightly(day, settings, steps=steps, **options))
        day += timedelta(days=1)
    return nights
