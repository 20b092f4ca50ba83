"""Telling the Jupyter server that a run this process wrote straight into the database ended.

A kernel started by a jupyter-mlops server logs into the server's database directly (a
``sqlite://`` or ``postgresql://`` tracking URI): the server never sees those runs end, so its
notifications (JupyterLab, e-mail, webhooks) would miss them. After the writer ends such a run it
posts ``{"run_id"}`` to the server that started the kernel (``JUPYTER_MLOPS_SERVER_URL`` +
``mlops/api/v1/runs/ended``, with ``JUPYTER_MLOPS_SERVER_TOKEN``); the server reads the run from
its own store and tells its end once. Fire and forget: a thread of its own, a short timeout,
every error ignored (the run is ended either way). Runs logged over HTTP need none of this.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

#: Seconds the notice may take (it runs beside the writer, never in its way).
TIMEOUT = 3.0


def wanted(store: Any) -> bool:
    """Whether runs ended on ``store`` must be told to a server: a database store, in a
    process a jupyter-mlops server started."""
    uri = str(getattr(store, "uri", "") or "")
    return bool(os.environ.get("JUPYTER_MLOPS_SERVER_URL")) and not uri.startswith(
        ("http://", "https://")
    )


def tell(run_id: str) -> threading.Thread | None:
    """Post the notice in a background thread (returned, for tests); None when not wanted."""
    base = os.environ.get("JUPYTER_MLOPS_SERVER_URL", "")
    if not base:
        return None
    url = base.rstrip("/") + "/mlops/api/v1/runs/ended"
    token = os.environ.get("JUPYTER_MLOPS_SERVER_TOKEN", "")
    body = json.dumps({"run_id": run_id}).encode()

    def send() -> None:
        import urllib.request  # here: importing the client stays light

        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"token {token}"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
                answer.read()
        except Exception:  # noqa: BLE001, S110 - a notice only: the run is ended anyway
            pass

    # Not a daemon (which it would inherit from the writer thread): a kernel ending its run
    # as it exits still sends it (at most TIMEOUT s).
    thread = threading.Thread(target=send, name="mlops-run-end-notice", daemon=False)
    thread.start()
    return thread
