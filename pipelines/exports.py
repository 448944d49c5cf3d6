"""Exports for sales ops: per owner (sales rep) and for everyone, CSV and Excel.

One row per matched CRM account: owner, account, tier, whether it changed since the last run (and
from what, and why), key-account flag, CLV, profit, credit grade, alerts and next-best offers with
the rule behind them. Files go to `<outputs.path>/<as-of>/`: `all_accounts.csv|.xlsx` and
`by_owner/<owner>.csv|.xlsx`; re-running a night rewrites that night's folder. A night's files
are written into a partial folder and put in place whole, so a reader never sees half a night.

DuckDB's Excel extension writes the everyone workbook (in flat memory: at a million accounts
openpyxl took minutes and gigabytes per workbook); it stops at `outputs.excel_max_rows` (a sheet
that size is not read by a person; the CSV holds every row). The everyone CSV is the owners'
files' lines one after another, and each owner's workbook is always written.

At a million accounts there are ~5,000 owners, so the per-file cost rules: each owner's rows are
one `_row` range (export order starts with the owner), and pipelines/sheet_files.py renders all
the owners' files in a few SQL queries instead of two `COPY`s each, with the same bytes as those
`COPY`s would write (at 1M, 9,820 files; benchmarks/README.md).
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import date
from pathlib import Path

from pipelines import duck, sheet_files
from pipelines.config import Settings
from pipelines.duckdb_session import Session
from pipelines.publish import expose_publish_rows
from pipelines.warehouse import Warehouse

COLUMNS = ["owner", "crm_account_id", "account_name", "customer_id", "tier", "changed_since_last_run",
           "previous_tier", "tier_since", "tier_reason", "key_account", "abc_class", "segment_name",
           "revenue_12m", "profit_12m", "clv", "probability_alive", "credit_grade", "alerts", "next_best",
           "next_best_because"]
NO_OWNER = "(no owner)"
SHEET = "accounts"


def _slug(owner: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", owner).strip("_").lower() or "unknown"


def _export_rows(session: Session, settings: Settings, as_of: date) -> int:
    """`export_rows` in the session: one row per published account, in export order (`_row`)."""
    expose_publish_rows(session, "desired")  # what publish writes into the CRM, read in this session
    session.expose("stg_account")
    money = ", ".join(f"CAST(d.{c} AS DOUBLE) AS {c}" for c in ("revenue_12m", "profit_12m", "clv",
                                                                   "probability_alive"))
    # a table of the database, not of this connection (TEMP): the cursors that write in parallel see it
    session.con.execute(f"""CREATE OR REPLACE TABLE main.export_rows AS
        WITH because AS (
            SELECT customer_id, array_to_string(list_transform(  -- by rank (see crm_account_publish.sql)
                       list_sort(list({{'r': rank, 'p': product_line || ': ' || because}})), x -> x.p), ' | ')
                   AS next_best_because
            FROM account_next_best WHERE as_of_date = getvariable('as_of') GROUP BY 1
        ),
        joined AS (
            SELECT COALESCE(a.owner, {duck.sql_literal(NO_OWNER)}) AS owner, d.crm_account_id,
                   a.name AS account_name, d.customer_id, d.tier,
                   -- previous_tier is the tier before the latest change, tier_since its night
                   COALESCE(d.previous_tier IS NOT NULL AND d.tier_since = getvariable('as_of'), FALSE)
                       AS changed_since_last_run,
                   d.previous_tier, d.tier_since, d.tier_reason, d.key_account, d.abc_class, d.segment_name,
                   {money}, d.credit_grade, d.alerts, d.next_best, b.next_best_because
            FROM desired d
            LEFT JOIN stg_account a ON a.account_id = d.crm_account_id
            LEFT JOIN because b USING (customer_id)
        )
        SELECT {", ".join(COLUMNS)}, row_number() OVER (ORDER BY owner, tier, crm_account_id) AS _row
        FROM joined ORDER BY _row""")
    return session.count("export_rows")


def _write_workbook(con, stem: Path) -> None:
    """The everyone workbook: every export row, in export order."""
    rows = "SELECT * EXCLUDE (_row) FROM export_rows ORDER BY _row"
    con.execute(f"COPY ({rows}) TO {duck.sql_literal(str(stem.with_suffix('.xlsx')))} "
                f"(FORMAT xlsx, HEADER true, SHEET {duck.sql_literal(SHEET)})")


def partial_folder(settings: Settings, as_of: date) -> Path:
    """Where this process's run renders a night before committing it."""
    folder = settings.exports_path / as_of.isoformat()
    return folder.with_name(f".{folder.name}.partial-{os.getpid()}")


def render_exports(settings: Settings, as_of: date,
                   partial: Path | None = None) -> tuple[Path, dict[str, int]]:
    """Write the night's files into a partial folder beside the night's folder; returns the
    partial folder and rows per file stem. Nobody reads the partial folder: `commit_exports` puts
    it in place, so a run that dies while writing leaves the last complete folder as it was (the
    next render of the night removes what such a run left)."""
    partial = partial or partial_folder(settings, as_of)
    for stale in partial.parent.glob(f".{as_of.isoformat()}.partial-*") if partial.parent.exists() else []:
        shutil.rmtree(stale, ignore_errors=True)
    (partial / "by_owner").mkdir(parents=True)
    warehouse = Warehouse(settings.warehouse_path)
    with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session:
        session.con.execute(f"LOAD {duck.sql_literal(str(duck.extension_path('excel')))}")
        total = _export_rows(session, settings, as_of)
        written = {"all_accounts": total}
        if total <= settings.config.outputs.excel_max_rows:
            _write_workbook(session.con, partial / "all_accounts")
        owners = session.con.execute("SELECT owner, count(*), min(_row), max(_row) FROM export_rows "
                                     "GROUP BY owner ORDER BY owner").fetchall()
        files = []
        for owner, rows, first, last in owners:
            stem = f"by_owner/{_slug(owner)}"
            while stem in written:  # two owners spelled alike ("A. Smith", "A Smith") keep two files
                stem += "_"
            written[stem] = rows
            files.append((first, last, partial / stem))
        # the everyone CSV is the owners' files one after another (export order starts with the owner)
        sheet_files.write_files(session.con, "main.export_rows", "_row", files, sheet=SHEET,
                                workers=max(1, min(4, os.cpu_count() or 1)),
                                together=partial / "all_accounts.csv")
    return partial, written


def commit_exports(settings: Settings, as_of: date, partial: Path) -> Path:
    """Put a rendered night in place of the night's folder (a re-run replaces the earlier files)."""
    folder = settings.exports_path / as_of.isoformat()
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        folder.rename(old)
        partial.rename(folder)
        shutil.rmtree(old)
    else:
        partial.rename(folder)
    return folder


def discard_exports(partial: Path) -> None:
    """Remove a rendered night that is not to be delivered (the run failed after it was written)."""
    shutil.rmtree(partial, ignore_errors=True)


def write_exports(settings: Settings, as_of: date) -> dict[str, int]:
    """Write the night's exports; returns rows per file stem (`all_accounts`, `by_owner/<owner>`)."""
    partial, written = render_exports(settings, as_of)
    commit_exports(settings, as_of, partial)
    return written
