"""Publishing into the CRM on the tiny SQLite sources: atomic, update-only on the CRM's accounts,
explained, and safe when the writing process dies mid-publish."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from pipelines.config import load_config
from pipelines.nightly import run_nightly
from pipelines.publish import PublishBlocked, describe_plan, desired_rows, publish
from pipelines.value import tier_changes
from pipelines.warehouse import Warehouse
from tests.tiny_sources import tiny_config, write_tiny_sources

AS_OF = date(2026, 6, 30)
BUILD = ["extract", "stage", "build"]
ROOT = Path(__file__).resolve().parent.parent


def _configure(folder: Path, **publish_options) -> str:
    path = tiny_config(folder)
    config = yaml.safe_load(path.read_text())
    config["publish"].update(publish_options)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def _crm(folder: Path, sql: str, params=()) -> list[tuple]:
    with sqlite3.connect(folder / "crm.db") as crm:
        return crm.execute(sql, params).fetchall()


def _big_order_for_borealis(folder: Path) -> None:
    """Borealis buys big: up to the top tier, Acme down (both clear moves past the boundary)."""
    with sqlite3.connect(folder / "erp.db") as erp:
        erp.execute("INSERT INTO sales_orders VALUES (11, '1000002', '20260601', 'INVOICED')")
        erp.execute("INSERT INTO sales_order_lines VALUES (11, 1, 'P1', 100, 100.0, 0.0)")


@pytest.fixture()
def tiny(tmp_path):
    write_tiny_sources(tmp_path)
    with sqlite3.connect(tmp_path / "crm.db") as crm:  # the CRM admin adds KAM's columns
        crm.execute("ALTER TABLE accounts ADD COLUMN notes TEXT")  # typed by sales, not KAM's
        crm.execute("ALTER TABLE accounts ADD COLUMN kam_tier TEXT")
        crm.execute("ALTER TABLE accounts ADD COLUMN kam_key_account BOOLEAN")
    return tmp_path


ACCOUNTS = {"table": "accounts", "key": "account_id",
            "columns": {"kam_tier": "tier", "kam_key_account": "key_account"}}


def test_publish_writes_kams_table_and_only_its_own_columns_on_the_crm_accounts(tiny):
    config = _configure(tiny, accounts=ACCOUNTS)
    _crm(tiny, "INSERT INTO accounts (account_id, account_name) VALUES ('001Z', 'Zeta Prospect')")
    run_nightly(AS_OF, config, steps=BUILD)
    _crm(tiny, "DELETE FROM accounts WHERE account_id = '001D'")  # closed in the CRM since the extract
    ids_before = sorted(_crm(tiny, "SELECT account_id FROM accounts"))

    first = publish(load_config(config), AS_OF, run_id="night-1")
    assert first.rows == {"inserted": 4, "updated": 0, "deleted": 0}
    assert first.details["accounts_updated"] == 3 and first.details["accounts_not_found"] == 1
    kam = dict(_crm(tiny, "SELECT crm_account_id, tier FROM kam_account_tier"))
    assert kam == {"001A": "Gold", "001B": "Silver", "001C": "Silver", "001D": "Bronze"}
    # A salesperson edits the name and the notes of Acme, and the notes of an unmatched account.
    _crm(tiny, "UPDATE accounts SET account_name = 'ACME Hydraulics GmbH', notes = 'call Mon' "
               "WHERE account_id = '001A'")
    _crm(tiny, "UPDATE accounts SET notes = 'prospect' WHERE account_id = '001E'")

    _big_order_for_borealis(tiny)
    run_nightly(AS_OF, config, steps=BUILD)
    second = publish(load_config(config), AS_OF, run_id="night-2")
    assert second.details["accounts_updated"] == 2  # Acme and Borealis swapped tiers

    accounts = {r[0]: r[1:] for r in _crm(
        tiny, "SELECT account_id, account_name, notes, kam_tier, kam_key_account FROM accounts")}
    assert sorted((k,) for k in accounts) == ids_before  # no CRM record created or deleted
    assert accounts["001A"] == ("ACME Hydraulics GmbH", "call Mon", "Silver", 0)  # edits survive
    assert accounts["001B"] == ("Borealis Tools", None, "Gold", 1)
    assert accounts["001C"][2:] == ("Silver", 0)
    assert accounts["001E"] == ("Unknown Prospect", "prospect", None, None)  # not KAM's: untouched
    assert accounts["001Z"] == ("Zeta Prospect", None, None, None)
    assert "001D" not in accounts  # matched by KAM, gone from the CRM: never re-created

    again = publish(load_config(config), AS_OF, run_id="night-2-again")
    assert again.details["changed"] == 0 and again.details["accounts_updated"] == 0


def test_kams_table_carries_the_full_row_and_a_rerun_changes_nothing(tiny):
    config = _configure(tiny)
    run_nightly(AS_OF, config, steps=BUILD)
    publish(load_config(config), AS_OF, run_id="run-a")
    rows = _crm(tiny, "SELECT * FROM kam_account_tier ORDER BY 1")
    columns = [c[1] for c in _crm(tiny, "PRAGMA table_info(kam_account_tier)")]
    for name in ("tier", "previous_tier", "tier_since", "tier_reason", "key_account", "abc_class",
                 "segment_name", "segment_rule", "clv", "probability_alive", "expected_purchases",
                 "profit_12m", "credit_grade", "alerts", "next_best", "as_of_date", "run_id", "in_book"):
        assert name in columns
    acme = dict(zip(columns, rows[0], strict=True))
    assert (acme["crm_account_id"], acme["tier"]) == ("001A", "Gold")
    assert acme["tier_reason"] == "new in the ranking"
    assert (acme["as_of_date"], acme["run_id"], acme["in_book"]) == ("2026-06-30", "run-a", 1)
    again = publish(load_config(config), AS_OF, run_id="run-b")
    assert again.rows == {"inserted": 0, "updated": 0, "deleted": 0}
    assert _crm(tiny, "SELECT * FROM kam_account_tier ORDER BY 1") == rows  # run_id stays run-a


def _killed_publish(config: str, marker: Path) -> subprocess.Popen:
    """`publish` in its own process, paused after every row was sent and before the commit."""
    script = f"""
import time
from datetime import date
from pathlib import Path
from pipelines import publish as p
from pipelines.config import load_config

def pause(stage, conn):
    Path({str(marker)!r}).write_text(stage)
    time.sleep(120)

p.checkpoint = pause
p.publish(load_config({config!r}), date.fromisoformat({AS_OF.isoformat()!r}), run_id="doomed")
"""
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ})


def test_the_writing_process_killed_mid_publish_leaves_the_crm_as_before_and_the_next_run_publishes(tiny):
    config = _configure(tiny, accounts=ACCOUNTS)
    run_nightly(AS_OF, config, steps=[*BUILD, "publish"])
    kam_before = _crm(tiny, "SELECT * FROM kam_account_tier ORDER BY 1")
    accounts_before = _crm(tiny, "SELECT * FROM accounts ORDER BY 1")
    _big_order_for_borealis(tiny)
    run_nightly(AS_OF, config, steps=BUILD)

    marker = tiny / "paused"
    proc = _killed_publish(config, marker)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the publishing process ended before it was killed"
            assert time.monotonic() < deadline, "publish never reached its commit"
            time.sleep(0.1)
        # the uncommitted rows are in the database file's journal right now
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert _crm(tiny, "SELECT * FROM kam_account_tier ORDER BY 1") == kam_before
    assert _crm(tiny, "SELECT * FROM accounts ORDER BY 1") == accounts_before

    result = publish(load_config(config), AS_OF, run_id="next")
    assert result.rows == {"inserted": 0, "updated": 3, "deleted": 0}
    assert result.details["accounts_updated"] == 2
    desired = {r["crm_account_id"]: r["tier"] for r in desired_rows(load_config(config), AS_OF).to_pylist()}
    assert dict(_crm(tiny, "SELECT crm_account_id, tier FROM kam_account_tier")) == desired
    assert dict(_crm(tiny, "SELECT account_id, kam_tier FROM accounts WHERE kam_tier IS NOT NULL")) == desired


def test_a_row_the_crm_refuses_is_kept_with_its_error_and_retried_next_run(tiny):
    config = _configure(tiny, accounts=ACCOUNTS)
    _crm(tiny, """CREATE TRIGGER locked BEFORE UPDATE OF kam_tier ON accounts
                  WHEN NEW.account_id = '001B'
                  BEGIN SELECT RAISE(ABORT, 'account locked by sales ops'); END""")
    run_nightly(AS_OF, config, steps=BUILD)
    settings = load_config(config)
    first = publish(settings, AS_OF, run_id="r1")
    assert first.details["rejected"] == 1
    assert first.details["rejects"] == [("accounts", "001B", "account locked by sales ops")]
    assert first.details["accounts_updated"] == 3  # the other three went in, in the same transaction
    assert dict(_crm(tiny, "SELECT account_id, kam_tier FROM accounts WHERE kam_tier IS NOT NULL")) == {
        "001A": "Gold", "001C": "Silver", "001D": "Bronze"}
    warehouse = Warehouse(settings.warehouse_path)
    kept = warehouse.read("kam_publish_rejected").to_pylist()
    assert [(r["crm_account_id"], r["error"], r["run_id"]) for r in kept] == [
        ("001B", "account locked by sales ops", "r1")]

    _crm(tiny, "DROP TRIGGER locked")
    second = publish(settings, AS_OF, run_id="r2")
    assert (second.details["rejected"], second.details["accounts_updated"]) == (0, 1)
    assert _crm(tiny, "SELECT kam_tier FROM accounts WHERE account_id = '001B'") == [("Silver",)]
    assert warehouse.read("kam_publish_rejected").num_rows == 0
    log = sorted(warehouse.read("kam_publish_log").to_pylist(), key=lambda r: r["logged_at"])
    assert [(r["run_id"], r["rejected"], r["accounts_updated"]) for r in log] == [("r1", 1, 3), ("r2", 0, 1)]


def test_the_circuit_breaker_stops_a_big_tier_change_before_writing_unless_forced(tiny):
    config = _configure(tiny, breaker_min_accounts=0, max_tier_change_share=0.25)
    run_nightly(AS_OF, config, steps=[*BUILD, "publish"])
    before = _crm(tiny, "SELECT * FROM kam_account_tier ORDER BY 1")
    _big_order_for_borealis(tiny)
    run_nightly(AS_OF, config, steps=BUILD)
    settings = load_config(config)

    dry = publish(settings, AS_OF, dry_run=True)
    lines = list(describe_plan(dry))
    assert lines[0].startswith("Dry run against sqlite:")
    assert "0 to insert, 3 to update, 1 unchanged" in lines[0]
    assert "Tier changes: 2 of 4 published (50.0%)" in lines[1]
    assert any("001B  tier: 'Silver' -> 'Gold'" in line for line in lines)

    with pytest.raises(PublishBlocked, match=r"2 of 4 published tiers would change \(50.0%\), more than "
                                             r"publish.max_tier_change_share \(25%\). Nothing was written"):
        publish(settings, AS_OF, run_id="blocked")
    assert _crm(tiny, "SELECT * FROM kam_account_tier ORDER BY 1") == before

    forced = publish(settings, AS_OF, run_id="forced", force=True)
    assert forced.rows["updated"] == 3 and "circuit breaker overridden" in forced.notes[0]
    log = sorted(Warehouse(settings.warehouse_path).read("kam_publish_log").to_pylist(),
                 key=lambda r: r["logged_at"])
    statuses = [r["status"] for r in log]
    assert statuses == ["committed", "blocked", "committed"]


@pytest.mark.parametrize("rule, expected, in_book", [
    ("flag", [("001D", 0)], 3), ("remove", [], 3), ("keep", [("001D", 1)], 4)])
def test_an_account_that_left_the_book_is_handled_by_the_configured_rule(tiny, rule, expected, in_book):
    config = _configure(tiny, left_book=rule)
    run_nightly(AS_OF, config, steps=[*BUILD, "publish"])
    with sqlite3.connect(tiny / "crm.db") as crm:  # Delta's CRM account is closed
        crm.execute("DELETE FROM accounts WHERE account_id = '001D'")
    run_nightly(AS_OF, config, steps=[*BUILD, "publish"])
    assert _crm(tiny, "SELECT crm_account_id, in_book FROM kam_account_tier "
                      "WHERE crm_account_id = '001D'") == expected
    assert len(_crm(tiny, "SELECT * FROM kam_account_tier WHERE in_book")) == in_book
    again = run_nightly(AS_OF, config, steps=["publish"])[0]
    assert again.details["changed"] == 0


def test_tier_history_is_rebuilt_identically_from_the_warehouse_for_a_past_date(tiny):
    config = _configure(tiny)
    settings = load_config(config)
    warehouse = Warehouse(settings.warehouse_path)
    run_nightly(AS_OF, config, steps=BUILD)
    _big_order_for_borealis(tiny)
    day2 = AS_OF + timedelta(days=1)
    run_nightly(day2, config, steps=BUILD)
    history_day2 = warehouse.read("tier_history")
    run_nightly(day2 + timedelta(days=1), config, steps=BUILD)

    rows = history_day2.to_pylist()
    assert [(r["customer_id"], r["from_tier"], r["to_tier"], r["changed_on"]) for r in rows] == [
        ("1000001", "Gold", "Silver", day2)]  # Borealis waits: not clearly past the Gold boundary
    assert rows[0]["reason"] == ("below the tier boundary by more than 10%: revenue_12m 1,900.00 "
                                 "against the Gold boundary of 10,100.00")
    assert rows[0]["run_id"] == "build-2026-07-01"
    assert len(warehouse.read("tier_history").to_pylist()) >= len(rows)
    state = warehouse.read("kam_tier_state")
    rebuilt = tier_changes(state, day2, "revenue_12m", ["Gold", "Silver", "Bronze"])
    assert rebuilt.to_pylist() == rows


def test_the_crm_says_the_last_tier_change_when_and_why_and_keeps_saying_it_on_later_nights(tiny):
    from pipelines.exports import write_exports

    config = _configure(tiny)
    settings = load_config(config)
    day2, day3 = AS_OF + timedelta(days=1), AS_OF + timedelta(days=2)
    run_nightly(AS_OF, config, steps=[*BUILD, "publish"])
    _big_order_for_borealis(tiny)
    tiers = "SELECT crm_account_id, tier, previous_tier, tier_since, tier_reason FROM kam_account_tier"
    crm, flagged = {}, {}
    for night in (day2, day3):
        run_nightly(night, config, steps=[*BUILD, "publish"])
        crm[night] = {r[0]: r[1:] for r in _crm(tiny, tiers)}
        write_exports(settings, night)
        with open(settings.exports_path / night.isoformat() / "all_accounts.csv", newline="") as f:
            flagged[night] = {r["crm_account_id"] for r in csv.DictReader(f)
                              if r["changed_since_last_run"] == "true"}
    demoted = ("Silver", "Gold", day2.isoformat(), "below the tier boundary by more than 10%: "
               "revenue_12m 1,900.00 against the Gold boundary of 10,100.00")
    assert crm[day2]["001A"] == crm[day3]["001A"] == demoted  # not last night's tier (Silver) on day 3
    assert crm[day3]["001C"] == ("Silver", None, AS_OF.isoformat(), "new in the ranking")  # never moved
    # Borealis ranks Gold but the stability rule holds it in Silver: the reason says so while it waits
    assert crm[day2]["001B"] == ("Silver", None, AS_OF.isoformat(), "held: near the tier boundary")
    assert flagged == {day2: {"001A"}, day3: set()}  # the exports flag the night's changes only


def _profits(folder: Path) -> dict[str, tuple[float, str]]:
    return {k: (p, run) for k, p, run in _crm(folder, "SELECT crm_account_id, profit_12m, run_id "
                                                       "FROM kam_account_tier")}


def test_a_figure_that_drifts_is_rewritten_only_once_it_moved_past_its_tolerance(tiny):
    config = _configure(tiny, tolerance={"profit_12m": {"relative": 0.01, "absolute": 1.0}})
    run_nightly(AS_OF, config, steps=[*BUILD, "publish"])
    exact = _profits(tiny)
    # What the CRM holds drifts from tonight's figure: by less than the tolerance for Acme, by more
    # for Borealis (as CLV and the cost of capital move with the nights while the CRM keeps a value)
    near, far = exact["001A"][0] + 0.9, exact["001B"][0] * 1.05 + 2
    _crm(tiny, "UPDATE kam_account_tier SET profit_12m = ? WHERE crm_account_id = '001A'", (near,))
    _crm(tiny, "UPDATE kam_account_tier SET profit_12m = ? WHERE crm_account_id = '001B'", (far,))

    loose = publish(load_config(config), AS_OF, run_id="loose")
    assert loose.rows["updated"] == 1 and loose.details["unchanged"] == 3
    after = _profits(tiny)
    assert after["001A"] == (near, exact["001A"][1])  # within 1.00 of tonight: left alone
    assert after["001B"] == (exact["001B"][0], "loose")  # past it: rewritten with tonight's figure
    assert publish(load_config(config), AS_OF, run_id="again").details["changed"] == 0

    strict = publish(load_config(_configure(tiny, tolerance={})), AS_OF, run_id="strict")
    assert strict.rows["updated"] == 4  # the row hash covers profit again: every row written once
    assert _profits(tiny)["001A"] == (exact["001A"][0], "strict")


def test_a_tolerance_for_a_booked_figure_or_a_label_is_refused_on_load(tmp_path):
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["publish"]["tolerance"] = {"revenue_12m": {"relative": 0.01}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    with pytest.raises(Exception, match=r"'revenue_12m': only figures that drift with the as-of date"):
        load_config(path)


def test_the_plan_compares_a_drifting_figure_with_the_crms_value_by_the_larger_of_its_two_bounds():
    import pyarrow as pa

    from pipelines.config import Tolerance
    from pipelines.publish import plan_changes

    keys = ["a", "b", "c", "d", "e"]
    crm = pa.table({"crm_account_id": keys, "row_hash": ["h"] * 5, "tier": ["Gold"] * 5,
                    "in_book": [True] * 5, "clv": [1000.0, 1000.0, 10.0, None, 10.0]})
    tonight = pa.table({"crm_account_id": keys, "tier": ["Gold"] * 5, "row_hash": ["h"] * 5,
                        "clv": [1009.0, 1011.0, 11.9, 5.0, None]})
    plan = plan_changes(tonight, crm, "flag", {"clv": Tolerance(relative=0.01, absolute=2.0)})
    # a: 9 < 1% of 1000; b: 11 > 10; c: 1.9 < 2.00; d, e: a value appeared or went
    assert plan.updates.column("crm_account_id").to_pylist() == ["b", "d", "e"]
    assert plan.unchanged == 2
    assert plan_changes(tonight, crm, "flag", {}).unchanged == 5  # without one, the hash decides


def test_a_drifting_figure_on_the_crms_accounts_table_follows_the_same_tolerance(tiny):
    _crm(tiny, "ALTER TABLE accounts ADD COLUMN kam_profit NUMERIC(18,2)")
    accounts = {**ACCOUNTS, "columns": {**ACCOUNTS["columns"], "kam_profit": "profit_12m"}}
    config = _configure(tiny, accounts=accounts,
                        tolerance={"profit_12m": {"relative": 0.01, "absolute": 1.0}})
    run_nightly(AS_OF, config, steps=[*BUILD, "publish"])
    exact = dict(_crm(tiny, "SELECT account_id, kam_profit FROM accounts WHERE kam_profit IS NOT NULL"))
    assert len(exact) == 4  # a NUMERIC owned column (SQLite's driver binds no Decimal: sent as float)
    _crm(tiny, "UPDATE accounts SET kam_profit = kam_profit + 0.9 WHERE account_id = '001A'")
    _crm(tiny, "UPDATE accounts SET kam_profit = kam_profit * 1.05 + 2 WHERE account_id = '001B'")
    again = publish(load_config(config), AS_OF, run_id="again")
    assert again.details["accounts_updated"] == 1  # Borealis past the tolerance; Acme within it
    now = dict(_crm(tiny, "SELECT account_id, kam_profit FROM accounts WHERE kam_profit IS NOT NULL"))
    assert now == {**exact, "001A": exact["001A"] + 0.9}
