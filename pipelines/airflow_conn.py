"""Secrets for Airflow tasks under the names the CLI uses.

The CLI reads a source's URL from the environment variable kam.yaml names (`url_env: KAM_CRM_URL`).
Under Airflow the same value may instead live in an Airflow connection whose id is that name in
lower case (`kam_crm_url`; `AIRFLOW_CONN_KAM_CRM_URL` or any secrets backend provides it). The
environment variable wins, exactly as for the CLI. Values are never logged or returned in XCom.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# Airflow connection types -> SQLAlchemy drivers the pipeline uses.
_SCHEMES = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg", "sqlite": "sqlite"}


def conn_id(name: str) -> str:
    return name.lower()


def from_airflow(name: str) -> str | None:
    """The value of Airflow connection `name.lower()` as a URL, or None when there is none."""
    try:
        from airflow.sdk import Connection
    except ImportError:  # not under Airflow
        return None
    try:
        conn = Connection.get(conn_id(name))
    except Exception as exc:  # AirflowNotFoundException, or no way to reach the API outside a task
        log.debug("no Airflow connection %s: %s", conn_id(name), type(exc).__name__)
        return None
    if conn.conn_type in _SCHEMES:  # a database: rebuilt as the SQLAlchemy URL the pipeline takes
        from sqlalchemy.engine import URL

        return URL.create(
            _SCHEMES[conn.conn_type], username=conn.login or None, password=conn.password or None,
            host=conn.host or None, port=conn.port or None, database=conn.schema or None,
        ).render_as_string(hide_password=False)
    if conn.host and "://" in conn.host:
        return conn.host  # a webhook stored whole in the host field
    return conn.get_uri()


def resolve(name: str) -> str | None:
    """Environment variable `name`, else Airflow connection `name.lower()`, else None."""
    return os.environ.get(name) or from_airflow(name)


def export_source_urls(url_envs: list[str]) -> list[str]:
    """Put each source URL found only in an Airflow connection into this task process's
    environment, where pipelines.config reads it. Returns the names taken from Airflow."""
    taken = []
    for name in url_envs:
        if os.environ.get(name):
            continue
        value = from_airflow(name)
        if value:
            os.environ[name] = value
            taken.append(name)
    if taken:
        log.info("source URLs from Airflow connections: %s", ", ".join(conn_id(n) for n in taken))
    return taken
