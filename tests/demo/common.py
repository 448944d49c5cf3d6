"""Constants and helpers shared by the demo tests (conftest.py holds the fixtures)."""

from __future__ import annotations

import os
from datetime import date

import duckdb

AS_OF = date(2026, 11, 22)
# Another seed can be tried without editing: the patterns must hold for any of them.
SEED = int(os.environ.get("KAM_DEMO_TEST_SEED", "7"))


def query(systems) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection where every generated table is a view named <system>_<table>."""
    con = duckdb.connect()
    for system, tables in systems.items():
        for name, table in tables.items():
            con.register(f"{system}_{name}", table)
    con.register("truth", systems.truth)
    return con
