"""The page MLflow's client shows in notebooks: after a cell whose ``@mlflow.trace`` calls made
traces, MLflow displays an ``<iframe>`` of ``<tracking URI>/static-files/lib/
notebook-trace-renderer/index.html?trace_id=..&experiment_id=..`` (its server's trace UI).
Against this server that is ``mlops/static-files/...``: this handler answers it with a
self-contained HTML view of the traces (name, state, latency, the span waterfall, each span's
inputs and outputs in ``<details>``), rendered here with no script, so that MLflow's own
notebook display works unchanged (``mlops.trace`` has JupyterLab's renderer instead).

Every value comes from user code: all of it is escaped, and the page's Content-Security-Policy
allows no script and no fetch.
"""

from __future__ import annotations

import asyncio
import json
from html import escape
from typing import Any
from urllib.parse import urlencode

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...tracking.errors import TrackingError
from ..request import Fields
from .base import MLOpsHandler

PATH = "static-files/lib/notebook-trace-renderer/index.html"
#: Most traces one page shows (MLflow displays at most 10 per cell).
MAX_TRACES = 10
#: Characters of a span's inputs/outputs shown (the rest is in JupyterLab's trace view).
MAX_VALUE_CHARS = 20_000
#: Looks for traces not stored yet (MLflow exports asynchronously) within the wait
#: (``MLOpsApp.trace_page_wait``).
WAIT_ATTEMPTS = 10
#: Times the page reloads itself (no script: a ``<meta http-equiv="refresh">``, counted by its
#: ``waited`` query field) while a trace is still missing after the wait above: on a loaded
#: machine MLflow's queue stores a trace later than that, and the iframe loads only once.
PAGE_RELOADS = 24

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)

STYLE = """
:root { color-scheme: light dark; --fg: #1f1f1f; --muted: #666; --bg: #fff; --row: #f3f3f3;
  --bar: #2f80ed; --err: #d32f2f; --ok: #388e3c; --tool: #f57c00; --llm: #7b1fa2; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e6e6; --muted: #aaa; --bg: #1e1e1e;
  --row: #2a2a2a; --bar: #64b5f6; --err: #ef5350; --ok: #66bb6a; --tool: #ffb74d;
  --llm: #ce93d8; } }
body { font: 13px system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 6px; }
h2 { font-size: 14px; margin: 8px 0 4px; }
.muted { color: var(--muted); }
.state { color: #fff; border-radius: 3px; padding: 0 4px; font-size: 11px; font-weight: 600; }
.OK { background: var(--ok); } .ERROR { background: var(--err); }
.IN_PROGRESS, .UNSET { background: var(--muted); }
.row { display: grid; grid-template-columns: minmax(160px, 35%) 1fr; align-items: center;
  border-top: 1px solid var(--row); min-height: 20px; }
.name { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.failed .name { color: var(--err); font-weight: 600; }
.track { position: relative; height: 16px; margin: 0 6px; }
.bar { position: absolute; top: 3px; height: 10px; border-radius: 2px; background: var(--bar); }
.TOOL .bar { background: var(--tool); } .LLM .bar, .CHAT_MODEL .bar { background: var(--llm); }
.failed .bar { background: var(--err); }
.ms { position: absolute; top: 0; font-size: 11px; padding-left: 4px; white-space: nowrap; }
.type { font-size: 9px; font-weight: 600; color: var(--muted); margin-right: 4px; }
details { margin: 2px 0 2px 12px; } summary { cursor: pointer; }
pre { background: var(--row); padding: 4px; margin: 2px 0; white-space: pre-wrap;
  word-break: break-word; max-height: 240px; overflow: auto; }
"""


def _num(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _attr(span: dict[str, Any], key: str) -> Any:
    raw = (span.get("attributes") or {}).get(key)
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _status(span: dict[str, Any]) -> str:
    status = span.get("status")
    code = status.get("code", "") if isinstance(status, dict) else str(status or "")
    code = (code or str(span.get("status_code") or "")).upper()
    return "ERROR" if code.endswith("ERROR") else "OK" if code.endswith("OK") else "UNSET"


def _latency(ns: float) -> str:
    ms = ns / 1e6
    if ms < 1:
        return f"{round(ms * 1000)} µs"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def _value(title: str, value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "\n…"
    return f"<details><summary>{escape(title)}</summary><pre>{escape(text)}</pre></details>"


def waterfall(spans: list[dict[str, Any]]) -> str:
    """The spans as rows (depth-first, siblings by start), bars placed by start and end."""
    rows: list[dict[str, Any]] = []
    for s in spans:
        sid = s.get("span_id") or (s.get("context") or {}).get("span_id")
        start = _num(s.get("start_time_unix_nano", s.get("start_time"))) or 0
        end = _num(s.get("end_time_unix_nano", s.get("end_time")))
        parent = s.get("parent_span_id", s.get("parent_id"))
        rows.append({"id": sid, "parent": parent, "start": start, "end": end, "span": s})
    if not rows:
        return '<div class="muted">No spans</div>'
    t0 = min(r["start"] for r in rows)
    t1 = max(r["end"] or r["start"] for r in rows)
    total = max(t1 - t0, 1)
    ids = {r["id"] for r in rows}
    children: dict[Any, list[dict[str, Any]]] = {}
    for r in rows:
        key = r["parent"] if r["parent"] in ids and r["parent"] != r["id"] else None
        children.setdefault(key, []).append(r)
    out: list[str] = []
    stack = [(r, 0) for r in sorted(children.get(None, []), key=lambda r: -r["start"])]
    seen: set[Any] = set()
    while stack:
        r, depth = stack.pop()
        if r["id"] in seen:  # a cycle of parents in bad data
            continue
        seen.add(r["id"])
        s = r["span"]
        end = r["end"] if r["end"] is not None else t1
        left = (r["start"] - t0) / total * 100
        width = max(end - r["start"], 0) / total * 100
        stype = str(_attr(s, "mlflow.spanType") or "UNKNOWN")
        failed = _status(s) == "ERROR" or any(
            (e or {}).get("name") == "exception" for e in s.get("events") or []
        )
        cls = f"row {escape(stype, quote=True)}{' failed' if failed else ''}"
        out.append(
            f'<div class="{cls}"><span class="name" style="padding-left:{depth * 14}px">'
            f'<span class="type">{escape(stype)}</span>{escape(str(s.get("name") or ""))}</span>'
            f'<span class="track"><span class="bar" style="left:{left:.3f}%;'
            f'width:max(2px,{min(width, 100 - left):.3f}%)"></span>'
            f'<span class="ms" style="left:{min(left, 80):.3f}%">'
            f"{escape(_latency(end - r['start']))}</span></span></div>"
        )
        details = _value("Inputs", _attr(s, "mlflow.spanInputs")) + _value(
            "Outputs", _attr(s, "mlflow.spanOutputs")
        )
        for e in s.get("events") or []:
            if (e or {}).get("name") == "exception":
                details += _value("Exception", e.get("attributes"))
        if details:
            out.append(f'<div style="padding-left:{depth * 14}px">{details}</div>')
        for child in sorted(children.get(r["id"], []), key=lambda c: -c["start"]):
            stack.append((child, depth + 1))
    return "".join(out)


def page(
    traces: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    missing: list[str],
    reload_query: str | None = None,
) -> str:
    """The HTML of the traces (``(info JSON, spans)``) and of the ids not found; with
    ``reload_query``, the missing ones are not stored yet and the page loads itself again
    with that query string."""
    refresh = (
        f"<meta http-equiv='refresh' content='1; url=?{escape(reload_query, quote=True)}'>"
        if reload_query is not None and missing
        else ""
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'>{refresh}<style>{STYLE}</style></head>"
    ]
    parts.append("<body>")
    for info, spans in traces:
        state = str(info.get("state") or "UNSET")
        name = (info.get("tags") or {}).get("mlflow.traceName") or ""
        parts.append(
            f"<h2>{escape(name)} <span class='state {escape(state, quote=True)}'>"
            f"{escape(state)}</span> <span class='muted'>{escape(info['trace_id'])} · "
            f"{escape(str(info.get('execution_duration') or ''))}</span></h2>"
        )
        parts.append(waterfall(spans))
    for trace_id in missing:
        if refresh:
            parts.append(
                f"<p class='muted'>Trace {escape(trace_id)} is not stored yet: waiting for it…</p>"
            )
        else:
            parts.append(f"<p class='muted'>Trace {escape(trace_id)} was not found.</p>")
    parts.append(
        "<p class='muted'>Open the experiment's traces in JupyterLab: MLOps sidebar → right-click "
        "the experiment → MLOps: Open traces.</p></body></html>"
    )
    return "".join(parts)


class NotebookTraceRendererHandler(MLOpsHandler):
    """``GET mlops/static-files/lib/notebook-trace-renderer/index.html?trace_id=..``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        async def work() -> None:
            fields = Fields.from_query(self.request.query_arguments)
            ids = list(dict.fromkeys(fields.strings("trace_id")))[:MAX_TRACES]
            try:
                waited = max(0, int(self.get_query_argument("waited", "0")))
            except ValueError:
                waited = PAGE_RELOADS
            store = self.store
            last = waited >= PAGE_RELOADS

            def load() -> tuple[list[tuple[dict[str, Any], list[dict[str, Any]]]], list[str]]:
                found, missing = [], []
                for trace_id in ids:
                    try:
                        info = store.get_trace_info(trace_id).to_dict()
                        spans = store.get_trace_spans(trace_id)
                    except TrackingError:
                        missing.append(trace_id)
                        continue
                    # MLflow sends a trace's info and its spans in separate requests: the
                    # info alone is not the trace yet (shown as it is on the last load).
                    if spans or last:
                        found.append((info, spans))
                    else:
                        missing.append(trace_id)
                return found, missing

            found, missing = await self.run(load)
            # MLflow logs traces asynchronously: the iframe may ask before they land
            step = max(0.0, float(self.mlops.trace_page_wait)) / WAIT_ATTEMPTS
            for _ in range(WAIT_ATTEMPTS):
                if not missing:
                    break
                await asyncio.sleep(step)
                ids = missing
                more, missing = await self.run(load)
                found += more
            self.set_header("Content-Security-Policy", CSP)
            self.set_header("X-Content-Type-Options", "nosniff")
            # (APIHandler would say JSON)
            reload_query = None
            if not last:
                query = [
                    (k, v.decode(errors="replace"))
                    for k, values in self.request.query_arguments.items()
                    if k != "waited"
                    for v in values
                ]
                reload_query = urlencode([*query, ("waited", str(waited + 1))])
            self.finish(
                page(found, missing, reload_query), set_content_type="text/html; charset=utf-8"
            )

        await self.guarded(work)


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    import re

    return [(re.escape(PATH), NotebookTraceRendererHandler, {})]
