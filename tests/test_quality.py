"""Data quality: a corpus of bad inputs, each asserted to end where it must — held in quarantine
with its reason code, or the run stopped with a message naming the entity and the check — and
nothing lost: for every entity, rows in = passed + quarantined = rows extracted."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import date

import pytest
import yaml
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.config import load_config
from pipelines.extract import SchemaDrift, raw_table_for
from pipelines.ledger import runs
from pipelines.nightly import run_nightly, run_step
from pipelines.quality import QualityFailure
from pipelines.quality.quarantine import held, revalidate
from pipelines.warehouse import Warehouse
from tests.tiny_sources import tiny_config, write_tiny_sources

AS_OF = date(2026, 6, 30)
UP_TO_VALIDATE = ["extract", "stage", "validate"]


def _configure(folder, **quality) -> str:
    """The tiny sources' kam.yaml with a `quality:` section (Data Docs off unless asked for)."""
    path = tiny_config(folder)
    data = yaml.safe_load(path.read_text())
    data["quality"] = {"data_docs": False, **quality}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


@pytest.fixture()
def tiny(tmp_path):
    write_tiny_sources(tmp_path)
    return tmp_path


def _quarantine(warehouse: Warehouse, entity: str) -> list[dict]:
    return warehouse.read(f"quarantine_{entity}").to_pylist()


def _assert_nothing_lost(settings, results: dict) -> None:
    """For every mapped entity: rows extracted = rows in = passed + quarantined, in the ledger too."""
    validated = results["validate"].rows
    warehouse = Warehouse(settings.warehouse_path)
    [ledger] = [r for r in runs(warehouse) if r["step"] == "validate"][:1]
    recorded = json.loads(ledger["rows"])
    for entity, mapping in settings.config.entities.items():
        extracted = results["extract"].rows[raw_table_for(entity, mapping).warehouse_name]
        rows_in, passed, quarantined = (validated[f"{k}.{entity}"]
                                        for k in ("rows_in", "passed", "quarantined"))
        assert rows_in == passed + quarantined == extracted, entity
        assert warehouse.read(f"stg_{entity}").num_rows == passed, entity
        assert warehouse.read(f"quarantine_{entity}").num_rows == quarantined, entity
        assert (recorded[f"rows_in.{entity}"], recorded[f"passed.{entity}"],
                recorded[f"quarantined.{entity}"]) == (rows_in, passed, quarantined)


# Row-level kinds: (entity, key, reason code, words of the expectation). Planted below or in
# tests/tiny_sources.py; every one must be held, with this reason, and every good row must pass.
HELD = [
    ("order_line", "2/1", "duplicate_key", "expect_compound_columns_to_be_unique(order_id, line_no)"),
    ("customer", "1000001", "duplicate_key", "expect_column_values_to_be_unique(customer_id)"),
    ("order_line", "NULL/1", "missing_value", "not_be_null(order_id)"),                 # null key
    ("customer", "NULL", "missing_value", "not_be_null(customer_id)"),                 # null key
    ("order", "7", "missing_value", "not_be_null(customer_id)"),                       # null required ref
    ("order_line", "42/1", "unknown_reference", "order_id in stg_order.order_id"),     # orphan line
    ("order_line", "3/5", "unknown_reference", "product_id in stg_product.product_id"),
    ("order", "10", "unknown_reference", "customer_id in stg_customer.customer_id"),
    ("order_line", "4/2", "not_positive", "0 < quantity"),                             # negative quantity
    ("order_line", "3/2", "out_of_range", "discount"),                                 # discount above 1
    ("order_line", "3/4", "negative_value", "0 <= unit_price"),
    ("order_line", "3/3", "unparseable_value", "quantity as quantity"),                # text in numeric
    ("order", "9", "unparseable_value", "order_date as date"),
    ("order", "8", "date_after_as_of", "order_date <= as-of date"),                    # future date
    ("customer", "1000006", "date_after_as_of", "created_at <= as-of date"),
    ("order", "12", "date_before_floor", "1990-01-01 <= order_date"),                  # by staging
    ("customer", "1000007", "date_before_floor", "1990-01-01 <= created_at"),          # by the suite
    ("order", "11", "not_allowed_value", "status in {CANCELLED, INVOICED, OPEN}"),     # unknown status
    ("order_line", "11/1", "unknown_reference", "order_id in stg_order.order_id"),     # line of a held order
]


def _plant_row_faults(folder) -> None:
    with sqlite3.connect(folder / "erp.db") as erp:
        erp.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", [
            ("1000007", "Gamma Gears GmbH", "18991231", "20200101"),  # founded before the floor
            (None, "Nameless Buyer", "20200101", "20200101"),
            ("1000001", "Acme Hydraulics GmbH", "20200101", "20200101"),  # the same customer twice
        ])
        erp.executemany("INSERT INTO sales_orders VALUES (?, ?, ?, ?)", [
            (11, "1000002", "20260310", "SHIPPED"),    # a status the ERP does not have
            (12, "1000003", "19850101", "INVOICED"),   # before the date floor
        ])
        erp.executemany("INSERT INTO sales_order_lines VALUES (?, ?, ?, ?, ?, ?)", [
            (3, 2, "P1", 1, 100.0, 1.5),
            (3, 3, "P1", "twelve", 100.0, 0.0),
            (3, 4, "P1", 1, -5.0, 0.0),
            (3, 5, "P9", 1, 100.0, 0.0),
            (None, 1, "P1", 1, 100.0, 0.0),
            (11, 1, "P1", 2, 100.0, 0.0),
        ])


def test_every_kind_of_bad_row_is_held_with_its_reason_and_nothing_is_lost(tiny):
    _plant_row_faults(tiny)
    config = _configure(tiny, defaults={"max_quarantined_share": 0.8},
                        entities={"order": {"allowed": {"status": ["INVOICED", "CANCELLED", "OPEN"]}}})
    settings = load_config(config)
    results = {r.step: r for r in run_nightly(AS_OF, settings, steps=UP_TO_VALIDATE)}
    warehouse = Warehouse(settings.warehouse_path)
    [run_id] = {r["run_id"] for r in runs(warehouse)}
    for entity, key, reason, expectation in HELD:
        key_cols = {"customer": ["customer_id"], "order": ["order_id"], "order_line": ["order_id", "line_no"]}
        rows = [r for r in _quarantine(warehouse, entity)
                if "/".join("NULL" if r[c] is None else str(r[c]) for c in key_cols[entity]) == key]
        assert rows, (entity, key, "not held")
        assert reason in {r["_reason_code"] for r in rows}, (entity, key, [r["_reason_code"] for r in rows])
        row = next(r for r in rows if r["_reason_code"] == reason)
        assert expectation in row["_expectation"], (entity, key, row["_expectation"])
        assert row["_run_id"] == run_id
    staged_orders = sorted(r["order_id"] for r in warehouse.read("stg_order").to_pylist())
    assert staged_orders == ["1", "2", "3", "4", "5", "6"]
    assert sorted(r["customer_id"] for r in warehouse.read("stg_customer").to_pylist()) == [
        "1000001", "1000002", "1000003", "1000004", "1000005"]
    lines = results["validate"].rows
    assert (lines["passed.order_line"], lines["quarantined.order_line"]) == (6, 9)  # the good lines went on
    _assert_nothing_lost(settings, results)
    # The suite held order 11 (status) after staging passed it; its line followed it.
    assert results["validate"].details["quarantined"]["order"] == 6


def test_a_quarantined_share_over_the_threshold_publishes_nothing_and_leaves_crm_and_marts(tiny):
    config = _configure(tiny)
    run_nightly(AS_OF, config)  # a good night: marts built, CRM written
    warehouse = Warehouse(tiny / "warehouse")
    marts_before = {t: (warehouse.version(t), warehouse.read(t).to_pylist())
                    for t in warehouse.tables("marts")}
    with sqlite3.connect(tiny / "crm.db") as crm:
        crm_before = crm.execute("SELECT * FROM kam_account_tier ORDER BY 1").fetchall()
    # The ERP interface re-sent every order line: half of tonight's lines are copies.
    with sqlite3.connect(tiny / "erp.db") as erp:
        erp.execute("INSERT INTO sales_order_lines SELECT * FROM sales_order_lines")
    with pytest.raises(QualityFailure) as failure:
        run_nightly(AS_OF, config)
    message = str(failure.value)
    assert ("order_line: quarantined share 66.7% (12 of 18 rows) is above "
            "quality max_quarantined_share 50.0%") in message
    assert "duplicate_key 9" in message and "kam quality --run-id" in message
    assert {t: (warehouse.version(t), warehouse.read(t).to_pylist()) for t in warehouse.tables("marts")} \
        == marts_before
    with sqlite3.connect(tiny / "crm.db") as crm:
        assert crm.execute("SELECT * FROM kam_account_tier ORDER BY 1").fetchall() == crm_before
    failed_run = runs(warehouse, limit=1)
    assert {r["step"]: r["status"] for r in failed_run} == {"extract": "success", "stage": "success",
                                                           "validate": "failed"}
    [validate] = [r for r in failed_run if r["step"] == "validate"]
    counts = json.loads(validate["rows"])  # the counts are in the ledger for the failed run too
    assert (counts["rows_in.order_line"], counts["passed.order_line"], counts["quarantined.order_line"]) \
        == (18, 6, 12)


def _good_night_then(tiny, change, **quality) -> QualityFailure | SchemaDrift:
    config = _configure(tiny, **quality)
    run_nightly(AS_OF, config, steps=UP_TO_VALIDATE)
    with sqlite3.connect(tiny / "erp.db") as erp:
        change(erp)
    with pytest.raises((QualityFailure, SchemaDrift)) as failure:
        run_nightly(AS_OF, config, steps=UP_TO_VALIDATE)
    return failure.value


def test_an_empty_source_table_stops_the_run(tiny):
    failure = _good_night_then(tiny, lambda erp: erp.execute("DELETE FROM sales_order_lines"),
                               defaults={"max_volume_change": 0.5, "volume_min_rows": 5})
    message = str(failure)
    assert isinstance(failure, QualityFailure)
    assert ("order_line: table-level: expect_table_row_count_to_be_between(>= 1 rows): "
            "0 rows passed (0 rows in)") in message
    assert "order_line: volume anomaly: 0 rows in against 9 in the last good run" in message


def test_a_volume_drop_against_the_last_good_run_stops_the_run(tiny):
    failure = _good_night_then(tiny, lambda erp: erp.execute("DELETE FROM sales_orders WHERE order_no <= 4"),
                               defaults={"max_volume_change": 0.3, "volume_min_rows": 5,
                                         "max_quarantined_share": 0.9})
    assert "order: volume anomaly: 6 rows in against 10 in the last good run" in str(failure)
    assert "(-40.0%); quality max_volume_change is ±30%" in str(failure)


def test_a_stale_source_stops_the_run(tiny):
    config = _configure(tiny, entities={"order": {"stale_after_days": 30}})
    with pytest.raises(QualityFailure, match=r"order: stale source: the newest order_date is 2026-05-01 "
                                             r"\(60 days before the as-of date\); "
                                             r"quality stale_after_days is 30"):
        run_nightly(AS_OF, config, steps=UP_TO_VALIDATE)


@pytest.mark.parametrize("change, words", [
    ("ALTER TABLE sales_orders DROP COLUMN status", "mapped column 'status'"),                  # missing
    ("ALTER TABLE sales_order_lines RENAME COLUMN quantity TO qty", "mapped column 'quantity'"),  # renamed
], ids=["missing column", "renamed column"])
def test_a_missing_or_renamed_column_stops_the_extract_naming_it(tiny, change, words):
    failure = _good_night_then(tiny, lambda erp: erp.execute(change))
    assert isinstance(failure, SchemaDrift) and words in str(failure) and "is missing" in str(failure)


def test_a_broken_mart_invariant_stops_before_publish(tiny):
    config = _configure(tiny)
    run_nightly(AS_OF, config)
    with sqlite3.connect(tiny / "erp.db") as erp:  # a new customer staged, the marts not rebuilt
        erp.execute("INSERT INTO customers VALUES ('1000008', 'Helix Pumps', '20260101', '20260101')")
    for step in UP_TO_VALIDATE:
        run_step(step, AS_OF, config)
    with pytest.raises(QualityFailure, match=r"customer_value: 1 of 6 staged customers have no tier"):
        run_step("check", AS_OF, config)


def test_checks_failures_come_in_table_order_with_great_expectations_beside(tiny):
    """GX judges each mart on its own thread (pipelines/quality/gx_docs.py); the failures still
    come table by table: customer_value's broken invariant before crm_account_tier's absence."""
    config = _configure(tiny, data_docs=True)
    run_nightly(AS_OF, config)
    with sqlite3.connect(tiny / "erp.db") as erp:  # a new customer staged, the marts not rebuilt
        erp.execute("INSERT INTO customers VALUES ('1000008', 'Helix Pumps', '20260101', '20260101')")
    for step in UP_TO_VALIDATE:
        run_step(step, AS_OF, config)
    warehouse = Warehouse(tiny / "warehouse")
    shutil.rmtree(warehouse.path("crm_account_tier"))
    with pytest.raises(QualityFailure) as failure:
        run_step("check", AS_OF, config)
    listed = [line for line in str(failure.value).splitlines() if line.startswith("  - ")]
    assert len(listed) == 2
    assert "customer_value: 1 of 6 staged customers have no tier" in listed[0]
    assert "crm_account_tier: missing" in listed[1]
    report = json.loads(open(failure.value.result.details["data_docs"].replace(
        "check_docs/index.html", "check.json")).read())
    judged = report["marts"]["customer_value"]
    assert judged["great_expectations"]["rows"] == judged["rows"] == 5  # GX's verdict is in the report
    assert "crm_account_tier" not in report["marts"]


def test_data_docs_and_kam_quality_for_a_run(tiny):
    config = _configure(tiny, data_docs=True)
    results = {r.step: r for r in run_nightly(AS_OF, config)}
    for step in ("validate", "check"):
        index = results[step].details["data_docs"]
        html = open(index).read()
        assert "<html" in html.lower() and ("stg_order" if step == "validate" else "customer_value") in html
    report = json.loads(open(results["validate"].details["quality_dir"] + "/validate.json").read())
    gx = report["entities"]["order_line"]["great_expectations"]
    assert gx["success"] and gx["rows"] == 6
    assert {"expect_compound_columns_to_be_unique", "expect_column_values_to_be_between",
            "expect_column_to_exist"} <= {c["expectation"] for c in gx["checks"]}

    shown = CliRunner().invoke(main, ["quality", "--config", config], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "order_line │       9 │      6 │           3 │ 33.33%" in shown.output
    assert "unknown_reference" in shown.output and "42/1" in shown.output
    assert "Data Docs (validate)" in shown.output

    listed = CliRunner().invoke(main, ["quarantine", "list", "--config", config, "--entity", "order"],
                                env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "date_after_as_of" in listed.output and "order_line" not in listed.output


def test_revalidate_releases_held_rows_after_a_rule_change(tiny):
    with sqlite3.connect(tiny / "erp.db") as erp:
        erp.execute("INSERT INTO sales_orders VALUES (11, '1000002', '20260310', 'SHIPPED')")
    config = _configure(tiny, entities={"order": {"allowed": {"status": ["INVOICED", "CANCELLED"]}}})
    run_nightly(AS_OF, config, steps=UP_TO_VALIDATE)
    warehouse = Warehouse(tiny / "warehouse")
    assert {r["entity"]: r["rows"] for r in held(load_config(config), ["order"])
            if r["reason_code"] == "not_allowed_value"} == {"order": 1}

    # Sales ops confirm SHIPPED is a real status: the rule changes, the held order goes back.
    data = yaml.safe_load(open(config).read())
    data["quality"]["entities"]["order"]["allowed"]["status"].append("SHIPPED")
    open(config, "w").write(yaml.safe_dump(data))
    settings = load_config(config)
    dry = {r["entity"]: r for r in revalidate(settings, AS_OF, ["order"])}
    assert (dry["order"]["now_pass"], dry["order"]["still_failing"], dry["order"]["released"]) == (1, 4, 0)
    done = {r["entity"]: r for r in revalidate(settings, AS_OF, ["order"], release=True)}
    assert done["order"]["released"] == 1
    assert "11" in {r["order_id"] for r in warehouse.read("stg_order").to_pylist()}
    assert "11" not in {r["order_id"] for r in warehouse.read("quarantine_order").to_pylist()}
    assert warehouse.read("quarantine_order").num_rows == 4
    # The next night decides the same way from the raw batch, with the new rule.
    results = {r.step: r for r in run_nightly(AS_OF, settings, steps=UP_TO_VALIDATE)}
    assert results["validate"].rows["passed.order"] == 7


# The demo generator's planted faults (pipelines/demo/dirty.py) and where each must end:
# (system, table, kind) -> (entity, reason code, exact). Not exact where rows of a held parent join
# the same reason (lines of a held order are unknown references too).
DEMO_FAULTS = {
    ("erp", "sales_orders", "exact_duplicate"): ("order", "duplicate_key", False),
    ("erp", "sales_orders", "key_duplicate"): ("order", "duplicate_key", False),
    ("erp", "sales_orders", "null_key"): ("order", "missing_value", True),
    ("erp", "sales_orders", "orphan_key"): ("order", "unknown_reference", True),
    ("erp", "sales_orders", "future_date"): ("order", "date_after_as_of", True),
    ("erp", "sales_orders", "unparseable_date"): ("order", "unparseable_value", True),
    ("erp", "sales_order_lines", "null_key"): ("order_line", "missing_value", True),
    ("erp", "sales_order_lines", "negative_quantity"): ("order_line", "not_positive", True),
    ("erp", "sales_order_lines", "orphan_key"): ("order_line", "unknown_reference", False),
    ("erp", "invoices", "orphan_key"): ("invoice", "unknown_reference", False),
    ("erp", "invoices", "unparseable_date"): ("invoice", "unparseable_value", True),
    ("erp", "payments", "orphan_key"): ("payment", "unknown_reference", False),
    ("erp", "payments", "unparseable_date"): ("payment", "unparseable_value", True),
    ("erp", "customer_financials", "exact_duplicate"): ("financials", "duplicate_key", True),
    ("crm", "contacts", "null_key"): ("contact", "missing_value", True),
    ("crm", "contacts", "orphan_key"): ("contact", "unknown_reference", True),
    ("scm", "shipments", "orphan_key"): ("shipment", "unknown_reference", False),  # + held orders'
    ("scm", "returns", "orphan_key"): ("return", "unknown_reference", False),
    ("crm", "cases", "orphan_key"): ("service_case", "unknown_reference", True),
    ("crm", "opportunities", "orphan_key"): ("opportunity", "unknown_reference", True),
    ("scm", "returns", "negative_quantity"): ("return", "not_positive", True),
}


def test_the_demo_generators_planted_faults_are_held_with_their_reasons(demo_workspace, demo_systems):
    settings = load_config(demo_workspace.config)
    results = {r.step: r for r in run_nightly(date.fromisoformat(demo_workspace.as_of), settings,
                                              steps=UP_TO_VALIDATE)}
    _assert_nothing_lost(settings, results)
    warehouse = Warehouse(settings.warehouse_path)
    codes: dict[tuple[str, str], int] = {}
    for entity in settings.config.entities:
        for row in warehouse.read(f"quarantine_{entity}", ["_reason_code"]).to_pylist():
            codes[(entity, row["_reason_code"])] = codes.get((entity, row["_reason_code"]), 0) + 1
    planted: dict[tuple[str, str], list] = {}
    for row in demo_systems.dirty.to_pylist():
        where = DEMO_FAULTS.get((row["system"], row["table"], row["kind"]))
        if where:
            entity, code, exact = where
            total = planted.setdefault((entity, code), [0, True])
            total[0] += row["rows"]
            total[1] = total[1] and exact
    assert len(planted) >= 12
    for (entity, code), (rows, exact) in planted.items():
        held_rows = codes.get((entity, code), 0)
        assert held_rows == rows if exact else held_rows >= rows, (entity, code, held_rows, rows)


def test_a_row_corrected_in_the_source_passes_on_the_next_night(tiny):
    with sqlite3.connect(tiny / "erp.db") as erp:
        erp.execute("INSERT INTO sales_orders VALUES (11, '1000002', '20260310', 'SHIPPED')")
    config = _configure(tiny, entities={"order": {"allowed": {"status": ["INVOICED", "CANCELLED"]}}})
    first = {r.step: r for r in run_nightly(AS_OF, config, steps=UP_TO_VALIDATE)}
    assert first["validate"].rows["quarantined.order"] == 5
    with sqlite3.connect(tiny / "erp.db") as erp:
        erp.execute("UPDATE sales_orders SET status = 'INVOICED' WHERE order_no = 11")
    second = {r.step: r for r in run_nightly(AS_OF, config, steps=UP_TO_VALIDATE)}
    assert (second["validate"].rows["passed.order"], second["validate"].rows["quarantined.order"]) == (7, 4)
    warehouse = Warehouse(tiny / "warehouse")
    assert "11" not in {r["order_id"] for r in warehouse.read("quarantine_order").to_pylist()}


def test_great_expectations_judges_tonights_merged_rows_first_on_a_merged_night(tmp_path):
    """Past `gx_rows`, GX sees a slice. On a merged night it is tonight's merged rows first, then
    the others, each row once: not the same first rows of the scan every night."""
    from pipelines.duckdb_session import Session
    from pipelines.quality.validate import _gx_frame

    with Session(Warehouse(tmp_path / "warehouse"), AS_OF) as session:
        session.con.execute("CREATE TABLE lines AS SELECT 'O' || (i // 4) AS order_id, i % 4 AS line_no, "
                            "CAST(i AS DECIMAL(18, 2)) AS amount FROM range(1000) t(i)")
        session.con.execute("CREATE TABLE merged AS SELECT * FROM lines "
                            "WHERE line_no = 3 AND order_id IN (SELECT 'O' || (200 + i) FROM range(30) t(i))")
        key = ("order_id", "line_no")
        frame = _gx_frame(session, "lines", 1000, 50, "merged", key)
        tonight = {(f"O{200 + i}", 3) for i in range(30)}
        assert len(frame) == 50 and not frame.duplicated(list(key)).any()
        assert set(zip(frame["order_id"][:30], frame["line_no"][:30], strict=True)) == tonight
        assert not tonight & set(zip(frame["order_id"][30:], frame["line_no"][30:], strict=True))
        assert frame["amount"].dtype == float  # decimals reach GX as numbers
        few = _gx_frame(session, "lines", 1000, 10, "merged", key)
        assert len(few) == 10 and set(zip(few["order_id"], few["line_no"], strict=True)) <= tonight
        first = _gx_frame(session, "lines", 1000, 50)  # a rebuilt night: the first rows of the scan
        assert len(first) == 50
