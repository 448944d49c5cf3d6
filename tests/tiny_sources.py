"""Three tiny source databases in the demo's schemas, written by hand so each test knows every row.

Used by the fast tests of staging, marts and publishing; the generated demo data is for the
end-to-end tests. Dirty rows are planted one of each kind, with the reason staging must give.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml

AS_OF = "2026-06-30"

ERP_CUSTOMERS = [  # customer_no, name, created_on
    ("1000001", "Acme Hydraulics GmbH", "20200101"),
    ("1000002", "Borealis Tools Ltd", "20200101"),
    ("1000003", "Cobalt Fasteners AG", "20210301"),
    ("1000004", "Delta Sensors Inc", "20220101"),
    ("1000005", "Echo Packaging SA", "20230101"),
    ("1000006", "Fjord Safety AS", "20990101"),  # created after the as-of date: quarantined
]
CRM_ACCOUNTS = [  # account_id, name, erp number as typed in CRM
    ("001A", "Acme Hydraulics", "1000001"),     # matched by number and name
    ("001B", "Borealis Tools", None),           # no number: matched by name
    ("001C", "Cobalt Fasteners", "1000004"),    # number points at Delta: name wins
    ("001D", "Delta Sensors", "1000004"),       # matched by number and name
    ("001E", "Unknown Prospect", "9999999"),    # no such customer, no name match: unmatched
]
# order_no, customer_no, order_date, status
ORDERS = [
    (1, "1000001", "20260110", "INVOICED"),
    (2, "1000001", "20260301", "INVOICED"),
    (3, "1000002", "20260315", "INVOICED"),
    (4, "1000003", "20260401", "INVOICED"),
    (5, "1000004", "20250101", "INVOICED"),    # older than 12 months: not in revenue_12m
    (6, "1000005", "20260501", "CANCELLED"),   # cancelled: no revenue
    (7, None, "20260501", "INVOICED"),         # null customer: quarantined
    (8, "1000002", "20261231", "INVOICED"),    # after the as-of date: quarantined
    (9, "1000003", "2026XX01", "INVOICED"),    # unparseable date: quarantined
    (10, "7777777", "20260501", "INVOICED"),   # unknown customer: quarantined
]
# order_no, line_no, product_no, quantity, unit_price, discount
LINES = [
    (1, 1, "P1", 10, 100.0, 0.0),      # 1000.00
    (2, 1, "P2", 5, 200.0, 0.1),       # 900.00
    (2, 1, "P2", 5, 200.0, 0.1),       # exact duplicate: quarantined
    (3, 1, "P1", 1, 100.0, 0.0),       # 100.00
    (4, 1, "P1", 3, 100.0, 0.0),       # 300.00
    (4, 2, "P2", -2, 200.0, 0.0),      # negative quantity: quarantined
    (5, 1, "P1", 50, 100.0, 0.0),
    (6, 1, "P1", 50, 100.0, 0.0),
    (42, 1, "P1", 1, 100.0, 0.0),      # no such order: quarantined
]
PRODUCTS = [("P1", "Bolt", "Fasteners", 60.0, 100.0), ("P2", "Pump", "Hydraulics", 150.0, 200.0)]


def write_tiny_sources(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.db" for name in ("crm", "erp", "scm")}
    for path in paths.values():
        path.unlink(missing_ok=True)
    with sqlite3.connect(paths["erp"]) as erp:
        erp.execute("CREATE TABLE customers (customer_no TEXT, name TEXT, created_on CHAR(8), "
                    "changed_on CHAR(8))")
        erp.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", [(*c, c[2]) for c in ERP_CUSTOMERS])
        erp.execute("CREATE TABLE products (product_no TEXT, description TEXT, product_line TEXT, "
                    "unit_cost NUMERIC(12,2), list_price NUMERIC(12,2))")
        erp.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?)", PRODUCTS)
        erp.execute("CREATE TABLE sales_orders (order_no BIGINT, customer_no TEXT, order_date CHAR(8), "
                    "status TEXT)")
        erp.executemany("INSERT INTO sales_orders VALUES (?, ?, ?, ?)", ORDERS)
        erp.execute("CREATE TABLE sales_order_lines (order_no BIGINT, line_no INTEGER, product_no TEXT, "
                    "quantity NUMERIC(12,3), unit_price NUMERIC(12,2), discount_pct NUMERIC(5,4))")
        erp.executemany("INSERT INTO sales_order_lines VALUES (?, ?, ?, ?, ?, ?)", LINES)
    with sqlite3.connect(paths["crm"]) as crm:
        crm.execute("CREATE TABLE accounts (account_id TEXT, account_name TEXT, erp_customer_number TEXT)")
        crm.executemany("INSERT INTO accounts VALUES (?, ?, ?)", CRM_ACCOUNTS)
    with sqlite3.connect(paths["scm"]) as scm:
        scm.execute("CREATE TABLE shipments (shipment_id TEXT, sales_order_ref TEXT, consignee_code TEXT)")
        scm.executemany("INSERT INTO shipments VALUES (?, ?, ?)",
                        [("S1", "SO-1", "C01"), ("S2", "SO-2", "C01"), ("S3", "SO-3", "C02")])
    return paths


def tiny_config(folder: Path, *, with_optional: bool = True, publish: bool = True) -> Path:
    """A kam.yaml for the tiny sources; without optional entities it maps only the required three."""
    entities = {
        "customer": {"source": "erp", "table": "customers", "columns": {
            "customer_id": "customer_no", "name": "name",
            "created_at": {"column": "created_on", "format": "%Y%m%d"},
            "updated_at": {"column": "changed_on", "format": "%Y%m%d"}}},
        "order": {"source": "erp", "table": "sales_orders", "columns": {
            "order_id": "order_no", "customer_id": "customer_no", "status": "status",
            "order_date": {"column": "order_date", "format": "%Y%m%d"},
            "is_cancelled": {"expr": "status = 'CANCELLED'"}}},
        "order_line": {"source": "erp", "table": "sales_order_lines", "columns": {
            "order_id": "order_no", "line_no": "line_no", "product_id": "product_no",
            "quantity": "quantity", "unit_price": "unit_price", "discount": "discount_pct"}},
    }
    if with_optional:
        entities["product"] = {"source": "erp", "table": "products", "columns": {
            "product_id": "product_no", "name": "description", "product_line": "product_line",
            "unit_cost": "unit_cost", "list_price": "list_price"}}
        entities["account"] = {"source": "crm", "table": "accounts", "columns": {
            "account_id": "account_id", "name": "account_name", "customer_ref": "erp_customer_number"}}
        entities["shipment"] = {"source": "scm", "table": "shipments", "columns": {
            "shipment_id": "shipment_id", "consignee_code": "consignee_code",
            "order_id": {"expr": "regexp_replace(sales_order_ref, '^SO-', '')"}}}
    config = {
        "sources": {name: {"url": f"sqlite:///{name}.db"} for name in ("crm", "erp", "scm")},
        "warehouse": {"path": "warehouse"},
        "entities": entities,
        "tiers": {"measure": "revenue_12m", "levels": [
            {"name": "Gold", "share": 0.2, "key_account": True},
            {"name": "Silver", "share": 0.4},
            {"name": "Bronze", "share": 0.4}]},
    }
    if publish and with_optional:
        config["publish"] = {"target": "crm", "table": "kam_account_tier"}
    path = folder / "kam.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
