"""fct_customer_day: kept in the warehouse and summed again only where staging re-checked orders or
lines; after every kind of night it equals customer_day summed from scratch over the staged tables."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import date, timedelta

from pipelines import customer_day, stage_state
from pipelines.config import load_config
from pipelines.demo.changes import simulate_day
from pipelines.duckdb_session import Session, sql_file
from pipelines.ledger import runs
from pipelines.nightly import run_nightly, run_step
from pipelines.warehouse import Warehouse
from tests.conftest import DEMO_AS_OF

D1 = date.fromisoformat(DEMO_AS_OF)
BUILD = ["extract", "stage", "build"]


def _fact_and_scratch(warehouse: Warehouse, as_of: date) -> tuple[list, list]:
    """The fact table's rows, and customer_day summed over every staged order and line."""
    with Session(warehouse, as_of) as session:
        for entity in customer_day.INPUTS:
            session.expose(f"stg_{entity}")
        session.con.execute(f"CREATE TEMP VIEW order_line_value AS {sql_file('marts', 'order_line_value')}")
        scratch = session.con.execute(f"{customer_day.summed_sql(session)} ORDER BY ALL").fetchall()
        session.expose(customer_day.FACT, alias="fact")
        fact = session.con.execute("SELECT * FROM fact ORDER BY ALL").fetchall()
    return fact, scratch


def test_customer_day_is_summed_again_only_where_staging_re_checked_and_equals_a_full_sum(demo_workspace):
    demo_workspace.config.write_text(demo_workspace.config.read_text().replace(
        "retention_days: 7", "retention_days: 0"))  # maintenance below vacuums every file it can
    settings = load_config(demo_workspace.config)
    warehouse = Warehouse(settings.warehouse_path)
    first = run_nightly(D1, settings, steps=BUILD)[-1]
    assert first.details["customer_day"] == "summed"
    assert run_step("build", D1, settings).details["customer_day"] == "kept"  # staging did not move

    # Night 2: a day of changes, and three orders move to another customer and another day: the
    # customer-days they leave must be summed again as well as the ones they join.
    d2 = D1 + timedelta(days=1)
    simulate_day({s: f"sqlite:///{demo_workspace.root / 'demo' / s}.db" for s in ("crm", "erp", "scm")},
                 d2, share=0.01, seed=5)
    fact, _ = _fact_and_scratch(warehouse, D1)
    with sqlite3.connect(demo_workspace.root / "demo" / "erp.db") as erp:
        busy = erp.execute("SELECT o.order_no, o.customer_no FROM sales_orders o JOIN sales_order_lines l "
                           "USING (order_no) WHERE o.status <> 'cancelled' GROUP BY 1, 2 "
                           "ORDER BY count(*) DESC, 1 LIMIT 3").fetchall()
        other = erp.execute("SELECT max(customer_no) FROM customers").fetchone()[0]
        erp.executemany("UPDATE sales_orders SET customer_no = ?, order_date = '20240105', changed_on = ? "
                        "WHERE order_no = ?", [(other, d2.strftime("%Y%m%d"), o) for o, _ in busy])
    night = run_nightly(d2, settings, steps=BUILD)
    assert night[1].details["staged"]["order"] == "incremental"
    assert night[-1].details["customer_day"] == "updated"
    fact, scratch = _fact_and_scratch(warehouse, d2)
    assert fact == scratch
    assert 0 < night[-1].details["customer_days_summed_again"] < len(fact) / 5
    # it read stg_order at the version it summed too; the ledger's lineage names the one it built on
    build = next(r for r in runs(warehouse, limit=1) if r["step"] == "build")
    assert json.loads(build["versions_read"])["stg_order"] == warehouse.version("stg_order") > 0

    # Maintenance compacts and vacuums every table (new versions, the same rows): the record follows
    # the staged tables, so the next night still sums again only what staging re-checked.
    before = customer_day.record(warehouse)["versions"]
    run_step("maintain", d2, settings, force=True)
    after = {e: warehouse.version(f"stg_{e}") for e in customer_day.INPUTS}
    assert after != before and customer_day.record(warehouse)["versions"] == after
    d3 = d2 + timedelta(days=1)
    simulate_day({s: f"sqlite:///{demo_workspace.root / 'demo' / s}.db" for s in ("crm", "erp", "scm")},
                 d3, share=0.01, seed=6)
    night = run_nightly(d3, settings, steps=BUILD)
    assert night[-1].details["customer_day"] == "updated"
    fact, scratch = _fact_and_scratch(warehouse, d3)
    assert fact == scratch

    # Night 4: a product's cost changes, which moves every line it is on: everything is summed again.
    d4 = d3 + timedelta(days=1)
    with sqlite3.connect(demo_workspace.root / "demo" / "erp.db") as erp:
        erp.execute("UPDATE products SET unit_cost = unit_cost + 1, changed_on = ? WHERE product_no = "
                    "(SELECT min(product_no) FROM products WHERE unit_cost IS NOT NULL)",
                    (d4.strftime("%Y%m%d"),))
    night = run_nightly(d4, settings, steps=BUILD)
    assert night[-1].details["customer_day"] == "summed"
    fact, scratch = _fact_and_scratch(warehouse, d4)
    assert fact == scratch


def _state(entity: str, merged_from: int | None, merged_to: int | None, changes: int | None = 7):
    return stage_state.StagedFrom(entity=entity, as_of="2026-11-19", recipe="r", full_batch="b",
                                  keys_batch=None, batches="[]", stg_version=merged_to or 0,
                                  quarantine_version=0, merged_from=merged_from, changes_version=changes,
                                  merged_to=merged_to)


def test_the_fact_table_is_updated_only_from_a_merge_of_the_versions_it_summed():
    built = {"recipe": customer_day.recipe(), "versions": {"order_line": 3, "order": 5, "product": 2}}
    states = {"order_line": _state("order_line", 3, 4), "order": _state("order", 5, 6)}
    now = {"order_line": 4, "order": 6, "product": 2}
    plan = customer_day.update_plan
    assert plan(built, now, states, 7) == {"order_line": True, "order": True}
    assert plan(built, {**now, "order": 5}, states, 7) == {"order_line": True, "order": False}
    assert plan(built, built["versions"], {}, None) == {"order_line": False, "order": False}
    assert plan(None, now, states, 7) is None  # never summed
    assert plan({**built, "recipe": "other"}, now, states, 7) is None  # the SQL changed
    assert plan(built, {**now, "product": 3}, states, 7) is None  # a product's cost may have moved
    # validate removed rows after the merge: the table is past the merged version
    assert plan(built, {**now, "order_line": 5}, states, 7) is None
    # the merge started from another version than the one summed (a night was built without it)
    assert plan(built, now, {**states, "order": _state("order", 4, 6)}, 7) is None
    # the keys on record are another night's
    assert plan(built, now, states, 8) is None
    # a rebuilt table (no merge)
    assert plan(built, now, {**states, "order": replace(states["order"], merged_from=None)}, 7) is None
