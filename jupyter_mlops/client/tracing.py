"""Tracing in the client: ``mlops.trace``, ``mlops.start_span``, ``mlops.search_traces``,
``mlops.get_trace``, ``mlops.log_feedback`` / ``mlops.log_expectation``.

A traced call costs the caller a few microseconds: a :class:`Span` is a slotted object
with two clock reads, kept in a context variable (threads and asyncio tasks each have
their own current span). When a trace's root span ends, its finished spans go to the
writer's queue as they are; the writer thread turns them into MLflow's span JSON and
sends whole traces in batches (``api/v1/traces/log-bulk`` over HTTP, straight to SQL
for a database URI), where the span index goes to rows and the data to the artifact
store. The spans are MLflow's (``Span.to_dict()``), so MLflow's UI and client read them.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .notebook_display import note_trace
from .trace_json import _inputs

_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "jupyter_mlops_span", default=None
)

SPAN_TYPES = (
    "UNKNOWN",
    "LLM",
    "CHAIN",
    "AGENT",
    "TOOL",
    "CHAT_MODEL",
    "RETRIEVER",
    "PARSER",
    "EMBEDDING",
    "RERANKER",
)


class Span:
    """One traced call. ``set_inputs``/``set_outputs``/``set_attribute(s)``/``add_event``
    record what it did; values are JSON-encoded later, on the writer thread."""

    __slots__ = (
        "_children",
        "attributes",
        "end_ns",
        "events",
        "inputs",
        "name",
        "outputs",
        "parent",
        "span_id",
        "span_type",
        "start_ns",
        "status",
        "status_message",
        "trace_id",
    )

    def __init__(self, name: str, span_type: str, parent: Span | None) -> None:
        self.name = name
        self.span_type = span_type
        self.parent = parent
        self.trace_id: str = parent.trace_id if parent is not None else uuid.uuid4().hex
        self.span_id = os.urandom(8).hex()
        self.attributes: dict[str, Any] = {}
        self.events: list[tuple[str, int, dict[str, Any]]] = []
        self.inputs: Any = None
        self.outputs: Any = None
        self.status = "OK"
        self.status_message = ""
        self._children: list[Span] = []
        self.end_ns: int | None = None
        self.start_ns = time.time_ns()

    @property
    def request_id(self) -> str:
        """The trace's id as MLflow names it (``tr-<hex>``)."""
        return "tr-" + self.trace_id

    def set_inputs(self, inputs: Any) -> None:
        self.inputs = inputs

    def set_outputs(self, outputs: Any) -> None:
        self.outputs = outputs

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        self.attributes.update(attributes)

    def add_event(self, name: str, attributes: dict[str, Any] | None = None) -> None:
        self.events.append((name, time.time_ns(), dict(attributes or {})))

    def set_status(self, status: str, message: str = "") -> None:
        self.status, self.status_message = status, message

    def _end(self, error: BaseException | None) -> None:
        self.end_ns = time.time_ns()
        if error is not None:
            self.status, self.status_message = "ERROR", f"{type(error).__name__}: {error}"
            self.events.append(
                (
                    "exception",
                    self.end_ns,
                    {"exception.type": type(error).__name__, "exception.message": str(error)},
                )
            )
        if self.parent is not None:
            self.parent._children.append(self)
        else:
            _export(self)


def _export(root: Span) -> None:
    from . import fluent

    client = fluent._client()
    run = fluent.active_run()
    exp = fluent._current_experiment_id(client) if run is None else run.info.experiment_id
    client._writer.log_trace(root, exp, run.info.run_id if run is not None else None)
    note_trace(root, exp, client._writer)


@contextmanager
def start_span(
    name: str = "span", span_type: str = "UNKNOWN", attributes: dict[str, Any] | None = None
) -> Iterator[Span]:
    """A span around a block (a child of the current one, or a new trace's root)."""
    span = Span(name, span_type, _current.get())
    if attributes:
        span.attributes.update(attributes)
    token = _current.set(span)
    error: BaseException | None = None
    try:
        yield span
    except BaseException as e:
        error = e
        raise
    finally:
        _current.reset(token)
        span._end(error)


def trace(
    func: Callable[..., Any] | str | None = None,
    *,
    name: str | None = None,
    span_type: str = "UNKNOWN",
    attributes: dict[str, Any] | None = None,
) -> Any:
    """Trace a function (``@mlops.trace``, ``@mlops.trace(name=..., span_type="TOOL")``)
    or a block (``with mlops.trace("step") as span:``): each call is a span with its
    inputs, output or exception, nested under the caller's span."""
    if isinstance(func, str):
        return start_span(func, span_type, attributes)
    if func is None:
        return functools.partial(trace, name=name, span_type=span_type, attributes=attributes)
    span_name: str = name or getattr(func, "__name__", None) or "span"
    try:
        sig: inspect.Signature | None = inspect.signature(func)
    except (TypeError, ValueError):
        sig = None

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with start_span(span_name, span_type, attributes) as span:
                span.inputs = _inputs(sig, args, kwargs)
                out = await func(*args, **kwargs)
                span.outputs = out
                return out

        return run_async

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        span = Span(span_name, span_type, _current.get())
        if attributes:
            span.attributes.update(attributes)
        span.inputs = (sig, args, kwargs)  # bound on the writer thread
        token = _current.set(span)
        try:
            out = func(*args, **kwargs)
        except BaseException as e:
            _current.reset(token)
            span._end(e)
            raise
        _current.reset(token)
        span.outputs = out
        span._end(None)
        return out

    return run


def get_current_active_span() -> Span | None:
    return _current.get()


# -- reads and assessments ------------------------------------------------------------------
def search_traces(
    experiment_ids: list[str] | None = None,
    filter_string: str | None = None,
    max_results: int = 100,
    order_by: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Trace infos (MLflow's v3 JSON) matching MLflow's trace filter grammar, newest
    first; the current experiment's unless ``experiment_ids``. Waits for queued traces."""
    from . import fluent

    client = fluent._client()
    client.flush()
    exps = experiment_ids or [fluent._current_experiment_id(client)]
    infos, _ = client.store.search_traces(
        [str(e) for e in exps], filter_string, max_results, order_by, None
    )
    return [i.to_dict() for i in infos]


def get_trace(trace_id: str) -> dict[str, Any]:
    """``{"info": ..., "spans": [...]}`` of one trace (spans in MLflow's JSON)."""
    from . import fluent

    client = fluent._client()
    client.flush()
    store = client.store
    return {
        "info": store.get_trace_info(trace_id).to_dict(),
        "spans": store.get_trace_spans(trace_id),
    }


def _assessment(
    kind: str,
    trace_id: str,
    name: str,
    value: Any,
    source_type: str,
    source_id: str | None,
    rationale: str | None,
    metadata: dict[str, str] | None,
    span_id: str | None,
) -> dict[str, Any]:
    from . import fluent

    body: dict[str, Any] = {
        "assessment_name": name,
        kind: {"value": value},
        "source": {"source_type": source_type, **({"source_id": source_id} if source_id else {})},
    }
    if rationale:
        body["rationale"] = rationale
    if metadata:
        body["metadata"] = metadata
    if span_id:
        body["span_id"] = span_id
    client = fluent._client()
    client.flush()  # the trace may still be in the queue
    return client.store.create_assessment(trace_id, body)


def log_feedback(
    trace_id: str,
    name: str = "feedback",
    value: Any = None,
    source_type: str = "HUMAN",
    source_id: str | None = None,
    rationale: str | None = None,
    metadata: dict[str, str] | None = None,
    span_id: str | None = None,
) -> dict[str, Any]:
    """Feedback on a trace (a judgement: a score, a label, a comment)."""
    return _assessment(
        "feedback", trace_id, name, value, source_type, source_id, rationale, metadata, span_id
    )


def log_expectation(
    trace_id: str,
    name: str = "expected_response",
    value: Any = None,
    source_type: str = "HUMAN",
    source_id: str | None = None,
    metadata: dict[str, str] | None = None,
    span_id: str | None = None,
) -> dict[str, Any]:
    """The expected (ground truth) value for a trace."""
    return _assessment(
        "expectation", trace_id, name, value, source_type, source_id, None, metadata, span_id
    )
