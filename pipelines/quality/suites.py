"""The expectation suites: what every canonical entity and every mart must satisfy, defined once.

Each `Expectation` renders two ways from the same definition: as a Great Expectations 1.x
expectation (for the Data Docs and GX's own verdict on the validated table) and as a DuckDB SQL
predicate that is true for a failing row (so all 30M order lines are checked in one scan, and the
failing rows — every one, not the first 200 — can be moved to quarantine with their keys).

Row-level expectations quarantine the rows that fail them; table-level ones (columns and types,
unique keys, at least one row, mart invariants) fail the run. The suites are built from the
canonical model (pipelines/canonical.py: required columns, keys, foreign keys, types) plus the
ranges and date bounds below and the allowed sets configured in kam.yaml (`quality:`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from pipelines.canonical import ENTITIES, FOREIGN_KEYS, SQL_TYPES
from pipelines.duck import sql_identifier as q

# Reason codes: the stable vocabulary of why a row is held (quarantine `_reason_code`).
MISSING_VALUE = "missing_value"
UNPARSEABLE_VALUE = "unparseable_value"
DUPLICATE_KEY = "duplicate_key"
UNKNOWN_REFERENCE = "unknown_reference"
DATE_AFTER_AS_OF = "date_after_as_of"
DATE_BEFORE_FLOOR = "date_before_floor"
NOT_POSITIVE = "not_positive"
NEGATIVE_VALUE = "negative_value"
OUT_OF_RANGE = "out_of_range"
NOT_ALLOWED_VALUE = "not_allowed_value"
INVALID_CODE = "invalid_code"
DATES_OUT_OF_ORDER = "dates_out_of_order"
STAGING_RULE = "staging_rule"

# The date on which each entity's row happens: it cannot lie after the as-of date.
EVENT_DATES: dict[str, str] = {
    "customer": "created_at", "account": "created_at", "contact": "created_at", "order": "order_date",
    "invoice": "invoice_date", "payment": "payment_date", "shipment": "shipped_date",
    "return": "return_date", "service_case": "opened_at", "opportunity": "created_at",
    "financials": "reported_at",
}
# Column telling whether a source still delivers new rows (stale-source rule), per entity.
FRESHNESS: dict[str, str] = {
    "customer": "updated_at", "account": "updated_at", "contact": "updated_at", "product": "updated_at",
    "order": "order_date", "order_line": "updated_at", "invoice": "invoice_date",
    "payment": "payment_date", "shipment": "updated_at", "return": "return_date",
    "service_case": "opened_at", "opportunity": "updated_at", "financials": "reported_at",
}
# Value ranges: (column, min, max, strict_min, reason code).
RANGES: dict[str, list[tuple[str, float | None, float | None, bool, str]]] = {
    "customer": [("payment_terms_days", 0, 365, False, OUT_OF_RANGE),
                 ("credit_limit", 0, None, False, NEGATIVE_VALUE)],
    "product": [("unit_cost", 0, None, False, NEGATIVE_VALUE),
                ("list_price", 0, None, False, NEGATIVE_VALUE)],
    "order_line": [("quantity", 0, None, True, NOT_POSITIVE), ("unit_price", 0, None, False, NEGATIVE_VALUE),
                   ("discount", 0, 1, False, OUT_OF_RANGE)],
    "shipment": [("freight_cost", 0, None, False, NEGATIVE_VALUE)],
    "return": [("quantity", 0, None, True, NOT_POSITIVE)],
    "service_case": [("satisfaction", 1, 5, False, OUT_OF_RANGE)],
    "opportunity": [("amount", 0, None, False, NEGATIVE_VALUE)],
}
CURRENCY_CODE = r"^[A-Z]{3}$"


class QualityFailure(RuntimeError):
    """A stop rule fired: the run ends here, before anything is built or published.

    `result` carries the step's counts so the run ledger records them for the failed run too."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


def _literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


@dataclass(frozen=True)
class Expectation:
    """One expectation on one table. `kind` picks both renderings:

    not_null, between, in_set, regex (row-level when `row_level`), in_parent (row-level, SQL only:
    GX has no cross-table expectation for pandas), unique, column_type, min_rows (table-level)."""

    kind: str
    column: str | tuple[str, ...]
    reason: str
    row_level: bool = True
    min_value: Any = None
    max_value: Any = None
    strict_min: bool = False
    strict_max: bool = False
    value_set: tuple = ()
    regex: str | None = None
    parent: tuple[str, str] | None = None  # (table, column) for in_parent
    type_: str | None = None  # canonical type for column_type
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def gx_type(self) -> str:
        return {
            "not_null": "expect_column_values_to_not_be_null",
            "between": "expect_column_values_to_be_between",
            "in_set": "expect_column_values_to_be_in_set",
            "regex": "expect_column_values_to_match_regex",
            "in_parent": "expect_column_values_to_be_in_set",
            "unique": ("expect_compound_columns_to_be_unique" if isinstance(self.column, tuple)
                       else "expect_column_values_to_be_unique"),
            "column_type": "expect_column_to_exist",
            "min_rows": "expect_table_row_count_to_be_between",
        }[self.kind]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.column if isinstance(self.column, tuple) else (self.column,) if self.column else ()

    @property
    def name(self) -> str:
        """What the quarantine and the reports call it: the GX type and its arguments, short."""
        args = ", ".join(self.columns)
        if self.kind == "between":
            lo = "" if self.min_value is None else f"{self.min_value}{' <' if self.strict_min else ' <='} "
            hi = "" if self.max_value is None else f" {'<' if self.strict_max else '<='} {self.max_value}"
            args = f"{lo}{args}{hi}"
        elif self.kind == "in_set":
            args += " in {" + ", ".join(sorted(map(str, self.value_set))) + "}"
        elif self.kind == "regex":
            args += f" ~ {self.regex}"
        elif self.kind == "in_parent":
            args += f" in {self.parent[0]}.{self.parent[1]}"
        elif self.kind == "column_type":
            args += f" as {self.type_}"
        elif self.kind == "min_rows":
            args = f">= {self.min_value} rows"
        return f"{self.gx_type}({args})"

    def failing_sql(self) -> str:
        """SQL true for a row that fails (NULL never counts as failing except for not_null)."""
        c = q(self.columns[0]) if self.columns else ""
        if self.kind == "not_null":
            return f"{c} IS NULL"
        if self.kind == "between":
            parts = []
            if self.min_value is not None:
                parts.append(f"{c} {'<=' if self.strict_min else '<'} {_literal(self.min_value)}")
            if self.max_value is not None:
                parts.append(f"{c} {'>=' if self.strict_max else '>'} {_literal(self.max_value)}")
            return f"COALESCE({' OR '.join(parts)}, FALSE)"
        if self.kind == "in_set":
            values = ", ".join(_literal(v) for v in self.value_set)
            return f"COALESCE(CAST({c} AS VARCHAR) NOT IN ({values}), FALSE)"
        if self.kind == "regex":
            return f"COALESCE(NOT regexp_full_match(CAST({c} AS VARCHAR), {_literal(self.regex)}), FALSE)"
        raise ValueError(f"{self.kind} is not a row predicate")

    def gx(self):
        """The Great Expectations 1.x expectation, or None where GX has no pandas equivalent."""
        import great_expectations.expectations as gxe

        meta = {"reason_code": self.reason, "level": "row" if self.row_level else "table", **self.meta}
        col = self.columns[0] if self.columns else None
        if self.kind == "not_null":
            return gxe.ExpectColumnValuesToNotBeNull(column=col, meta=meta)
        if self.kind == "between":
            return gxe.ExpectColumnValuesToBeBetween(
                column=col, min_value=self.min_value, max_value=self.max_value,
                strict_min=self.strict_min, strict_max=self.strict_max, meta=meta)
        if self.kind == "in_set":
            return gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(self.value_set), meta=meta)
        if self.kind == "regex":
            return gxe.ExpectColumnValuesToMatchRegex(column=col, regex=self.regex, meta=meta)
        if self.kind == "unique":
            if len(self.columns) > 1:
                return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(self.columns), meta=meta)
            return gxe.ExpectColumnValuesToBeUnique(column=col, meta=meta)
        if self.kind == "column_type":
            return gxe.ExpectColumnToExist(column=col, meta={**meta, "type": SQL_TYPES[self.type_]})
        if self.kind == "min_rows":
            return gxe.ExpectTableRowCountToBeBetween(min_value=self.min_value, meta=meta)
        return None


@dataclass(frozen=True)
class EntityRules:
    """The thresholds and allowed sets of one entity, after kam.yaml's defaults are applied."""

    max_quarantined_share: float | None = 0.5
    max_volume_change: float | None = None
    volume_min_rows: int = 1000
    stale_after_days: int | None = None
    freshness_column: str | None = None
    allowed: dict[str, tuple] = field(default_factory=dict)


def entity_rules(settings, entity: str) -> EntityRules:
    """Built-in defaults, overridden by `quality.defaults`, overridden by `quality.entities.<e>`."""
    merged = {"max_quarantined_share": 0.5, "max_volume_change": None, "volume_min_rows": 1000,
              "stale_after_days": None, "freshness_column": None, "allowed": None}
    cfg = getattr(settings.config, "quality", None)
    for layer in ([cfg.defaults, cfg.entities.get(entity)] if cfg is not None else []):
        if layer is not None:
            merged.update({k: v for k, v in layer.model_dump().items() if v is not None})
    return EntityRules(
        max_quarantined_share=merged["max_quarantined_share"],
        max_volume_change=merged["max_volume_change"],
        volume_min_rows=merged["volume_min_rows"],
        stale_after_days=merged["stale_after_days"],
        freshness_column=merged["freshness_column"] or FRESHNESS.get(entity),
        allowed={k: tuple(v) for k, v in (merged["allowed"] or {}).items()},
    )


def date_floor(settings) -> date:
    cfg = getattr(settings.config, "quality", None)
    return cfg.date_floor if cfg is not None else date(1990, 1, 1)


def _bound(ctype: str, day: date, *, upper: bool) -> tuple[date | datetime, bool]:
    """A date bound for a date or timestamp column: timestamps up to the end of the as-of day."""
    if ctype == "timestamp":
        if upper:
            return datetime.combine(day + timedelta(days=1), datetime.min.time()), True
        return datetime.combine(day, datetime.min.time()), False
    return day, False


def entity_suite(entity: str, settings, as_of: date) -> list[Expectation]:
    """Every expectation on `stg_<entity>`: row-level ones first, then table-level."""
    spec = ENTITIES[entity]
    rules = entity_rules(settings, entity)
    floor = date_floor(settings)
    suite: list[Expectation] = []
    for name in spec.required_columns:
        suite.append(Expectation("not_null", name, MISSING_VALUE))
    event = EVENT_DATES.get(entity)
    # The floor guards the dates a row stands on (required ones and the event date); an odd
    # optional date is not worth holding a row for (staging's rule: keep it, the value is what it is).
    for name, column in spec.columns.items():
        if column.type in ("date", "timestamp") and (column.required or name == event):
            low, _ = _bound(column.type, floor, upper=False)
            suite.append(Expectation("between", name, DATE_BEFORE_FLOOR, min_value=low))
    if event:
        high, strict = _bound(spec.columns[event].type, as_of, upper=True)
        suite.append(Expectation("between", event, DATE_AFTER_AS_OF, max_value=high, strict_max=strict))
    for name, low, high, strict, reason in RANGES.get(entity, []):
        suite.append(Expectation("between", name, reason, min_value=low, max_value=high, strict_min=strict))
    if "currency" in spec.columns and "currency" not in rules.allowed:
        suite.append(Expectation("regex", "currency", INVALID_CODE, regex=CURRENCY_CODE))
    for name, values in sorted(rules.allowed.items()):
        suite.append(Expectation("in_set", name, NOT_ALLOWED_VALUE, value_set=tuple(values)))
    for col, parent, pcol in FOREIGN_KEYS.get(entity, []):
        if parent in settings.mapped_entities:
            suite.append(Expectation("in_parent", col, UNKNOWN_REFERENCE, parent=(f"stg_{parent}", pcol)))
    # Table level: the schema, a unique key, and rows at all for the entities the marts need.
    for name, column in spec.columns.items():
        suite.append(Expectation("column_type", name, "schema", row_level=False, type_=column.type))
    suite.append(Expectation("unique", tuple(spec.key) if len(spec.key) > 1 else spec.key[0], DUPLICATE_KEY,
                             row_level=False))
    if spec.required:
        suite.append(Expectation("min_rows", (), "empty_table", row_level=False, min_value=1))
    return suite


def mart_suites(settings) -> dict[str, list[Expectation]]:
    """Expectations on the marts sales reads; any failing row fails the run before publish.

    The invariants that span rows (tier shares, one tier per customer) are in validate.py."""
    tiers = tuple(level.name for level in settings.config.tiers.levels)
    suites = {
        "customer_value": [
            Expectation("not_null", "customer_id", MISSING_VALUE, row_level=False),
            Expectation("unique", "customer_id", DUPLICATE_KEY, row_level=False),
            Expectation("not_null", "tier", MISSING_VALUE, row_level=False),
            Expectation("in_set", "tier", NOT_ALLOWED_VALUE, row_level=False, value_set=tiers),
            Expectation("in_set", "abc_class", NOT_ALLOWED_VALUE, row_level=False, value_set=("A", "B", "C")),
            Expectation("between", "revenue_12m", NEGATIVE_VALUE, row_level=False, min_value=0),
            Expectation("between", "orders_12m", NEGATIVE_VALUE, row_level=False, min_value=0),
            Expectation("between", "probability_alive", OUT_OF_RANGE, row_level=False,
                        min_value=0, max_value=1),
            Expectation("between", "clv", NEGATIVE_VALUE, row_level=False, min_value=0),
        ],
        "crm_account_tier": [
            Expectation("not_null", "crm_account_id", MISSING_VALUE, row_level=False),
            Expectation("unique", "crm_account_id", DUPLICATE_KEY, row_level=False),
            Expectation("not_null", "customer_id", MISSING_VALUE, row_level=False),
            Expectation("in_set", "tier", NOT_ALLOWED_VALUE, row_level=False, value_set=tiers),
        ],
    }
    credit = settings.config.credit
    if credit is not None:
        suites["credit_rating"] = [
            Expectation("not_null", "customer_id", MISSING_VALUE, row_level=False),
            Expectation("in_set", "grade", NOT_ALLOWED_VALUE, row_level=False,
                        value_set=tuple(credit.grades)),
        ]
    suites["customer_segment"] = [
        Expectation("not_null", "customer_id", MISSING_VALUE, row_level=False),
        Expectation("unique", "customer_id", DUPLICATE_KEY, row_level=False),
    ]
    return suites


# Staging's own reasons (pipelines/staging.py, transforms/staging/*.sql), read as the expectation
# they enforce, so a row held by staging carries an expectation and a reason code like any other.
_STAGING = [
    (re.compile(r"^missing (\w+)"),
     lambda e, m: ("expect_column_values_to_not_be_null", m[1], MISSING_VALUE)),
    (re.compile(r"^unparseable (\w+)"),
     lambda e, m: ("expect_column_values_to_be_of_type", f"{m[1]} as {_ctype(e, m[1])}", UNPARSEABLE_VALUE)),
    (re.compile(r"^duplicate of a newer row"),
     lambda e, m: (_key_gx(e), ", ".join(ENTITIES[e].key), DUPLICATE_KEY)),
    (re.compile(r"^unknown (\w+)"),
     lambda e, m: ("expect_column_values_to_be_in_set", f"{m[1]} in {_parent(e, m[1])}", UNKNOWN_REFERENCE)),
    (re.compile(r"^(\w+) after as-of date"),
     lambda e, m: ("expect_column_values_to_be_between", f"{m[1]} <= as-of date", DATE_AFTER_AS_OF)),
    (re.compile(r"^(\w+) before (\d{4})"),
     lambda e, m: ("expect_column_values_to_be_between", f"{m[2]}-01-01 <= {m[1]}", DATE_BEFORE_FLOOR)),
    (re.compile(r"^(\w+) not positive"),
     lambda e, m: ("expect_column_values_to_be_between", f"0 < {m[1]}", NOT_POSITIVE)),
    (re.compile(r"^(\w+) negative"),
     lambda e, m: ("expect_column_values_to_be_between", f"0 <= {m[1]}", NEGATIVE_VALUE)),
    (re.compile(r"^(\w+) outside \[?([^\]]+)\]?$"),
     lambda e, m: ("expect_column_values_to_be_between", f"{m[1]} in {m[2]}", OUT_OF_RANGE)),
    (re.compile(r"^(\w+) before (\w+)$"),
     lambda e, m: ("expect_column_pair_values_a_to_be_greater_than_b", f"{m[1]}, {m[2]}",
                   DATES_OUT_OF_ORDER)),
]


def _ctype(entity: str, column: str) -> str:
    col = ENTITIES[entity].columns.get(column)
    return col.type if col else "?"


def _key_gx(entity: str) -> str:
    return ("expect_compound_columns_to_be_unique" if len(ENTITIES[entity].key) > 1
            else "expect_column_values_to_be_unique")


def _parent(entity: str, column: str) -> str:
    for col, parent, pcol in FOREIGN_KEYS.get(entity, []):
        if col == column:
            return f"stg_{parent}.{pcol}"
    return "?"


def staging_reason(entity: str, reject_reason: str | None) -> tuple[str, str]:
    """(expectation, reason code) for a `_reject_reason` written by staging (its first reason)."""
    first = (reject_reason or "").split("; ")[0]
    for pattern, make in _STAGING:
        m = pattern.match(first)
        if m:
            gx_type, args, code = make(entity, m)
            return f"{gx_type}({args})", code
    return f"staging rule ({first})", STAGING_RULE
