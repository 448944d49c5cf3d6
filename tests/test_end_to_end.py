"""The whole nightly path on the generated demo: SQLite sources, then a real PostgreSQL server."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import date

import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipelines.config import load_config
from pipelines.nightly import run_nightly
from pipelines.warehouse import Warehouse
from tests.conftest import DEMO_AS_OF

AS_OF = date.fromisoformat(DEMO_AS_OF)


def _snapshot(warehouse: Warehouse) -> dict[str, list]:
    """Every derived table's content, row order aside (Delta versions may move; content must not).

    Raw and the batch registry are append-only logs: a re-run adds a batch, covered elsewhere.
    Quarantine rows carry the run that held them (`_run_id`), which a re-run changes by design."""
    tables = warehouse.tables("staging") + warehouse.tables("marts")
    out = {}
    for t in tables:
        data = warehouse.read(t)
        data = data.drop_columns([c for c in data.column_names if c == "_run_id"])
        out[t] = sorted(map(repr, data.to_pylist()))
    return out


def _crm_rows(url) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM kam_account_tier ORDER BY 1"))]
    finally:
        engine.dispose()


def _assert_pyramid_and_publish(settings, results) -> None:
    warehouse = Warehouse(settings.warehouse_path)
    value = warehouse.read("customer_value")
    n = value.num_rows
    counts = Counter(value.column("tier").to_pylist())
    for level in settings.config.tiers.levels:
        assert abs(counts[level.name] - level.share * n) <= 1, (level.name, counts, n)
    # Tiers follow revenue: everyone in a tier out-earns everyone in the tier below.
    by_tier = {t: [r["revenue_12m"] for r in value.to_pylist() if r["tier"] == t] for t in counts}
    names = [level.name for level in settings.config.tiers.levels]
    for upper, lower in zip(names, names[1:], strict=False):
        assert min(by_tier[upper]) >= max(by_tier[lower]), (upper, lower)

    xref = warehouse.read("stg_customer_xref").to_pylist()
    matched = {r["source_key"] for r in xref if r["system"] == "crm" and r["customer_id"]}
    unmatched = [r for r in xref if r["system"] == "crm" and not r["customer_id"]]
    assert matched and unmatched  # the demo plants CRM accounts that cannot be matched
    published = _crm_rows(settings.source_url("crm"))
    assert sorted(r[0] for r in published) == sorted(matched)  # one row per matched CRM account
    assert results["publish"].rows["inserted"] == len(matched)


def _assert_second_run_changes_nothing(settings) -> None:
    warehouse = Warehouse(settings.warehouse_path)
    tables_before = _snapshot(warehouse)
    crm_before = _crm_rows(settings.source_url("crm"))
    again = {r.step: r for r in run_nightly(AS_OF, settings)}
    assert again["publish"].details["changed"] == 0
    assert _snapshot(warehouse) == tables_before
    assert _crm_rows(settings.source_url("crm")) == crm_before


def test_nightly_on_sqlite_demo_publishes_the_pyramid_and_is_idempotent(demo_workspace):
    settings = load_config(demo_workspace.config)
    results = {r.step: r for r in run_nightly(AS_OF, settings)}
    _assert_pyramid_and_publish(settings, results)
    # Every extracted row of the facts is either staged or quarantined with a reason.
    for entity, raw in (("order", "raw_erp__sales_orders"), ("order_line", "raw_erp__sales_order_lines")):
        staged = results["stage"].rows
        assert results["extract"].rows[raw] == staged[f"stg_{entity}"] + staged[f"quarantine_{entity}"]
        assert staged[f"quarantine_{entity}"] > 0  # the demo plants dirty rows
    _assert_second_run_changes_nothing(settings)


@pytest.mark.postgres
def test_nightly_on_postgresql_sources_matches_the_sqlite_run(postgres, demo_systems, demo_workspace,
                                                               monkeypatch):
    from pipelines.demo import write_demo

    urls = {s: postgres.create_database(f"kam_{s}") for s in ("crm", "erp", "scm")}
    write_demo(demo_systems, urls=urls)
    for system, url in urls.items():
        monkeypatch.setenv(f"KAM_{system.upper()}_URL", url)
    settings = load_config(demo_workspace.config)
    assert settings.source_url("erp").get_backend_name() == "postgresql"
    results = {r.step: r for r in run_nightly(AS_OF, settings)}
    _assert_pyramid_and_publish(settings, results)
    _assert_second_run_changes_nothing(settings)

    # The same demo through SQLite gives the same customer_value, figure for figure.
    pg_values = Warehouse(settings.warehouse_path).read("customer_value")
    shutil.rmtree(settings.warehouse_path)
    for name in urls:
        monkeypatch.delenv(f"KAM_{name.upper()}_URL")
    sqlite_settings = load_config(demo_workspace.config)
    run_nightly(AS_OF, sqlite_settings, steps=["extract", "stage", "build"])
    sqlite_values = Warehouse(sqlite_settings.warehouse_path).read("customer_value")
    key = [("customer_id", "ascending")]
    assert pa.Table.equals(pg_values.sort_by(key), sqlite_values.sort_by(key))
