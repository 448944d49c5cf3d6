"""Rules every DAG must follow, and a real `dag.test()` of the nightly DAG on demo data."""

import ast
from datetime import UTC, datetime

import pytest

from tests.airflow_env import DAGS, migrate_metadata_db

ALLOWED_TOP_LEVEL_IMPORTS = {"__future__", "datetime", "pendulum", "airflow.sdk"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "kam_nightly" in dagbag.dags


def test_every_dag_has_an_owner_tags_docs_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md and "When it fails" in dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.owner not in (None, "", "airflow"), (dag_id, task.task_id)
            assert task.retries >= 1, (dag_id, task.task_id)


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_files_only_wire_no_work_at_import_time(path):
    """Top-level imports are Airflow and dates only; the pipeline is imported inside tasks."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module]
        else:
            continue
        assert set(names) <= ALLOWED_TOP_LEVEL_IMPORTS, f"{path.name}: top-level import of {names}"


def test_nightly_tasks_run_in_step_order(dagbag):
    dag = dagbag.dags["kam_nightly"]
    assert [t.task_id for t in dag.topological_sort()] == ["extract", "stage", "validate", "build", "mine",
                                                                   "check", "publish", "maintain"]


def test_kam_nightly_runs_green_under_dag_test_on_the_demo_data(dagbag, demo_workspace, monkeypatch):
    from pipelines.warehouse import Warehouse

    migrate_metadata_db()
    monkeypatch.setenv("KAM_CONFIG", str(demo_workspace.config))
    dag = dagbag.dags["kam_nightly"]
    run = dag.test(logical_date=datetime(2026, 11, 22, tzinfo=UTC))
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert set(states.values()) == {"success"}
    value = Warehouse(demo_workspace.warehouse).read("customer_value", ["as_of_date"])
    assert {d.isoformat() for d in value.column("as_of_date").to_pylist()} == {"2026-11-22"}
