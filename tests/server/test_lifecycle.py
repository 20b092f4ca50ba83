"""The extension's life: what kernels inherit, the heartbeat reaper, and a clean
shutdown (a restart while a client logs over HTTP loses nothing)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import threading
import time

import pytest
import requests

from jupyter_mlops.pipelines.service import PipelineService

M = "api/2.0/mlflow/"
EXPORTED = (
    "JUPYTER_MLOPS_TRACKING_URI",
    "JUPYTER_MLOPS_SERVER_URL",
    "JUPYTER_MLOPS_SERVER_TOKEN",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_TOKEN",
    "JUPYTER_MLOPS_EXPORTED",
)


@pytest.fixture
def clean_env(monkeypatch):
    """No tracking variables inherited from the shell that runs the tests."""
    for name in EXPORTED + ("JUPYTERHUB_API_TOKEN",):
        monkeypatch.delenv(name, raising=False)


def mlops_app(serverapp):
    return next(iter(serverapp.extension_manager.extension_apps["jupyter_mlops"]))


def kernel_environ(serverapp, loop) -> dict:
    """Start a kernel through the server, as JupyterLab does, and read its environment."""
    code = f"import os, json; print(json.dumps({{k: os.environ.get(k) for k in {EXPORTED!r}}}))"

    async def go() -> dict:
        km = serverapp.kernel_manager
        kid = await km.start_kernel(kernel_name="python3")
        kc = km.get_kernel(kid).client()
        kc.start_channels()
        out: list[str] = []
        try:
            await kc.wait_for_ready(timeout=90)

            def hook(msg):
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])

            await kc.execute_interactive(code, output_hook=hook, timeout=90)
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(kid, now=True)
        return json.loads("".join(out))

    return loop.run_until_complete(go())


@pytest.mark.slow
def test_kernels_inherit_the_tracking_environment(
    clean_env, jp_serverapp, jp_asyncio_loop, mlops_db_url
):
    env = kernel_environ(jp_serverapp, jp_asyncio_loop)
    server_url = f"http://127.0.0.1:{jp_serverapp.port}{jp_serverapp.base_url}"
    token = jp_serverapp.identity_provider.token
    assert env["JUPYTER_MLOPS_TRACKING_URI"] == mlops_db_url  # kernels write to the DB directly
    assert env["JUPYTER_MLOPS_SERVER_URL"] == server_url
    assert env["JUPYTER_MLOPS_SERVER_TOKEN"] == token
    assert env["MLFLOW_TRACKING_URI"] == server_url + "mlops"
    assert env["MLFLOW_TRACKING_TOKEN"] == token


def test_user_settings_are_not_overridden(clean_env, monkeypatch, request):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "users-own")
    serverapp = request.getfixturevalue("jp_serverapp")
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://mlflow.example:5000"
    assert os.environ["MLFLOW_TRACKING_TOKEN"] == "users-own"
    assert os.environ["JUPYTER_MLOPS_TRACKING_URI"] == mlops_app(serverapp).database_url
    # what a parent jupyter-mlops server exported is not a user setting
    assert "MLFLOW_TRACKING_URI" not in os.environ["JUPYTER_MLOPS_EXPORTED"].split(",")


class TestReaper:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        jp_server_config["MLOpsApp"]["heartbeat_timeout"] = 1.0
        return jp_server_config

    def test_silent_runs_with_heartbeats_are_killed(self, api, jp_asyncio_loop):
        exp = api("POST", M + "experiments/create", {"name": "reap"}).json["experiment_id"]
        beating = api("POST", M + "runs/create", {"experiment_id": exp}).json["run"]["info"]
        other = api("POST", M + "runs/create", {"experiment_id": exp}).json["run"]["info"]
        assert api("POST", "api/v1/runs/heartbeat", {"run_ids": [beating["run_id"]]}).status == 200

        deadline = time.monotonic() + 60
        while True:  # the periodic reaper runs while the loop does
            jp_asyncio_loop.run_until_complete(asyncio.sleep(0.2))
            status = api("GET", M + "runs/get", params={"run_id": beating["run_id"]}).json
            if status["run"]["info"]["status"] == "KILLED" or time.monotonic() > deadline:
                break
        assert status["run"]["info"]["status"] == "KILLED"
        # a run whose writer never sent heartbeats (another client) is left alone
        r = api("GET", M + "runs/get", params={"run_id": other["run_id"]})
        assert r.json["run"]["info"]["status"] == "RUNNING"


def _log_until_acknowledged(session, url, token, run_id, steps, acked, stop):
    """A client that retries each point until the server says 200, as clients do
    when the server is away; records what was acknowledged."""
    for step in steps:
        body = {"run_id": run_id, "key": "m", "value": float(step), "timestamp": step, "step": step}
        while not stop.is_set():
            try:
                r = session.post(
                    url, json=body, timeout=10, headers={"Authorization": f"Bearer {token}"}
                )
                if r.status_code == 200:
                    acked.append(step)
                    break
                assert r.status_code in (502, 503), r.text  # never a client-error answer
            except requests.RequestException:
                pass
            time.sleep(0.05)


@pytest.mark.slow
def test_restart_while_logging_loses_nothing(jupyter_server_process):
    server = jupyter_server_process(base_url="/jh/user/")
    s = requests.Session()
    auth = {"Authorization": f"token {server.token}"}
    api = server.tracking_uri + "/" + M
    exp = s.post(api + "experiments/create", json={"name": "restart"}, headers=auth).json()
    run_id = s.post(
        api + "runs/create", json={"experiment_id": exp["experiment_id"]}, headers=auth
    ).json()["run"]["info"]["run_id"]

    acked: list[int] = []
    stop = threading.Event()
    writers = [
        threading.Thread(
            target=_log_until_acknowledged,
            daemon=True,
            args=(
                requests.Session(),
                api + "runs/log-metric",
                server.token,
                run_id,
                range(w, 200, 4),
                acked,
                stop,
            ),
        )
        for w in range(4)
    ]
    for t in writers:
        t.start()
    deadline = time.monotonic() + 120
    while len(acked) < 60:
        assert time.monotonic() < deadline, f"only {len(acked)} points acknowledged"
        time.sleep(0.05)
    code = server.stop(signal.SIGTERM)  # clean shutdown mid-logging
    log = server.log()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log
    # the store was closed: the SQLite file is consistent on its own
    db = sqlite3.connect(server.db_url[len("sqlite:///") :])
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()

    server.start()
    for t in writers:
        t.join(timeout=240)
    stop.set()
    assert sorted(acked) == list(range(200))
    r = s.get(
        api + "metrics/get-history", params={"run_id": run_id, "metric_key": "m"}, headers=auth
    )
    steps = {m["step"] for m in r.json()["metrics"]}
    assert steps == set(range(200))  # every acknowledged point is there


def _big_write(api, experiment: str, n: int) -> tuple[str, str]:
    """A new run in a new experiment, and a log-bulk body of ``n`` points for it."""
    exp = api("POST", M + "experiments/create", {"name": experiment}).json["experiment_id"]
    run_id = api("POST", M + "runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
    return run_id, json.dumps(
        {
            "run_id": run_id,
            "metrics": [
                {
                    "key": "big",
                    "steps": list(range(n)),
                    "timestamps": [0] * n,
                    "values": [float(i) for i in range(n)],
                }
            ],
        }
    )


def test_shutdown_finishes_pending_writes_then_refuses(
    api, jp_serverapp, jp_asyncio_loop, http_server_client, jp_auth_header, mlops_db_url
):
    """A write in flight when the extension stops is committed and answered 200;
    later requests get 503 (which clients retry), and the store is closed."""
    run_id, body = _big_write(api, "stop", n := 20_000)
    app = mlops_app(jp_serverapp)
    url = f"{jp_serverapp.base_url}mlops/api/v1/runs/log-bulk"

    async def go():
        fetch = asyncio.ensure_future(
            http_server_client.fetch(
                url,
                method="POST",
                body=body,
                headers=jp_auth_header,
                raise_error=False,
                request_timeout=120,
            )
        )
        while app.pending_calls == 0 and not fetch.done():  # noqa: ASYNC110 - polls a counter; the app has no event for it
            await asyncio.sleep(0.001)
        assert app.pending_calls > 0, "the write was not in flight"
        await app.stop_extension()
        return await fetch

    r = jp_asyncio_loop.run_until_complete(go())
    assert r.code == 200, r.body
    late = api("GET", M + "runs/get", params={"run_id": run_id})
    assert late.status == 503 and late.json["error_code"] == "TEMPORARILY_UNAVAILABLE"

    from jupyter_mlops.tracking import open_store

    store = open_store(mlops_db_url)
    try:
        points, _ = store.get_metric_history(run_id, "big")
        assert len(points) == n
    finally:
        store.close()


class TestDefaults:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        jp_server_config.pop("MLOpsApp")
        return jp_server_config

    def test_store_and_artifacts_default_to_the_jupyter_data_dir(
        self, api, jp_serverapp, jp_data_dir
    ):
        app = mlops_app(jp_serverapp)
        db = jp_data_dir / "mlops" / "mlops.db"
        assert app.database_url == f"sqlite:///{db}" and db.is_file()
        exp = api("POST", M + "experiments/create", {"name": "d"}).json["experiment_id"]
        run = api("POST", M + "runs/create", {"experiment_id": exp}).json["run"]["info"]
        r = api(
            "PUT", f"api/2.0/mlflow-artifacts/artifacts/{exp}/{run['run_id']}/artifacts/x.txt", b"x"
        )
        assert r.status == 200
        assert (
            jp_data_dir / "mlops" / "artifacts" / exp / run["run_id"] / "artifacts" / "x.txt"
        ).read_bytes() == b"x"


def test_stopping_restores_the_environment(clean_env, jp_serverapp, jp_asyncio_loop):
    assert os.environ["JUPYTER_MLOPS_TRACKING_URI"].startswith("sqlite:///")
    jp_asyncio_loop.run_until_complete(mlops_app(jp_serverapp).stop_extension())
    assert not [name for name in EXPORTED if name in os.environ]


class TestNoExport:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        jp_server_config["MLOpsApp"]["export_kernel_env"] = False
        return jp_server_config

    def test_nothing_is_exported(self, clean_env, jp_serverapp):
        assert not [name for name in EXPORTED if name in os.environ]


def test_the_server_answers_while_a_big_write_runs(
    api, jp_serverapp, jp_asyncio_loop, http_server_client, jp_auth_header
):
    """Store calls run in threads: the event loop keeps serving other requests."""
    _, body = _big_write(api, "busy", 300_000)
    app = mlops_app(jp_serverapp)
    base = jp_serverapp.base_url

    async def go():
        big = asyncio.ensure_future(
            http_server_client.fetch(
                f"{base}mlops/api/v1/runs/log-bulk",
                method="POST",
                body=body,
                headers=jp_auth_header,
                raise_error=False,
                request_timeout=300,
            )
        )
        while app.pending_calls == 0 and not big.done():  # noqa: ASYNC110 - polls a counter; the app has no event for it
            await asyncio.sleep(0.001)
        status = await http_server_client.fetch(f"{base}api/status", headers=jp_auth_header)
        still_writing = not big.done()
        return status, still_writing, await big

    status, still_writing, big = jp_asyncio_loop.run_until_complete(go())
    assert status.code == 200 and still_writing
    assert big.code == 200


class RecordingPipelineService(PipelineService):
    """A user's subclass, as ``c.MLOpsApp.pipeline_service_class`` takes one: the real
    service, noting when the app starts and stops it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    async def start(self, schedules: bool = True) -> None:
        await super().start(schedules)
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")
        await super().stop()


class TestServices:
    @pytest.fixture
    def jp_server_config(self, jp_server_config, tmp_path):
        jp_server_config["MLOpsApp"]["pipeline_service_class"] = RecordingPipelineService
        jp_server_config["PipelineService"] = {
            "schedule_interval": 7.0,
            "warm_kernels": 0,
            "runs_dir": str(tmp_path / "runs"),
        }
        return jp_server_config

    def test_the_app_builds_publishes_starts_and_stops_its_services(
        self, api, jp_serverapp, jp_asyncio_loop
    ):
        app = mlops_app(jp_serverapp)
        svc = app.pipeline_service
        assert isinstance(svc, RecordingPipelineService)
        assert jp_serverapp.web_app.settings["mlops_pipeline_service"] is svc
        assert app.services() == [
            app.notification_service,  # first: stopped last, it tells what the others end
            svc,
            app.deployment_service,
            app.training_service,
            app.project_service,
            app.hub_agent_service,
            app.hub_runs_service,
        ]  # in start order
        assert jp_serverapp.web_app.settings["mlops_training_service"] is app.training_service
        assert svc.schedule_interval == 7.0  # c.PipelineService.* reaches the subclass

        deadline = time.monotonic() + 60  # started on the loop's first turns
        while svc.calls != ["start"] and time.monotonic() < deadline:
            jp_asyncio_loop.run_until_complete(asyncio.sleep(0.05))
        assert svc.calls == ["start"]
        r = api("GET", "api/v1/pipelines/targets")
        assert r.status == 200 and r.json["targets"][0]["name"] == "local"

        jp_asyncio_loop.run_until_complete(app.stop_extension())
        assert svc.calls == ["start", "stop"] and app.pipeline_service is None
        assert app.training_service is None
        r = api("GET", "api/v1/pipelines/targets")
        assert r.status == 503 and r.json["error_code"] == "TEMPORARILY_UNAVAILABLE"
