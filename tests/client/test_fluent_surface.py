"""``jupyter_mlops`` has every function of ``mlflow``'s top-level fluent API that is not
about tracing or GenAI, with the same parameters (names, kinds, defaults) and the same
return types (by name). A function mlflow adds fails this test until it has a counterpart
here or an entry, with its reason, in the exclusion list below."""

from __future__ import annotations

import inspect
import re

import pytest

mlflow = pytest.importorskip("mlflow")

import jupyter_mlops  # noqa: E402 - only when mlflow is installed

#: mlflow's functions with no counterpart, and why.
EXCLUDED = {
    # Tracing, assessments and prompts: GenAI, another issue's surface.
    **dict.fromkeys(
        (
            "add_trace",
            "context",
            "delete_trace_tag",
            "flush_trace_async_logging",
            "get_active_trace_id",
            "get_current_active_span",
            "get_last_active_trace_id",
            "get_trace",
            "log_trace",
            "search_sessions",
            "search_traces",
            "set_trace_tag",
            "start_span",
            "start_span_no_context",
            "trace",
            "update_current_trace",
            "maybe_hint_tracing_skill",
            "delete_assessment",
            "get_assessment",
            "log_assessment",
            "log_expectation",
            "log_feedback",
            "log_issue",
            "override_feedback",
            "update_assessment",
            "delete_prompt_alias",
            "load_prompt",
            "register_prompt",
            "search_prompts",
            "set_prompt_alias",
            "test",  # mlflow.pytest's decorator for GenAI evaluation suites
        ),
        "tracing/GenAI",
    ),
    # Workspaces: MLflow's multi-tenant server mode; server-info says workspaces_enabled=false.
    **dict.fromkeys(
        (
            "create_workspace",
            "delete_workspace",
            "get_workspace",
            "list_workspaces",
            "set_workspace",
            "update_workspace",
        ),
        "workspaces",
    ),
    "run": "MLflow Projects (mlflow.projects.run), not the tracking API",
    "login": "Databricks sign-in",
    "doctor": "prints mlflow's own environment",
    "set_telemetry_client": "mlflow's usage telemetry",
    "import_checkpoints": "Databricks: imports Unity Catalog checkpoints as logged models",
}
#: Parameters of counterparts that are left out, and why.
EXCLUDED_PARAMS = {
    ("create_experiment", "trace_location"): "tracing (Unity Catalog trace tables)",
    ("set_experiment", "trace_location"): "tracing (Unity Catalog trace tables)",
}
#: Names that are no types (dropped when return annotations are compared).
_NOISE = {"None", "Optional", "Union", "ForwardRef", "typing", "Literal"}


def mlflow_functions() -> dict[str, object]:
    out = {}
    for name in dir(mlflow):
        if name.startswith("_"):
            continue
        obj = getattr(mlflow, name, None)
        if inspect.isfunction(obj) or inspect.isbuiltin(obj):
            out[name] = obj
    return out


def _type_names(annotation: object) -> set[str]:
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    names = {n.split(".")[-1] for n in re.findall(r"[A-Za-z_][\w.]*", str(text))}
    return names - _NOISE - {"pd", "pandas", "mlflow"}


def test_every_fluent_function_has_a_counterpart_with_the_same_signature():
    problems = []
    functions = mlflow_functions()
    assert len(functions) > 60, sorted(functions)  # the listing itself works
    for name, theirs in sorted(functions.items()):
        if name in EXCLUDED:
            continue
        ours = getattr(jupyter_mlops, name, None)
        if ours is None:
            problems.append(f"{name}: missing")
            continue
        sig_t, sig_o = inspect.signature(theirs), inspect.signature(ours)
        params_t = [
            p
            for p in sig_t.parameters.values()
            if not p.name.startswith("_") and (name, p.name) not in EXCLUDED_PARAMS
        ]
        params_o = list(sig_o.parameters.values())
        shape_t = [(p.name, p.kind, p.default) for p in params_t]
        shape_o = [(p.name, p.kind, p.default) for p in params_o]
        if shape_t != shape_o:
            problems.append(f"{name}: parameters {shape_o} != mlflow's {shape_t}")
        if sig_t.return_annotation is not inspect.Signature.empty:
            want = _type_names(sig_t.return_annotation)
            got = _type_names(sig_o.return_annotation)
            if sig_o.return_annotation is inspect.Signature.empty or want != got:
                problems.append(f"{name}: returns {got or '?'}, mlflow {want}")
    assert problems == [], "\n".join(problems)


def test_exclusions_name_functions_mlflow_has():
    """A stale exclusion (mlflow dropped the function) would hide nothing; keep the list true."""
    functions = mlflow_functions()
    assert sorted(n for n in EXCLUDED if n not in functions) == []


def test_importing_the_package_stays_cheap():
    """The new names are lazy: none of their modules is imported by ``import jupyter_mlops``."""
    import subprocess
    import sys

    code = (
        "import sys, jupyter_mlops; heavy = [m for m in ('mlflow', 'pandas', 'sqlalchemy', "
        "'requests', 'psutil', 'jupyter_mlops.client.fluent_extra') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
