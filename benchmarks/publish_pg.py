"""Benchmark publishing account rows into a CRM table on PostgreSQL, next to the server's own floor.

A throwaway PostgreSQL server (the one the tests use) is started. In the same run, on the same
server, for N synthetic account rows with every column KAM publishes:

1. floor, first load: the rows as CSV, `COPY` into a temp table plus one
   `INSERT … SELECT … ON CONFLICT DO UPDATE` into an empty table, one transaction (= 1.0);
2. KAM's full first publish (`pipelines.publish.publish` with the rows given): read the target's
   keys and hashes, diff, COPY the changed rows, one upsert, commit, publish log;
3. floor, update: the same COPY + upsert of all N rows over the now full table;
4. a night with 1% of the rows changed (tier and figures): KAM's publish again.

Throughput is N account rows / wall seconds. Reading the rows from the marts (DuckDB over Delta) is
timed separately by the nightly benchmark; here the rows are handed over ready.

    uv run python benchmarks/publish_pg.py --rows 1000000
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import psycopg  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import yaml  # noqa: E402

from pipelines.config import load_config  # noqa: E402
from pipelines.publish import ALL_COLUMNS, KEY, VALUE_COLUMNS, _hash_sql, publish, target_table  # noqa: E402
from tests.postgres_server import start_postgres  # noqa: E402
from tests.tiny_sources import tiny_config  # noqa: E402

OUT = REPO / "benchmarks" / "out"
AS_OF = date(2026, 11, 22)


def synthetic_rows(n: int, changed_share: float = 0.0, seed: int = 1) -> pa.Table:
    """N account rows shaped like crm_account_publish; `changed_share` of them with new figures."""
    con = duckdb.connect()
    con.execute(f"SELECT setseed({seed / 10})")
    changed = int(n * changed_share)
    values = f"""
        SELECT printf('001%012d', i) AS crm_account_id, printf('%08d', i) AS customer_id,
               CASE WHEN i % 100 = 0 THEN 'VIP' WHEN i % 25 = 0 THEN 'Major'
                    WHEN i % 7 = 0 THEN 'Ordinary' ELSE 'Small' END AS tier,
               CASE WHEN i < {changed} THEN 'Small' ELSE NULL END AS previous_tier,
               DATE '2026-01-01' + CAST(i % 300 AS INTEGER) AS tier_since,
               'held: near the tier boundary' AS tier_reason, i % 20 = 0 AS key_account,
               CASE WHEN i % 5 = 0 THEN 'A' WHEN i % 3 = 0 THEN 'B' ELSE 'C' END AS abc_class,
               CAST(i % 6 AS BIGINT) AS segment_id, 'segment ' || (i % 6) AS segment_name,
               'orders_12m > 4 AND margin_pct > 0.2' AS segment_rule,
               CAST((i % 9973) * 3.17 + (i < {changed})::INT AS DECIMAL(18, 2)) AS clv,
               CAST((i % 997) / 997.0 AS DECIMAL(9, 4)) AS probability_alive,
               CAST((i % 31) / 3.0 AS DECIMAL(14, 4)) AS expected_purchases,
               CAST((i % 50021) * 11.3 AS DECIMAL(18, 2)) AS revenue_12m,
               CAST(i % 40 AS INTEGER) AS orders_12m,
               CAST((i % 50021) * 3.1 AS DECIMAL(18, 2)) AS gross_margin_12m,
               CAST((i % 50021) * 1.7 AS DECIMAL(18, 2)) AS profit_12m,
               DATE '2026-11-01' - CAST(i % 400 AS INTEGER) AS last_order_date,
               CASE WHEN i % 4 = 0 THEN 'AA' ELSE 'B' END AS credit_grade,
               CASE WHEN i % 11 = 0 THEN 'at_risk' END AS alerts,
               CASE WHEN i % 3 = 0 THEN 'Hydraulics; Fasteners' END AS next_best
        FROM range({n}) t(i)"""
    return con.execute(f"SELECT *, {_hash_sql(VALUE_COLUMNS)} AS row_hash FROM ({values}) ORDER BY 1"
                       ).to_arrow_table()


def floor(dsn: str, table: str, rows: pa.Table) -> float:
    """COPY into a temp table + one INSERT … SELECT … ON CONFLICT DO UPDATE, one transaction."""
    n = rows.num_rows
    data = (rows.select([KEY, *VALUE_COLUMNS, "row_hash"])
            .append_column("in_book", pa.array([True] * n))
            .append_column("as_of_date", pa.array([AS_OF] * n, pa.date32()))
            .append_column("run_id", pa.array(["floor"] * n)).select(ALL_COLUMNS))
    started = time.perf_counter()
    buffer = io.BytesIO()
    pacsv.write_csv(data, buffer, write_options=pacsv.WriteOptions(include_header=False))
    columns = ", ".join(ALL_COLUMNS)
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in ALL_COLUMNS if c != KEY)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE stage (LIKE {table}) ON COMMIT DROP")
        with cur.copy(f"COPY stage ({columns}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())
        cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM stage "
                    f"ON CONFLICT ({KEY}) DO UPDATE SET {assignments}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.rows
    OUT.mkdir(parents=True, exist_ok=True)
    first_rows, night_rows = synthetic_rows(n), synthetic_rows(n, changed_share=0.01)
    figures: dict = {"rows": n, "python": platform.python_version()}
    with start_postgres() as server, tempfile.TemporaryDirectory() as tmp:
        url = server.create_database("kam_bench_crm")
        dsn = server.libpq("kam_bench_crm")
        config = tiny_config(Path(tmp))
        data = yaml.safe_load(config.read_text())
        data["sources"]["crm"] = {"url": url}
        data["publish"] = {"target": "crm", "table": "kam_account_tier", "max_tier_change_share": 1.0}
        config.write_text(yaml.safe_dump(data))
        settings = load_config(config)
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        with engine.begin() as conn:
            target_table("floor_account_tier").create(conn)
        engine.dispose()

        seconds = floor(dsn, "floor_account_tier", first_rows)
        figures["floor_first"] = {"seconds": seconds, "rows_per_s": n / seconds}
        started = time.perf_counter()
        result = publish(settings, AS_OF, run_id="bench-1", desired=first_rows)
        seconds = time.perf_counter() - started
        assert result.rows["inserted"] == n, result.rows
        figures["kam_first"] = {"seconds": seconds, "rows_per_s": n / seconds,
                                "timings": result.details["timings"]}

        seconds = floor(dsn, "floor_account_tier", night_rows)
        figures["floor_update"] = {"seconds": seconds, "rows_per_s": n / seconds}
        started = time.perf_counter()
        result = publish(settings, AS_OF, run_id="bench-2", desired=night_rows)
        seconds = time.perf_counter() - started
        figures["kam_night_1pct"] = {"seconds": seconds, "rows_per_s": n / seconds,
                                     "updated": result.rows["updated"], "timings": result.details["timings"]}
        server.drop_database("kam_bench_crm")
    for name in ("first", "night_1pct"):
        floor_rate = figures["floor_first" if name == "first" else "floor_update"]["rows_per_s"]
        figures[f"kam_{name}"]["share_of_floor"] = figures[f"kam_{name}"]["rows_per_s"] / floor_rate
    print(f"rows: {n:,}")
    for key in ("floor_first", "kam_first", "floor_update", "kam_night_1pct"):
        f = figures[key]
        extra = f"  ({f['share_of_floor']:.2f} of the floor)" if "share_of_floor" in f else ""
        print(f"{key:<16} {f['seconds']:8.2f} s  {f['rows_per_s']:>12,.0f} rows/s{extra}")
    (OUT / "publish_pg.json").write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
