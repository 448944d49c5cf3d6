"""Build: the marts sales reads — `customer_value` (one row per customer) and `crm_account_tier`
(one row per matched CRM account, the table reverse ETL publishes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import numpy as np
import pyarrow as pa

from models.pyramid import abc_classes, assign_tiers
from pipelines.canonical import ENTITIES
from pipelines.config import Settings
from pipelines.duckdb_session import Session, sql_file
from pipelines.results import StepResult
from pipelines.staging import empty_entity_sql
from pipelines.warehouse import Warehouse


def add_tiers(table: pa.Table, settings: Settings) -> pa.Table:
    """Append tier, tier_rank, abc_class and key_account to a customer_value frame."""
    tiers = settings.config.tiers
    measure = table.column(tiers.measure).to_numpy(zero_copy_only=False).astype(float)
    ids = table.column("customer_id").to_numpy(zero_copy_only=False).astype(str)
    names = [level.name for level in tiers.levels]
    tier, rank = assign_tiers(measure, ids, names, [level.share for level in tiers.levels])
    key_tiers = [level.name for level in tiers.levels if level.key_account]
    abc = abc_classes(measure, ids, settings.config.abc.a, settings.config.abc.b)
    return (
        table.append_column("tier", pa.array(tier, pa.string()))
        .append_column("tier_rank", pa.array(rank, pa.int64()))
        .append_column("abc_class", pa.array(abc, pa.string()))
        .append_column("key_account", pa.array(np.isin(tier, key_tiers), pa.bool_()))
    )


def build(settings: Settings, as_of: date, *,
          on_table: Callable[[str, int], None] | None = None) -> StepResult:
    started = time.perf_counter()
    warehouse = Warehouse(settings.warehouse_path)
    result = StepResult("build")
    with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session:
        for entity in ENTITIES:
            if warehouse.exists(f"stg_{entity}") and entity in settings.mapped_entities:
                session.expose(f"stg_{entity}")
            else:
                session.con.execute(f"CREATE TEMP VIEW stg_{entity} AS {empty_entity_sql(entity)}")
        session.expose("stg_customer_xref")

        values = session.con.execute(sql_file("marts", "customer_value")).to_arrow_table()
        values = add_tiers(values, settings).sort_by([("tier_rank", "ascending")])
        session.con.register("customer_value", values)
        session.warehouse.write("customer_value", values)
        result.rows["customer_value"] = values.num_rows

        tiers = session.con.execute(sql_file("marts", "crm_account_tier")).to_arrow_table()
        session.warehouse.write("crm_account_tier", tiers)
        result.rows["crm_account_tier"] = tiers.num_rows
        if on_table:
            on_table("customer_value", values.num_rows)
            on_table("crm_account_tier", tiers.num_rows)

        counts = session.con.execute(
            "SELECT tier, count(*), sum(revenue_12m) FROM customer_value GROUP BY tier"
        ).fetchall()
        by_name = {t: (n, float(r or 0)) for t, n, r in counts}
        result.details["tiers"] = [
            (level.name, level.share, *by_name.get(level.name, (0, 0.0)))
            for level in settings.config.tiers.levels
        ]
    result.seconds = time.perf_counter() - started
    return result
