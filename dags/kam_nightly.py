"""
### kam_nightly — the nightly key-account run

`plan` reads kam.yaml, lists tonight's raw tables and reports missed nights; **extraction is one
mapped task per source table** (`extract_<source>`, map index = the raw table), each source in its own pool
(`kam_source_<source>`, slots = `sources.<name>.max_connections`) so a source never sees more
connections than it allows. Then every step of `pipelines.nightly.STEPS` runs as one task, in order
(stage, validate when present, build, mine, publish, maintain), and `run_summary` reports the night
and writes the sales-ops exports and the run report, as `kam run` does.
Each task declares the warehouse tables it writes as Assets (`kam://warehouse/<layer>/<table>`);
`kam_mining` is triggered by `customer_value`. Every task is recorded in the run ledger (`kam runs`).

* **Owner:** kam-data-eng
* **Logical date = as-of date.** A backfill or re-run for a date gives that date's tables; runs go
  one at a time (`max_active_runs=1`), so tier history is built in date order. A night that never
  ran is reported by the next run (`plan` log, the alert channels) with the backfill command.
* **Config:** `$KAM_CONFIG` (or the `config` param), default the repository's `kam.yaml`. Source URLs
  from the environment variables kam.yaml names (`KAM_CRM_URL`…) or Airflow connections of the
  same name in lower case (`kam_crm_url`).
* **When it fails:** the failure callback logs (and posts to `KAM_ALERT_WEBHOOK_URL` /
  `KAM_ALERT_EMAIL` when set) the task, the table, the reason and what to do. Source and CRM I/O
  retry with exponential backoff. Every warehouse table stays at its last good version; publish writes
  the CRM in one transaction. Fix the cause and clear the failed task — each task is idempotent for
  its date. The same step runs by hand: `kam <step> --as-of <logical date>`. Runbook: docs/runbook.md.
* **Data-quality stops:** a failed `validate` (staged entities against their expectation suites) or
  `check` (the marts' invariants) stops the night before publish: `kam quality --run-id <run>` and
  `kam quarantine list` show what failed, with example keys; fix the source (or the rule in
  kam.yaml) and clear the task.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, chain, dag, task

OWNER = "kam-data-eng"
# Source and CRM I/O: a database restarting or a network blip heals within the backoff.
IO_RETRY = {"retries": 3, "retry_delay": timedelta(minutes=1), "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=20)}
IO_STEPS = {"extract", "publish"}
TIMEOUTS = {"extract": timedelta(hours=1), "stage": timedelta(hours=1), "validate": timedelta(hours=1),
            "check": timedelta(hours=1), "build": timedelta(hours=2), "mine": timedelta(hours=2),
            "publish": timedelta(minutes=30), "maintain": timedelta(hours=1)}
DEFAULT_TIMEOUT = timedelta(hours=2)
# Cron of the nightly run (UTC); KAM_NIGHTLY_SCHEDULE=none leaves only manual, REST and backfill runs.
SCHEDULE = os.environ.get("KAM_NIGHTLY_SCHEDULE", "0 2 * * *")
# Steps writing tables another DAG also writes share a one-slot pool (never two writers at once).
STEP_POOLS = {"build": "kam_marts", "mine": "kam_mining"}


def on_task_failure(context):
    from pipelines.notify import on_failure

    on_failure(context)


def on_run_failure(context):
    """DAG-run failures that no task reported (a dagrun_timeout); task failures already were."""
    if context.get("reason") != "task_failure":
        from pipelines.notify import on_failure

        on_failure(context)


DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
    "execution_timeout": DEFAULT_TIMEOUT,
    "on_failure_callback": [on_task_failure],
}


def kam_asset(uri: str) -> Asset:
    return Asset(name=uri.removeprefix("kam://").replace("/", "."), uri=uri, group="kam")


@dag(
    dag_id="kam_nightly",
    schedule=None if SCHEDULE.lower() == "none" else SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=8),
    default_args=DEFAULT_ARGS,
    on_failure_callback=on_run_failure,
    params={"config": None},
    tags=["kam", "nightly"],
    doc_md=__doc__,
)
def kam_nightly():
    from pipelines import dag_support as support

    data = support.config_data()
    sources = support.source_names(data)

    @task(task_id="plan", execution_timeout=timedelta(minutes=5))
    def plan(**context):
        from pipelines.orchestration import plan_night

        return plan_night(context, sources)

    @task(execution_timeout=timedelta(minutes=1))
    def tables_of(night: dict, source: str) -> list[str]:
        return night["tables"][source]

    @task(execution_timeout=TIMEOUTS["extract"], map_index_template="{{ task.op_kwargs['table'] }}",
          **IO_RETRY)
    def extract(table: str, **context):
        from pipelines.orchestration import extract_table

        return extract_table(table, context)

    night = plan()
    extracts = [
        extract.override(task_id=f"extract_{source}", pool=support.pool_name(source),
                         outlets=[kam_asset(support.raw_uri(source))])
        .expand(table=tables_of.override(task_id=f"tables_{source}")(night, source))
        for source in sources
    ]
    steps = [_step_task(step, support, data, first=i == 0)
             for i, step in enumerate(s for s in support.step_names() if s != "extract")]

    @task(task_id="run_summary", execution_timeout=timedelta(minutes=30))  # exports at 1M: ≈1.5 min
    def run_summary(night: dict, **context):
        from pipelines.orchestration import summarize_run

        return summarize_run(context, night["missed_nights"])

    if not extracts:
        night >> steps[0]
    for ex in extracts:
        ex >> steps[0]
    chain(*steps, run_summary(night))


def _step_task(step: str, support, data: dict, *, first: bool):
    """One task per nightly step; the pipeline is imported when the task runs, not at parse time."""
    options = dict(IO_RETRY) if step in IO_STEPS else {}
    if step in STEP_POOLS:
        options["pool"] = STEP_POOLS[step]
    if first:  # a source with no mapped table skips its extract task; that is not a failure
        options["trigger_rule"] = "none_failed"

    @task(task_id=step, execution_timeout=TIMEOUTS.get(step, DEFAULT_TIMEOUT),
          outlets=[kam_asset(uri) for uri in support.step_uris(step, data)], **options)
    def run_step(**context):
        from pipelines.orchestration import run_task

        return run_task(step, context)

    return run_step()


kam_nightly()
