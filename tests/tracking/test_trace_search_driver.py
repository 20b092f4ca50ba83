"""``search_traces`` with a filter that matches few or no traces (issue 17): on SQLite such
a filter drives the search from its index (``trace_search.pick_driver``) instead of a walk
of every trace, be it ``=``/``IN``, ``!=``/``NOT IN`` (the ranges around the values),
``LIKE``/``ILIKE`` with a prefix, or on span status (migration 0019's index); the traces
and pages must be the walk's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_mlops.tracking import trace_search
from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
from jupyter_mlops.tracking.traces import TraceInfo

N = 1200  # span 'step0' is in every trace: more index rows than a driver may have
RARE = {i for i in range(N) if i % 97 == 5}  # 13 traces, one has tag env=dev


def _span(i: int, j: int, name: str, status: str = "OK") -> dict[str, Any]:
    return {
        "trace_id": t.hex_to_b64(f"{i:032x}"),
        "span_id": t.hex_to_b64(f"{i:012x}{j:04x}"),
        "parent_span_id": None if j == 0 else t.hex_to_b64(f"{i:012x}{j - 1:04x}"),
        "name": name,
        "start_time_unix_nano": 1_000_000_000 + i,
        "end_time_unix_nano": 2_000_000_000 + i,
        "status": {"code": f"STATUS_CODE_{status}"},
        "attributes": {"mlflow.spanType": '"CHAIN"', "k": json.dumps(f"v{i % 400}")},
        "events": [],
    }


def _record(exp: str, i: int) -> tuple[TraceInfo, list[dict[str, Any]]]:
    # pairs of traces share a timestamp: the trace id breaks the tie, across pages too
    tags = {"env": "dev" if i == 5 else "prod"}
    info = TraceInfo(f"tr-{i:032x}", exp, 1000 + i // 2, "OK", 5, tags=tags)
    second = _span(i, 1, "rare", "ERROR") if i in RARE else _span(i, 1, "step1")
    return info, [_span(i, 0, "step0"), second]


def _expected(ids: set[int]) -> list[str]:
    order = sorted(ids, key=lambda i: (-(1000 + i // 2), f"tr-{i:032x}"))
    return [f"tr-{i:032x}" for i in order]


def _pages(store: SqlTrackingStore, exp: str, flt: str, size: int) -> list[list[str]]:
    pages, token = [], None
    while True:
        infos, token = store.search_traces([exp], flt, size, ["timestamp_ms DESC"], token)
        pages.append([i.trace_id for i in infos])
        if token is None:
            return pages


CASES = [
    ("span.name = 'nope'", set()),
    ("span.name = 'rare'", RARE),
    ("span.name IN ('nope', 'rare') AND tags.env = 'prod'", RARE - {5}),
    ("tags.env = 'prod' AND span.name = 'rare'", RARE - {5}),
    ("span.attributes.k = 'v5' AND span.name = 'step0'", {i for i in range(N) if i % 400 == 5}),
    ("span.name = 'step0' AND trace.timestamp_ms < 1003", {0, 1, 2, 3, 4, 5}),
    ("span.name LIKE 'rar%'", RARE),
    ("span.name LIKE 'ra_e' AND tags.env = 'prod'", RARE - {5}),
    ("span.name ILIKE 'RaR%'", RARE),
    ("span.name ILIKE '%ARE'", RARE),  # no prefix: the walk
    ("span.name LIKE 'step%' AND tags.env LIKE 'de%'", {5}),
    ("tags.env ILIKE 'DEV'", {5}),
    ("span.attributes.k LIKE 'v39_'", {i for i in range(N) if 390 <= i % 400 <= 399}),
    (
        "span.attributes.k ILIKE 'V1%' AND span.name = 'rare'",
        {i for i in RARE if str(i % 400)[0] == "1"},
    ),
    ("span.status = 'ERROR'", RARE),
    ("span.status != 'OK'", RARE),
    ("span.status NOT IN ('OK', 'UNSET') AND tags.env != 'dev'", RARE - {5}),
    ("tags.env != 'prod'", {5}),
    ("span.name NOT IN ('step0', 'step1')", RARE),
    ("span.type != 'CHAIN'", set()),
    ("span.attributes.mlflow.spanType NOT IN ('TOOL', 'CHAIN')", set()),
]


@pytest.fixture(scope="module")
def populated(module_store: SqlTrackingStore) -> tuple[SqlTrackingStore, str]:
    exp = module_store.create_experiment("driver")
    module_store.log_traces([_record(exp, i) for i in range(N)])
    # another experiment's rare trace: the driver's rows are not all this one's
    other = module_store.create_experiment("driver-other")
    module_store.log_traces([_record(other, N + 7)])
    with module_store._write() as conn:
        conn.execute(
            t.spans.update()
            .where(t.spans.c.trace_id == f"tr-{N + 7:032x}", t.spans.c.name == "step1")
            .values(name="rare")
        )
    return module_store, exp


@pytest.mark.parametrize("flt,ids", CASES)
@pytest.mark.parametrize("size", [4, 100])
def test_pages_as_the_walk_gives_them(
    populated: tuple[SqlTrackingStore, str],
    monkeypatch: pytest.MonkeyPatch,
    flt: str,
    ids: set[int],
    size: int,
) -> None:
    store, exp = populated
    want = _expected(ids)
    want_pages = [want[k : k + size] for k in range(0, len(want), size)] or [[]]
    # as chosen, never driven (the walk), always driven by the filter with fewest rows
    for limit in (trace_search.DRIVE_MAX_ROWS, 0, 10**9):
        monkeypatch.setattr(trace_search, "DRIVE_MAX_ROWS", limit)
        assert _pages(store, exp, flt, size) == want_pages, (flt, limit)


def test_the_filter_with_few_rows_drives(populated: tuple[SqlTrackingStore, str]) -> None:
    store, _ = populated
    with store._read() as conn:

        def pick(flt: str) -> int | None:
            return trace_search.pick_driver(conn, trace_search.parse_trace_filter(flt))

        if store.dialect != "sqlite":  # PostgreSQL's planner does it
            assert pick("span.name = 'nope'") is None
            return
        assert pick("span.name = 'nope'") == 0
        assert pick("span.name = 'step0' AND span.name = 'rare'") == 1
        assert pick("tags.env = 'prod' AND span.attributes.k IN ('v1', 'v2')") == 1
        # more index rows than DRIVE_MAX_ROWS, or no index range: the walk
        assert pick("span.name = 'step0'") is None
        assert pick("trace.status = 'OK'") is None
        # LIKE/ILIKE: their prefix's range(s); != / NOT IN: the ranges around the values
        assert pick("span.name LIKE 'rar%' AND span.status = 'OK'") == 0
        assert pick("span.name = 'step0' AND span.name ILIKE 'RA%'") == 1
        assert pick("tags.env = 'prod' AND tags.env LIKE 'de_'") == 1
        assert pick("span.attributes.k LIKE 'v39%'") == 0
        assert pick("span.status = 'ERROR'") == 0  # migration 0019's index
        assert pick("span.status != 'OK'") == 0
        assert pick("tags.env = 'prod' AND tags.env NOT IN ('prod', 'x')") == 1
        assert pick("span.name LIKE 'step%'") is None
        assert pick("span.name ILIKE 'S%'") is None
        assert pick("span.name != 'rare'") is None
        assert pick("span.name LIKE '%are' AND span.content LIKE 'rar%'") is None
