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
                [
                    sys.executable,
                    "-m",
                    "jupyter_mlops.cli",
                    "serve",
                    model_uri,
                    "--port",
                    str(port),
                    *extra,
                ],
                env=child_env(root),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=root,
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


def test_hostile_input_is_a_short_400(server):
    """Issue 11 #7 and its family: numbers past a double, deep nesting, lone surrogates
    and huge values answer 400 with a message of a few hundred characters at most."""
    cases = [
        '{"instances": [[%s, 1]]}' % ("9" * 401),
        '{"inputs": {"a": [%s], "b": [1]}}' % ("9" * 401),
        '{"dataframe_records": [{"a": %s, "b": 1}]}' % ("9" * 401),
        "[" * 100_000,
        '{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"instances": [["\\ud800", 1]]}',
        '{"instances": [["%s", 1]]}' % ("x" * 5_000_000),
        '{"dataframe_split": {"columns": ["%s"], "data": [[1]]}}' % ("c" * 5_000_000),
    ]
    for body in cases:
        r = post(server, body)
        assert r.status_code == 400, (body[:80], r.status_code, r.text[:300])
        assert r.json()["error_code"] == "BAD_REQUEST"
        assert len(r.content) < 1000, (body[:80], len(r.content))


def test_content_type_and_params_as_mlflow(server):
    """MLflow's scoring server refuses a request without a Content-Type (415), and
    ignores params the model's signature does not define (with a warning in its log)."""
    r = requests.post(server + "/invocations", data=b'{"instances": [[1, 2]]}', timeout=10)
    assert r.status_code == 415, r.text
    assert "application/json, text/csv" in r.json()["message"]
    for params in ({"nope": 1, "x": [1]}, [1, 2], "p"):
        r = post(server, {"instances": [[0.0, 1.0], [1.0, 0.0]], "params": params})
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": [0, 1]}


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


# -- Open Inference Protocol (V2), /metrics, the body limit ---------------------------------
def infer(url: str, body, name: str = "model") -> requests.Response:
    return requests.post(f"{url}/v2/models/{name}/infer", json=body, timeout=10)


def test_v2_health_and_metadata(server):
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/model/ready"):
        r = requests.get(server + path, timeout=5)
        assert r.status_code == 200, path
    assert requests.get(server + "/v2", timeout=5).json()["name"] == "jupyter-mlops"
    meta = requests.get(server + "/v2/models/model", timeout=5).json()
    assert meta["name"] == "model" and meta["platform"] == "sklearn"
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        ("a", "FP64", [-1]),
        ("b", "FP64", [-1]),
    ]
    r = requests.get(server + "/v2/models/other/ready", timeout=5)
    assert r.status_code == 404 and "serves 'model'" in r.json()["error"]


@pytest.mark.parametrize(
    "inputs",
    [
        [
            {"name": "a", "shape": [4], "datatype": "FP64", "data": X["a"].tolist()},
            {"name": "b", "shape": [4], "datatype": "FP64", "data": X["b"].tolist()},
        ],
        [
            {"name": "b", "shape": [4, 1], "datatype": "FP32", "data": [[v] for v in X["b"]]},
            {"name": "a", "shape": [4, 1], "datatype": "FP64", "data": [[v] for v in X["a"]]},
        ],
        [{"name": "x", "shape": [4, 2], "datatype": "FP64", "data": X.values.tolist()}],
        [{"name": "x", "shape": [4, 2], "datatype": "FP64", "data": X.values.reshape(-1).tolist()}],
    ],
)
def test_v2_infer(server, inputs):
    r = infer(server, {"id": "req-1", "inputs": inputs})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["model_name"] == "model" and answer["id"] == "req-1"
    assert answer["outputs"] == [{"name": "predict", "shape": [4], "datatype": "INT64", "data": Y}]


def test_v2_integer_input_and_requested_output(server):
    body = {
        "inputs": [
            {"name": "a", "shape": [1], "datatype": "INT32", "data": [1]},
            {"name": "b", "shape": [1], "datatype": "INT64", "data": [0]},
        ],
        "outputs": [{"name": "predict"}],
    }
    r = infer(server, body)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [1]
    assert r.json()["id"]  # one is made up when the request has none


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"inputs": []}, "'inputs' must be a non-empty list"),
        ({"inputs": [{"name": "a", "shape": [1], "datatype": "FP64"}]}, "inputs[0] has no 'data'"),
        (
            {"inputs": [{"name": "a", "shape": [1], "datatype": "FP99", "data": [1]}]},
            "inputs[0] ('a').datatype \"FP99\" is not a V2 datatype",
        ),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0]},
                    {"name": "b", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
                ]
            },
            "inputs[0] ('a').data has 1 element(s); shape [2] needs 2",
        ),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [1], "datatype": "INT8", "data": [1.5]},
                    {"name": "b", "shape": [1], "datatype": "FP64", "data": [1.0]},
                ]
            },
            "inputs[0] ('a').data[0] is 1.5: INT8 data must be integers",
        ),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [1], "datatype": "UINT8", "data": [300]},
                    {"name": "b", "shape": [1], "datatype": "FP64", "data": [1.0]},
                ]
            },
            "out of range for UINT8",
        ),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]},
                    {"name": "c", "shape": [1], "datatype": "FP64", "data": [1.0]},
                ]
            },
            "no input named ['b']",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            "needs shape [N, 2]",
        ),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [1], "datatype": "BOOL", "data": [1]},
                    {"name": "b", "shape": [1], "datatype": "FP64", "data": [1.0]},
                ]
            },
            "BOOL data must be true/false",
        ),
        (
            {
                "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [[1, 2]]}],
                "outputs": [{"name": "proba"}],
            },
            "outputs: ['proba'] are not outputs",
        ),
    ],
)
def test_v2_bad_input_names_the_field(server, body, fragment):
    r = infer(server, body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]


def test_metrics(server):
    post(server, {"inputs": X.values.tolist()})
    post(server, "{not json")
    text = requests.get(server + "/metrics", timeout=5).text
    lines = text.splitlines()
    assert any(
        ln.startswith('mlops_scoring_requests_total{endpoint="invocations",code="200"}')
        for ln in lines
    )
    assert any(
        ln.startswith('mlops_scoring_errors_total{endpoint="invocations",code="400"}')
        for ln in lines
    )
    assert any(
        ln.startswith(
            'mlops_scoring_request_duration_seconds_bucket{endpoint="invocations",le="+Inf"}'
        )
        for ln in lines
    )
    assert "# TYPE mlops_scoring_request_duration_seconds histogram" in lines
    assert any(ln.startswith("mlops_scoring_model_info{") and 'name="model"' in ln for ln in lines)


def test_a_large_body_is_refused_before_it_is_read(server):
    """50 MB announced, nothing sent: the 413 comes at once (the body is never buffered)."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(server)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n"
        )
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), data[:200]
    assert b"at most 20971520 bytes (--max-body-size)" in body
    # the server is fine afterwards
    assert post(server, {"inputs": X.values.tolist()}).status_code == 200
