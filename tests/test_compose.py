"""docker-compose.yml, checked as far as this machine allows (Docker itself cannot run here): the file
parses with `docker compose config`, images are pinned and match the lock, no secret is committed,
and the init job's scripts load the demo into a real PostgreSQL (the test server)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
AIRFLOW_PROCESSES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _locked(package: str) -> str:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    (version,) = {p["version"] for p in lock["package"] if p["name"] == package}
    return version


def test_compose_has_the_airflow_processes_databases_init_jobs_and_celery_profile():
    services = _compose()["services"]
    for name in (*AIRFLOW_PROCESSES, "airflow-db", "sources-db", "demo-loader", "airflow-init"):
        assert name in services, name
    commands = {name: services[name]["command"] for name in AIRFLOW_PROCESSES}
    assert commands == {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                        "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert services["redis"]["profiles"] == services["airflow-worker"]["profiles"] == ["celery"]
    assert "celery worker" in services["airflow-worker"]["command"]
    for name in AIRFLOW_PROCESSES:
        assert "warehouse:/opt/kam/warehouse" in services[name]["volumes"], name
        assert services[name]["depends_on"]["demo-loader"]["condition"] == "service_completed_successfully"


def test_every_long_running_service_has_a_health_check_and_a_pinned_image():
    services = _compose()["services"]
    for name, spec in services.items():
        image = spec["image"]
        repo, _, tag = image.partition(":")
        assert re.match(r"^\d+\.\d+", tag), f"{name}: image {image} is not pinned to a version"
        if spec.get("restart") != "no":
            assert "healthcheck" in spec, name


def test_airflow_image_and_python_match_the_lock():
    airflow = _locked("apache-airflow")
    dockerfile = (REPO / "docker" / "airflow" / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert base == f"apache/airflow:{airflow}-python3.11"
    assert _compose()["services"]["airflow-scheduler"]["image"] == f"kam-airflow:{airflow}-python3.11"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    assert "uv==0.13.9" in dockerfile and "--frozen" in dockerfile


def test_no_secret_in_the_compose_file_and_every_required_variable_in_the_env_example():
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert {"KAM_PG_PASSWORD", "AIRFLOW_DB_PASSWORD", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_JWT_SECRET",
            "AIRFLOW_FERNET_KEY"} <= required
    example = dict(line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert required <= set(example)
    for name, value in re.findall(r"^\s+(\w*(?:PASSWORD|SECRET|FERNET_KEY))\s*:\s*(.+)$", text, re.M):
        assert value.strip().startswith("${"), f"{name} must come from the environment, not the file"
    assert not re.findall(r"://[^:@/\s]+:(?!\$\{)[^@\s]+@", text), "a URL with a literal password"
    assert ".env" in (REPO / ".gitignore").read_text().split()


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_the_file_with_the_example_env():
    cli = _compose_cli()
    assert cli is not None, "no docker compose CLI: `make compose` installs Debian's docker-compose"
    for profile in ([], ["--profile", "celery"]):
        out = subprocess.run([*cli, "--env-file", str(REPO / ".env.example"), *profile, "config"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        resolved = yaml.safe_load(out.stdout)
        assert set(AIRFLOW_PROCESSES) <= set(resolved["services"])
        scheduler = resolved["services"]["airflow-scheduler"]["environment"]
        assert scheduler["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert scheduler["KAM_CRM_URL"] == "postgresql+psycopg://kam@sources-db:5432/crm"


@pytest.mark.postgres
def test_init_scripts_create_the_source_databases_and_load_the_demo_once(postgres, tmp_path):
    for name in ("crm", "erp", "scm"):
        postgres.drop_database(name)
    psql = Path(os.environ.get("KAM_TEST_PG_BINDIR") or _pg_bindir()) / "psql"
    for script in sorted((REPO / "docker" / "postgres-init").glob("*.sql")):
        subprocess.run([str(psql), "-v", "ON_ERROR_STOP=1", "-X", "-q", "-f", str(script),
                        postgres.libpq("postgres")], check=True, capture_output=True, timeout=60)
    shutil.copy(REPO / "kam.yaml", tmp_path / "kam.yaml")
    env = {**os.environ, "KAM_CONFIG": str(tmp_path / "kam.yaml"), "KAM_DEMO_CUSTOMERS": "150",
           **{f"KAM_{s.upper()}_URL": postgres.url(s) for s in ("crm", "erp", "scm")}}
    loader = [sys.executable, str(REPO / "docker" / "init" / "load_demo.py")]
    first = subprocess.run(loader, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    import sqlalchemy as sa

    counts = {}
    for system, table in (("crm", "accounts"), ("erp", "customers"), ("scm", "shipments")):
        engine = sa.create_engine(postgres.url(system))
        with engine.connect() as conn:
            counts[system] = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
        engine.dispose()
    assert counts["erp"] >= 150 and counts["crm"] > 0 and counts["scm"] > 0, counts
    again = subprocess.run(loader, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert again.returncode == 0 and "already loaded" in again.stdout


def _pg_bindir() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    assert found, "PostgreSQL client not found: run `make postgres`"
    return str(found[-1].parent)
