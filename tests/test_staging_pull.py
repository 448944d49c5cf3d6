"""A merge finds the raw rows of the keys it re-checks: exactly the rows whose typed key is listed,
and the rows without a key, whichever way a key column is matched (on the raw value or the typed)."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.config import EntityMapping
from pipelines.staging import _typed_expr, key_probes, pulled_rows_sql

ORDER_LINE = EntityMapping(source="erp", table="sales_order_lines",
                           columns={"order_id": "order_no", "line_no": "line_no", "product_id": "product_no"})
SHIPMENT = EntityMapping(source="scm", table="shipments", columns={"shipment_id": "shipment_id"})


def _typed_join(con, relation: str, typed: list[str]) -> list[tuple]:
    """The rule written out plainly: typed key listed, or some key column typed to NULL."""
    listed = " AND ".join(f"({t}) = k._k{i}" for i, t in enumerate(typed))
    keyless = " OR ".join(f"({t}) IS NULL" for t in typed)
    return sorted(con.execute(f"SELECT * FROM {relation} r WHERE {keyless} OR EXISTS "
                              f"(SELECT 1 FROM keys k WHERE {listed})").fetchall(), key=repr)


@pytest.fixture
def con():
    con = duckdb.connect()
    yield con
    con.close()


def test_integer_order_numbers_are_matched_on_the_raw_value_and_only_keys_that_type_back_hit(con):
    con.execute("CREATE TABLE raw (order_no BIGINT, line_no INTEGER, product_no VARCHAR)")
    con.execute("INSERT INTO raw VALUES (7, 1, 'a'), (7, 2, 'b'), (8, 1, 'c'), (70, 1, 'd'), (NULL, 1, 'e'),"
                " (9, NULL, 'f'), (12345678901, 3, 'g'), (-5, 1, 'h'), (8, 1, 'c2')")
    # '007' and '+8' are text keys no integer types to; '7'/2 and '12345678901'/3 are real keys
    con.execute("CREATE TABLE keys AS SELECT * FROM (VALUES ('7', 2), ('007', 1), ('+8', 1), ('8 ', 1), "
                "('12345678901', 3), ('-5', 1), ('x', 1)) t(_k0, _k1)")
    types = {"order_no": "BIGINT", "line_no": "INTEGER", "product_no": "VARCHAR"}
    probes = key_probes("order_line", ORDER_LINE, types)
    assert [p.probe for p in probes] == ['r."order_no"', 'r."line_no"']  # no cast of the 30M raw rows
    got = sorted(con.execute(pulled_rows_sql("raw", "keys", probes)).fetchall(), key=repr)
    typed = [p.typed for p in probes]
    assert got == _typed_join(con, "raw", typed)
    assert {r[2] for r in got} == {"b", "e", "f", "g", "h"}


def test_text_keys_that_typing_folds_are_matched_on_the_typed_value(con):
    con.execute("CREATE TABLE raw (shipment_id VARCHAR, carrier VARCHAR)")
    con.execute("INSERT INTO raw VALUES ('S1', 'a'), (' S1 ', 'b'), ('S2', 'c'), ('', 'd'), (NULL, 'e'), "
                "('s1', 'f')")
    con.execute("CREATE TABLE keys AS SELECT * FROM (VALUES ('S1')) t(_k0)")
    probes = key_probes("shipment", SHIPMENT, {"shipment_id": "VARCHAR", "carrier": "VARCHAR"})
    assert probes[0].projected  # typed once per row, then matched
    got = sorted(con.execute(pulled_rows_sql("raw", "keys", probes)).fetchall(), key=repr)
    assert got == _typed_join(con, "raw", [_typed_expr('"shipment_id"', "text", None)])
    assert {r[1] for r in got} == {"a", "b", "d", "e"}
    assert [c[0] for c in con.execute(f"DESCRIBE {pulled_rows_sql('raw', 'keys', probes)}").fetchall()] == [
        "shipment_id", "carrier"]
