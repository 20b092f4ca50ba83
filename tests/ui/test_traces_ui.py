"""Traces in JupyterLab (issue 17): the Traces tab's server-side search, the trace detail's
waterfall, span pane and feedback, the comparison of two traces, the inline renderer under
a notebook cell in a real kernel, and ``mlflow.genai.evaluate``'s results in run detail."""

from __future__ import annotations

import json
import re
from typing import Any

from uihelpers import KERNEL_TIMEOUT_MS, expect, open_run, run_as_user, run_notebook, set_theme

AGENT = """
import json
import time
import jupyter_mlops as mlops

mlops.set_experiment("ui-traces")

@mlops.trace(span_type="TOOL")
def search(q):
    return ["doc-" + q]

@mlops.trace(span_type="LLM")
def generate(q, docs):
    if q == "boom":
        raise ValueError("model exploded")
    return "answer to " + q

@mlops.trace(span_type="AGENT")
def agent(q):
    docs = search(q)
    if q != "boom":
        with mlops.start_span("rerank", span_type="RERANKER") as span:
            span.set_attribute("k", len(docs))
    return generate(q, docs)

@mlops.trace(span_type="CHAIN")
def direct(q):
    return generate(q, [])

agent("alpha")
time.sleep(0.01)  # distinct request times (ms): the table's order is asserted
try:
    agent("boom")
except ValueError:
    pass
time.sleep(0.01)
direct("beta")
found = mlops.search_traces(order_by=["timestamp ASC"])
print(json.dumps({
    "ids": [t["trace_id"] for t in found],
    "experiment_id": found[0]["trace_location"]["mlflow_experiment"]["experiment_id"],
}))
"""


def _open_traces(page: Any, experiment_id: str) -> Any:
    page.evaluate(
        "(id) => window.jupyterapp.commands.execute('jupyter-mlops:open-traces', "
        "{experimentId: id})",
        experiment_id,
    )
    view = page.locator(".jp-mlops-Traces:visible")
    expect(view).to_have_count(1)
    return view


def _search(view: Any, text: str) -> None:
    box = view.locator(".jp-mlops-TracesFilter")
    box.fill(text)
    box.press("Enter")


def test_traces_tab_search_detail_feedback_and_compare(
    page: Any, lab: Any, allowed_console_errors: list[str], screenshot_dir: Any
) -> None:
    made = json.loads(run_as_user(lab, AGENT).strip().splitlines()[-1])
    alpha, boom, beta = made["ids"]
    # From the experiment's runs table: its context menu opens the Traces tab.
    page.evaluate(
        "(id) => window.jupyterapp.commands.execute('jupyter-mlops:open-runs-table', "
        "{experimentId: id})",
        made["experiment_id"],
    )
    runs_tab = page.locator(".jp-mlops-RunsTab:visible")
    expect(runs_tab).to_have_count(1)
    runs_tab.locator(".jp-mlops-RunsTabContent").click(button="right")
    page.locator(".lm-Menu-item", has_text="MLOps: Open traces").click()
    view = page.locator(".jp-mlops-Traces:visible")
    rows = view.locator(".jp-mlops-TraceRow")
    expect(rows).to_have_count(3)
    # Newest first; previews, status and tags as columns.
    expect(rows.first).to_have_attribute("data-trace-id", beta)
    expect(view.locator(f'[data-trace-id="{boom}"]')).to_contain_text("ERROR")
    expect(view.locator(f'[data-trace-id="{alpha}"]')).to_contain_text("answer to alpha")

    # The search runs on the server, in MLflow's trace grammar.
    _search(view, "span.type = 'TOOL'")
    expect(rows).to_have_count(2)
    _search(view, "span.type = 'TOOL' AND trace.status = 'ERROR'")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-trace-id", boom)
    allowed_console_errors.append("400")  # the browser logs the refused search
    _search(view, "span.bogus = 'x'")
    expect(view.locator(".jp-mlops-Error")).to_contain_text("Invalid span key")
    expect(rows).to_have_count(0)
    _search(view, "")
    expect(rows).to_have_count(3)

    # Detail: the waterfall in tree order, a span's inputs and outputs on click.
    view.locator(f'[data-trace-id="{alpha}"]').click()
    detail = page.locator(f"#jupyter-mlops-trace-{alpha}")
    waterfall = detail.locator(".jp-mlops-WaterfallRow")
    expect(waterfall).to_have_count(4)
    names = [waterfall.nth(i).get_attribute("data-span-name") for i in range(4)]
    assert names == ["agent", "search", "rerank", "generate"]
    detail.locator('.jp-mlops-WaterfallRow[data-span-name="search"]').click()
    pane = detail.locator(".jp-mlops-SpanPane")
    expect(pane).to_have_attribute("data-span-name", "search")
    expect(pane.locator(".jp-mlops-Json").nth(0)).to_contain_text('"q": "alpha"')
    expect(pane.locator(".jp-mlops-Json").nth(1)).to_contain_text("doc-alpha")
    # Collapsing the root hides its subtree.
    detail.locator(".jp-mlops-WaterfallToggle").first.click()
    expect(waterfall).to_have_count(1)
    detail.locator(".jp-mlops-WaterfallToggle").first.click()
    expect(waterfall).to_have_count(4)

    # Feedback from the UI lands on the server and in the view.
    form = detail.locator(".jp-mlops-FeedbackForm")
    form.get_by_label("Feedback name").fill("correct")
    form.get_by_label("Feedback value").fill("true")
    form.get_by_label("Rationale").fill("cites the doc")
    form.locator("button[type=submit]").click()
    added = detail.locator('.jp-mlops-Assessment[data-assessment-name="correct"]')
    expect(added).to_contain_text("true")
    expect(added).to_contain_text("cites the doc")
    info = lab.api("GET", f"mlops/api/3.0/mlflow/traces/{alpha}")["trace"]["trace_info"]
    (feedback,) = info["assessments"]
    assert feedback["feedback"]["value"] is True
    assert feedback["source"]["source_type"] == "HUMAN"

    # A failed span is marked and its exception shown, in light and dark.
    _open_traces(page, made["experiment_id"])
    view.locator(f'[data-trace-id="{boom}"]').click()
    failed = page.locator(f"#jupyter-mlops-trace-{boom}")
    generate = failed.locator('.jp-mlops-WaterfallRow[data-span-name="generate"]')
    expect(generate).to_have_class(re.compile(r"\bjp-mlops-SpanFailed\b"))
    generate.click()
    expect(failed.locator(".jp-mlops-SpanPane .jp-mlops-SpanException").first).to_contain_text(
        "model exploded"
    )
    set_theme(page, "JupyterLab Dark", light=False)
    bar = failed.locator('.jp-mlops-WaterfallRow[data-span-name="search"] .jp-mlops-WaterfallBar')
    colour = bar.evaluate("(el) => getComputedStyle(el).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), colour
    page.screenshot(path=str(screenshot_dir / "trace-detail-dark.png"))
    set_theme(page, "JupyterLab Light", light=True)

    # Compare the two agent calls: aligned by name path, the step only one made marked.
    _open_traces(page, made["experiment_id"])
    view.get_by_label(f"Select {alpha}").check()
    view.get_by_label(f"Select {boom}").check()
    view.locator(".jp-mlops-TracesCompare").click()
    compare = page.locator(".jp-mlops-TraceCompare:visible")
    crow = compare.locator(".jp-mlops-CompareRow")
    expect(crow).to_have_count(4)
    paths = [crow.nth(i).get_attribute("data-path") for i in range(4)]
    assert paths == ["agent", "agent/search", "agent/rerank", "agent/generate"]
    expect(compare.locator('[data-path="agent/rerank"] .jp-mlops-CompareDiff')).to_have_text(
        "only left"
    )
    expect(compare.locator('[data-path="agent/search"] .jp-mlops-CompareDiff')).to_have_text(
        re.compile(r"^[+−±]\d+(\.\d+)? (µs|ms|s)$")
    )
    compare.locator('[data-path="agent/generate"]').click()
    expect(compare.locator(".jp-mlops-SpanPane")).to_have_count(2)
    page.screenshot(path=str(screenshot_dir / "trace-compare.png"))


CELL = """
import jupyter_mlops as mlops
mlops.set_experiment("ui-inline")

@mlops.trace(span_type="TOOL")
def leaf(x):
    return x * 2

@mlops.trace
def top(x):
    return leaf(x) + 1

print("done", top(20))
"""

EVALUATE = """
import json, mlflow
from mlflow.genai.scorers import scorer

mlflow.set_experiment("ui-eval")

@scorer
def exact_match(outputs, expectations):
    return outputs == expectations["answer"]

def predict_fn(question):
    return question.upper() if "even" in question else question

data = [
    {"inputs": {"question": f"q{i} {'even' if i % 2 == 0 else 'odd'}"},
     "expectations": {"answer": f"Q{i} EVEN"}}
    for i in range(4)
]
result = mlflow.genai.evaluate(data=data, predict_fn=predict_fn, scorers=[exact_match])
print(json.dumps({"run_id": result.run_id}))
"""


def test_inline_trace_in_a_kernel(page: Any, lab: Any, screenshot_dir: Any) -> None:
    run_notebook(page, lab, "traced.ipynb", CELL, "done 41")
    output = page.locator(".jp-NotebookPanel .jp-mlops-TraceOutput")
    expect(output).to_have_count(1, timeout=KERNEL_TIMEOUT_MS)
    expect(output.locator(".jp-mlops-InlineTrace")).to_contain_text("top")
    rows = output.locator(".jp-mlops-WaterfallRow")
    expect(rows).to_have_count(2, timeout=KERNEL_TIMEOUT_MS)
    output.locator('.jp-mlops-WaterfallRow[data-span-name="leaf"]').click()
    expect(output.locator(".jp-mlops-SpanPane")).to_contain_text('"x": 20')
    page.screenshot(path=str(screenshot_dir / "trace-inline.png"))
    # The notebook keeps the bundle: ids and summaries, not the spans.
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = {}

    def bundle_saved() -> bool:
        nonlocal saved
        cell = lab.api("GET", "api/contents/traced.ipynb")["content"]["cells"][0]
        saved = next(
            (
                o["data"]
                for o in cell["outputs"]
                if "application/vnd.mlops.trace+json" in o.get("data", {})
            ),
            {},
        )
        return bool(saved)

    for _ in range(60):
        if bundle_saved():
            break
        page.wait_for_timeout(1000)
    (trace,) = saved["application/vnd.mlops.trace+json"]["traces"]
    assert trace["name"] == "top" and trace["state"] == "OK"
    assert "spans" not in trace


MLFLOW_CELL = """
{first}import mlflow
mlflow.set_experiment("{experiment}")

@mlflow.trace(span_type="TOOL")
def leaf(x):
    return x * 2

@mlflow.trace(name="top")
def top(x):
    return leaf(x) + 1

print("done", top(20))
"""


def test_mlflow_trace_inline_with_our_renderer(page: Any, lab: Any, screenshot_dir: Any) -> None:
    """MLflow's own ``@mlflow.trace`` in a kernel that imported jupyter-mlops: our renderer, in light
    and dark, with the span tree read from the server (MLflow exports asynchronously)."""
    cell = MLFLOW_CELL.format(first="import jupyter_mlops\n", experiment="ui-mlflow-inline")
    run_notebook(page, lab, "mlflow-traced.ipynb", cell, "done 41")
    output = page.locator(".jp-NotebookPanel .jp-mlops-TraceOutput")
    expect(output).to_have_count(1, timeout=KERNEL_TIMEOUT_MS)
    expect(output.locator(".jp-mlops-InlineTrace")).to_contain_text("top")
    expect(output.locator(".jp-mlops-WaterfallRow")).to_have_count(2, timeout=KERNEL_TIMEOUT_MS)
    output.locator('.jp-mlops-WaterfallRow[data-span-name="leaf"]').click()
    expect(output.locator(".jp-mlops-SpanPane")).to_contain_text('"x": 20')
    expect(page.locator(".jp-NotebookPanel iframe")).to_have_count(0)
    page.screenshot(path=str(screenshot_dir / "trace-inline-mlflow-light.png"))
    set_theme(page, "JupyterLab Dark", light=False)
    expect(output.locator(".jp-mlops-WaterfallRow")).to_have_count(2)
    page.screenshot(path=str(screenshot_dir / "trace-inline-mlflow-dark.png"))
    set_theme(page, "JupyterLab Light", light=True)


def test_mlflow_only_kernel_shows_mlflows_frame_from_our_server(
    page: Any, lab: Any, screenshot_dir: Any
) -> None:
    """A kernel that only uses mlflow: MLflow's own iframe, which now loads (same origin) this server's
    page with the trace's waterfall."""
    cell = MLFLOW_CELL.format(first="", experiment="ui-mlflow-frame")
    run_notebook(page, lab, "mlflow-frame.ipynb", cell, "done 41")
    frame = page.frame_locator(".jp-NotebookPanel iframe#trace-renderer")
    expect(frame.locator(".row.TOOL")).to_contain_text("leaf", timeout=KERNEL_TIMEOUT_MS)
    expect(frame.locator("h2")).to_contain_text("top")
    page.screenshot(path=str(screenshot_dir / "trace-inline-mlflow-frame.png"))


def test_genai_evaluate_results_in_run_detail(page: Any, lab: Any, screenshot_dir: Any) -> None:
    # mlflow.genai.evaluate's per-row results and aggregates in the run's detail.
    run_id = json.loads(run_as_user(lab, EVALUATE).strip().splitlines()[-1])["run_id"]
    open_run(page, run_id)
    section = page.locator(f"#jupyter-mlops-run-{run_id} .jp-mlops-RunEvaluation")
    expect(section.locator(".jp-mlops-EvalRow")).to_have_count(4, timeout=KERNEL_TIMEOUT_MS)
    expect(section.locator('.jp-mlops-EvalSummary [data-scorer="exact_match"]')).to_contain_text(
        "0.500"
    )
    scores = section.locator('.jp-mlops-EvalScore[data-scorer="exact_match"]')
    # genai.evaluate runs rows in threads: their order is not known.
    values = sorted(scores.nth(i).get_attribute("data-value") or "" for i in range(4))
    assert values == ["false", "false", "true", "true"]
    expect(section.locator(".jp-mlops-EvalRow", has_text="q0 even")).to_have_count(1)
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "run-evaluation.png"))
    trace_id = section.locator(".jp-mlops-EvalRow").first.get_attribute("data-trace-id")
    section.locator(".jp-mlops-EvalRow").first.click()
    expect(
        page.locator(f"#jupyter-mlops-trace-{trace_id} .jp-mlops-WaterfallRow").first
    ).to_be_visible()
