"""BI access: a DuckDB database file with one view per mart, always on the mart's current version.

Each view reads exactly the Parquet files of the mart's current Delta version, so any DuckDB client
(the `duckdb` CLI, Python, Superset or Metabase through duckdb-engine) can query the marts without
the Delta extension. After every step the file is rebuilt beside the old one and swapped in with one
atomic rename: a client that opens the file gets the previous complete set of views or the new one,
and a client that already has it open keeps reading the version it opened (those Parquet files stay
until `maintain` vacuums versions older than `warehouse.retention_days`). The file is never written
in place, so readers never block the nightly run and the nightly run never blocks readers.

Example queries (docs: README "BI access"):

    duckdb -readonly warehouse/kam_bi.duckdb
    SELECT tier, count(*), sum(revenue_12m) FROM customer_value GROUP BY tier;
    SELECT * FROM tier_history ORDER BY changed_on DESC LIMIT 20;
    SELECT * FROM kam_bi_versions;  -- which Delta version each view shows
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.config import Settings
from pipelines.duck import sql_literal
from pipelines.warehouse import Warehouse


def refresh_bi(settings: Settings) -> Path:
    """Rebuild the BI DuckDB file from the marts' current versions and swap it in atomically."""
    warehouse = Warehouse(settings.warehouse_path)
    target = settings.bi_database_path
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f".{target.name}.{os.getpid()}.building")
    building.unlink(missing_ok=True)
    versions = []
    con = duckdb.connect(str(building))
    try:
        for name in warehouse.tables("marts"):
            delta = warehouse.table(name)
            files = delta.file_uris()
            if delta.metadata().partition_columns or not files:
                # no files (an empty mart) or partition values outside the files: a typed snapshot,
                # read as the warehouse reads (on Arrow's file system, see Warehouse._arrow_dataset)
                con.register("snapshot", warehouse.scan(name, delta.version())[0].to_table())
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM snapshot')
                con.unregister("snapshot")
            else:
                listed = ", ".join(sql_literal(f.removeprefix("file://")) for f in files)
                con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet([{listed}], '
                            "union_by_name = true)")
            versions.append((name, delta.version(), len(files)))
        con.register("v", pa.table({"mart": [v[0] for v in versions],
                                     "delta_version": [v[1] for v in versions],
                                     "files": [v[2] for v in versions]}))
        con.execute("CREATE TABLE kam_bi_versions AS SELECT * FROM v")
        con.unregister("v")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(building, target)
    return target
