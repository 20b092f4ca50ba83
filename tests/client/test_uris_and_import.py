"""Tracking URI resolution, the spool location, and a cheap package import."""

from __future__ import annotations

import json
import os

import pytest

from jupyter_mlops.tracking import TrackingError


def test_uri_precedence(monkeypatch, tmp_path):
    import jupyter_mlops as mlops

    default = "sqlite:///" + os.path.join(str(tmp_path / "data"), "mlops", "mlops.db")
    assert mlops.get_tracking_uri() == default
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example/")
    assert mlops.get_tracking_uri() == "http://mlflow.example/"
    monkeypatch.setenv("JUPYTER_MLOPS_TRACKING_URI", "postgresql://u@h/db")
    assert mlops.get_tracking_uri() == "postgresql://u@h/db"
    mlops.set_tracking_uri(str(tmp_path / "x.db"))  # a bare path to a database file
    assert mlops.get_tracking_uri() == f"sqlite:///{tmp_path / 'x.db'}"
    mlops.set_tracking_uri(None)
    assert mlops.get_tracking_uri() == "postgresql://u@h/db"


def test_default_store_is_created_under_the_data_dir(tmp_path):
    import jupyter_mlops as mlops

    with mlops.start_run() as run:
        mlops.log_metric("m", 1)
    assert (tmp_path / "data" / "mlops" / "mlops.db").exists()
    assert mlops.get_run(run.info.run_id).data.metrics["m"].value == 1


def test_unsupported_uri_is_a_clear_error():
    import jupyter_mlops as mlops

    mlops.set_tracking_uri("ftp://nowhere/x")
    with pytest.raises(TrackingError, match="Unsupported tracking URI"):
        mlops.start_run()


def test_import_is_lazy_and_exposes_the_entry_points(scripts):
    out = scripts.run(
        """
        import json, sys
        import jupyter_mlops as mlops
        heavy = sorted(m for m in ("sqlalchemy", "requests", "pandas", "alembic", "numpy",
                                   "jupyter_server", "IPython") if m in sys.modules)
        names = ["start_run", "log_metric", "MlopsClient", "_jupyter_server_extension_points",
                 "_jupyter_labextension_paths", "load_ipython_extension",
                 "unload_ipython_extension"]
        found = {n: callable(getattr(mlops, n)) for n in names}
        print(json.dumps({"heavy": heavy, "found": found,
                          "ext": mlops._jupyter_server_extension_points()[0]["module"]}))
        """
    ).stdout
    got = json.loads(out)
    assert got["heavy"] == []
    assert all(got["found"].values()), got["found"]
    assert got["ext"] == "jupyter_mlops"


def test_lazy_exports_match_the_fluent_api():
    """The package's lazy name table is kept apart from fluent.__all__ so that
    `import jupyter_mlops` stays cheap; this keeps the two from drifting."""
    import jupyter_mlops
    from jupyter_mlops.client import fluent

    missing = set(fluent.__all__) - set(jupyter_mlops.__all__) - {"PagedList"}
    assert missing == set(), f"fluent names not exported by jupyter_mlops: {sorted(missing)}"
    for name in jupyter_mlops.__all__:
        assert getattr(jupyter_mlops, name) is not None
