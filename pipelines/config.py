"""`kam.yaml`: the one configuration file, validated on load.

A config error found at 2 a.m. by the scheduler costs a night of data; found at load time it costs
a minute. So the whole file is checked up front against the canonical model, and every error names
the file, the key path and what is wrong.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.canonical import ENTITIES, REQUIRED_ENTITIES
from pipelines.value_config import AlertConfig, ClvConfig, CostToServeConfig, CreditConfig

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_CONFIG = "kam.yaml"
CONFIG_ENV = "KAM_CONFIG"

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(ValueError):
    """A problem with kam.yaml, worded for the person who has to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    url: str | None = Field(None, description="SQLAlchemy URL (no passwords: use url_env)")
    url_env: str | None = Field(None, description="environment variable holding the URL")
    max_connections: Annotated[int, Field(ge=1)] = Field(
        2, description="Airflow pool slots: extract tasks reading this source at the same time")

    @model_validator(mode="after")
    def _one_way_to_connect(self) -> SourceConfig:
        if not self.url and not self.url_env:
            raise ValueError("give either 'url' or 'url_env'")
        if self.url:
            from sqlalchemy.engine import make_url  # 0.4 s: only when a URL is read

            try:
                url = make_url(self.url)
            except Exception as exc:  # sqlalchemy raises ArgumentError with a decent message
                raise ValueError(f"not a SQLAlchemy URL: {exc}") from None
            if url.password:
                raise ValueError(
                    "the URL contains a password; put the URL in an environment variable and "
                    "name it with 'url_env' instead"
                )
        return self


class ColumnSource(_Strict):
    """A mapped column: a source column (optionally with a date format) or a SQL expression."""

    column: str | None = None
    format: str | None = Field(None, description="strptime format for text dates, e.g. %Y%m%d")
    expr: str | None = Field(None, description="DuckDB SQL expression over the raw columns")

    @model_validator(mode="after")
    def _exactly_one(self) -> ColumnSource:
        if bool(self.column) == bool(self.expr):
            raise ValueError("give exactly one of 'column' or 'expr'")
        return self


class IncrementalConfig(_Strict):
    """How to read only what changed: rows whose `column` is past the last committed watermark.

    `column` is a source column that grows with every change (an updated-at, possibly kept as
    text in `format`) or with every new row (`kind: key`, an increasing number). The look-back
    re-reads the last days so rows committed late in the source are not missed; re-read rows are
    harmless because staging keeps one version per key. Deletions are invisible to a watermark,
    so every `reconcile_every_days` nights the table's keys are read in full and keys gone from
    the source leave staging.
    """

    column: str
    kind: Literal["updated_at", "key"] = "updated_at"
    format: str | None = Field(None, description="strptime format when the column holds text dates")
    lookback_days: Annotated[int, Field(ge=0)] = 3
    reconcile_every_days: Annotated[int, Field(ge=1)] | None = 7

    @model_validator(mode="after")
    def _key_has_no_format(self) -> IncrementalConfig:
        if self.kind == "key" and self.format:
            raise ValueError("an increasing key takes no date format")
        return self


class EntityMapping(_Strict):
    source: str
    table: str | None = None
    query: str | None = None
    columns: dict[str, ColumnSource]
    incremental: IncrementalConfig | None = None

    @field_validator("columns", mode="before")
    @classmethod
    def _plain_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"column": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _table_or_query(self) -> EntityMapping:
        if bool(self.table) == bool(self.query):
            raise ValueError("give exactly one of 'table' or 'query'")
        if self.table and not _IDENTIFIER.match(self.table):
            raise ValueError(f"table {self.table!r} is not a plain table name; use 'query'")
        if self.incremental and self.query:
            raise ValueError("'incremental' needs a 'table' (a query is read in full every night)")
        return self


class TierLevel(_Strict):
    name: str
    share: Annotated[float, Field(gt=0, le=1)]
    key_account: bool = False


# Named pyramids from the literature; `levels` in kam.yaml replaces them entirely.
TIER_PRESETS: dict[str, list[dict[str, Any]]] = {
    "standard": [
        {"name": "VIP", "share": 0.01, "key_account": True},
        {"name": "Major", "share": 0.04, "key_account": True},
        {"name": "Ordinary", "share": 0.15},
        {"name": "Small", "share": 0.80},
    ],
    "metals": [
        {"name": "Diamond", "share": 0.01, "key_account": True},
        {"name": "Platinum", "share": 0.04, "key_account": True},
        {"name": "Gold", "share": 0.10},
        {"name": "Bronze", "share": 0.20},
        {"name": "Iron", "share": 0.30},
        {"name": "Lead", "share": 0.35},
    ],
}


class TierStability(_Strict):
    """A customer changes tier only beyond the boundary by `margin` or after `runs` runs across it."""

    margin: Annotated[float, Field(ge=0, le=5)] = 0.10
    runs: Annotated[int, Field(ge=1, le=100)] = 3


class TierConfig(_Strict):
    measure: Literal["revenue_12m", "gross_margin_12m", "orders_12m", "profit_12m", "clv"] = "revenue_12m"
    preset: Literal["standard", "metals"] | None = None
    levels: list[TierLevel] | None = None
    stability: TierStability = TierStability()

    @model_validator(mode="before")
    @classmethod
    def _preset_or_levels(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("preset") and data.get("levels"):
                raise ValueError("give either 'preset' or 'levels', not both")
            if not data.get("levels"):
                preset = data.get("preset") or "standard"
                if preset in TIER_PRESETS:
                    data = {**data, "levels": TIER_PRESETS[preset]}
        return data

    @model_validator(mode="after")
    def _shares_cover_everyone(self) -> TierConfig:
        levels = self.levels or []
        total = sum(level.share for level in levels)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"tier shares must add up to 1.0, they add up to {total:g}")
        names = [level.name for level in levels]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique: {names}")
        return self


class AbcConfig(_Strict):
    a: Annotated[float, Field(gt=0, lt=1)] = 0.80
    b: Annotated[float, Field(gt=0, le=1)] = 0.95

    @model_validator(mode="after")
    def _ordered(self) -> AbcConfig:
        if not self.a < self.b:
            raise ValueError(f"need a < b, got a={self.a} and b={self.b}")
        return self


class HistoryConfig(_Strict):
    """How long the per-night slices are kept (pipelines/history.py): every night for
    `nightly_days`, then each month's last night for `month_end_months` (null: for ever)."""

    nightly_days: Annotated[int, Field(ge=1)] = Field(
        35, description="keep every night's slice this many days before the as-of date"
    )
    month_end_months: Annotated[int, Field(ge=0)] | None = Field(
        24, description="then keep each month's last night for this many months (null: for ever)"
    )


class WarehouseConfig(_Strict):
    path: str = "warehouse"
    retention_days: Annotated[int, Field(ge=0)] = 7
    history: HistoryConfig = HistoryConfig()
    maintain_weekday: Annotated[int, Field(ge=0, le=6)] | None = Field(
        6, description="as-of weekday (0 = Monday) on which the nightly run compacts and vacuums"
    )
    consolidate: bool = Field(
        True, description="on maintenance nights, fold each raw table's increments and key "
                          "reconciliation into a new base batch (pipelines/consolidate.py)"
    )
    memory_limit: str | None = Field(None, description="DuckDB memory limit, e.g. '4GB' (spills past it)")

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value):
            raise ValueError(f"{value!r} is not a size like '3GB' or '512MiB'")
        return value


# Fields of KAM's CRM table that may be written back into columns of the CRM's own accounts table.
PUBLISH_FIELDS = (
    "customer_id", "tier", "previous_tier", "tier_since", "tier_reason", "key_account", "abc_class",
    "segment_name", "segment_rule", "clv", "probability_alive", "expected_purchases", "revenue_12m",
    "orders_12m", "gross_margin_12m", "profit_12m", "last_order_date", "credit_grade", "alerts",
    "next_best",
)


class AccountsWriteBack(_Strict):
    """KAM-owned columns on the CRM's existing accounts table: updated only, matched by external id.

    KAM never inserts or deletes a row there and never writes a column not listed in `columns`
    (the CRM admin adds those columns; KAM does not alter the CRM's tables)."""

    table: str
    key: str = Field(description="the accounts table's id column, holding the CRM account id")
    columns: dict[str, str] = Field(description="CRM column -> KAM field it receives")

    @model_validator(mode="after")
    def _valid(self) -> AccountsWriteBack:
        problems = []
        for name in (self.table, self.key, *self.columns):
            if not _IDENTIFIER.match(name):
                problems.append(f"{name!r} is not a plain table or column name")
        for column, source in self.columns.items():
            if source not in PUBLISH_FIELDS:
                problems.append(f"columns.{column}: {source!r} is not a KAM field; known: "
                                + ", ".join(PUBLISH_FIELDS))
        if self.key in self.columns:
            problems.append(f"the key column {self.key!r} cannot be a KAM-owned column")
        if not self.columns:
            problems.append("columns: name at least one KAM-owned column")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# The published figures that move a little every night for every customer whatever its data
# (CLV and its parts age with the as-of date; profit carries the cost of capital on open invoices,
# which accrues daily): the ones publish.tolerance may name. Booked figures (revenue, margin,
# orders) and every label (tier, segment, grade, alerts) are always published exactly.
DRIFTING_FIGURES = ("clv", "probability_alive", "expected_purchases", "profit_12m")


class Tolerance(_Strict):
    """A figure counts as changed when it moved by more than max(absolute, relative x |published|),
    or appeared or went. The one rule, for KAM's CRM table (in SQL) and the accounts table (here)."""

    relative: Annotated[float, Field(ge=0, lt=1)] = 0.0
    absolute: Annotated[float, Field(ge=0)] = 0.0

    def moved(self, new: float | None, held: float | None) -> bool:
        if new is None or held is None:
            return (new is None) != (held is None)
        return abs(new - held) > max(self.absolute, self.relative * abs(held))

    def moved_sql(self, new: str, held: str) -> str:
        return (f"(({new}) IS NULL) <> (({held}) IS NULL) OR abs(CAST({new} AS DOUBLE) - {held}) > "
                f"greatest({self.absolute!r}, {self.relative!r} * abs({held}))")


class PublishConfig(_Strict):
    target: str = Field(description="name of the source whose database receives the table")
    table: str = "kam_account_tier"
    left_book: Literal["keep", "flag", "remove"] = Field(
        "flag", description="accounts no longer in the book: keep their row as it was, flag it "
                            "(in_book = false), or remove it from KAM's table")
    max_tier_change_share: Annotated[float, Field(gt=0, le=1)] = Field(
        0.2, description="stop before writing when more than this share of published tiers would "
                         "change (accounts leaving the book count as changes); `--force` overrides")
    breaker_min_accounts: Annotated[int, Field(ge=0)] = Field(
        100, description="the circuit breaker applies from this many published accounts on")
    accounts: AccountsWriteBack | None = None
    tolerance: dict[str, Tolerance] = Field(
        default_factory=dict,
        description="per drifting figure, how far tonight's value may be from the CRM's before the row "
                    "is rewritten; the rest of a row is compared exactly")

    @field_validator("tolerance")
    @classmethod
    def _drifting(cls, value: dict[str, Tolerance]) -> dict[str, Tolerance]:
        unknown = [name for name in value if name not in DRIFTING_FIGURES]
        if unknown:
            raise ValueError(f"{', '.join(map(repr, unknown))}: only figures that drift with the as-of "
                             f"date take a tolerance ({', '.join(DRIFTING_FIGURES)}); the rest is published "
                             "exactly")
        return value

    @field_validator("table")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a valid table name")
        return value


class ExportConfig(_Strict):
    """Where the sales-ops exports, the BI DuckDB file and the run reports go (beside kam.yaml)."""

    path: str = "exports"
    bi_database: str = "warehouse/kam_bi.duckdb"
    reports: str = "reports"
    excel_max_rows: Annotated[int, Field(ge=0, le=1_048_575)] = Field(
        100_000, description="the everyone workbook is written up to this many rows (the CSV always)")


# The numeric columns of transforms/marts/customer_features.sql the mining step may use.
FEATURE_COLUMNS = (
    "monetary_12m", "orders_12m", "recency_days", "margin_12m", "margin_pct", "growth",
    "product_lines", "service_cases_12m", "complaints_12m", "returns_12m", "return_rate",
    "payment_delay_days", "on_time_rate", "tenure_years", "employees",
)
CATEGORY_COLUMNS = ("industry", "region")


class SegmentsConfig(_Strict):
    """k-means segments: k chosen in [k_min, k_max] by silhouette on a sample (models/segments.py)."""

    features: list[str] = [
        "monetary_12m", "orders_12m", "recency_days", "margin_pct", "growth", "product_lines",
        "service_cases_12m", "return_rate", "payment_delay_days", "on_time_rate", "tenure_years",
        "employees",
    ]
    log_features: list[str] = Field(
        ["monetary_12m", "orders_12m", "recency_days", "service_cases_12m", "payment_delay_days",
         "tenure_years", "employees"],
        description="heavy-tailed features, log-compressed before scaling",
    )
    k_min: Annotated[int, Field(ge=2)] = 2
    k_max: Annotated[int, Field(ge=2)] = 8
    sample_size: Annotated[int, Field(ge=100)] = 20_000
    n_init: Annotated[int, Field(ge=1)] = 5
    silhouette_size: Annotated[int, Field(ge=100)] = 2_000
    k_switch_margin: Annotated[float, Field(ge=0)] = Field(
        0.02, description="last night's k stays unless another k's silhouette beats it by more")
    match_max_distance: Annotated[float, Field(gt=0)] = Field(
        1.5, description="farthest (scaled units) a centroid may move and keep last night's id")

    @model_validator(mode="after")
    def _valid(self) -> SegmentsConfig:
        problems = []
        if self.k_min > self.k_max:
            problems.append(f"k_min ({self.k_min}) must not exceed k_max ({self.k_max})")
        for name in (*self.features, *self.log_features):
            if name not in FEATURE_COLUMNS:
                problems.append(f"{name!r} is not a customer feature; known: {', '.join(FEATURE_COLUMNS)}")
        if not set(self.log_features) <= set(self.features):
            problems.append("log_features must be listed in features too")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RulesConfig(_Strict):
    """IF-THEN rules explaining each segment and each label (models/rules.py)."""

    max_rules: Annotated[int, Field(ge=1)] = 4
    max_conditions: Annotated[int, Field(ge=1)] = 3
    max_depth: Annotated[int, Field(ge=1)] = 6
    min_leaf_share: Annotated[float, Field(gt=0, lt=1)] = 0.002
    holdout_share: Annotated[float, Field(gt=0, lt=1)] = 0.3
    sample_size: Annotated[int, Field(ge=100)] = Field(
        50_000, description="rules are learned on at most this many customers (a fixed-seed sample)")
    # Label name -> SQL boolean over customer_features (e.g. "status = 'LOST'").
    labels: dict[str, str] = {"key_account": "key_account", "lost": "status = 'LOST'"}


class CrossSellConfig(_Strict):
    min_support: Annotated[float, Field(gt=0, le=1)] = 0.001
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.2
    min_lift: Annotated[float, Field(ge=0)] = 1.2
    max_len: Annotated[int, Field(ge=2)] = 3
    offers_per_account: Annotated[int, Field(ge=1)] = 3


class MiningConfig(_Strict):
    seed: int = 42
    refit_weekday: Annotated[int, Field(ge=0, le=6)] | None = Field(
        6, description="as-of weekday (0 = Monday) on which segments and rules are fitted again; the "
                       "nights between place customers with that week's model (null: refit every night)")
    segments: SegmentsConfig = SegmentsConfig()
    rules: RulesConfig = RulesConfig()
    cross_sell: CrossSellConfig = CrossSellConfig()


class EntityQualityConfig(_Strict):
    """Stop rules and allowed values of one entity (`quality.defaults` or `quality.entities.<e>`).

    Unset keys take the defaults' value."""

    max_quarantined_share: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="fail the run when quarantined / rows in is above this share")
    max_volume_change: Annotated[float, Field(ge=0)] | None = Field(
        None, description="fail when rows in differ from the last good run's by more than this share")
    volume_min_rows: Annotated[int, Field(ge=0)] | None = Field(
        None, description="the volume rule applies once the last good run had at least this many rows")
    stale_after_days: Annotated[int, Field(ge=0)] | None = Field(
        None, description="fail when the newest freshness_column value is older than this many days")
    freshness_column: str | None = None
    allowed: dict[str, list[str]] | None = Field(
        None, description="column -> allowed values (rows with another value are quarantined)")


class QualityConfig(_Strict):
    """Data quality (pipelines/quality): thresholds per entity, the date floor, Data Docs."""

    # Unset here and per entity: max_quarantined_share 0.5, volume_min_rows 1000, the other rules off.
    defaults: EntityQualityConfig = EntityQualityConfig()
    entities: dict[str, EntityQualityConfig] = {}
    date_floor: date = date(1990, 1, 1)
    tier_share_tolerance: Annotated[float, Field(ge=0, le=1)] = Field(
        0.05, description="largest gap allowed between a tier's share of customers and its configured share")
    gx_rows: Annotated[int, Field(ge=0)] = Field(
        50_000, description="Great Expectations (Data Docs) runs on at most this many rows per table")
    data_docs: bool = True
    keep_docs_days: Annotated[int, Field(ge=0)] = Field(
        30, description="`maintain` deletes the Data Docs of runs this many days older than its as-of date "
                        "(each run's JSON report stays)")

    @model_validator(mode="after")
    def _known(self) -> QualityConfig:
        problems = []
        for name, rules in self.entities.items():
            if name not in ENTITIES:
                problems.append(f"quality.entities.{name}: unknown entity; known: {', '.join(ENTITIES)}")
                continue
            columns = ENTITIES[name].columns
            named = [*(rules.allowed or {}), *([rules.freshness_column] if rules.freshness_column else [])]
            for col in named:
                if col not in columns:
                    problems.append(f"quality.entities.{name}: {col!r} is not a column of {name}; "
                                    f"known: {', '.join(columns)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class KamConfig(_Strict):
    sources: dict[str, SourceConfig]
    entities: dict[str, EntityMapping]
    warehouse: WarehouseConfig = WarehouseConfig()
    tiers: TierConfig
    abc: AbcConfig = AbcConfig()
    publish: PublishConfig | None = None
    clv: ClvConfig = ClvConfig()
    cost_to_serve: CostToServeConfig = CostToServeConfig()
    alerts: AlertConfig = AlertConfig()
    credit: CreditConfig | None = None
    mining: MiningConfig = MiningConfig()
    outputs: ExportConfig = ExportConfig()
    quality: QualityConfig = QualityConfig()

    @model_validator(mode="after")
    def _consistent(self) -> KamConfig:
        problems: list[str] = []
        for name in REQUIRED_ENTITIES:
            if name not in self.entities:
                problems.append(f"entities: the required entity {name!r} is not mapped")
        for name, mapping in self.entities.items():
            if name not in ENTITIES:
                problems.append(
                    f"entities.{name}: unknown entity; known: {', '.join(ENTITIES)}"
                )
                continue
            if mapping.source not in self.sources:
                problems.append(
                    f"entities.{name}.source: {mapping.source!r} is not one of the sources "
                    f"({', '.join(self.sources)})"
                )
            entity = ENTITIES[name]
            for col in mapping.columns:
                if col not in entity.columns:
                    problems.append(
                        f"entities.{name}.columns.{col}: not a column of {name}; "
                        f"known: {', '.join(entity.columns)}"
                    )
            for col in entity.required_columns:
                if col not in mapping.columns:
                    problems.append(f"entities.{name}.columns: required column {col!r} is not mapped")
            for col, src in mapping.columns.items():
                if src.format and col in entity.columns and entity.columns[col].type not in (
                    "date", "timestamp"
                ):
                    problems.append(
                        f"entities.{name}.columns.{col}.format: only date and timestamp "
                        "columns take a format"
                    )
        if self.publish and self.publish.target not in self.sources:
            problems.append(
                f"publish.target: {self.publish.target!r} is not one of the sources "
                f"({', '.join(self.sources)})"
            )
        if self.publish and "account" not in self.entities:
            problems.append("publish: needs the 'account' entity mapped (rows are per CRM account)")
        tier_names = {level.name for level in self.tiers.levels or []}
        wanted = [("alerts.at_risk_tiers", self.alerts.at_risk_tiers or []),
                  ("alerts.narrow_buyer_tiers", self.alerts.narrow_buyer_tiers or [])]
        if self.alerts.declining and self.alerts.declining.former_tiers:
            wanted.append(("alerts.declining.former_tiers", self.alerts.declining.former_tiers))
        for key, names in wanted:
            unknown = [n for n in names if n not in tier_names]
            if unknown:
                problems.append(f"{key}: {unknown} are not tiers ({', '.join(sorted(tier_names))})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


@dataclass(frozen=True)
class Settings:
    """A loaded configuration plus where it came from (relative paths resolve against it)."""

    config: KamConfig
    path: Path

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def warehouse_path(self) -> Path:
        return _resolve(self.base_dir, self.config.warehouse.path)

    def source_url(self, name: str) -> URL:
        """The source's SQLAlchemy URL: from the environment when configured, else from the file."""
        source = self.config.sources[name]
        raw = None
        if source.url_env:
            raw = os.environ.get(source.url_env)
            if not raw and not source.url:
                raise ConfigError(
                    f"{self.path}: sources.{name}.url_env: environment variable "
                    f"{source.url_env} is not set"
                )
        raw = raw or source.url
        from sqlalchemy.engine import make_url

        url = make_url(raw)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            url = url.set(database=str(_resolve(self.base_dir, url.database)))
        return url

    @property
    def exports_path(self) -> Path:
        return _resolve(self.base_dir, self.config.outputs.path)

    @property
    def bi_database_path(self) -> Path:
        return _resolve(self.base_dir, self.config.outputs.bi_database)

    @property
    def reports_path(self) -> Path:
        return _resolve(self.base_dir, self.config.outputs.reports)

    @property
    def mapped_entities(self) -> list[str]:
        return list(self.config.entities)


def _resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else (base / path).resolve()


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling)"
        for part in message.split("; "):
            # Cross-key problems already name their key path; others get the pydantic location.
            named = part.startswith(("entities", "publish", "alerts.", "quality."))
            lines.append(f"  {part}" if named else f"  {where}: {part}")
    return "\n".join(lines)


def config_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()


def load_config(path: str | os.PathLike | None = None) -> Settings:
    """Load and validate kam.yaml (the argument, else $KAM_CONFIG, else ./kam.yaml)."""
    file = config_path(path)
    if not file.exists():
        raise ConfigError(f"{file}: configuration file not found (set {CONFIG_ENV} or pass --config)")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    try:
        return Settings(KamConfig.model_validate(data), file)
    except ValidationError as exc:
        raise ConfigError(_format_errors(file, exc)) from None
