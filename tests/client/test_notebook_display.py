"""The notebook display hook's bundle (``client/notebook_display.py``); the renderer and
the hook in a real kernel are exercised by ``tests/ui/test_traces_ui.py``."""

from __future__ import annotations

import inspect

from jupyter_mlops.client import notebook_display as nd
from jupyter_mlops.client.tracing import Span


def _finished(name: str, status: str = "OK") -> Span:
    span = Span(name, "CHAIN", None)

    def answer(question: str, k: int = 2) -> None: ...

    span.inputs = (inspect.signature(answer), ("what?",), {"k": 3})
    span.outputs = {"text": "x" * 1000}
    span.status = status
    span.end_ns = span.start_ns + 2_500_000
    return span


def test_the_bundle_summarises_traces_for_the_renderer_and_as_text() -> None:
    ok, failed = _finished("answer"), _finished("broken", "ERROR")
    out = nd.bundle(
        [
            {"root": ok, "experiment_id": "7", "writer": None},
            {"root": failed, "experiment_id": "7", "writer": None},
        ]
    )
    data = out[nd.MIME_TYPE]
    assert data["experiment_id"] == "7"
    first, second = data["traces"]
    assert first["trace_id"] == ok.request_id and first["trace_id"].startswith("tr-")
    assert first["name"] == "answer" and first["state"] == "OK"
    assert first["execution_duration_ms"] == 2.5
    assert first["request_preview"] == '{"question": "what?", "k": 3}'
    assert len(first["response_preview"]) == nd.PREVIEW_CHARS
    assert second["state"] == "ERROR"
    assert out["text/plain"].splitlines()[1] == f"Trace {failed.request_id} broken ERROR 2.5 ms"


def test_outside_a_kernel_nothing_is_kept() -> None:
    nd.note_trace(_finished("answer"), "1")
    assert nd._pending == []
