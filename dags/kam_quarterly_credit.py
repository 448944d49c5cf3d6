"""
### kam_quarterly_credit — the quarterly credit rating

On the first day of each quarter (logical date = as-of date) rates every customer on the previous
quarter's business: `credit_rating` (grade and score per customer) and `credit_rating_points` (the
grade line by line), from the `credit` section of kam.yaml. It reads staging as kam_nightly left it
for the same date, so it waits (fails and retries every 30 minutes) until that night has staged.

* **Owner:** kam-data-eng
* **Backfill a quarter:** `airflow backfill create --dag-id kam_quarterly_credit --from-date
  2026-10-01 --to-date 2026-10-01` once kam_nightly has run for that date.
* **When it fails:** "staging for <date> is not done yet" means kam_nightly has not staged that date:
  it retries by itself; after the last retry run kam_nightly for the date, then clear this task.
  Any other reason is logged by the failure callback (and sent to the configured webhook / e-mail);
  fix it and clear the task (it replaces the quarter's rows: idempotent).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task


def on_task_failure(context):
    from pipelines.notify import on_failure

    on_failure(context)


def kam_asset(uri: str) -> Asset:
    return Asset(name=uri.removeprefix("kam://").replace("/", "."), uri=uri, group="kam")


@dag(
    dag_id="kam_quarterly_credit",
    schedule="0 6 1 1,4,7,10 *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=12),
    default_args={"owner": "kam-data-eng", "retries": 6, "retry_delay": timedelta(minutes=30),
                  "execution_timeout": timedelta(hours=1), "on_failure_callback": [on_task_failure]},
    params={"config": None},
    tags=["kam", "credit"],
    doc_md=__doc__,
)
def kam_quarterly_credit():
    from pipelines import dag_support as support

    @task(task_id="credit_rating", pool="kam_marts",
          outlets=[kam_asset(support.table_uri(t)) for t in support.CREDIT_TABLES])
    def credit_rating(**context):
        from pipelines.orchestration import rate_credit_task

        return rate_credit_task(context)

    credit_rating()


kam_quarterly_credit()
