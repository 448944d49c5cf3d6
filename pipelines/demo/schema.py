"""The demo source systems' tables: the one place their names, columns and SQL types are written.

The generator builds Arrow tables against these schemas and the loader runs this DDL on SQLite
and PostgreSQL alike, so the data in memory, the SQLite file and the PostgreSQL database cannot
drift apart. The types are the ones such systems really use (CHAR(8) dates in the ERP, NUMERIC
amounts, no primary key on the ERP order tables, which do hold duplicates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str

    @property
    def arrow_type(self) -> pa.DataType:
        base = self.sql_type.split("(")[0]
        return _ARROW_TYPES[base]


_ARROW_TYPES = {
    "TEXT": pa.string(),
    "CHAR": pa.string(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "NUMERIC": pa.float64(),  # rounded to the column's scale; the database stores the decimal
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
}


@dataclass(frozen=True)
class Table:
    system: str
    name: str
    grain: str
    columns: tuple[Column, ...]
    primary_key: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.arrow_type) for c in self.columns])

    def ddl(self, qualified_name: str | None = None) -> str:
        """CREATE TABLE statement valid in both SQLite and PostgreSQL."""
        lines = [
            f"    {c.name} {c.sql_type}" + (" PRIMARY KEY" if c.name == self.primary_key else "")
            for c in self.columns
        ]
        return f"CREATE TABLE {qualified_name or self.name} (\n" + ",\n".join(lines) + "\n)"

    def build(self, columns: Mapping[str, pa.Array | np.ndarray]) -> pa.Table:
        """An Arrow table with exactly this table's columns, in order, cast to their types."""
        missing = set(self.column_names) - set(columns)
        extra = set(columns) - set(self.column_names)
        if missing or extra:
            raise ValueError(f"{self.system}.{self.name}: missing {missing}, unexpected {extra}")
        arrays = [to_arrow(columns[c.name]).cast(c.arrow_type) for c in self.columns]
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema)


def to_arrow(values: pa.Array | pa.ChunkedArray | np.ndarray,
             mask: np.ndarray | None = None) -> pa.Array | pa.ChunkedArray:
    """NumPy values as Arrow (datetime64[D] as date32, other datetime64 as timestamps)."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    values = np.asarray(values)
    if values.dtype.kind == "M":
        unit = np.datetime_data(values.dtype)[0]
        if unit == "D":
            return pa.array(values.view(np.int64).astype(np.int32), mask=mask).view(pa.date32())
        return pa.array(values.view(np.int64), mask=mask).view(pa.timestamp(unit))
    return pa.array(values, mask=mask)


def _table(system: str, name: str, grain: str, columns: str, primary_key: str | None = None):
    cols = tuple(
        Column(*line.split(maxsplit=1)) for line in columns.strip().splitlines() if line.strip()
    )
    return Table(system, name, grain, cols, primary_key)


TABLES: dict[str, dict[str, Table]] = {"crm": {}, "erp": {}, "scm": {}}


def _register(table: Table) -> None:
    TABLES[table.system][table.name] = table


# ---------------------------------------------------------------- CRM (Salesforce-like)
_register(_table("crm", "accounts", "one row per CRM account (customers and prospects)", """
    account_id TEXT
    account_name TEXT
    industry TEXT
    region TEXT
    employee_band TEXT
    owner_name TEXT
    created_date DATE
    parent_account_id TEXT
    erp_customer_number TEXT
    last_modified TIMESTAMP
""", "account_id"))
_register(_table("crm", "contacts", "one row per contact person at an account", """
    contact_id TEXT
    account_id TEXT
    first_name TEXT
    last_name TEXT
    email TEXT
    job_title TEXT
    created_date DATE
    last_modified TIMESTAMP
""", "contact_id"))
_register(_table("crm", "opportunities", "one row per sales opportunity", """
    opportunity_id TEXT
    account_id TEXT
    opportunity_name TEXT
    stage TEXT
    amount NUMERIC(14,2)
    currency TEXT
    product_line TEXT
    created_date DATE
    close_date DATE
    last_modified TIMESTAMP
""", "opportunity_id"))
_register(_table("crm", "cases", "one row per service case", """
    case_id TEXT
    account_id TEXT
    subject TEXT
    case_type TEXT
    priority TEXT
    status TEXT
    opened_at TIMESTAMP
    closed_at TIMESTAMP
    satisfaction_score INTEGER
    last_modified TIMESTAMP
""", "case_id"))

# ---------------------------------------------------------------- ERP (SAP-like)
_register(_table("erp", "customers", "one row per ERP customer (sold-to party)", """
    customer_no TEXT
    name TEXT
    country TEXT
    city TEXT
    industry_code TEXT
    payment_terms_days INTEGER
    credit_limit NUMERIC(14,2)
    created_on CHAR(8)
    changed_on CHAR(8)
    account_status TEXT
""", "customer_no"))
_register(_table("erp", "products", "one row per product (material)", """
    product_no TEXT
    description TEXT
    product_line TEXT
    unit_cost NUMERIC(12,2)
    list_price NUMERIC(12,2)
    changed_on CHAR(8)
""", "product_no"))
_register(_table("erp", "sales_orders", "one row per sales order header (duplicates possible)", """
    order_no BIGINT
    customer_no TEXT
    order_date CHAR(8)
    requested_delivery_date CHAR(8)
    currency TEXT
    status TEXT
    sales_channel TEXT
    changed_on CHAR(8)
"""))
_register(_table("erp", "sales_order_lines", "one row per sales order line (duplicates possible)", """
    order_no BIGINT
    line_no INTEGER
    product_no TEXT
    quantity NUMERIC(12,3)
    unit_price NUMERIC(12,2)
    discount_pct NUMERIC(5,4)
    changed_on CHAR(8)
"""))
_register(_table("erp", "invoices", "one row per customer invoice (one per invoiced order)", """
    invoice_no BIGINT
    order_no BIGINT
    customer_no TEXT
    invoice_date CHAR(8)
    due_date CHAR(8)
    amount NUMERIC(14,2)
    currency TEXT
""", "invoice_no"))
_register(_table("erp", "payments", "one row per incoming payment", """
    payment_no BIGINT
    invoice_no BIGINT
    customer_no TEXT
    payment_date CHAR(8)
    amount NUMERIC(14,2)
""", "payment_no"))
_register(_table("erp", "customer_financials", "one row per customer and reported quarter", """
    customer_no TEXT
    fiscal_period TEXT
    revenue NUMERIC(16,2)
    total_assets NUMERIC(16,2)
    total_liabilities NUMERIC(16,2)
    current_assets NUMERIC(16,2)
    current_liabilities NUMERIC(16,2)
    net_income NUMERIC(16,2)
    reported_on CHAR(8)
"""))

# ---------------------------------------------------------------- SCM (WMS/TMS)
_register(_table("scm", "shipments", "one row per shipment (about one per shipped order)", """
    shipment_id TEXT
    sales_order_ref TEXT
    consignee_code TEXT
    carrier TEXT
    promised_date DATE
    shipped_date DATE
    delivered_date DATE
    freight_cost NUMERIC(10,2)
    last_update TIMESTAMP
""", "shipment_id"))
_register(_table("scm", "returns", "one row per returned product on a shipment", """
    return_id TEXT
    shipment_id TEXT
    product_ref TEXT
    quantity NUMERIC(12,3)
    reason TEXT
    return_date DATE
    credit_amount NUMERIC(12,2)
""", "return_id"))

SYSTEMS = tuple(TABLES)

# The column each table stamps its changes with (or its increasing business date): what KAM's
# incremental reads filter on. The demo's databases index them, as a source read incrementally
# every night should be: without the index each night's read of a few changed rows scans the table.
CHANGE_STAMPS: dict[tuple[str, str], str] = {
    ("crm", "accounts"): "last_modified",
    ("crm", "contacts"): "last_modified",
    ("crm", "opportunities"): "last_modified",
    ("crm", "cases"): "last_modified",
    ("erp", "customers"): "changed_on",
    ("erp", "products"): "changed_on",
    ("erp", "sales_orders"): "changed_on",
    ("erp", "sales_order_lines"): "changed_on",
    ("erp", "invoices"): "invoice_date",
    ("erp", "payments"): "payment_date",
    ("erp", "customer_financials"): "reported_on",
    ("scm", "shipments"): "last_update",
    ("scm", "returns"): "return_date",
}


def index_ddl(system: str, name: str, qualified_name: str | None = None) -> list[str]:
    """CREATE INDEX for the table's change stamp (valid in SQLite and PostgreSQL)."""
    column = CHANGE_STAMPS.get((system, name))
    if column is None:
        return []
    return [f"CREATE INDEX {name}_{column}_idx ON {qualified_name or name} ({column})"]
