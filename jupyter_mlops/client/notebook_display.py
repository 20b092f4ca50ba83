"""Traces shown under the notebook cell that made them, as MLflow does in notebooks.

When a trace's root span ends inside an IPython kernel, :func:`note_trace` keeps a small
summary of it; after the cell has run (IPython's ``post_run_cell`` event) the summaries
are displayed once as ``application/vnd.mlops.trace+json`` (with a ``text/plain``
fallback), which JupyterLab's trace renderer turns into the trace's waterfall, read from
the server. MLflow instead displays an ``<iframe>`` of its own server's trace UI; the
bundle here carries ids and summaries only, so a saved notebook stays small.

Off with :func:`disable_notebook_display` (or ``JUPYTER_MLOPS_TRACE_DISPLAY=0``); at most
:data:`MAX_TRACES` per cell (``JUPYTER_MLOPS_MAX_TRACES_TO_DISPLAY``, as MLflow's
``MLFLOW_MAX_TRACES_TO_DISPLAY_IN_NOTEBOOK``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

MIME_TYPE = "application/vnd.mlops.trace+json"
MAX_TRACES = 10
PREVIEW_CHARS = 300

_log = logging.getLogger(__name__)

_lock = threading.Lock()
_pending: list[dict[str, Any]] = []
_state: dict[str, Any] = {"shell": None, "checked": False, "registered": False}
_enabled = os.environ.get("JUPYTER_MLOPS_TRACE_DISPLAY", "1").strip().lower() not in (
    "0",
    "false",
    "no",
    "off",
)


def enable_notebook_display() -> None:
    """Show the traces a cell makes under its output (the default in notebooks)."""
    global _enabled
    _enabled = True


def disable_notebook_display() -> None:
    """Stop showing traces under notebook cells."""
    global _enabled
    _enabled = False
    with _lock:
        _pending.clear()


def _kernel_shell() -> Any:
    """The IPython kernel's shell, or None outside a kernel (a script, a terminal IPython).
    Looked up once: ``note_trace`` is on the traced caller's path."""
    if not _state["checked"]:
        _state["checked"] = True
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
        # Only a kernel has a front end to render the bundle.
        if shell is not None and getattr(shell, "kernel", None) is not None:
            _state["shell"] = shell
    return _state["shell"]


def _max_traces() -> int:
    try:
        return max(0, int(os.environ.get("JUPYTER_MLOPS_MAX_TRACES_TO_DISPLAY", MAX_TRACES)))
    except ValueError:
        return MAX_TRACES


def note_trace(root: Any, experiment_id: str, writer: Any = None) -> None:
    """Keep a finished trace (its root span), queued on ``writer``, for display after
    the current cell."""
    if not _enabled:
        return
    shell = _kernel_shell()
    if shell is None:
        return
    with _lock:
        if not _state["registered"]:
            shell.events.register("post_run_cell", _show)
            _state["registered"] = True
        if len(_pending) < _max_traces():
            _pending.append({"root": root, "experiment_id": str(experiment_id), "writer": writer})


def _preview(value: Any) -> str | None:
    if value is None:
        return None
    from .trace_json import _dump

    if isinstance(value, tuple) and len(value) == 3:  # (signature, args, kwargs), unbound
        from .trace_json import _inputs

        value = _inputs(*value)
    return _dump(value)[:PREVIEW_CHARS]


def summary(root: Any, experiment_id: str) -> dict[str, Any]:
    """What the bundle says of one trace (the renderer reads the rest from the server)."""
    end = root.end_ns or root.start_ns
    out: dict[str, Any] = {
        "trace_id": root.request_id,
        "experiment_id": experiment_id,
        "name": root.name,
        "state": "ERROR" if root.status == "ERROR" else "OK",
        "execution_duration_ms": round((end - root.start_ns) / 1e6, 3),
    }
    for key, value in (("request_preview", root.inputs), ("response_preview", root.outputs)):
        text = _preview(value)
        if text is not None:
            out[key] = text
    return out


def bundle(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The display bundle of the traces' summaries."""
    traces = [summary(i["root"], i["experiment_id"]) for i in items]
    lines = [
        f"Trace {t['trace_id']} {t['name']} {t['state']} {t['execution_duration_ms']:.1f} ms"
        for t in traces
    ]
    return {
        MIME_TYPE: {"traces": traces, "experiment_id": traces[0]["experiment_id"]},
        "text/plain": "\n".join(lines),
    }


def _show(*_: Any) -> None:
    """``post_run_cell``: display the cell's traces, once."""
    with _lock:
        items = list(_pending)
        _pending.clear()
    if not items or not _enabled:
        return
    from IPython.display import display

    # The renderer reads the traces from the server at once: send them first (the writer
    # would within 0.1 s); a refusal stays for the next flush to raise, as usual.
    for writer in {id(i["writer"]): i["writer"] for i in items if i["writer"]}.values():
        writer.flush(raise_errors=False)
    try:
        display(bundle(items), raw=True)
    except Exception:  # noqa: BLE001 - a display problem must not break the user's cell
        _log.debug("could not display the cell's traces", exc_info=True)
