"""A team server whose hub runs no tracking service: the hub answers 404 for every path
under the service's URL, so a training job (whose run the server records there,
server/team_store.py) is refused with 503 TEMPORARILY_UNAVAILABLE naming the service as not
running, not with MLflow's 404 "no such endpoint". (tests/hub/test_hub_ops.py runs a real
hub without the service, whose servers are then pointed at none.)"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from jupyter_mlops.server.team_store import TeamStore
from jupyter_mlops.tracking.errors import TrackingError


class _NoService(BaseHTTPRequestHandler):
    """What JupyterHub answers for a service it does not have: 404 and an HTML page (with
    ``serves`` set, a server that answers only those paths)."""

    serves: ClassVar[dict[str, bytes]] = {}

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        found = self.serves.get(self.path.split("?")[0])
        page = found or b"<html><body><h1>404 : Not Found</h1></body></html>"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json" if found else "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@pytest.fixture
def service_url() -> Iterator[str]:
    with _serve(_NoService) as url:
        yield url


@contextlib.contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    hub = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=hub.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{hub.server_address[1]}/services/mlops-tracking/mlops"
    hub.shutdown()
    hub.server_close()
    t.join()


@pytest.fixture
def jp_server_config(jp_server_config: dict, service_url: str) -> dict:
    """The tests' server (tests/conftest.py), its tracking on the hub's service."""
    jp_server_config["MLOpsApp"].update(hub_tracking_url=service_url, hub_relay_timeout=5.0)
    return jp_server_config


def test_a_job_without_the_hubs_tracking_service_is_503_naming_it(api, service_url: str) -> None:
    r = api("POST", "api/v1/jobs", {"spec": {"name": "no-service", "code": "print(1)"}})
    assert r.status == 503, r.body
    assert r.json["error_code"] == "TEMPORARILY_UNAVAILABLE"
    message = r.json["message"]
    assert f"The hub's tracking service at {service_url} is not running" in message, message
    # nothing was started: the job list is empty
    assert api("GET", "api/v1/jobs").json["jobs"] == []


def test_an_endpoint_missing_on_a_service_that_answers_stays_endpoint_not_found() -> None:
    """A service that answers MLflow's API but lacks one endpoint (an older MLflow) is running:
    its 404 stays MLflow's ENDPOINT_NOT_FOUND."""

    class Partial(_NoService):
        serves: ClassVar[dict[str, bytes]] = {
            "/mlops/api/2.0/mlflow/experiments/search": b'{"experiments": []}'
        }

    with _serve(Partial) as url:
        store = TeamStore(url.replace("/services/mlops-tracking", ""), "")
        with pytest.raises(TrackingError) as e:
            store.get_experiment_by_name("anything")
        assert e.value.error_code == "ENDPOINT_NOT_FOUND", e.value
        store.close()
