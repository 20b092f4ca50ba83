"""``data_keys`` on ``runs/search`` and ``api/v1/runs/changes`` (ours, beside MLflow's
fields): the runs carry only the keys named of each kind, the same runs in the same order
and pages as without it; a request without it gets every key, as MLflow's clients expect.
SQLite, and PostgreSQL when JUPYTER_MLOPS_TEST_POSTGRES_URL is set."""

from __future__ import annotations

from typing import Any

import pytest

M = "api/2.0/mlflow/"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def mlops_db_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_db_url")
    return f"sqlite:///{tmp_path / 'mlops.db'}"


def _seed(api: Any) -> tuple[str, list[str]]:
    exp_id = api("POST", M + "experiments/create", {"name": "data-keys"}).json["experiment_id"]
    ids = []
    for i in range(5):
        r = api(
            "POST",
            M + "runs/create",
            {"experiment_id": exp_id, "start_time": 1_700_000_000_000 + i, "run_name": f"r{i}"},
        )
        rid = r.json["run"]["info"]["run_id"]
        api(
            "POST",
            M + "runs/log-batch",
            {
                "run_id": rid,
                "params": [{"key": f"p{k}", "value": str(i * 10 + k)} for k in range(4)],
                "metrics": [
                    {"key": f"m{k}", "value": i + k / 10, "timestamp": 1, "step": 0}
                    for k in range(4)
                ],
                "tags": [{"key": f"t{k}", "value": f"v{i}{k}"} for k in range(3)],
            },
        )
        ids.append(rid)
    return exp_id, ids


def _data(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    d = run.get("data", {})
    return {
        kind: {x["key"]: x["value"] for x in d.get(kind, [])}
        for kind in ("params", "metrics", "tags")
    }


def test_search_carries_only_the_keys_asked_for(api):
    exp_id, ids = _seed(api)

    def search(**body):
        r = api("POST", M + "runs/search", {"experiment_ids": [exp_id], **body})
        assert r.status == 200, r.body
        return r.json

    full = search(order_by=["metrics.m1 DESC"])
    assert [r["info"]["run_id"] for r in full["runs"]] == ids[::-1]
    assert len(_data(full["runs"][0])["params"]) == 4  # no data_keys: every key

    keys = {"params": ["p2", "nope"], "metrics": ["m1"], "tags": ["t0", "mlflow.runName"]}
    narrow = search(order_by=["metrics.m1 DESC"], data_keys=keys)
    assert [r["info"]["run_id"] for r in narrow["runs"]] == ids[::-1]
    top = _data(narrow["runs"][0])
    assert top == {
        "params": {"p2": "42"},
        "metrics": {"m1": pytest.approx(4.1)},
        "tags": {"t0": "v40", "mlflow.runName": "r4"},
    }
    assert narrow["runs"][0]["info"] == full["runs"][0]["info"]

    # A kind left out comes whole; an empty list brings none of it.
    some = _data(search(data_keys={"metrics": []}, filter="params.p0 = '20'")["runs"][0])
    assert some["metrics"] == {} and len(some["params"]) == 4 and some["tags"]["t2"] == "v22"
    nothing = search(data_keys={"params": [], "metrics": [], "tags": []})["runs"]
    assert len(nothing) == 5 and all(
        _data(r) == {"params": {}, "metrics": {}, "tags": {}} for r in nothing
    )

    # Pages and their tokens are those of the search without it.
    seen, token = [], None
    while True:
        page = search(
            max_results=2,
            order_by=["params.p1 ASC"],
            data_keys={"params": ["p1"]},
            **({"page_token": token} if token else {}),
        )
        seen += [(r["info"]["run_id"], _data(r)["params"]) for r in page["runs"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == [(rid, {"p1": str(i * 10 + 1)}) for i, rid in enumerate(ids)]


def test_changed_runs_carry_only_the_keys_asked_for(api):
    exp_id, ids = _seed(api)
    r = api(
        "POST",
        "api/v1/runs/changes",
        {"experiment_ids": [exp_id], "since": 0, "data_keys": {"metrics": ["m3"], "params": []}},
    )
    assert r.status == 200, r.body
    got = {x["info"]["run_id"]: _data(x) for x in r.json["runs"]}
    assert set(got) == set(ids)
    assert got[ids[2]]["metrics"] == {"m3": pytest.approx(2.3)}
    assert got[ids[2]]["params"] == {} and len(got[ids[2]]["tags"]) >= 3


@pytest.mark.parametrize(
    ("data_keys", "text"),
    [
        ("metrics", "data_keys"),
        ({"metrics": "m1"}, "data_keys.metrics"),
        ({"metrics": [1]}, "data_keys.metrics[0]"),
        ({"inputs": []}, "inputs"),
        ({"params": [f"p{i}" for i in range(1001)]}, "at most 1000"),
    ],
)
def test_malformed_data_keys_are_a_400_naming_the_field(api, data_keys, text):
    r = api("POST", M + "runs/search", {"experiment_ids": ["0"], "data_keys": data_keys})
    assert r.status == 400, r.body
    assert r.json["error_code"] == "INVALID_PARAMETER_VALUE"
    assert text in r.json["message"], r.json["message"]


def test_rest_store_sends_data_keys(jupyter_server_process):
    """The Python client's REST store passes ``data_keys`` on to a real server."""
    from jupyter_mlops.client.rest_store import RestTrackingStore
    from jupyter_mlops.tracking.entities import Metric

    server = jupyter_server_process()
    store = RestTrackingStore(server.tracking_uri, token=server.token)
    exp_id = store.create_experiment("rest-data-keys")
    run = store.create_run(exp_id, start_time=1, tags={"team": "a"})
    store.log_batch(
        run.info.run_id, metrics=[Metric("m", 1.0, 1, 0)], params=[("p", "1"), ("q", "2")]
    )
    runs, _ = store.search_runs([exp_id], data_keys={"params": ["q"], "metrics": []})
    assert runs[0].data.params == {"q": "2"}
    assert runs[0].data.metrics == {} and runs[0].data.tags["team"] == "a"
    runs, _ = store.search_runs([exp_id])
    assert runs[0].data.params == {"p": "1", "q": "2"} and "m" in runs[0].data.metrics
