"""A team server's relayed tracking routes when the hub's tracking service is away: a port
nobody listens on, and a listener that accepts and never answers. Every relayed kind of route
(plain, file, bulk) answers 503 TEMPORARILY_UNAVAILABLE naming the service, never a 500 or a
hang. (The relay with a real hub, its proxy and service: tests/hub/test_hub_relay.py.)"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

ROUTES = [
    ("GET", "api/2.0/mlflow/experiments/search", None),
    ("POST", "api/2.0/mlflow/runs/search", {"experiment_ids": ["1"]}),
    ("POST", "api/v1/runs/count", {"experiment_ids": ["1"]}),
    ("GET", "get-artifact?run_id=" + "a" * 32 + "&path=model.pkl", None),
    ("GET", "api/v1/metrics/series-bulk?run_ids=" + "a" * 32 + "&metric_key=loss", None),
    ("GET", "api/2.0/mlflow-artifacts/artifacts/1/" + "a" * 32 + "/artifacts/f.txt", None),
]


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(32)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield sock.getsockname()[1]
    stop.set()
    t.join()
    for conn in held:
        conn.close()
    sock.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends


@pytest.fixture(params=["refused", "silent"])
def service_url(request: pytest.FixtureRequest) -> str:
    if request.param == "refused":
        return f"http://127.0.0.1:{_closed_port()}/services/mlops-tracking/mlops"
    port = request.getfixturevalue("silent_listener")
    return f"http://127.0.0.1:{port}/services/mlops-tracking/mlops"


@pytest.fixture
def jp_server_config(
    jp_server_config: dict, service_url: str, request: pytest.FixtureRequest
) -> dict:
    """The tests' server (tests/conftest.py), its tracking and registry on the hub's service.
    A silent service is waited for the whole timeout (0.2 s: each of its cases took 1 s);
    a refused connection fails at once, well within 1 s on a loaded machine, so that
    case keeps its own path rather than the timeout's."""
    silent = request.node.callspec.params["service_url"] == "silent"
    jp_server_config["MLOpsApp"].update(
        hub_tracking_url=service_url,
        hub_registry_url=service_url,
        hub_relay_timeout=0.2 if silent else 1.0,
    )
    return jp_server_config


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_relayed_route_answers_503_when_the_service_is_away(
    api, service_url: str, method: str, path: str, body: dict | None
) -> None:
    r = api(method, path, body)
    assert r.status == 503, r.body
    assert r.json["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert service_url in r.json["message"]
    assert r.headers.get("Retry-After") == "5"


def test_routes_not_relayed_stay_on_the_server(api) -> None:
    """Pipelines and the server's own version route do not need the hub."""
    assert api("GET", "api/v1/pipelines/targets").status == 200
    assert api("GET", "version").status == 200
