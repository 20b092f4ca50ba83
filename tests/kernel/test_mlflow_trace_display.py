"""MLflow's ``@mlflow.trace`` in a notebook kernel started by our server: the cell shows its traces.

MLflow's own display (``mlflow.tracing.display``) outputs an ``<iframe>`` of ``<base>/static-files/lib/
notebook-trace-renderer/index.html``; the server exports ``MLFLOW_NOTEBOOK_TRACE_RENDERER_BASE_URL`` as a
path, so the frame loads from JupyterLab's own origin (with its login) rather than from the kernel's
server-side tracking URI. Once jupyter-mlops is imported in the kernel, the same cell shows our
``application/vnd.mlops.trace+json`` bundle instead (JupyterLab's trace renderer)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from test_notebook_kernel import Kernel, Server

pytest.importorskip("mlflow")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MIME = "application/vnd.mlops.trace+json"

CHAIN = """
import mlflow
mlflow.set_experiment("{experiment}")

@mlflow.trace(span_type="TOOL")
def leaf(x):
    return x * 2

@mlflow.trace(name="top")
def top(x):
    return leaf(x) + 1

print("done", top(20))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("tracedisplay"))
    srv.work.mkdir(parents=True, exist_ok=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _displayed(kernel: Kernel, code: str) -> list[dict[str, Any]]:
    """Run a cell; the data of every display it made (after the cell: MLflow's post-run hook)."""
    shown: list[dict[str, Any]] = []
    text: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("display_data", "execute_result"):
            shown.append(msg["content"]["data"])
        elif msg["msg_type"] == "stream":
            text.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            text.append("\n".join(msg["content"]["traceback"]))

    reply = kernel.client.execute_interactive(code, timeout=120, output_hook=hook)
    assert reply["content"]["status"] == "ok", "".join(text)
    assert "done 41" in "".join(text)
    return shown


def _trace_on_server(server: Server, trace_id: str) -> dict[str, Any]:
    for _ in range(120):  # MLflow exports asynchronously
        r = server.request("GET", "mlops/api/3.0/mlflow/traces/get", params={"trace_id": trace_id})
        if r.status_code == 200 and r.json()["trace"].get("spans"):
            return r.json()["trace"]  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"trace {trace_id} never reached the server: {r.status_code} {r.text}")


def test_mlflows_own_frame_is_same_origin_and_its_page_shows_the_trace(server: Server) -> None:
    kernel = Kernel(server, "mlflow-only.ipynb")
    try:
        shown = _displayed(kernel, CHAIN.format(experiment="display-iframe"))
    finally:
        kernel.close()
    frames = [d["text/html"] for d in shown if "text/html" in d]
    assert len(frames) == 1, shown
    src = frames[0].split('src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    url = urlsplit(src)
    # a path: the browser resolves it against JupyterLab's origin
    assert not url.scheme and not url.netloc, src
    assert url.path == "/mlops/static-files/lib/notebook-trace-renderer/index.html", src
    (trace_id,) = parse_qs(url.query)["trace_id"]
    _trace_on_server(server, trace_id)
    page = server.request("GET", src.lstrip("/"))
    assert page.status_code == 200, page.text
    assert "top" in page.text and "leaf" in page.text


def test_with_jupyter_mlops_imported_our_renderer_shows_mlflows_trace(server: Server) -> None:
    kernel = Kernel(server, "with-mlops.ipynb", "")
    try:
        kernel.ok("import jupyter_mlops")
        shown = _displayed(kernel, CHAIN.format(experiment="display-ours"))
    finally:
        kernel.close()
    ours = [d for d in shown if MIME in d]
    assert len(ours) == 1, shown
    assert not any("text/html" in d for d in shown), "MLflow's iframe is not shown as well"
    (summary,) = ours[0][MIME]["traces"]
    assert summary["name"] == "top" and summary["state"] == "OK", summary
    assert summary["trace_id"] in ours[0]["text/plain"]
    trace = _trace_on_server(server, summary["trace_id"])
    assert {s["name"] for s in trace["spans"]} == {"top", "leaf"}
    location = trace["trace_info"]["trace_location"]["mlflow_experiment"]
    assert location["experiment_id"] == summary["experiment_id"]
