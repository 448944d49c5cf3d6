"""customer_day (order lines summed per order, then per customer and day) against the same sums
taken directly over every sales line: the marts read the first and must get the second."""

from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd

from pipelines.customer_day import masks_cover_product_lines
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


def _session(staged: dict[str, pd.DataFrame], as_of: str = "2026-02-15") -> duckdb.DuckDBPyConnection:
    """The staged tables, the views customer_day reads, and product_line_bit, in a connection."""
    con = duckdb.connect()
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
    con.execute(f"CREATE TABLE product_line_bit AS {sql_file('marts', 'product_line_bit')}")
    con.execute(f"SET VARIABLE as_of = DATE '{as_of}'")
    return con


def test_customer_day_has_the_sums_of_its_sales_lines():
    con = _session(_staged())
    got = con.execute(f"SELECT * EXCLUDE (product_line_mask) FROM ({sql_file('marts', 'customer_day')}) "
                      "ORDER BY ALL").fetchall()
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


def test_a_customer_days_mask_has_the_bits_of_the_product_lines_it_bought():
    staged = _staged()
    staged["stg_product"].loc[5, "product_line"] = None  # a product without a line adds no bit
    con = _session(staged)
    bits = dict(con.execute("SELECT product_line, bit FROM product_line_bit").fetchall())
    assert bits == {"line 0": 0, "line 1": 1, "line 2": 2, "line 3": 3}
    summed = sql_file("marts", "customer_day")
    got = {(c, d): m for c, d, m in con.execute(
        f"SELECT customer_id, order_date, product_line_mask FROM ({summed})").fetchall()}
    lines = con.execute("SELECT customer_id, order_date, list(DISTINCT product_line) FILTER "
                        "(WHERE product_line IS NOT NULL) FROM sales_line GROUP BY ALL").fetchall()
    expected = {(c, d): sum(1 << bits[p] for p in ps or []) or None for c, d, ps in lines}
    assert got == expected
    assert any(m is not None and m.bit_count() > 1 for m in got.values())  # days of several lines


def _baskets(con: duckdb.DuckDBPyConnection) -> tuple[list, list]:
    """customer_product_line from the masks and from the order lines, sorted."""
    con.execute(f"CREATE OR REPLACE TABLE customer_day AS {sql_file('marts', 'customer_day')}")
    masks = con.execute(f"{sql_file('marts', 'customer_product_line')}").fetchall()
    lines = con.execute(f"{sql_file('marts', 'customer_product_line_from_lines')}").fetchall()
    return masks, lines


def test_baskets_from_the_masks_are_the_baskets_of_the_order_lines():
    staged = _staged()
    orders = staged["stg_order"]
    old = orders.index % 3 == 0  # a third of the orders more than 12 months before the as-of date
    orders.loc[old, "order_date"] = orders.loc[old, "order_date"] - pd.Timedelta(days=400)
    con = _session(staged, as_of="2026-02-10")  # and some after it
    outside = con.execute("SELECT count(*) FILTER (WHERE order_date > DATE '2026-02-10'), "
                          "count(*) FILTER (WHERE order_date <= DATE '2025-02-10') FROM stg_order").fetchone()
    assert min(outside) > 100
    masks, lines = _baskets(con)
    assert masks == lines and len(lines) > 300
    everything = con.execute("SELECT count(*) FROM (SELECT DISTINCT customer_id, product_line "
                             "FROM sales_line WHERE product_line IS NOT NULL)").fetchone()[0]
    assert everything > len(lines)  # the window left baskets out


def test_past_63_product_lines_no_line_has_a_bit_and_the_baskets_come_from_the_lines():
    staged = _staged()
    products = staged["stg_product"]
    staged["stg_product"] = pd.DataFrame({
        "product_id": [f"P{i}" for i in range(70)],
        "product_line": [f"line {i:02d}" for i in range(64)] + ["line 00"] * 6,  # 64 lines
        "unit_cost": list(products["unit_cost"]) + [1.0] * 58,
    })
    staged["stg_order_line"]["product_id"] = np.random.default_rng(5).choice(
        [f"P{i}" for i in range(70)], len(staged["stg_order_line"]))
    con = _session(staged)
    assert con.execute("SELECT count(*) FROM product_line_bit").fetchone()[0] == 0
    masks, lines = _baskets(con)
    assert masks == [] and len(lines) > 1000
    assert not masks_cover_product_lines(SimpleNamespace(con=con))  # so build reads the lines
    staged["stg_product"] = staged["stg_product"][staged["stg_product"]["product_line"] != "line 63"]
    staged["stg_order_line"] = staged["stg_order_line"][staged["stg_order_line"]["product_id"] != "P63"]
    con = _session(staged)  # 63 lines: bits 0 to 62, as many as the signed mask holds
    assert con.execute("SELECT max(bit) FROM product_line_bit").fetchone()[0] == 62
    masks, lines = _baskets(con)
    assert masks == lines and any(p == "line 62" for _, p in lines)
    assert masks_cover_product_lines(SimpleNamespace(con=con))
