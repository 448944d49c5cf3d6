"""
### kam_mining — segments, rules and cross-sell offers when the marts change

Triggered by the Asset `kam://warehouse/marts/customer_value` (written by `build` in kam_nightly, or by
any other producer of it); can also be triggered by hand with a logical date. The as-of date is the
one stamped on the triggering Asset event (`extra.as_of`), else the logical date — never the clock.
kam_nightly mines too; both share the one-slot pool `kam_mining`, and this DAG skips a night whose
current `customer_value` version was already mined, so the work is never done twice at once.

* **Owner:** kam-data-eng
* **Writes:** customer_features, customer_segment, segment_profile, segment_rule, cross_sell_rule,
  account_next_best (each replacing only its as-of date's rows: re-runs are idempotent).
* **When it fails:** the failure callback logs the reason (and posts it to the configured webhook or
  e-mail). Mining reads only the warehouse: fix the cause (often a missing mart — run kam_nightly's
  build for that date first) and clear the task. By hand: `kam mine --as-of <date>`.
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
    dag_id="kam_mining",
    schedule=[kam_asset("kam://warehouse/marts/customer_value")],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    default_args={"owner": "kam-data-eng", "retries": 1, "retry_delay": timedelta(minutes=5),
                  "execution_timeout": timedelta(hours=2), "on_failure_callback": [on_task_failure]},
    params={"config": None},
    tags=["kam", "mining"],
    doc_md=__doc__,
)
def kam_mining():
    from pipelines import dag_support as support

    @task(task_id="mine", pool="kam_mining",
          outlets=[kam_asset(uri) for uri in support.step_uris("mine")])
    def mine(**context):
        from pipelines.orchestration import mine_for_assets

        return mine_for_assets(context)

    mine()


kam_mining()
