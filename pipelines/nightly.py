"""The nightly job as named steps — the one entry point shared by the `kam` CLI and the Airflow DAG.

Each step reads its inputs from the warehouse and writes its outputs there, so any step can be run
alone, re-run, or run by a different process (an Airflow worker) than the one before it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from pipelines.config import Settings, load_config
from pipelines.extract import extract
from pipelines.marts import build
from pipelines.mining import mine
from pipelines.publish import publish
from pipelines.results import StepResult
from pipelines.staging import stage

STEPS: dict[str, Callable[..., StepResult]] = {
    "extract": extract,
    "stage": stage,
    "build": build,
    "mine": mine,
    "publish": publish,
}

STEP_HELP = {
    "extract": "copy every mapped source table into the raw layer (raw_<source>__<table>)",
    "stage": "type, check and de-duplicate entities into stg_*, quarantine_* and the customer xref",
    "build": "build the marts customer_value and crm_account_tier",
    "mine": "segments, the rules that explain them and cross-sell offers (customer_segment, "
            "segment_profile, segment_rule, cross_sell_rule, account_next_best)",
    "publish": "write crm_account_tier into the CRM (changed rows only, one transaction)",
}


def run_step(step: str, as_of: date, config: str | None = None, **kwargs) -> StepResult:
    """Run one step for an as-of date with the configuration at `config` (or the default)."""
    settings = load_config(config) if not isinstance(config, Settings) else config
    return STEPS[step](settings, as_of, **kwargs)


def run_nightly(as_of: date, config: str | Settings | None = None, *,
                steps: list[str] | None = None,
                before: Callable[[str], None] | None = None,
                after: Callable[[StepResult], None] | None = None) -> list[StepResult]:
    settings = config if isinstance(config, Settings) else load_config(config)
    results = []
    for step in steps or list(STEPS):
        if before:
            before(step)
        result = STEPS[step](settings, as_of)
        results.append(result)
        if after:
            after(result)
    return results
