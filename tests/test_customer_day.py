"""customer_day (order lines summed per order, then per customer and day) against the same sums
taken directly over every sales line: the marts read the first and must get the second."""

import duckdb
import numpy as np
import pandas as pd

from pipelines.duckdb_session import sql_file


def _staged(seed: int = 3) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    orders = pd.DataFrame({
        "order_id": [f"O{i}" for i in range(3000)],
        "customer_id": rng.choice([f"C{i}" for i in range(200)], 3000),
        "order_date": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 60, 3000), unit="D"),
        "is_cancelled": rng.choice([False, True, None], 3000, p=[0.85, 0.1, 0.05]),
    })
    n = 9000
    lines = pd.DataFrame({
        "order_id": rng.choice(orders["order_id"][:2800], n),  # the last 200 orders have no lines
        "product_id": rng.choice([f"P{i}" for i in range(12)], n),
        "quantity": rng.integers(1, 20, n).astype(float),
        "unit_price": rng.integers(100, 99_999, n) / 100,
        "discount": rng.choice([0.0, 0.05, 0.125, None], n),
    })
    products = pd.DataFrame({
        "product_id": [f"P{i}" for i in range(12)],
        "product_line": [f"line {i % 4}" for i in range(12)],
        "unit_cost": [None if i in (3, 7) else i * 1.37 for i in range(12)],  # two without a cost
    })
    return {"stg_order": orders, "stg_order_line": lines, "stg_product": products}


def test_customer_day_has_the_sums_of_its_sales_lines():
    con = duckdb.connect()
    staged = _staged()
    for name, frame in staged.items():
        con.register(f"_{name}", frame)
    con.execute("CREATE TABLE stg_order AS SELECT order_id, customer_id, "
                "CAST(order_date AS DATE) AS order_date, "
                "CAST(is_cancelled AS BOOLEAN) AS is_cancelled FROM _stg_order")
    con.execute("CREATE TABLE stg_order_line AS SELECT order_id, product_id, "
                "CAST(quantity AS DECIMAL(18, 3)) AS quantity, "
                "CAST(unit_price AS DECIMAL(18, 2)) AS unit_price, "
                "CAST(discount AS DECIMAL(9, 4)) AS discount FROM _stg_order_line")
    con.execute("CREATE TABLE stg_product AS SELECT product_id, product_line, "
                "CAST(unit_cost AS DECIMAL(18, 2)) AS unit_cost FROM _stg_product")
    for view in ("order_line_value", "sales_line"):
        con.execute(f"CREATE VIEW {view} AS {sql_file('marts', view)}")
    con.execute("CREATE VIEW day_orders AS SELECT * FROM stg_order")
    con.execute("CREATE VIEW day_lines AS SELECT * FROM order_line_value")
    got = con.execute(f"{sql_file('marts', 'customer_day')} ORDER BY ALL").fetchall()
    expected = con.execute("""
        SELECT customer_id, order_date, sum(revenue), sum(cost), sum(revenue - cost),
               count(*), count(cost), count(DISTINCT order_id)
        FROM sales_line GROUP BY ALL ORDER BY ALL""").fetchall()
    assert got == expected
    cancelled_or_empty = con.execute("""
        SELECT count(*) FROM stg_order o WHERE COALESCE(o.is_cancelled, FALSE)
           OR o.order_id NOT IN (SELECT order_id FROM stg_order_line)""").fetchone()[0]
    assert cancelled_or_empty > 200 and len(got) > 1000  # both kinds of order are left out
    assert any(row[4] != row[2] - row[3] for row in got if row[3] is not None)  # lines without a cost
    con.close()
