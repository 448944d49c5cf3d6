"""`kam`: the command line. Every command calls the same functions the Airflow DAG calls."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import date, datetime

import click
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
from rich.console import Console
from rich.table import Table

from pipelines.config import ConfigError, Settings, load_config
from pipelines.extract import SchemaDrift
from pipelines.ledger import new_run_id
from pipelines.nightly import STEP_HELP, STEPS, run_step
from pipelines.results import StepResult
from pipelines.sources import SourceUnavailable
from pipelines.step_process import Preload, StepDied, run_step_in_child

console = Console()

# Set when `kam` runs as a script (`_KamScript.__call__`): each step of a command then runs in a
# child process of its own (pipelines/step_process.py). In-process callers (CliRunner, Python)
# keep running steps in their own process. KAM_STEP_PROCESSES=0 turns the children off.
_SCRIPT = {"child_steps": False}


def _child_steps() -> bool:
    return _SCRIPT["child_steps"] and os.environ.get("KAM_STEP_PROCESSES", "1") != "0"


def _as_of(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in the form YYYY-MM-DD") from None


as_of_option = click.option(
    "--as-of", "as_of", required=True, callback=_as_of, metavar="YYYY-MM-DD",
    help="The business date the run is for; every result is computed relative to it.",
)
config_option = click.option(
    "--config", "config", default=None, metavar="PATH",
    help="Configuration file (default: $KAM_CONFIG, else ./kam.yaml).",
)


def _settings(config: str | None) -> Settings:
    try:
        return load_config(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


class _KamScript(click.Group):
    """The `kam` group; run as a script, it leaves without the interpreter's teardown.

    Native libraries (DuckDB, delta-rs, Arrow) keep worker threads alive until exit, and tearing
    them down has now and then aborted the process ("terminate called without an active
    exception", SIGABRT) after a run had committed everything and printed its summary: a green
    night reported as a crash. So the script flushes its output and logs and exits with the
    command's own code at once. CliRunner calls `main()`, not this, so tests run in-process as usual.
    (One cause is known and gone: delta-rs' Python file system released on an Arrow reader thread,
    see `Warehouse._arrow_dataset`; this stays for the ones not known.)
    """

    def __call__(self, *args, **kwargs):
        _SCRIPT["child_steps"] = True
        try:
            self.main(*args, **kwargs)  # standalone mode always ends in SystemExit
            code = 0
        except SystemExit as stop:
            code = stop.code
        except BaseException:  # noqa: BLE001 - printed like the interpreter would, then a failing code
            traceback.print_exc()
            code = 1
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)


@click.group(cls=_KamScript, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """KAM, the key-account data platform: CRM + ERP + SCM → warehouse → customer pyramid → CRM."""


@main.command("demo-data")
@config_option
@click.option("--customers", default=10_000, show_default=True, type=click.IntRange(100, 1_000_000),
              help="Number of ERP customers to generate (≈30 order lines each).")
@click.option("--as-of", "as_of", default="2026-11-22", show_default=True, callback=_as_of,
              metavar="YYYY-MM-DD", help="Last day of the three years of generated history.")
@click.option("--seed", default=42, show_default=True, help="Random seed; same seed, same data.")
@click.option("--dirty-share", default=0.01, show_default=True, type=click.FloatRange(0, 0.5),
              help="Share of deliberately dirty rows (duplicates, null keys, orphans, ...).")
def demo_data(config: str | None, customers: int, as_of: date, seed: int, dirty_share: float) -> None:
    """Generate the demo CRM, ERP and SCM databases at the configured source URLs."""
    from pipelines.demo import generate_demo, write_demo, write_truth

    settings = _settings(config)
    started = time.perf_counter()
    urls = {}
    for system in ("crm", "erp", "scm"):
        if system not in settings.config.sources:
            raise click.ClickException(f"{settings.path}: sources.{system} is needed for the demo")
        urls[system] = settings.source_url(system).render_as_string(hide_password=False)
    with console.status(f"Generating {customers:,} customers of demo data…"):
        systems = generate_demo(customers=customers, as_of=as_of, seed=seed, dirty_share=dirty_share)
    with console.status("Writing the CRM, ERP and SCM databases…"):
        counts = write_demo(systems, urls=urls)
    truth = settings.base_dir / "demo" / "truth.parquet"
    truth.parent.mkdir(parents=True, exist_ok=True)
    write_truth(systems, truth)
    table = Table(title=f"Demo data as of {as_of} ({time.perf_counter() - started:.1f} s)")
    table.add_column("system")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for (system, name), rows in sorted(counts.items()):
        table.add_row(system, name, f"{rows:,}")
    console.print(table)
    console.print(f"Planted patterns (ground truth for tests): {truth}")


def _run(steps: list[str], config: str | None, as_of: date, *,
         before: dict[str, Callable[[], None]] | None = None, **options) -> list[StepResult]:
    """Run `steps` in turn (each in a child process of its own unless KAM_STEP_PROCESSES=0);
    `before[step]()` is called just before that step starts."""
    settings = _settings(config)
    run_id = new_run_id(as_of)
    console.log(f"run {run_id}")
    results: list[StepResult] = []
    started = time.perf_counter()
    runner = run_step
    preloading = None
    if _child_steps():
        runner = run_step_in_child
        preloading = Preload(steps)

    def started_step(name: str) -> None:
        console.log(f"{name}: started")
        if preloading:  # the step's child exists: the parent imports what later steps need
            preloading.start()

    try:
        for step in steps:
            if preloading:
                preloading.wait()  # before anything forks (the step, or the exports beside it)
            if before and step in before:
                before[step]()
            with console.status(f"[bold]{step}[/]: {STEP_HELP[step]}…") as status:
                def on_table(name: str, rows: int, _status=status, _step=step) -> None:
                    _status.update(f"[bold]{_step}[/]: {name} ({rows:,} rows)…")
                    console.log(f"{_step}: {name} {rows:,} rows")

                result = runner(step, as_of, settings, run_id=run_id, on_table=on_table,
                                on_start=started_step, **options)
            result.details.setdefault("run_id", run_id)
            results.append(result)
            peak = result.details.get("peak_rss_mib")
            console.log(f"[green]✓[/] {step} done in {result.seconds:.1f} s"
                        + (f", peak memory {peak:,} MiB (its own process)" if peak else ""))
    except (ConfigError, SourceUnavailable, SchemaDrift, StepDied, RuntimeError, FileNotFoundError) as exc:
        _print_summary(results, settings, as_of, time.perf_counter() - started)
        raise click.ClickException(
            f"step {step!r} failed: {exc}\n(run {run_id}; `kam runs` shows the ledger)"
        ) from None
    _print_summary(results, settings, as_of, time.perf_counter() - started)
    return results


def _print_summary(results: list[StepResult], settings: Settings, as_of: date, total: float) -> None:
    steps = Table(title=f"KAM run for {as_of}")
    peaks = [r.details.get("peak_rss_mib") for r in results]
    columns = [("step", "left"), ("tables", "right"), ("rows", "right"), ("seconds", "right")]
    for col, justify in columns + ([("peak MiB", "right")] if any(peaks) else []):
        steps.add_column(col, justify=justify)
    for r, peak in zip(results, peaks, strict=True):
        cells = [r.step, str(len(r.rows)), f"{r.total_rows:,}", f"{r.seconds:.1f}"]
        steps.add_row(*cells, *([f"{peak:,}" if peak else ""] if any(peaks) else []))
    peak_cell = [f"{max(p or 0 for p in peaks):,}"] if any(peaks) else []
    steps.add_row("total", "", "", f"{total:.1f}", *peak_cell, style="bold")
    console.print(steps)
    by_step = {r.step: r for r in results}
    for r in results:
        for note in r.notes:
            console.print(f"[yellow]{r.step}:[/] {note}")
    if "stage" in by_step:
        quarantined = by_step["stage"].details.get("quarantined", {})
        if quarantined:
            console.print(
                "Quarantined rows (see quarantine_<entity> tables): "
                + ", ".join(f"{e} {n:,}" for e, n in quarantined.items())
            )
        nulled = by_step["stage"].details.get("nulled", {})
        if nulled:
            console.print(
                "Rows kept with an unparseable optional value set to NULL: "
                + ", ".join(f"{e} {n:,}" for e, n in nulled.items())
            )
        matching = by_step["stage"].details.get("matching", {})
        if matching:
            match = Table(title="Customer matching across systems")
            for col in ("system", "match", "records"):
                match.add_column(col)
            for (system, method), n in matching.items():
                match.add_row(system, method, f"{n:,}")
            console.print(match)
    if "validate" in by_step:
        v = by_step["validate"].details
        held = v.get("quarantined", {})
        console.print(
            f"Validated {sum(1 for k in by_step['validate'].rows if k.startswith('rows_in.'))} entities "
            f"(rows in = passed + quarantined): "
            + (", ".join(f"{e} {n:,} held" for e, n in held.items()) or "nothing held")
            + ". `kam quality` shows reasons and example keys."
            + (f" Data Docs: {v['data_docs']}" if v.get("data_docs") else "")
        )
    if "build" in by_step:
        tiers = Table(title="Customer pyramid")
        for col in ("tier", "target share", "customers", "actual share", "revenue share"):
            tiers.add_column(col, justify="right" if col != "tier" else "left")
        rows = by_step["build"].details["tiers"]
        customers = sum(n for _, _, n, _ in rows) or 1
        revenue = sum(r for _, _, _, r in rows) or 1.0
        for name, share, n, rev in rows:
            tiers.add_row(name, f"{share:.0%}", f"{n:,}", f"{n / customers:.2%}", f"{rev / revenue:.1%}")
        console.print(tiers)
    if "mine" in by_step:
        _print_mining(by_step["mine"])
    if "publish" in by_step:
        p = by_step["publish"]
        if p.details:
            console.print(
                f"Published to {p.details['target']}: {p.details['changed']:,} changed rows "
                f"({p.rows['inserted']:,} inserted, {p.rows['updated']:,} updated, "
                f"{p.rows['deleted']:,} deleted), {p.details['unchanged']:,} unchanged; "
                f"{p.details.get('left_book', 0):,} left the book ({p.details.get('left_book_rule')}), "
                f"{p.details.get('rejected', 0):,} rejected."
            )
    console.print(
        f"Where to look: warehouse tables under [bold]{settings.warehouse_path}[/] "
        "(raw/, staging/, marts/; `kam tables` lists them)."
    )


full_refresh_option = click.option(
    "--full-refresh", is_flag=True, default=False,
    help="Extract: read every source table in full tonight; stage: re-check every row instead of "
         "merging only what changed.",
)


def _print_mining(result: StepResult) -> None:
    details = result.details
    segments = Table(title="Customer segments (kam mine)")
    for col in ("id", "segment", "status", "customers"):
        segments.add_column(col, justify="right" if col in ("id", "customers") else "left")
    for sid, name, status, n in details["segments"]:
        key = " (key accounts)" if sid == details["key_account_segment"] else ""
        segments.add_row(str(sid), name + key, status, f"{n:,}")
    console.print(segments)
    q = details["quality"]
    console.print(f"k = {int(q['k'])} by silhouette on a sample; silhouette {q['silhouette']:.3f}, "
                  f"Davies-Bouldin {q['davies_bouldin']:.3f}. Rules: segment_rule; offers: "
                  "account_next_best.")


@main.command("run")
@as_of_option
@config_option
@full_refresh_option
def run(as_of: date, config: str | None, full_refresh: bool) -> None:
    """Run the whole nightly job: extract → stage → build → mine → publish → maintain, then the
    exports and the run report."""
    exports = _ExportsBeside(_settings(config), as_of)
    try:
        beside = {"publish": exports.start, "maintain": exports.finish} if _child_steps() else None
        results = _run(list(STEPS), config, as_of, full_refresh=full_refresh, before=beside)
        _deliver(config, as_of, results, exports)
    finally:
        exports.discard()


class _ExportsBeside:
    """The night's exports rendered in a child process while publish runs (it mostly waits on the
    CRM's database), finished before maintain rewrites any file, and put in place only once every
    step has succeeded, as when they were written after the steps: a failed night delivers no files.
    Started at check instead (3d7a47c), they took from check and publish what they gave back after
    them: the night was no shorter (benchmarks/README.md, nineteenth session)."""

    def __init__(self, settings: Settings, as_of: date):
        self.settings, self.as_of = settings, as_of
        self.job = self.rendered = self.partial = None

    def start(self) -> None:
        from pipelines.exports import partial_folder, render_exports
        from pipelines.step_process import Background

        self.partial = partial_folder(self.settings, self.as_of)
        self.job = Background("exports", render_exports, self.settings, self.as_of, self.partial)

    def finish(self) -> None:
        """Wait for the rendering child (before maintain compacts and vacuums what it reads)."""
        if self.job is not None:
            job, self.job = self.job, None
            self.rendered = job.result()

    def written(self) -> dict[str, int]:
        """Rows per file stem, the files committed: rendered now unless a child rendered them."""
        from pipelines.exports import commit_exports, render_exports

        self.finish()
        partial, written = self.rendered or render_exports(self.settings, self.as_of)
        commit_exports(self.settings, self.as_of, partial)
        self.rendered = self.partial = None  # delivered: nothing left to discard
        return written

    def discard(self) -> None:
        """Stop a child still rendering (the night failed) and remove what it wrote."""
        from pipelines.exports import discard_exports

        if self.job is not None:
            self.job.cancel()
            self.job = None
        if self.partial is not None:
            discard_exports(self.partial)


def _deliver(config: str | None, as_of: date, results: list[StepResult],
             exports: _ExportsBeside | None = None) -> None:
    from pipelines.report import write_run_report

    settings = _settings(config)
    run_id = results[-1].details.get("run_id") if results else None
    written = (exports or _ExportsBeside(settings, as_of)).written()
    path = write_run_report(settings, as_of, run_id)
    console.print(f"Exports: {settings.exports_path / as_of.isoformat()} ({len(written) - 1} owners); "
                  f"run report: {path.parent / 'latest.html'}; BI database: {settings.bi_database_path}")


def _step_command(step: str) -> None:
    @main.command(step, help=f"Run only this step: {STEP_HELP[step]}.")
    @as_of_option
    @config_option
    def command(as_of: date, config: str | None, **options) -> None:
        _run([step], config, as_of, **options)

    if step in ("extract", "stage"):
        full_refresh_option(command)
    if step == "build":
        click.option("--rerate-credit", is_flag=True, default=False,
                     help="Rate credit again although this quarter is rated (else once a quarter).")(command)
    if step == "maintain":
        click.option("--force", is_flag=True, default=False,
                     help="Run now, whatever the configured weekday.")(command)


@main.command("publish", help=f"Run only this step: {STEP_HELP['publish']}.")
@as_of_option
@config_option
@click.option("--dry-run", is_flag=True, default=False,
              help="Show what would be inserted, updated and left alone, and a sample of field "
                   "changes; write nothing.")
@click.option("--force", is_flag=True, default=False,
              help="Publish even when more tiers change than publish.max_tier_change_share allows.")
def publish_command(as_of: date, config: str | None, dry_run: bool, force: bool) -> None:
    if not dry_run:
        _run(["publish"], config, as_of, force=force)
        return
    from pipelines.publish import describe_plan, publish

    settings = _settings(config)
    try:
        result = publish(settings, as_of, dry_run=True)
    except (RuntimeError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if not result.details:
        console.print("No publish target configured (publish: in kam.yaml).")
        return
    for line in describe_plan(result):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


for _step in STEPS:
    if _step != "publish":  # publish has its own command (--dry-run, --force)
        _step_command(_step)


@main.command("export")
@as_of_option
@config_option
def export_command(as_of: date, config: str | None) -> None:
    """Write the sales-ops exports (CSV and Excel, per owner and for everyone) for a night."""
    from pipelines.exports import write_exports

    settings = _settings(config)
    written = write_exports(settings, as_of)
    console.print(f"Exports for {as_of}: {written['all_accounts']:,} accounts, {len(written) - 1} owners, "
                  f"under {settings.exports_path / as_of.isoformat()}")


@main.command("report")
@as_of_option
@config_option
@click.option("--run-id", default=None,
              help="The run whose step timings to show (default: every run of the night).")
def report_command(as_of: date, config: str | None, run_id: str | None) -> None:
    """Write the self-contained HTML run report (and reports/latest.html)."""
    from pipelines.report import write_run_report

    path = write_run_report(_settings(config), as_of, run_id)
    console.print(f"Run report: {path} (latest: {path.parent / 'latest.html'})")


@main.command("bi")
@config_option
def bi_command(config: str | None) -> None:
    """Rebuild the BI DuckDB file (one view per mart on its current version)."""
    from pipelines.bi import refresh_bi

    console.print(f"BI database: {refresh_bi(_settings(config))}")


@main.command("backfill")
@click.option("--from", "first", required=True, callback=_as_of, metavar="YYYY-MM-DD",
              help="First as-of date.")
@click.option("--to", "last", required=True, callback=_as_of, metavar="YYYY-MM-DD",
              help="Last as-of date (inclusive).")
@config_option
@click.option("--publish/--no-publish", default=False, show_default=True,
              help="Also publish each night's tiers to the CRM (the last night's stay there).")
def backfill(first: date, last: date, config: str | None, publish: bool) -> None:
    """Run the nightly job for each date in turn; nights raw already holds are replayed from it."""
    if last < first:
        raise click.BadParameter(f"--to {last} is before --from {first}")
    steps = [s for s in STEPS if s != "publish" or publish]
    day = first
    while day <= last:
        _run(steps, config, day)
        day = date.fromordinal(day.toordinal() + 1)


@main.command("runs")
@config_option
@click.option("--limit", default=10, show_default=True, help="Number of most recent runs to show.")
@click.option("--run-id", default=None, help="Show one run only.")
def runs_command(config: str | None, limit: int, run_id: str | None) -> None:
    """Show the run ledger: each run's steps with status, rows, time and table versions written."""
    import json

    from pipelines.ledger import runs
    from pipelines.warehouse import Warehouse

    settings = _settings(config)
    rows = runs(Warehouse(settings.warehouse_path), run_id=run_id, limit=limit)
    if not rows:
        console.print("No runs recorded yet.")
        return
    table = Table(title="KAM runs (newest first)")
    for col in ("run", "as of", "step", "status", "rows", "seconds", "written (table@version)"):
        table.add_column(col, justify="right" if col in ("rows", "seconds") else "left")
    colours = {"success": "green", "failed": "red", "unfinished": "yellow"}
    for r in sorted(rows, key=lambda r: (r["run_id"], r["started_at"])):
        rows_json = json.loads(r["rows"]) if r["rows"] else {}
        written = json.loads(r["versions_written"]) if r["versions_written"] else {}
        table.add_row(
            r["run_id"], str(r["as_of"]), r["step"], f"[{colours[r['status']]}]{r['status']}[/]",
            f"{sum(rows_json.values()):,}" if rows_json else "",
            f"{r['seconds']:.1f}" if r["seconds"] is not None else "",
            ", ".join(f"{t}@{v}" for t, v in sorted(written.items()))[:120],
        )
    console.print(table)
    for r in rows:
        if r["status"] == "failed":
            console.print(f"[red]{r['run_id']} {r['step']}:[/] {r['message']}")


@main.command("tables")
@config_option
def tables(config: str | None) -> None:
    """List the warehouse tables with their layer, Delta version and row count."""
    from pipelines.warehouse import Warehouse, layer_of

    settings = _settings(config)
    warehouse = Warehouse(settings.warehouse_path)
    table = Table(title=f"Warehouse {settings.warehouse_path}")
    for col in ("layer", "table", "version", "rows"):
        table.add_column(col, justify="right" if col in ("version", "rows") else "left")
    for name in warehouse.tables():
        dt = warehouse.table(name)
        actions = pa.table(dt.get_add_actions(flatten=True))
        rows = pa.compute.sum(actions.column("num_records")).as_py() or 0
        table.add_row(layer_of(name), name, str(dt.version()), f"{rows:,}")
    console.print(table)


@main.command("quality")
@config_option
@click.option("--run-id", default=None, help="The run to report (default: the latest validated run).")
@click.option("--top", default=3, show_default=True, help="Reasons shown per entity.")
def quality_command(config: str | None, run_id: str | None, top: int) -> None:
    """A run's data quality: per entity rows in, passed and quarantined, failed checks, top reasons."""
    from pipelines.quality.quarantine import docs_index, latest_run_with_report, report

    settings = _settings(config)
    run_id = run_id or latest_run_with_report(settings)
    if run_id is None:
        raise click.ClickException("no validated run yet: run `kam validate --as-of <date>` (or `kam run`)")
    try:
        found = report(settings, run_id)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    validated = found.get("validate")
    status = {step: r["status"] for step, r in found["ledger"].items()}
    console.print(f"Run [bold]{run_id}[/] (as of {(validated or found['check'])['as_of']}): "
                  + ", ".join(f"{s} {v}" for s, v in status.items()))
    if validated:
        table = Table(title="Entities: rows in = passed + quarantined")
        for col in ("entity", "rows in", "passed", "quarantined", "share", "checks"):
            table.add_column(col, justify="left" if col in ("entity", "checks") else "right")
        for entity, r in validated["entities"].items():
            table.add_row(entity, f"{r['rows_in']:,}", f"{r['passed']:,}", f"{r['quarantined']:,}",
                          f"{r['quarantined_share']:.2%}",
                          "[red]failed[/]" if r["failures"] else "[green]ok[/]")
        console.print(table)
        reasons = Table(title=f"Top {top} reasons per entity (example keys)")
        for col in ("entity", "reason", "rows", "expectation", "examples"):
            reasons.add_column(col, justify="right" if col == "rows" else "left")
        for entity, r in validated["entities"].items():
            for item in r["reasons"][:top]:
                reasons.add_row(entity, item["reason_code"], f"{item['rows']:,}", item["expectation"],
                                ", ".join(map(str, item["examples"])))
        console.print(reasons)
    failures = (validated or {}).get("failures", []) + found.get("check", {}).get("failures", [])
    for failure in failures:
        console.print(f"[red]failed:[/] {failure}")
    if "check" in found:
        marts = ", ".join(f"{t} {m['rows']:,} rows {'failed' if m['failures'] else 'ok'}"
                          for t, m in found["check"]["marts"].items())
        console.print(f"Marts: {marts}")
    for step in ("validate", "check"):
        index = docs_index(settings, run_id, step)
        if index.exists():
            console.print(f"Data Docs ({step}): {index}")


@main.group("quarantine")
def quarantine_group() -> None:
    """Rows held back by staging and validation: list them, re-validate them after a rule change."""


@quarantine_group.command("list")
@config_option
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeatable).")
def quarantine_list(config: str | None, entities: tuple[str, ...]) -> None:
    """What each quarantine_<entity> table holds, by reason, with example keys."""
    from pipelines.quality.quarantine import held

    settings = _settings(config)
    rows = held(settings, list(entities) or None)
    if not rows:
        console.print("Nothing is held.")
        return
    table = Table(title="Quarantine (rows held back, by reason)")
    for col in ("entity", "reason", "rows", "expectation", "run", "examples"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for r in rows:
        table.add_row(r["entity"], str(r["reason_code"]), f"{r['rows']:,}", str(r["expectation"]),
                      str(r["run_id"] or ""), ", ".join(map(str, r["examples"])))
    console.print(table)


@quarantine_group.command("revalidate")
@as_of_option
@config_option
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeatable).")
@click.option("--release", is_flag=True, default=False,
              help="Move the rows that now pass back into stg_<entity> (the next build uses them).")
def quarantine_revalidate(as_of: date, config: str | None, entities: tuple[str, ...], release: bool) -> None:
    """Run the current suites (kam.yaml as it is now) over the held rows."""
    from pipelines.quality.quarantine import revalidate

    settings = _settings(config)
    try:
        rows = revalidate(settings, as_of, list(entities) or None, release=release)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    table = Table(title=f"Held rows re-validated as of {as_of}")
    for col in ("entity", "held", "now pass", "still failing", "decided by staging", "released"):
        table.add_column(col, justify="left" if col == "entity" else "right")
    for r in rows:
        table.add_row(r["entity"], f"{r['held']:,}", f"{r['now_pass']:,}", f"{r['still_failing']:,}",
                      f"{r['decided_by_staging']:,}", f"{r['released']:,}")
    console.print(table)
    if not release and any(r["now_pass"] for r in rows):
        console.print("Run again with --release to move the passing rows back into staging.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
