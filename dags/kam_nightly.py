"""
### kam_nightly — the nightly key-account run

Extracts CRM, ERP and SCM into the raw layer, stages the canonical entities and validates them against
their expectation suites (failing rows to `quarantine_*`; stop rules fail the run here), builds the
marts (`customer_value`, `crm_account_tier`), mines segments, their rules and cross-sell offers
(`customer_segment`, `segment_profile`, `segment_rule`, `cross_sell_rule`, `account_next_best`),
checks the marts' invariants (`check`), publishes changed tiers back into the CRM and, on the
configured weekday, compacts and vacuums the warehouse. Every task is recorded in the run ledger
under the Airflow run id (`kam runs`).
The run's **logical date is the as-of date**: a backfill or re-run for a date gives that date's tables.

* **Owner:** kam-data-eng
* **Config:** `$KAM_CONFIG` (or the `config` param), default `kam.yaml`; source URLs from the env.
* **When it fails:** the failed task's log names the step, source/table and reason. A failed
  `validate` or `check` is a data-quality stop: `kam quality --run-id <run>` and `kam quarantine list`
  show what failed, with example keys; fix the source (or the rule in kam.yaml) and clear the task.
  Every warehouse table stays at its last good version; publish writes the CRM in one transaction.
  Fix the cause and clear the failed task — each task is idempotent for its date. The same step runs by hand:
  `kam <step> --as-of <logical date>`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import chain, dag, task

# pipelines.nightly.STEPS order
STEPS = ("extract", "stage", "validate", "build", "mine", "check", "publish", "maintain")
DEFAULT_ARGS = {"owner": "kam-data-eng", "retries": 2, "retry_delay": timedelta(minutes=5)}


@dag(
    dag_id="kam_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"config": None},
    tags=["kam", "nightly"],
    doc_md=__doc__,
)
def kam_nightly():
    chain(*(_step_task(step) for step in STEPS))


def _step_task(step: str):
    """One task per nightly step; the pipeline is imported when the task runs, not at parse time."""

    @task(task_id=step)
    def run_step(**context):
        from pipelines.orchestration import run_task

        return run_task(step, context)

    return run_step()


kam_nightly()
