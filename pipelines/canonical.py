"""The canonical customer model: the entities every source is mapped onto, and their columns.

Staging SQL, marts and mining are written once against these names and types; `kam.yaml` maps
each source's tables onto them. Keeping the model in one declarative place lets the config loader
tell a user exactly which canonical column they misspelled, and lets the staging step generate the
typed, validated projection of any source without per-source code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Canonical column types and their DuckDB SQL types. Amounts are decimals, not floats, so sums are
# exact and a re-run for the same as-of date reproduces every figure to the cent.
SQL_TYPES: dict[str, str] = {
    "text": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "money": "DECIMAL(18,2)",
    "quantity": "DECIMAL(18,3)",
    "ratio": "DECIMAL(9,4)",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "bool": "BOOLEAN",
}


@dataclass(frozen=True)
class Column:
    type: str
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Entity:
    name: str
    grain: str
    key: tuple[str, ...]
    columns: dict[str, Column]
    required: bool = False
    # Column used to decide which of several rows with the same key is the latest version.
    version_column: str | None = None
    depends_on: tuple[str, ...] = field(default=())

    @property
    def required_columns(self) -> list[str]:
        return [name for name, col in self.columns.items() if col.required]


def _cols(**columns: Column) -> dict[str, Column]:
    return dict(columns)


T, INT, F, M, Q, R, D, TS, B = (
    "text", "int", "float", "money", "quantity", "ratio", "date", "timestamp", "bool",
)

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in [
        Entity(
            "customer", "one row per customer of the system of record (ERP customer master)",
            key=("customer_id",), required=True, version_column="updated_at",
            columns=_cols(
                customer_id=Column(T, True, "the system-of-record customer number"),
                name=Column(T, True),
                country=Column(T), city=Column(T), industry=Column(T),
                payment_terms_days=Column(INT), credit_limit=Column(M),
                created_at=Column(D), updated_at=Column(D),
                status=Column(T, doc="lifecycle status as the system of record keeps it, e.g. LOST"),
            ),
        ),
        Entity(
            "account", "one row per CRM account",
            key=("account_id",), version_column="updated_at",
            columns=_cols(
                account_id=Column(T, True), customer_ref=Column(T, doc="customer_id as typed in CRM"),
                name=Column(T, True), industry=Column(T), region=Column(T), size_band=Column(T),
                owner=Column(T), created_at=Column(D), parent_account_id=Column(T),
                updated_at=Column(TS),
            ),
        ),
        Entity(
            "contact", "one row per CRM contact", key=("contact_id",), depends_on=("account",),
            version_column="updated_at",
            columns=_cols(
                contact_id=Column(T, True), account_id=Column(T, True), email=Column(T),
                job_title=Column(T), created_at=Column(D), updated_at=Column(TS),
            ),
        ),
        Entity(
            "product", "one row per product", key=("product_id",), version_column="updated_at",
            columns=_cols(
                product_id=Column(T, True), name=Column(T), product_line=Column(T),
                unit_cost=Column(M), list_price=Column(M), updated_at=Column(D),
            ),
        ),
        Entity(
            "order", "one row per sales order", key=("order_id",), required=True,
            version_column="updated_at", depends_on=("customer",),
            columns=_cols(
                order_id=Column(T, True), customer_id=Column(T, True), order_date=Column(D, True),
                status=Column(T), is_cancelled=Column(B), currency=Column(T), channel=Column(T),
                updated_at=Column(D),
            ),
        ),
        Entity(
            "order_line", "one row per sales order line", key=("order_id", "line_no"),
            required=True, version_column="updated_at", depends_on=("order", "product"),
            columns=_cols(
                order_id=Column(T, True), line_no=Column(INT, True), product_id=Column(T),
                quantity=Column(Q, True), unit_price=Column(M, True), discount=Column(R),
                updated_at=Column(D),
            ),
        ),
        Entity(
            "invoice", "one row per invoice", key=("invoice_id",), depends_on=("customer",),
            columns=_cols(
                invoice_id=Column(T, True), order_id=Column(T), customer_id=Column(T, True),
                invoice_date=Column(D, True), due_date=Column(D), amount=Column(M, True),
                currency=Column(T),
            ),
        ),
        Entity(
            "payment", "one row per payment received", key=("payment_id",),
            depends_on=("customer", "invoice"),
            columns=_cols(
                payment_id=Column(T, True), invoice_id=Column(T), customer_id=Column(T, True),
                payment_date=Column(D, True), amount=Column(M, True),
            ),
        ),
        Entity(
            "shipment", "one row per shipment", key=("shipment_id",), depends_on=("order",),
            version_column="updated_at",
            columns=_cols(
                shipment_id=Column(T, True), order_id=Column(T, True), consignee_code=Column(T),
                carrier=Column(T), promised_date=Column(D), shipped_date=Column(D),
                delivered_date=Column(D), freight_cost=Column(M), updated_at=Column(TS),
            ),
        ),
        Entity(
            "return", "one row per returned shipment item", key=("return_id",),
            depends_on=("shipment",),
            columns=_cols(
                return_id=Column(T, True), shipment_id=Column(T, True), product_id=Column(T),
                quantity=Column(Q), reason=Column(T), return_date=Column(D, True),
                credit_amount=Column(M),
            ),
        ),
        Entity(
            "service_case", "one row per CRM service case", key=("case_id",),
            depends_on=("account",), version_column="updated_at",
            columns=_cols(
                case_id=Column(T, True), account_id=Column(T, True), case_type=Column(T),
                is_complaint=Column(B), priority=Column(T), status=Column(T),
                opened_at=Column(TS, True), closed_at=Column(TS), satisfaction=Column(INT),
                updated_at=Column(TS),
            ),
        ),
        Entity(
            "opportunity", "one row per CRM opportunity", key=("opportunity_id",),
            depends_on=("account",), version_column="updated_at",
            columns=_cols(
                opportunity_id=Column(T, True), account_id=Column(T, True), stage=Column(T),
                amount=Column(M), currency=Column(T), product_line=Column(T),
                created_at=Column(D), close_date=Column(D), updated_at=Column(TS),
            ),
        ),
        Entity(
            "financials", "one row per customer and fiscal period",
            key=("customer_id", "period"), depends_on=("customer",), version_column="reported_at",
            columns=_cols(
                customer_id=Column(T, True), period=Column(T, True), revenue=Column(M),
                total_assets=Column(M), total_liabilities=Column(M), current_assets=Column(M),
                current_liabilities=Column(M), net_income=Column(M), reported_at=Column(D),
            ),
        ),
    ]
}

REQUIRED_ENTITIES = [name for name, e in ENTITIES.items() if e.required]


def build_order(mapped: list[str]) -> list[str]:
    """Mapped entities in dependency order, so foreign keys can be checked against built parents."""
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done or name not in mapped:
            return
        for parent in ENTITIES[name].depends_on:
            visit(parent)
        done.append(name)

    for name in ENTITIES:
        visit(name)
    return done


# Foreign keys checked in staging when the parent entity is mapped: (column, parent, parent column).
FOREIGN_KEYS: dict[str, list[tuple[str, str, str]]] = {
    "contact": [("account_id", "account", "account_id")],
    "order": [("customer_id", "customer", "customer_id")],
    "order_line": [("order_id", "order", "order_id"), ("product_id", "product", "product_id")],
    "invoice": [("customer_id", "customer", "customer_id"), ("order_id", "order", "order_id")],
    "payment": [("customer_id", "customer", "customer_id"), ("invoice_id", "invoice", "invoice_id")],
    "shipment": [("order_id", "order", "order_id")],
    "return": [("shipment_id", "shipment", "shipment_id")],
    "service_case": [("account_id", "account", "account_id")],
    "opportunity": [("account_id", "account", "account_id")],
    "financials": [("customer_id", "customer", "customer_id")],
}
