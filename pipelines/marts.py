"""Build: the marts sales reads — `customer_value` (one row per customer: revenue, CLV, profit after
cost-to-serve, stable tier), `crm_account_tier` (one row per matched CRM account, the table reverse
ETL publishes), `customer_product_line` (what each customer bought lately), and the marts of
pipelines/value.py (whale curve, alerts, credit rating, CLV holdout, tier history)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import pyarrow as pa

from pipelines import customer_day
from pipelines import value as value_marts
from pipelines.canonical import ENTITIES
from pipelines.config import Settings
from pipelines.duckdb_session import Session, sql_file
from pipelines.results import StepResult
from pipelines.staging import empty_entity_sql
from pipelines.warehouse import Warehouse, writes_beside


def expose_staging(session: Session, settings: Settings, *, order_history: bool = True,
                   keep_customer_day: bool = False) -> dict:
    """The staged entities (typed empty stand-ins for unmapped ones), the xref, and (`order_history`)
    the order lines as views (`order_line_value`, `sales_line`) and summed once per customer and
    day (`customer_day`, a table): what customer_value, activity and CLV measure buying on.
    `customer_day` comes from the fact table fct_customer_day where it can (pipelines/customer_day.py),
    which `keep_customer_day` writes when it changed; returns how it was made."""
    for entity in ENTITIES:
        if session.warehouse.exists(f"stg_{entity}") and entity in settings.mapped_entities:
            session.expose(f"stg_{entity}")
        else:
            session.con.execute(f"CREATE TEMP VIEW stg_{entity} AS {empty_entity_sql(entity)}")
    session.expose("stg_customer_xref")
    if order_history:
        for view in ("order_line_value", "sales_line"):
            session.con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {sql_file('marts', view)}")
        return customer_day.materialize(session, settings.mapped_entities, keep=keep_customer_day)
    return {}


def build(settings: Settings, as_of: date, *, rerate_credit: bool = False,
          on_table: Callable[[str, int], None] | None = None) -> StepResult:
    started = time.perf_counter()
    warehouse = Warehouse(settings.warehouse_path)
    result = StepResult("build")
    with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session:
        result.details.update(expose_staging(session, settings, keep_customer_day=True))
        result.rows[customer_day.FACT] = session.count("customer_day")
        # each customer's product lines of the last 12 months: activity counts them, mining's
        # cross-sell reads them from the warehouse
        baskets = ("customer_product_line" if customer_day.masks_cover_product_lines(session)
                   else "customer_product_line_from_lines")
        lines = session.materialize("customer_product_line", sql_file("marts", baskets))
        session.write("customer_product_line", "SELECT * FROM customer_product_line")
        result.rows["customer_product_line"] = lines
        if on_table:
            on_table("customer_product_line", lines)

        values = session.con.execute(sql_file("marts", "customer_value")).to_arrow_table()
        values, clv_info, clv_kept = value_marts.add_value(session, settings, values)
        previous = value_marts.previous_tiers(session, values.column("customer_id"))
        values = value_marts.add_tiers(values, settings, previous, as_of)
        values = values.sort_by([("tier_rank", "ascending")])
        session.con.register("customer_value", values)
        # the marts on customer_value are computed while the ones before them are written
        with writes_beside(warehouse) as beside:
            beside.write("customer_value", values)
            result.rows["customer_value"] = values.num_rows
            result.details["clv"] = clv_info
            for table, data, key in value_marts.side_marts(session, settings, values, clv_info, clv_kept,
                                                              rerate_credit=rerate_credit):
                beside.write(table, data, replace_where=key)
                if table == value_marts.TIER_HISTORY:
                    beside.wait()  # side_marts reads the tier state back
                # the rows written: the whole table's, or the night's where only the night is replaced
                result.rows[table] = data.num_rows if isinstance(data, pa.Table) else None

            tiers = session.con.execute(sql_file("marts", "crm_account_tier")).to_arrow_table()
            beside.write("crm_account_tier", tiers)
            result.rows["crm_account_tier"] = tiers.num_rows
        for table, rows in result.rows.items():
            if rows is None:  # streamed
                result.rows[table] = rows = warehouse.rows(table)
            if on_table and table not in (customer_day.FACT, "customer_product_line"):
                on_table(table, rows)

        if settings.config.credit is not None and "credit_rating" not in result.rows:
            result.notes.append(f"credit rating of {value_marts.rating_quarter(as_of)[0]} kept: credit is "
                                "rated once a quarter (`kam build --rerate-credit` rates it again)")

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


def rate_credit(settings: Settings, as_of: date) -> StepResult:
    """The quarterly credit rating alone (`credit_rating`, `credit_rating_points`) from staging as it
    stands: what the kam_quarterly_credit DAG runs. `build` rates only a quarter not rated yet."""
    started = time.perf_counter()
    result = StepResult("credit")
    if settings.config.credit is None:
        result.notes.append("no credit section in kam.yaml: nothing to rate")
        return result
    warehouse = Warehouse(settings.warehouse_path)
    with Session(warehouse, as_of, settings.config.warehouse.memory_limit) as session:
        expose_staging(session, settings)
        rating, points = value_marts.credit_tables(session, settings)
    for table, data in (("credit_rating", rating), ("credit_rating_points", points)):
        warehouse.write(table, data)
        result.rows[table] = warehouse.rows(table)
    result.details["rating_quarter"] = value_marts.rating_quarter(as_of)[0]
    result.seconds = time.perf_counter() - started
    return result
