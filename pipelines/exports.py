"""Exports for sales ops: per owner (sales rep) and for everyone, CSV and Excel.

One row per matched CRM account: owner, account, tier, whether it changed since the last run (and
from what, and why), key-account flag, CLV, profit, credit grade, alerts and next-best offers with
the rule behind them. Files go to `<outputs.path>/<as-of>/`: `all_accounts.csv|.xlsx` and
`by_owner/<owner>.csv|.xlsx`; re-running a night rewrites that night's folder.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pandas as pd

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


EXCEL_MAX_ROWS = 1_048_575  # a worksheet's rows, less the header


def _write(frame: pd.DataFrame, stem: Path) -> None:
    frame.to_csv(stem.with_suffix(".csv"), index=False)
    if len(frame) > EXCEL_MAX_ROWS:  # Excel cannot open more: the CSV holds them all
        return
    with pd.ExcelWriter(stem.with_suffix(".xlsx"), engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name="accounts", index=False)
        sheet = writer.sheets["accounts"]
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = sheet.dimensions
        for cells in sheet.columns:
            width = max(len(str(c.value or "")) for c in cells[:200])
            sheet.column_dimensions[cells[0].column_letter].width = min(max(width + 2, 8), 60)


def write_exports(settings: Settings, as_of: date) -> dict[str, int]:
    """Write the night's exports; returns rows per file stem (`all_accounts`, `by_owner/<owner>`)."""
    frame = export_frame(settings, as_of)
    folder = settings.exports_path / as_of.isoformat()
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "by_owner").mkdir(parents=True)
    written = {"all_accounts": len(frame)}
    _write(frame, folder / "all_accounts")
    for owner, part in frame.groupby("owner", sort=True):
        stem = f"by_owner/{_slug(owner)}"
        _write(part.reset_index(drop=True), folder / stem)
        written[stem] = len(part)
    return written
