"""Exports for sales ops: per owner (sales rep) and for everyone, CSV and Excel.

One row per matched CRM account: owner, account, tier, whether it changed since the last run (and
from what, and why), key-account flag, CLV, profit, credit grade, alerts and next-best offers with
the rule behind them. Files go to `<outputs.path>/<as-of>/`: `all_accounts.csv|.xlsx` and
`by_owner/<owner>.csv|.xlsx`; re-running a night rewrites that night's folder.

DuckDB writes the files (its CSV writer and its Excel extension, in flat memory): at a million
accounts openpyxl took minutes and gigabytes per workbook. The everyone workbook stops at
`outputs.excel_max_rows` (a sheet that size is not read by a person; the CSV holds every row);
each owner's workbook is always written.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pandas as pd

from pipelines import duck
from pipelines.config import Settings
from pipelines.duckdb_session import Session
from pipelines.publish import desired_rows
from pipelines.warehouse import Warehouse

COLUMNS = ["owner", "crm_account_id", "account_name", "customer_id", "tier", "changed_since_last_run",
           "previous_tier", "tier_since", "tier_reason", "key_account", "abc_class", "segment_name",
           "revenue_12m", "profit_12m", "clv", "probability_alive", "credit_grade", "alerts", "next_best",
           "next_best_because"]
NO_OWNER = "(no owner)"


def _slug(owner: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", owner).strip("_").lower() or "unknown"


def export_frame(settings: Settings, as_of: date) -> pd.DataFrame:
    warehouse = Warehouse(settings.warehouse_path)
    rows = desired_rows(settings, as_of).to_pandas()
    with Session(warehouse, as_of) as session:
        session.expose("stg_account")
        accounts = session.con.execute(
            "SELECT account_id AS crm_account_id, name AS account_name, owner FROM stg_account").df()
        because = pd.DataFrame(columns=["customer_id", "next_best_because"])
        if warehouse.exists("account_next_best"):
            session.expose("account_next_best")
            because = session.con.execute("""
                SELECT customer_id, string_agg(product_line || ': ' || because, ' | ' ORDER BY rank)
                       AS next_best_because
                FROM account_next_best WHERE as_of_date = getvariable('as_of') GROUP BY 1""").df()
    frame = rows.merge(accounts, on="crm_account_id", how="left")
    frame = frame.merge(because, on="customer_id", how="left")
    frame["owner"] = frame["owner"].fillna(NO_OWNER)
    previous = frame["previous_tier"]
    frame["changed_since_last_run"] = previous.notna() & (frame["tier"] != previous)
    for col in ("revenue_12m", "profit_12m", "clv", "probability_alive"):
        frame[col] = frame[col].astype(float)
    return frame[COLUMNS].sort_values(["owner", "tier", "crm_account_id"], ignore_index=True)


def _write(con, where: str, stem: Path, excel: bool) -> None:
    """One CSV and, if `excel`, one workbook of the export rows matching `where`, in export order."""
    rows = f"SELECT * EXCLUDE (_row) FROM export_rows WHERE {where} ORDER BY _row"
    con.execute(f"COPY ({rows}) TO {duck.sql_literal(str(stem.with_suffix('.csv')))} (FORMAT csv, HEADER)")
    if excel:
        con.execute(f"COPY ({rows}) TO {duck.sql_literal(str(stem.with_suffix('.xlsx')))} "
                    "(FORMAT xlsx, HEADER true, SHEET 'accounts')")


def write_exports(settings: Settings, as_of: date) -> dict[str, int]:
    """Write the night's exports; returns rows per file stem (`all_accounts`, `by_owner/<owner>`)."""
    frame = export_frame(settings, as_of)
    folder = settings.exports_path / as_of.isoformat()
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "by_owner").mkdir(parents=True)
    written = {"all_accounts": len(frame)}
    con = duck.connect("excel")
    try:
        con.register("export_frame", frame.assign(_row=range(len(frame))))
        con.execute("CREATE TABLE export_rows AS SELECT * FROM export_frame")
        _write(con, "TRUE", folder / "all_accounts", len(frame) <= settings.config.outputs.excel_max_rows)
        for owner, rows in frame.groupby("owner", sort=True).size().items():
            stem = f"by_owner/{_slug(owner)}"
            _write(con, f"owner = {duck.sql_literal(owner)}", folder / stem, True)
            written[stem] = int(rows)
    finally:
        con.close()
    return written
