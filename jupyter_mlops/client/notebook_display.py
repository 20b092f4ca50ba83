"""Traces shown under the notebook cell that made them, as MLflow does in notebooks.

When a trace's root span ends inside an IPython kernel, :func:`note_trace` keeps a small
summary of it; after the cell has run (IPython's ``post_run_cell`` event) the summaries
are displayed once as ``application/vnd.mlops.trace+json`` (with a ``text/plain``
fallback), which JupyterLab's trace renderer turns into the trace's waterfall, read from
the server. MLflow instead displays an ``<iframe>`` of its own server's trace UI; the
bundle here carries ids and summaries only, so a saved notebook stays small.

MLflow's own ``@mlflow.trace`` is shown the same way once jupyter-mlops is in the kernel
(``import jupyter_mlops`` or ``%load_ext jupyter_mlops``): :func:`adopt_mlflow_display`
makes MLflow's notebook display handler (``mlflow.tracing.display``) output this bundle
instead of its ``<iframe>``. Without it, MLflow's iframe loads this server's page for it
(``server/handlers/trace_page.py``), same-origin through
``MLFLOW_NOTEBOOK_TRACE_RENDERER_BASE_URL`` (exported to kernels by the server).

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


_MLFLOW_DISPLAY = "mlflow.tracing.display.display_handler"


def mlflow_bundle(traces: list[Any]) -> dict[str, Any]:
    """Our display bundle of MLflow ``Trace`` objects (what MLflow's handler would show
    as an iframe of its server's UI)."""
    summaries = []
    for trace in traces:
        info = trace.info
        state = getattr(info, "state", None)
        state = str(getattr(state, "value", state) or "OK")
        name = (getattr(info, "tags", None) or {}).get("mlflow.traceName")
        if not name:
            spans = getattr(getattr(trace, "data", None), "spans", None) or []
            root = next((s for s in spans if getattr(s, "parent_id", None) is None), None)
            name = getattr(root, "name", None) or ""
        out: dict[str, Any] = {
            "trace_id": info.trace_id,
            "experiment_id": str(getattr(info, "experiment_id", "") or ""),
            "name": name,
            "state": "ERROR" if state.endswith("ERROR") else state.rpartition(".")[2],
            "execution_duration_ms": float(getattr(info, "execution_duration", None) or 0),
        }
        for key in ("request_preview", "response_preview"):
            text = getattr(info, key, None)
            if text:
                out[key] = str(text)[:PREVIEW_CHARS]
        summaries.append(out)
    lines = [
        f"Trace {t['trace_id']} {t['name']} {t['state']} {t['execution_duration_ms']:.1f} ms"
        for t in summaries
    ]
    return {
        MIME_TYPE: {
            "traces": summaries,
            "experiment_id": summaries[0]["experiment_id"] if summaries else "",
        },
        "text/plain": "\n".join(lines),
    }


def _flush_mlflow_spans() -> None:
    """Hand MLflow's finished spans to its exporter now: with its batch span processor
    (MLflow 3.17's default) they reach it, and its display hook, seconds after the cell."""
    provider = sys.modules.get("mlflow.tracing.provider")
    if provider is None:
        return
    try:
        processor = provider._get_span_processor()
        if processor is not None:
            processor.force_flush(2000)
    except Exception:  # noqa: BLE001 - another MLflow version: its display may come late
        _log.debug("could not flush MLflow's spans", exc_info=True)


#: Longest wait (s), after a cell, for MLflow to store the traces it is about to display.
MLFLOW_STORE_WAIT_S = 30.0


def _store_mlflow_traces(module: Any) -> None:
    """Have MLflow send the cell's traces to the server before its post-run hook displays them.

    MLflow logs traces from a background queue, seconds after the cell on a loaded machine,
    while JupyterLab's renderer reads a displayed trace from the server at once (each read
    before it lands is a 404). Only when MLflow has traces to display; bounded, so a server
    that does not answer only delays the display (the renderer still retries)."""
    handler = getattr(module.IPythonTraceDisplayHandler, "_instance", None)
    if not getattr(handler, "traces_to_display", None):
        return
    flush = getattr(sys.modules.get("mlflow.tracking.fluent"), "flush_trace_async_logging", None)
    if flush is None:
        return

    def run() -> None:
        try:
            flush()
        except Exception:  # noqa: BLE001 - the display goes on; the renderer retries
            _log.debug("could not flush MLflow's trace logging", exc_info=True)

    worker = threading.Thread(target=run, name="mlops-mlflow-trace-flush", daemon=True)
    worker.start()
    worker.join(MLFLOW_STORE_WAIT_S)


def _take_over_mlflow_display(*_: Any) -> None:
    """If MLflow's display handler is loaded, make it show our bundle (once), flush MLflow's
    spans so that its post-run hook, after this one, finds the cell's traces, and have them
    stored first (our renderer reads them from the server)."""
    module = sys.modules.get(_MLFLOW_DISPLAY)
    if module is None:
        return
    if _enabled:
        _flush_mlflow_spans()
        _store_mlflow_traces(module)
    if _state.get("mlflow_adopted"):
        return
    try:
        handler = module.IPythonTraceDisplayHandler.get_instance()

        def get_mimebundle(traces: list[Any]) -> dict[str, Any]:
            if not _enabled:  # ours is off: MLflow's own display
                return type(handler).get_mimebundle(handler, traces)
            return mlflow_bundle(traces)

        # the instance's method (MLflow's exporter holds this instance): its post-run
        # hook, which collects the cell's traces, now displays our bundle
        handler.get_mimebundle = get_mimebundle
        _state["mlflow_adopted"] = True
    except Exception:  # noqa: BLE001 - another MLflow version: its own display stays
        _log.debug("could not adopt MLflow's trace display", exc_info=True)


def adopt_mlflow_display() -> None:
    """Show MLflow's traces (``@mlflow.trace``) with our renderer in this kernel: now if
    MLflow's display is loaded, else after each cell until it is (our hook registered
    first runs before MLflow's own). Nothing outside a kernel."""
    shell = _kernel_shell()
    if shell is None:
        return
    _take_over_mlflow_display()
    with _lock:
        if not _state.get("mlflow_hook"):
            shell.events.register("post_run_cell", _take_over_mlflow_display)
            _state["mlflow_hook"] = True
