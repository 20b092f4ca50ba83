"""Concurrent writes of the same new traces over REST on PostgreSQL (tracking/trace_store.py): eight clients
send the same traces at once through our ``api/v1/traces/log-bulk`` and MLflow's ``POST api/3.0/mlflow/traces``
(a client retrying while its first request is still being committed; two exporters). Before, the losers of
the race for each new trace id answered 500 (a unique-key violation); now every request succeeds and each
trace is stored once, with its spans."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from pgschema import fresh_schema
from serverproc import JupyterServerProcess

from jupyter_mlops.tracking.traces import hex_to_b64 as b64

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CLIENTS = 8
TRACES = 20


@pytest.fixture
def server(tmp_path: Path):
    with fresh_schema("traceraces") as url:
        srv = JupyterServerProcess(tmp_path, extra_args=[f"--MLOpsApp.database_url={url}"])
        yield srv.start()
        srv.stop()


def _trace(exp: str, i: int, r: int) -> dict[str, Any]:
    trace_hex = f"{r:04x}{i:028x}"
    span = {
        "trace_id": b64(trace_hex),
        "span_id": b64(f"{i:016x}"),
        "parent_span_id": None,
        "name": f"root{i}",
        "start_time_unix_nano": 1_000_000_000 + i,
        "end_time_unix_nano": 2_000_000_000 + i,
        "status": {"code": "STATUS_CODE_OK"},
        "attributes": {"mlflow.spanType": '"CHAIN"'},
        "events": [],
    }
    info = {
        "trace_id": f"tr-{trace_hex}",
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": exp},
        },
        "request_time": "2024-01-01T00:00:00Z",
        "execution_duration": "1s",
        "state": "OK",
    }
    return {"info": info, "spans": [span]}


def test_concurrent_writes_of_the_same_new_traces_all_succeed(server: JupyterServerProcess) -> None:
    s = requests.Session()
    s.headers["Authorization"] = f"token {server.token}"
    url = server.tracking_uri
    exp = s.post(url + "/api/2.0/mlflow/experiments/create", json={"name": "races"}, timeout=60)
    exp_id = exp.json()["experiment_id"]
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()
    rounds = 3
    for r in range(rounds):
        batch = [_trace(exp_id, i, r) for i in range(TRACES)]
        barrier = threading.Barrier(CLIENTS)

        def send(k: int, batch: list[Any] = batch, barrier: threading.Barrier = barrier) -> None:
            client = requests.Session()
            client.headers["Authorization"] = f"token {server.token}"
            barrier.wait()
            if k % 2:
                got = [client.post(url + "/api/v1/traces/log-bulk", json={"traces": batch})]
            else:
                got = [
                    client.post(
                        url + "/api/3.0/mlflow/traces", json={"trace": {"trace_info": t["info"]}}
                    )
                    for t in batch[:6]
                ]
            with lock:
                answers.extend((g.status_code, g.text[:300]) for g in got)

        threads = [threading.Thread(target=send, args=(k,)) for k in range(CLIENTS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert [a for a in answers if a[0] != 200] == []
    found = s.post(
        url + "/api/3.0/mlflow/traces/search",
        json={"locations": [{"mlflow_experiment": {"experiment_id": exp_id}}], "max_results": 500},
        timeout=60,
    ).json()["traces"]
    assert len(found) == rounds * TRACES == len({t["trace_id"] for t in found})
    got = s.get(
        url + "/api/3.0/mlflow/traces/get", params={"trace_id": found[0]["trace_id"]}, timeout=60
    )
    names = [sp["name"] for sp in got.json()["trace"]["spans"]]
    assert len(names) == 1 and names[0].startswith("root"), names
