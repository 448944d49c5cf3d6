"""The whole path on three tiny hand-written SQLite sources, where every expected figure is known."""

import sqlite3
from datetime import date
from decimal import Decimal

import pytest
import yaml

from pipelines.config import load_config
from pipelines.extract import SchemaDrift
from pipelines.ledger import runs
from pipelines.nightly import run_nightly, run_step
from pipelines.sources import SourceUnavailable
from pipelines.warehouse import Warehouse
from tests.tiny_sources import tiny_config, write_tiny_sources

AS_OF = date(2026, 6, 30)


@pytest.fixture()
def tiny(tmp_path):
    write_tiny_sources(tmp_path)
    return tmp_path


def _content(warehouse, table) -> list[str]:
    """A table's rows, order aside; quarantine rows carry the run that held them, left out here."""
    data = warehouse.read(table)
    return sorted(map(str, data.drop_columns([c for c in data.column_names if c == "_run_id"]).to_pylist()))


def _rows(warehouse, table, key):
    return {r[key]: r for r in warehouse.read(table).to_pylist()}


def test_figures_tiers_and_matching_on_known_rows(tiny):
    results = {r.step: r for r in run_nightly(AS_OF, str(tiny_config(tiny)))}
    wh = Warehouse(tiny / "warehouse")
    value = _rows(wh, "customer_value", "customer_id")
    assert value["1000001"]["revenue_12m"] == Decimal("1900.00")   # 10*100 + 5*200*0.9
    assert value["1000001"]["gross_margin_12m"] == Decimal("550.00")
    assert value["1000001"]["orders_12m"] == 2
    assert value["1000003"]["revenue_12m"] == Decimal("300.00")    # the negative line is not counted
    assert value["1000004"]["revenue_12m"] == 0                    # ordered 18 months ago
    assert value["1000004"]["last_order_date"] == date(2025, 1, 1)
    assert value["1000005"]["revenue_12m"] == 0                    # only a cancelled order
    assert "1000006" not in value                                  # created after the as-of date
    assert [value[c]["tier"] for c in sorted(value)] == ["Gold", "Silver", "Silver", "Bronze", "Bronze"]
    assert value["1000001"]["key_account"] and not value["1000002"]["key_account"]

    xref = {(r["system"], r["source_key"]): r for r in wh.read("stg_customer_xref").to_pylist()}
    assert xref[("crm", "001B")]["customer_id"] == "1000002"       # by name, no ERP number
    assert xref[("crm", "001C")]["customer_id"] == "1000003"       # wrong number corrected by name
    assert xref[("crm", "001E")]["customer_id"] is None
    assert xref[("scm", "C01")]["customer_id"] == "1000001"
    assert results["stage"].details["matching"][("crm", "unmatched: erp number unknown, no name match")] == 1

    with sqlite3.connect(tiny / "crm.db") as crm:
        published = dict(crm.execute("SELECT crm_account_id, tier FROM kam_account_tier").fetchall())
    assert published == {"001A": "Gold", "001B": "Silver", "001C": "Silver", "001D": "Bronze"}


def test_every_bad_row_is_quarantined_with_its_reason_and_nothing_is_lost(tiny):
    results = {r.step: r for r in run_nightly(AS_OF, str(tiny_config(tiny)), steps=["extract", "stage"])}
    wh = Warehouse(tiny / "warehouse")
    reasons = {
        entity: sorted(r["_reject_reason"] for r in wh.read(f"quarantine_{entity}").to_pylist())
        for entity in ("customer", "order", "order_line")
    }
    assert reasons["customer"] == ["created_at after as-of date"]
    assert reasons["order"] == [
        "missing customer_id", "order_date after as-of date",
        "unknown customer_id", "unparseable order_date; missing order_date",
    ]
    assert reasons["order_line"] == ["duplicate of a newer row", "quantity not positive", "unknown order_id"]
    rows = results["stage"].rows
    for entity, raw in (("customer", "raw_erp__customers"), ("order", "raw_erp__sales_orders"),
                        ("order_line", "raw_erp__sales_order_lines")):
        assert results["extract"].rows[raw] == rows[f"stg_{entity}"] + rows[f"quarantine_{entity}"]


def test_only_the_required_entities_mapped_still_builds_customer_value(tiny):
    config = tiny_config(tiny, with_optional=False)
    run_nightly(AS_OF, str(config), steps=["extract", "stage", "build"])
    value = _rows(Warehouse(tiny / "warehouse"), "customer_value", "customer_id")
    assert value["1000001"]["revenue_12m"] == Decimal("1900.00")
    assert value["1000001"]["gross_margin_12m"] is None  # no product costs without products
    assert value["1000001"]["crm_accounts"] == 0


def test_a_second_run_for_the_same_date_changes_nothing(tiny):
    config = str(tiny_config(tiny))
    run_nightly(AS_OF, config)
    wh = Warehouse(tiny / "warehouse")
    derived = wh.tables("staging") + wh.tables("marts")
    before = {t: _content(wh, t) for t in derived}
    raw_before = {t: wh.read(t).num_rows for t in wh.tables("raw")}
    with sqlite3.connect(tiny / "crm.db") as crm:
        crm_before = crm.execute("SELECT * FROM kam_account_tier ORDER BY 1").fetchall()
    again = {r.step: r for r in run_nightly(AS_OF, config)}
    assert again["publish"].details["changed"] == 0
    assert {t: _content(wh, t) for t in derived} == before
    # Raw is append-only: the re-run landed a second batch beside the first, which is untouched.
    assert {t: wh.read(t).num_rows for t in wh.tables("raw")} == {n: 2 * c for n, c in raw_before.items()}
    with sqlite3.connect(tiny / "crm.db") as crm:
        assert crm.execute("SELECT * FROM kam_account_tier ORDER BY 1").fetchall() == crm_before


def _published(tiny) -> dict[str, tuple]:
    """KAM's CRM rows by account, less the bookkeeping columns (hash, as-of date, run id)."""
    with sqlite3.connect(tiny / "crm.db") as crm:
        columns = [c[1] for c in crm.execute("PRAGMA table_info(kam_account_tier)")
                   if c[1] not in ("row_hash", "as_of_date", "run_id")]
        rows = crm.execute(f"SELECT {', '.join(columns)} FROM kam_account_tier").fetchall()
    return {r[0]: r[1:] for r in rows}


def test_publish_writes_only_changed_rows(tiny):
    config = str(tiny_config(tiny))
    run_nightly(AS_OF, config)
    before = _published(tiny)
    with sqlite3.connect(tiny / "erp.db") as erp:  # Borealis buys big: moves to the top tier
        erp.execute("INSERT INTO sales_orders VALUES (11, '1000002', '20260601', 'INVOICED')")
        erp.execute("INSERT INTO sales_order_lines VALUES (11, 1, 'P1', 100, 100.0, 0.0)")
    result = {r.step: r for r in run_nightly(AS_OF, config)}["publish"]
    after = _published(tiny)
    # Borealis up to Gold, Acme down to Silver, Cobalt from ABC class B to C (and any account whose
    # other published figures moved, e.g. its segment): exactly the rows that differ were written.
    changed = {k for k in after if after[k] != before[k]}
    assert {"001A", "001B", "001C"} <= changed
    assert result.rows == {"inserted": 0, "updated": len(changed), "deleted": 0}
    assert result.details["unchanged"] == 4 - len(changed)
    with sqlite3.connect(tiny / "crm.db") as crm:
        assert dict(crm.execute("SELECT crm_account_id, tier FROM kam_account_tier")) == {
            "001A": "Silver", "001B": "Gold", "001C": "Silver", "001D": "Bronze"}
        abc = dict(crm.execute("SELECT crm_account_id, abc_class FROM kam_account_tier"))
    assert abc == {"001A": "B", "001B": "A", "001C": "C", "001D": "C"}  # 10100 of 12300 before Acme


def test_a_mapped_column_missing_in_the_source_is_named_before_anything_is_written(tiny):
    config = tiny_config(tiny)
    with sqlite3.connect(tiny / "erp.db") as erp:
        erp.execute("ALTER TABLE sales_orders RENAME COLUMN status TO order_status")
    with pytest.raises(SchemaDrift, match=r"erp.sales_orders: mapped column 'status' "
                                          r"\(entities.order.columns.status\) is missing"):
        run_step("extract", AS_OF, str(config))
    warehouse = Warehouse(tiny / "warehouse")
    assert warehouse.tables("raw") == []
    [failed] = runs(warehouse)
    assert (failed["step"], failed["status"]) == ("extract", "failed")
    assert "erp.sales_orders: mapped column 'status'" in failed["message"]


def test_a_missing_source_database_is_a_clear_error(tiny):
    config = tiny_config(tiny)
    (tiny / "scm.db").unlink()
    with pytest.raises(SourceUnavailable, match="scm.db does not exist"):
        run_step("extract", AS_OF, str(config))


def test_stage_without_an_extract_says_what_to_run(tiny):
    config = tiny_config(tiny)
    run_step("extract", AS_OF, str(config))
    with pytest.raises(RuntimeError, match="no full extract on or before 2026-06-01"):
        run_step("stage", date(2026, 6, 1), load_config(config))


def test_sqlite_values_that_do_not_fit_the_declared_type_are_read_and_quarantined(tiny):
    """SQLite stores 'twelve' in a NUMERIC column without complaint; the extract must not die on it."""
    config = str(tiny_config(tiny))
    with sqlite3.connect(tiny / "erp.db") as erp:
        erp.execute("INSERT INTO sales_order_lines VALUES (3, 2, 'P1', 'twelve', 100.0, 0.0)")
    results = {r.step: r for r in run_nightly(AS_OF, config, steps=["extract", "stage"])}
    assert results["extract"].rows["raw_erp__sales_order_lines"] == 10
    quarantined = Warehouse(tiny / "warehouse").read("quarantine_order_line").to_pylist()
    reasons = [r["_reject_reason"] for r in quarantined]
    assert "unparseable quantity; missing quantity" in reasons
    assert results["stage"].rows["stg_order_line"] == 6  # the good lines are all still there


def test_a_query_mapping_lands_through_sqlalchemy_with_the_same_marts(tiny):
    """`query:` sources go through the generic SQLAlchemy path (any database); same result."""
    config = tiny_config(tiny)
    run_nightly(AS_OF, str(config), steps=["extract", "stage", "build"])
    expected = Warehouse(tiny / "warehouse").read("customer_value").sort_by("customer_id")

    data = yaml.safe_load(config.read_text())
    order = data["entities"]["order"]
    del order["table"]
    order["query"] = "SELECT o.*, 'via-query' AS origin FROM sales_orders o"
    data["warehouse"]["path"] = "warehouse-query"
    config.write_text(yaml.safe_dump(data))
    result = run_nightly(AS_OF, str(config), steps=["extract", "stage", "build"])
    warehouse = Warehouse(tiny / "warehouse-query")
    raw = warehouse.read("raw_erp__order")
    assert set(raw.column("origin").to_pylist()) == {"via-query"}
    assert result[0].rows["raw_erp__order"] == raw.num_rows
    assert warehouse.read("customer_value").sort_by("customer_id").equals(expected)
