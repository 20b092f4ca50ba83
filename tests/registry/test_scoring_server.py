"""``jupyter mlops serve``: a real server subprocess, real HTTP requests in
MLflow's scoring protocol, 400s with clear messages for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests
from serverproc import child_env, free_port, start_server, stop_process
from sklearn.linear_model import LogisticRegression

from jupyter_mlops.registry.flavors import save_model

X = pd.DataFrame({"a": [0.0, 1.0, 0.2, 0.9], "b": [1.0, 0.0, 0.9, 0.1]})
Y = [0, 1, 0, 1]


def start_scoring_server(model_uri: str, root: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """``jupyter mlops serve`` on a free port (a new one if another process takes it
    before the server binds it), its output in ``root/serve.log``; (process, base URL)."""
    log_path = root / "serve.log"

    def launch(port: int) -> subprocess.Popen:
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "jupyter_mlops.cli", "serve", model_uri,
                 "--port", str(port), *extra],
                env=child_env(root), stdout=log, stderr=subprocess.STDOUT, cwd=root,
            )

    def answers(port: int) -> bool:
        return requests.get(f"http://127.0.0.1:{port}/ping", timeout=10).status_code == 200

    proc, port = start_server(launch, answers, log_path, "jupyter mlops serve")
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    model = LogisticRegression().fit(X, Y)
    save_model(model, str(tmp / "model"), input_example=X[:2])
    proc, url = start_scoring_server(str(tmp / "model"), tmp)
    yield url
    stop_process(proc)


def post(url: str, body, ctype: str = "application/json") -> requests.Response:
    data = body if isinstance(body, (str, bytes)) else None
    return requests.post(
        url + "/invocations",
        json=None if data is not None else body,
        data=data,
        headers={"Content-Type": ctype},
        timeout=10,
    )


def test_ping_and_version(server):
    assert requests.get(server + "/ping", timeout=5).status_code == 200
    assert requests.get(server + "/health", timeout=5).status_code == 200
    r = requests.get(server + "/version", timeout=5)
    assert r.status_code == 200 and r.text.strip()


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": X.values.tolist()}},
        {"dataframe_split": {"columns": ["b", "a"], "data": X[["b", "a"]].values.tolist()}},
        {"dataframe_records": X.to_dict(orient="records")},
        {"instances": X.values.tolist()},
        {"inputs": X.values.tolist()},
        {"inputs": {"a": X["a"].tolist(), "b": X["b"].tolist()}},
        {"dataframe_split": {"columns": ["a", "b"], "data": X.values.tolist()}, "params": {}},
    ],
)
def test_json_formats(server, body):
    r = post(server, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": Y}


def test_single_row_and_csv(server):
    r = post(server, {"dataframe_records": [{"a": 1.0, "b": 0.0}]})
    assert r.json() == {"predictions": [1]}
    r = post(server, {"inputs": [1.0, 0.0]})
    assert r.json() == {"predictions": [1]}
    r = post(server, X.to_csv(index=False), "text/csv")
    assert r.status_code == 200 and r.json() == {"predictions": Y}
    r = post(server, X[["b", "a"]].to_csv(index=False), "text/csv; charset=utf-8")
    assert r.json() == {"predictions": Y}


@pytest.mark.parametrize(
    "body,ctype,status,fragment",
    [
        ("{not json", "application/json", 400, "Invalid JSON input"),
        ({"rows": [[1, 2]]}, "application/json", 400, "exactly one of the keys"),
        ({"inputs": [[1, 2]], "instances": [[1, 2]]}, "application/json", 400, "exactly one"),
        ({"dataframe_records": [{"a": 1.0}]}, "application/json", 400, "no value for column 'b'"),
        (
            {"dataframe_split": {"columns": ["a", "c"], "data": [[1, 2]]}},
            "application/json",
            400,
            "Missing column(s) ['b']",
        ),
        ({"instances": [[1, 2, 3]]}, "application/json", 400, "Expected 2 value(s) per row"),
        ({"instances": [[1, 2], [3]]}, "application/json", 400, "same number of values"),
        ({"inputs": [["x", "y"]]}, "application/json", 400, "Failed to predict"),
        ({"dataframe_split": {"data": []}}, "application/json", 400, "non-empty"),
        ("[1, 2]", "application/json", 400, "must be an object"),
        ("a,b\n1\n", "text/csv", 400, "must have 2 values"),
        ("a,b\n", "text/csv", 400, "header row and at least one data row"),
        ("<x/>", "application/xml", 415, "application/json, text/csv"),
    ],
)
def test_bad_input(server, body, ctype, status, fragment):
    r = post(server, body, ctype)
    assert r.status_code == status, r.text
    answer = r.json()
    assert answer["error_code"] == "BAD_REQUEST"
    assert fragment in answer["message"]


def test_unknown_path_and_missing_model(server, tmp_path):
    assert requests.get(server + "/nope", timeout=5).status_code == 404
    # The model is looked for before the port is bound: any port will do.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_mlops.cli",
            "serve",
            str(tmp_path / "absent"),
            "--port",
            str(free_port()),
        ],
        check=False,
        env=child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "No model directory" in proc.stderr


def test_serves_a_registered_model_by_alias(tmp_path):
    import jupyter_mlops as mlops

    db = f"sqlite:///{tmp_path / 'mlops.db'}"
    mlops.set_tracking_uri(db)
    try:
        mlops.set_experiment("serve")
        with mlops.start_run():
            mlops.log_model(LogisticRegression().fit(X, Y), "model", registered_model_name="clf")
        mlops.RegistryClient().set_registered_model_alias("clf", "live", 1)
    finally:
        mlops.set_tracking_uri(None)
    proc, url = start_scoring_server("models:/clf@live", tmp_path, "--tracking-uri", db)
    try:
        r = post(url, {"dataframe_records": X.to_dict(orient="records")})
        assert r.json() == {"predictions": Y}
    finally:
        stop_process(proc)
