"""Shared pytest fixtures.

Keep this file light: it is imported before every test run, so no Airflow, pandas or other heavy
imports at module level (import them inside the fixture that needs them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# pytest-xdist sets COLUMNS=80 in its workers, and rich fixes a console's width when it is created
# (pipelines.cli's, at import): the tests that read the CLI's tables set COLUMNS per invocation.
os.environ.pop("COLUMNS", None)

try:  # the project root is on sys.path (editable install, or tests/ is a package)
    from tests.postgres_server import PostgresServer, PostgresUnavailable, start_postgres
except ModuleNotFoundError:  # pytest's default import mode puts tests/ itself on sys.path
    from postgres_server import PostgresServer, PostgresUnavailable, start_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole test session (real server, never a mock).

    Fails, never skips, when PostgreSQL is not installed: run `make postgres`.
    """
    problem = None
    try:
        with start_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        problem = str(exc)
    if problem:  # outside the except block, so pytest shows the message once
        pytest.fail(problem, pytrace=False)


DEMO_CUSTOMERS = 1_500
DEMO_AS_OF = "2026-11-22"


@pytest.fixture(scope="session")
def demo_systems():
    """The generated demo (CRM, ERP, SCM tables in memory), made once per test session."""
    from datetime import date

    from pipelines.demo import generate_demo

    return generate_demo(customers=DEMO_CUSTOMERS, as_of=date.fromisoformat(DEMO_AS_OF), seed=7,
                         dirty_share=0.01)


@pytest.fixture(scope="session")
def _demo_sqlite_files(tmp_path_factory, demo_systems):
    from pipelines.demo import write_demo

    folder = tmp_path_factory.mktemp("demo-sources")
    write_demo(demo_systems, urls={s: f"sqlite:///{folder / s}.db" for s in ("crm", "erp", "scm")})
    return folder


@pytest.fixture()
def demo_workspace(tmp_path, _demo_sqlite_files, monkeypatch):
    """A fresh copy of the demo SQLite sources with the repo's kam.yaml beside them."""
    import shutil
    from pathlib import Path
    from types import SimpleNamespace

    for name in ("KAM_CRM_URL", "KAM_ERP_URL", "KAM_SCM_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "demo").mkdir()
    for db in _demo_sqlite_files.glob("*.db"):
        shutil.copy(db, tmp_path / "demo" / db.name)
    config = tmp_path / "kam.yaml"
    shutil.copy(Path(__file__).resolve().parent.parent / "kam.yaml", config)
    return SimpleNamespace(root=tmp_path, config=config, warehouse=tmp_path / "warehouse",
                           crm_db=tmp_path / "demo" / "crm.db", as_of=DEMO_AS_OF)
