"""MLflow's notebook display of traces against this server: the page its ``<iframe>`` loads
(``mlops/static-files/lib/notebook-trace-renderer/index.html``, server/handlers/trace_page.py)."""

from __future__ import annotations

import base64

import pytest

from jupyter_mlops.server.handlers.trace_page import PAGE_RELOADS

EXP = "api/2.0/mlflow/experiments/create"


@pytest.fixture
def jp_server_config(jp_server_config: dict) -> dict:
    # The page's wait for traces not stored yet, shortened (5 s by default): these tests
    # ask for traces that never come or come in full before the page is asked for.
    jp_server_config["MLOpsApp"]["trace_page_wait"] = 0.5
    return jp_server_config


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def _span(sid: str, parent: str | None, name: str, start: int, end: int, **attrs: str) -> dict:
    return {
        "trace_id": _b64("ab" * 16),
        "span_id": _b64(sid),
        "parent_span_id": _b64(parent) if parent else None,
        "name": name,
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "status": {"code": "STATUS_CODE_ERROR" if name == "llm" else "STATUS_CODE_OK"},
        "events": (
            [{"name": "exception", "time_unix_nano": end, "attributes": {"m": "exploded"}}]
            if name == "llm"
            else []
        ),
        "attributes": attrs,
    }


def _info(exp: str, trace_id: str, state: str, name: str) -> dict:
    """A trace's info as MLflow's client sends it (request at 2023-11-14T22:13:20Z, 30 ms)."""
    return {
        "trace_id": trace_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": exp},
        },
        "request_time": "2023-11-14T22:13:20.000Z",
        "execution_duration": "0.030s",
        "state": state,
        "tags": {"mlflow.traceName": name},
    }


def test_the_page_shows_the_waterfall_escaped_and_names_missing_traces(api) -> None:
    r = api("POST", EXP, {"name": "trace-page"})
    exp = r.json["experiment_id"]
    t0 = 1_700_000_000_000_000_000
    trace_id = "tr-" + "ab" * 16
    info = _info(exp, trace_id, "ERROR", "agent <b>")
    spans = [
        _span("01" * 8, None, "agent", t0, t0 + 30_000_000, **{"mlflow.spanType": '"AGENT"'}),
        _span(
            "02" * 8,
            "01" * 8,
            "llm",
            t0 + 10_000_000,
            t0 + 25_000_000,
            **{
                "mlflow.spanType": '"LLM"',
                "mlflow.spanInputs": '{"prompt": "<script>alert(1)</script>"}',
            },
        ),
    ]
    r = api("POST", "api/v1/traces/log-bulk", {"traces": [{"info": info, "spans": spans}]})
    assert r.status == 200, r.body
    r = api(
        "GET",
        "static-files/lib/notebook-trace-renderer/index.html",
        params=[("trace_id", trace_id), ("trace_id", "tr-missing"), ("experiment_id", exp)],
    )
    assert r.status == 200, r.body
    assert r.headers["Content-Type"].startswith("text/html"), (r.headers, r.body[:300])
    assert "script-src" not in r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    html = r.body.decode()
    # Tree order, the child indented, its bar from a third of the trace for half of it.
    assert html.index(">agent</span>") < html.index(">llm</span>")
    assert "left:33.333%;width:max(2px,50.000%)" in html
    assert 'class="row LLM failed"' in html and "15 ms" in html
    assert "exploded" in html  # the exception event
    # Everything from user code is escaped.
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "agent &lt;b&gt;" in html
    # A trace not stored yet (MLflow logs from a queue): the page loads itself again, counted.
    assert "Trace tr-missing is not stored yet" in html
    assert "http-equiv='refresh'" in html and "waited=1" in html
    # Once the page has waited long enough, it says so and stops.
    r = api(
        "GET",
        "static-files/lib/notebook-trace-renderer/index.html",
        params=[("trace_id", "tr-missing"), ("waited", str(PAGE_RELOADS))],
    )
    assert "Trace tr-missing was not found." in r.body.decode()
    assert "http-equiv" not in r.body.decode()
    # Unauthenticated: refused like every route.
    r = api(
        "GET",
        "static-files/lib/notebook-trace-renderer/index.html",
        params={"trace_id": trace_id},
        auth=False,
    )
    assert r.status in (302, 403)


def test_a_trace_whose_spans_are_not_stored_yet_is_waited_for(api) -> None:
    """MLflow sends a trace's info and its spans in separate requests: the info alone makes the
    page wait (and reload) rather than show a trace without spans for good."""
    exp = api("POST", EXP, {"name": "trace-page-info-only"}).json["experiment_id"]
    trace_id = "tr-" + "cd" * 16
    info = _info(exp, trace_id, "OK", "info-only")
    r = api("POST", "api/3.0/mlflow/traces", {"trace": {"trace_info": info}})
    assert r.status == 200, r.body
    path = "static-files/lib/notebook-trace-renderer/index.html"
    html = api("GET", path, params={"trace_id": trace_id}).body.decode()
    assert f"Trace {trace_id} is not stored yet" in html and "waited=1" in html
    # The last load shows what there is.
    html = api(
        "GET", path, params=[("trace_id", trace_id), ("waited", str(PAGE_RELOADS))]
    ).body.decode()
    assert "info-only" in html and "No spans" in html and "http-equiv" not in html
