"""Shared pytest fixtures.

Keep this file light: it is imported before every test run, so no Airflow, pandas or other heavy
imports at module level (import them inside the fixture that needs them).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
