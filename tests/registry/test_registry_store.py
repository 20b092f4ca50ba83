"""The registry store over SQLite and PostgreSQL: numbering, rename, stages, aliases."""

from __future__ import annotations

import os
import urllib.parse
import uuid

import pytest

from jupyter_mlops.registry.store import RegistryStore
from jupyter_mlops.tracking import open_store
from jupyter_mlops.tracking.errors import TrackingError

PG_URL = os.environ.get("JUPYTER_MLOPS_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        admin = schema = None
    else:
        if not PG_URL:
            pytest.skip("set JUPYTER_MLOPS_TEST_POSTGRES_URL to run the PostgreSQL variant")
        import sqlalchemy as sa

        from jupyter_mlops.tracking.migrate import normalize_uri

        schema = f"reg_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(normalize_uri(PG_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{sep}options={urllib.parse.quote(f'-csearch_path={schema}')}"
    store = open_store(url, artifact_root=str(tmp_path / "art"))
    try:
        yield RegistryStore(store)
    finally:
        store.close()
        if admin is not None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()


def test_versions_numbering_rename_stages_aliases(registry):
    reg = registry
    exp = reg.tracking.create_experiment("e")
    run = reg.tracking.create_run(exp)
    reg.create_registered_model("a", tags={"k": "v"})
    for _ in range(3):
        reg.create_model_version("a", f"runs:/{run.info.run_id}/m", run_id=run.info.run_id)
    reg.delete_model_version("a", 3)
    # a deleted version's number is never reused
    assert reg.create_model_version("a", "file:///x")["version"] == "4"
    reg.set_registered_model_alias("a", "prod", 2)
    reg.transition_model_version_stage("a", 1, "staging")
    reg.transition_model_version_stage("a", 2, "Staging", archive_existing_versions=True)
    stages = {v["version"]: v["current_stage"] for v in reg.search_model_versions("name = 'a'")[0]}
    assert stages == {"1": "Archived", "2": "Staging", "4": "None"}
    reg.rename_registered_model("a", "b")
    assert reg.get_model_version_by_alias("b", "prod")["version"] == "2"
    assert reg.get_registered_model("b")["tags"] == [{"key": "k", "value": "v"}]
    with pytest.raises(TrackingError) as e:
        reg.get_registered_model("a")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # pages
    for i in range(5):
        reg.create_registered_model(f"p{i}")
    page, token = reg.search_registered_models("name LIKE 'p%'", max_results=2)
    names = [m["name"] for m in page]
    while token:
        page, token = reg.search_registered_models(
            "name LIKE 'p%'", max_results=2, page_token=token
        )
        names += [m["name"] for m in page]
    assert names == ["p0", "p1", "p2", "p3", "p4"]
    ordered, _ = reg.search_registered_models(order_by=["name DESC"], max_results=3)
    assert [m["name"] for m in ordered] == ["p4", "p3", "p2"]
