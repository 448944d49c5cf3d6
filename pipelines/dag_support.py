"""What the DAG files need while Airflow parses them: step names, sources, pools and the Assets
(the warehouse tables each task writes).

The DAG processor parses `dags/` every few seconds, so this module is cheap by design: standard
library and YAML only, no pipeline import, no database, no network (tests/test_dags.py times the
parse). It reads two things: the STEPS of pipelines/nightly.py (from its source text, so a step added
there becomes a task without an import) and the `sources`, `entities` and `publish` keys of kam.yaml.
Whatever it cannot read, the DAG still parses; the first task then fails with the real error.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG_ENV = "KAM_CONFIG"  # same name as pipelines.config.CONFIG_ENV (kept light: no import)
NIGHTLY = REPO / "pipelines" / "nightly.py"
POOL_PREFIX = "kam_source_"
DEFAULT_POOL_SLOTS = 2

# Tables each step writes, as they appear in the run ledger's `versions_written` (checked by
# tests/test_dags.py against a real run). `{entity}` expands to every mapped entity and `{base}`
# to the consolidated base of every incrementally read raw table; the extract step's raw tables
# are declared per source (one Asset per source, its mapped task writes them).
STEP_TABLES: dict[str, tuple[str, ...]] = {
    "stage": ("stg_{entity}", "quarantine_{entity}", "stg_customer_xref"),
    "validate": ("stg_{entity}", "quarantine_{entity}"),
    "build": ("fct_customer_day", "customer_product_line", "customer_value", "crm_account_tier",
              "kam_tier_state", "tier_history", "whale_curve", "customer_alert", "clv_holdout",
              "credit_rating", "credit_rating_points"),
    "mine": ("customer_features", "customer_segment", "segment_profile", "segment_rule",
             "cross_sell_rule", "account_next_best"),
    "maintain": ("{base}",),
}
CREDIT_TABLES = ("credit_rating", "credit_rating_points")
MINING_TRIGGER = "customer_value"  # the mining DAG runs when build has written this table

_LAYERS = (("raw_", "raw"), ("stg_", "staging"), ("quarantine_", "staging"), ("kam_", "meta"))


def config_file() -> Path:
    """kam.yaml as the tasks will load it: $KAM_CONFIG, else the repository's kam.yaml."""
    return Path(os.environ.get(CONFIG_ENV) or REPO / "kam.yaml").resolve()


@cache
def _yaml(path: Path, mtime: float) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def config_data() -> dict:
    path = config_file()
    try:
        return _yaml(path, path.stat().st_mtime)
    except OSError:
        return {}


def step_names(nightly: Path = NIGHTLY) -> list[str]:
    """The keys of `STEPS` in pipelines/nightly.py, in their order, read from the source text."""
    tree = ast.parse(nightly.read_text())
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "STEPS" and isinstance(node.value, ast.Dict):
            return [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
    raise RuntimeError(f"{nightly}: no STEPS dict found")


def source_names(data: dict | None = None) -> list[str]:
    data = config_data() if data is None else data
    sources = data.get("sources")
    return list(sources) if isinstance(sources, dict) else []


def entity_names(data: dict | None = None) -> list[str]:
    data = config_data() if data is None else data
    entities = data.get("entities")
    return list(entities) if isinstance(entities, dict) else []


def base_tables(data: dict | None = None) -> list[str]:
    """The `__base` tables maintenance keeps beside the raw tables read incrementally (named as
    pipelines.extract.raw_table_for names raw tables)."""
    data = config_data() if data is None else data
    if ((data.get("warehouse") or {}).get("consolidate")) is False:
        return []
    entities = data.get("entities")
    names = {
        f"raw_{spec['source']}__{spec.get('table') or entity}__base"
        for entity, spec in (entities.items() if isinstance(entities, dict) else ())
        if isinstance(spec, dict) and spec.get("source") and spec.get("incremental")
    }
    return sorted(names)


def pool_name(source: str) -> str:
    return f"{POOL_PREFIX}{source}"


def pool_slots(source: str, data: dict | None = None) -> int:
    """Concurrent connections allowed to a source: `sources.<name>.max_connections`, default 2."""
    data = config_data() if data is None else data
    spec = (data.get("sources") or {}).get(source) or {}
    value = spec.get("max_connections") if isinstance(spec, dict) else None
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_POOL_SLOTS


# One-slot pools for steps whose tables another DAG also writes (never two writers at once).
WRITER_POOLS = {
    "kam_marts": "KAM: build (kam_nightly) and credit_rating (kam_quarterly_credit) write credit_rating",
    "kam_mining": "KAM: mine in kam_nightly and in kam_mining write the same mining marts",
}


def pools(data: dict | None = None) -> dict[str, dict]:
    """Pools as `airflow pools import` reads them: one per source, capping its connections, and
    the one-slot writer pools."""
    data = config_data() if data is None else data
    out = {
        pool_name(s): {"slots": pool_slots(s, data), "include_deferred": False,
                       "description": f"KAM: concurrent connections to source {s!r} (kam.yaml)"}
        for s in source_names(data)
    }
    out.update({name: {"slots": 1, "include_deferred": False, "description": text}
                for name, text in WRITER_POOLS.items()})
    return out


def layer_of(table: str) -> str:
    """Same rule as pipelines.warehouse.layer_of (that module imports Delta; this one must not)."""
    for prefix, layer in _LAYERS:
        if table.startswith(prefix):
            return layer
    return "marts"


def table_uri(table: str) -> str:
    return f"kam://warehouse/{layer_of(table)}/{table}"


def raw_uri(source: str) -> str:
    return f"kam://warehouse/raw/{source}"


def publish_uri(data: dict | None = None) -> str | None:
    data = config_data() if data is None else data
    publish = data.get("publish")
    if not isinstance(publish, dict) or not publish.get("target"):
        return None
    return f"kam://{publish['target']}/{publish.get('table') or 'kam_account_tier'}"


def step_tables(step: str, data: dict | None = None) -> list[str]:
    """Warehouse tables a step writes (empty for a step this module does not know yet)."""
    data = config_data() if data is None else data
    out = []
    for pattern in STEP_TABLES.get(step, ()):
        if "{entity}" in pattern:
            out += [pattern.format(entity=e) for e in entity_names(data)]
        elif pattern == "{base}":
            out += base_tables(data)
        else:
            out.append(pattern)
    return out


def step_uris(step: str, data: dict | None = None) -> list[str]:
    if step == "publish":
        uri = publish_uri(data)
        return [uri] if uri else []
    if step == "extract":
        return [raw_uri(s) for s in source_names(data)]
    return [table_uri(t) for t in step_tables(step, data)]


def main(argv: list[str]) -> int:
    """`python -m pipelines.dag_support pools` prints the pools as JSON for `airflow pools import`."""
    if argv[1:] == ["pools"]:
        print(json.dumps(pools(), indent=2))
        return 0
    print("usage: python -m pipelines.dag_support pools", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv))
