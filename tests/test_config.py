from pathlib import Path

import pytest
import yaml

from pipelines.config import ConfigError, load_config
from tests.tiny_sources import tiny_config

REPO = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, mutate) -> Path:
    path = tiny_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_demo_config_in_the_repo_loads():
    settings = load_config(REPO / "kam.yaml")
    assert {"customer", "order", "order_line"} <= set(settings.mapped_entities)
    assert [lvl.name for lvl in settings.config.tiers.levels] == ["VIP", "Major", "Ordinary", "Small"]
    assert settings.warehouse_path == REPO / "warehouse"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["entities"].pop("order"), "entities: the required entity 'order' is not mapped"),
        (lambda d: d["entities"]["order"]["columns"].update(order_dte="x"),
         "entities.order.columns.order_dte: not a column of order"),
        (lambda d: d["entities"]["order"]["columns"].pop("order_date"),
         "entities.order.columns: required column 'order_date' is not mapped"),
        (lambda d: d["entities"]["order"].update(source="wms"),
         "entities.order.source: 'wms' is not one of the sources"),
        (lambda d: d["sources"]["crm"].update(url="postgresql://kam:s3cret@db/crm"),
         "sources.crm: the URL contains a password"),
        (lambda d: d["tiers"]["levels"][0].update(share=0.5), "tier shares must add up to 1.0"),
        (lambda d: d.update(warehuose={"path": "x"}), "warehuose: unknown key"),
        (lambda d: d.pop("tiers"), "tiers: required key is missing"),
    ],
)
def test_errors_name_the_file_the_key_and_the_problem(tmp_path, mutate, expected):
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_url_from_the_environment_wins_and_a_missing_variable_is_named(tmp_path, monkeypatch):
    path = _write(tmp_path, lambda d: d["sources"]["erp"].update(url=None, url_env="KAM_TEST_ERP_URL"))
    settings = load_config(path)
    monkeypatch.delenv("KAM_TEST_ERP_URL", raising=False)
    with pytest.raises(ConfigError, match="KAM_TEST_ERP_URL is not set"):
        settings.source_url("erp")
    monkeypatch.setenv("KAM_TEST_ERP_URL", "postgresql+psycopg://kam:pw@db:5432/erp")
    assert settings.source_url("erp").database == "erp"


def test_relative_sqlite_paths_resolve_against_the_config_file(tmp_path):
    settings = load_config(tiny_config(tmp_path))
    assert settings.source_url("crm").database == str(tmp_path / "crm.db")
    assert settings.warehouse_path == tmp_path / "warehouse"
