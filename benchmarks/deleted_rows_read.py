"""What a staged table's readers would pay for rows deleted by position, as deletion vectors or any
merge-on-read layout leave them: a whole read of the table against the same read that drops the
deleted (file, row number) pairs in an anti join, the way a reader applies them.

Staging rewrites a table whenever a night replaces some of its rows (delta-rs cannot write deletion
vectors). Deleting by position instead saves that rewrite once, and costs every later read until
the table is compacted: the figures here are that cost, for the deletions of one night and of a
week. Run it on a kept warehouse (`incremental_pg.py --keep`), alone on the machine:

    python benchmarks/deleted_rows_read.py --warehouse benchmarks/out/pg-1000000/warehouse
    python benchmarks/deleted_rows_read.py --warehouse ... --table stg_shipment --deleted 300000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.duck import sql_literal
from pipelines.warehouse import Warehouse


def best_of(con: duckdb.DuckDBPyConnection, sql: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        con.execute(sql).fetchall()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--table", default="stg_order_line")
    parser.add_argument("--columns", type=int, default=3, help="the first N columns are read")
    parser.add_argument("--deleted", type=int, nargs="+", default=[1_400_000, 8_000_000],
                        help="rows deleted (at 1M customers a night replaces ~1.4M order lines)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    files = [uri.removeprefix("file://") for uri in Warehouse(args.warehouse).table(args.table).file_uris()]
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    listed = "[" + ", ".join(sql_literal(f) for f in files) + "]"
    sizes = con.execute(f"SELECT filename, count(*) FROM read_parquet({listed}, filename = true) "
                        "GROUP BY ALL ORDER BY ALL").fetchall()
    rows = sum(n for _, n in sizes)
    columns = [c for c, *_ in con.execute(f"DESCRIBE SELECT * FROM read_parquet({listed})").fetchall()]
    read = ", ".join(f'"{c}"' for c in columns[:args.columns])
    print(f"{args.table}: {rows:,} rows in {len(files)} file(s); reading {read}")
    # each file read apart, as a reader of a deletion vector reads it; with and without the anti join
    alone = " UNION ALL ".join(f"SELECT {read} FROM read_parquet({sql_literal(name)})" for name, _ in sizes)
    plain = best_of(con, f"SELECT count(*), sum(hash({read})) FROM ({alone})", args.repeats)
    print(f"  plain read                      {plain:6.2f} s")
    rng = np.random.default_rng(0)
    for deleted in args.deleted:
        deleted = min(deleted, rows)
        picked = np.sort(rng.choice(rows, deleted, replace=False))  # positions over the files in turn
        starts = np.cumsum([0] + [n for _, n in sizes])
        which = np.searchsorted(starts, picked, side="right") - 1
        con.register("deleted_rows", pa.table({"f": pa.array(which, pa.int64()),
                                               "p": pa.array(picked - starts[which], pa.int64())}))
        con.execute("CREATE OR REPLACE TEMP TABLE deleted AS SELECT * FROM deleted_rows")
        con.unregister("deleted_rows")
        # matched on the file's row numbers alone (a join on the file name as well cost another
        # 0.3 s at 30M rows)
        per_file = " UNION ALL ".join(
            f"SELECT {read} FROM read_parquet({sql_literal(name)}, file_row_number = true) r "
            f"ANTI JOIN (SELECT p FROM deleted WHERE f = {i}) d ON d.p = r.file_row_number"
            for i, (name, _) in enumerate(sizes))
        anti = best_of(con, f"SELECT count(*), sum(hash({read})) FROM ({per_file})", args.repeats)
        print(f"  {deleted:>10,} rows deleted       {anti:6.2f} s  (+{anti - plain:.2f} s a read)")


if __name__ == "__main__":
    main()
