"""``search_traces`` with a filter that matches few or no traces (issue 17): on SQLite such
a filter drives the search from its index (``trace_search.pick_driver``) instead of a walk
of every trace, be it ``=``/``IN``, ``!=``/``NOT IN`` (the ranges around the values),
``LIKE``/``ILIKE`` with a prefix, or on span status (migration 0019's index); the traces
and pages must be the walk's."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import sqlalchemy as sa

from jupyter_mlops.tracking import trace_search
from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
from jupyter_mlops.tracking.traces import TraceInfo

N = 1200  # span 'step0' is in every trace: more index rows than a driver may have
RARE = {i for i in range(N) if i % 97 == 5}  # 13 traces, one has tag env=dev
OLD = set(range(600))  # a span 'old' in the oldest half: too many rows to drive at once


def _span(i: int, j: int, name: str, status: str = "OK") -> dict[str, Any]:
    return {
        "trace_id": t.hex_to_b64(f"{i:032x}"),
        "span_id": t.hex_to_b64(f"{i:012x}{j:04x}"),
        "parent_span_id": None if j == 0 else t.hex_to_b64(f"{i:012x}{j - 1:04x}"),
        "name": name,
        "start_time_unix_nano": 1_000_000_000 + i,
        "end_time_unix_nano": 2_000_000_000 + i,
        "status": {"code": f"STATUS_CODE_{status}"},
        "attributes": {
            "mlflow.spanType": '"CHAIN"',
            "k": json.dumps(f"v{i % 400}"),
            # free text: a value per span, more than a skip scan reads
            "text": json.dumps(f"question {i}/{j}" + (" needle" if name == "rare" else "")),
        },
        "events": [],
    }


def _record(exp: str, i: int, third: str | None = None) -> tuple[TraceInfo, list[dict[str, Any]]]:
    # pairs of traces share a timestamp: the trace id breaks the tie, across pages too
    tags = {"env": "dev" if i == 5 else "prod"}
    info = TraceInfo(f"tr-{i:032x}", exp, 1000 + i // 2, "OK", _duration(i), tags=tags)
    second = _span(i, 1, "rare", "ERROR") if i in RARE else _span(i, 1, "step1")
    third = "old" if i in OLD else third
    return info, [_span(i, 0, "step0"), second, *([_span(i, 2, third)] if third else [])]


def _duration(i: int) -> int:
    return 5 + i * 7 % 50  # 5-54 ms, shared by many traces: ties across pages


def _expected(ids: set[int], by_duration: bool = False) -> list[str]:
    def key(i: int) -> tuple[int, int, str]:
        return (-_duration(i) if by_duration else 0, -(1000 + i // 2), f"tr-{i:032x}")

    return [f"tr-{i:032x}" for i in sorted(ids, key=key)]


def _pages(
    store: SqlTrackingStore,
    exp: str,
    flt: str,
    size: int,
    order: str = "timestamp_ms DESC",
    most: int | None = None,
) -> list[list[str]]:
    """The pages of a search, each read with the previous one's token; ``most``: only
    that many, the last of them still holding a token when more follow."""
    pages, token = [], None
    while True:
        infos, token = store.search_traces([exp], flt, size, [order], token)
        pages.append([i.trace_id for i in infos])
        if token is None:
            return pages
        if most is not None and len(pages) == most:
            return [*pages, ["(more)"]]


#: Pages of 4 read of a search, at most. Offsets past them are read by pages of 100 to
#: the end: pages of 4 through 1,200 traces, five ways, cost 1,500 searches (each reads
#: its offset's traces again), 10-30 s per case on PostgreSQL. 25 pages (100 traces)
#: hold the newest-first window's pages: a page ending at ``rows`` looks in the newest
#: ``20 * rows`` traces (``walk_window``), which is past this experiment's 1,200 from
#: offset 56 on.
SMALL_PAGES = 25


def _want(want: list[str], size: int, most: int | None = None) -> list[list[str]]:
    pages = [want[k : k + size] for k in range(0, len(want), size)] or [[]]
    if most is not None and len(pages) > most:
        return [*pages[:most], ["(more)"]]
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
    ("span.name ILIKE 'RARE'", RARE),  # ranges of 'rar' in 8 cases, rechecked
    ("span.name ILIKE 'sTEP1%' AND trace.timestamp_ms < 1003", {0, 1, 2, 3, 4}),
    # no prefix: the IN of the few distinct values that match, or the walk (400 values)
    ("span.name ILIKE '%ARE'", RARE),
    ("span.name LIKE '%zzz%'", set()),
    ("tags.env ILIKE '%EV' AND span.name LIKE '%tep_'", {5}),
    ("span.attributes.k LIKE '%39'", {i for i in range(N) if i % 400 % 100 == 39}),
    ("span.name LIKE 'step%' AND tags.env LIKE 'de%'", {5}),
    # free text (a value per span): its index entries scanned with the pattern
    ("span.attributes.text LIKE '%needle'", RARE),
    ("span.attributes.text ILIKE '%NEEDLE%' AND tags.env = 'prod'", RARE - {5}),
    ("span.attributes.text LIKE '%on 11_/%'", set(range(110, 120))),
    ("span.attributes.text LIKE '%zzz%'", set()),
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
    ("span.name NOT IN ('step0', 'step1')", RARE | OLD),
    ("span.type != 'CHAIN'", set()),
    ("span.attributes.mlflow.spanType NOT IN ('TOOL', 'CHAIN')", set()),
    # too many index rows to drive at once: the newest traces first, then the index
    ("span.name = 'old'", OLD),
    ("span.name = 'old' AND tags.env = 'prod'", OLD - {5}),
    ("span.name IN ('elsewhere', 'old') AND span.name LIKE 'ol%'", OLD),
    ("span.name = 'elsewhere'", set()),  # only in the other experiment
    ("span.name = 'step1' AND span.status = 'OK'", set(range(N)) - RARE),
]

#: (DRIVE_MAX_ROWS, WINDOW_TRACES, FALLBACK_MAX_ROWS) of each way to search
MODES = {
    "as chosen": (
        trace_search.DRIVE_MAX_ROWS,
        trace_search.WINDOW_TRACES,
        trace_search.FALLBACK_MAX_ROWS,
    ),
    "the walk": (0, 0, 0),
    "driven by the filter with fewest rows": (10**9, 0, 0),
    "the newest traces, then driven": (0, 1, 10**9),
    "the newest traces, then the walk": (0, 1, 0),
}


@pytest.fixture(scope="module")
def populated(module_store: SqlTrackingStore) -> tuple[SqlTrackingStore, str]:
    exp = module_store.create_experiment("driver")
    module_store.log_traces([_record(exp, i) for i in range(N)])
    # another experiment's rare trace: the driver's rows are not all this one's
    other = module_store.create_experiment("driver-other")
    module_store.log_traces([_record(other, N + 7)])
    module_store.log_traces([_record(other, N + 10 + k, "elsewhere") for k in range(600)])
    with module_store._write() as conn:
        conn.execute(
            t.spans.update()
            .where(
                t.spans.c.trace_key
                == sa.select(t.traces.c.trace_key)
                .where(t.traces.c.trace_id == f"tr-{N + 7:032x}")
                .scalar_subquery(),
                t.spans.c.name == "step1",
            )
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
    most = SMALL_PAGES if size < 100 else None
    want_pages = _want(_expected(ids), size, most)
    for mode, (drive, window, fallback) in MODES.items():
        monkeypatch.setattr(trace_search, "DRIVE_MAX_ROWS", drive)
        monkeypatch.setattr(trace_search, "WINDOW_TRACES", window)
        monkeypatch.setattr(trace_search, "FALLBACK_MAX_ROWS", fallback)
        assert _pages(store, exp, flt, size, most=most) == want_pages, (flt, mode)
        assert store.trace_counts([exp], flt, None) == [(None, len(ids))], (flt, mode)


@pytest.mark.parametrize(
    "flt,ids",
    [
        ("span.name = 'old'", OLD),
        ("span.name = 'step1' AND tags.env = 'prod'", set(range(N)) - RARE - {5}),
        ("span.name LIKE 'rar%'", RARE),
    ],
)
@pytest.mark.parametrize("size", [4, 100])
def test_pages_by_duration_as_the_walk_gives_them(
    populated: tuple[SqlTrackingStore, str],
    monkeypatch: pytest.MonkeyPatch,
    flt: str,
    ids: set[int],
    size: int,
) -> None:
    """Ordered by duration (its index), the newest-first window is the longest first."""
    store, exp = populated
    most = SMALL_PAGES if size < 100 else None
    want_pages = _want(_expected(ids, by_duration=True), size, most)
    for mode, (drive, window, fallback) in MODES.items():
        monkeypatch.setattr(trace_search, "DRIVE_MAX_ROWS", drive)
        monkeypatch.setattr(trace_search, "WINDOW_TRACES", window)
        monkeypatch.setattr(trace_search, "FALLBACK_MAX_ROWS", fallback)
        got = _pages(store, exp, flt, size, "execution_time_ms DESC", most)
        assert got == want_pages, (flt, mode)


@pytest.mark.parametrize(
    "flt,then",
    [
        ("span.name = 'old'", "driven"),  # too few among the newest: from the index
        ("span.name = 'elsewhere' AND tags.env = 'prod'", "driven"),
        ("span.name = 'step1' AND tags.env = 'prod'", None),  # the newest fill the page
        # more index rows than FALLBACK_MAX_ROWS: the walk
        ("span.name = 'step0' AND trace.execution_time_ms > 100", "walked"),
    ],
)
def test_a_filter_whose_traces_are_old_drives_after_the_newest(
    populated: tuple[SqlTrackingStore, str],
    monkeypatch: pytest.MonkeyPatch,
    flt: str,
    then: str | None,
) -> None:
    store, exp = populated
    monkeypatch.setattr(trace_search, "WINDOW_TRACES", 100)
    monkeypatch.setattr(trace_search, "FALLBACK_MAX_ROWS", 1000)
    pages: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("SELECT traces.trace_id"):
            pages.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        store.search_traces([exp], flt, 4, ["timestamp_ms DESC"])
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    # the first page query reads the newest 100 traces; then, if needed, the driven one
    assert "traces.request_time >=" in pages[0]
    assert len(pages) == (1 if then is None else 2), pages
    if then is not None:
        assert "request_time >=" not in pages[1]
        assert _driven(store, pages[1]) == (then == "driven"), pages[1]


def _driven(store: SqlTrackingStore, statement: str) -> bool:
    """Whether a page's statement reads a filter's index rows first (PostgreSQL: an
    ``= ANY(ARRAY(...))`` of them, SQLite: an ``IN``)."""
    keys = ("traces.trace_id", "traces.trace_key")  # tags' rows name traces by id, spans' by key
    if store.dialect == "sqlite":
        return any(f"{k} IN (SELECT " in statement for k in keys)
    return any(f"{k} = ANY (array((SELECT " in statement for k in keys)


def test_the_filter_with_few_rows_drives(populated: tuple[SqlTrackingStore, str]) -> None:
    store, _ = populated
    with store._read() as conn:

        def pick(flt: str) -> int | None:
            driver = trace_search.pick_driver(conn, trace_search.parse_trace_filter(flt))
            return None if driver is None else driver[0]

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
        # a leading wildcard: the matching values of a column with few
        assert pick("span.name LIKE '%are'") == 0
        assert pick("span.name = 'step0' AND span.name ILIKE '%Zz'") == 1
        assert pick("span.name LIKE '%tep%'") is None
        # over more values (free text): on SQLite their index entries scanned, when few
        # match; PostgreSQL's index holds a prefix of the value: the walk
        scanned = 0 if store.dialect == "sqlite" else None
        assert pick("span.attributes.k LIKE '%39' AND span.content LIKE 'rar%'") == scanned
        assert pick("span.attributes.text LIKE '%needle%'") == scanned
        assert pick("span.attributes.text ILIKE '%NEEDLE%' AND tags.env = 'prod'") == scanned
        assert pick("span.name = 'rare' AND span.attributes.text LIKE '%needle%'") == 0
        assert pick("span.attributes.text LIKE '%question%'") is None
        assert pick("span.content LIKE '%needle%'") is None


def test_a_scan_past_its_bound_leaves_the_search_to_the_walk(
    populated: tuple[SqlTrackingStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pattern's scan of more index entries than ``SCAN_MAX_STEPS`` allows is
    interrupted (that statement only): the same transaction walks."""
    store, exp = populated
    flt = "span.attributes.text LIKE '%needle%'"
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("SELECT traces.trace_id"):
            statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert _pages(store, exp, flt, 4) == [_expected(RARE)[k : k + 4] for k in range(0, 13, 4)]
        assert _driven(store, statements[0]) == (store.dialect == "sqlite")
        monkeypatch.setattr(trace_search, "SCAN_MAX_STEPS", 1)
        with store._read() as conn:
            comparisons = trace_search.parse_trace_filter(flt)
            assert trace_search.pick_driver(conn, comparisons) is None
        statements.clear()
        assert _pages(store, exp, flt, 4) == [_expected(RARE)[k : k + 4] for k in range(0, 13, 4)]
        assert not any(_driven(store, s) for s in statements)
        assert store.trace_counts([exp], flt, None) == [(None, len(RARE))]
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)


P = "p" * 200  # as long as PostgreSQL's value index holds (schema.VALUE_PREFIX_CHARS)
NOTES = [P, P + "tail1", P + "tail2", P[:199], P[:199] + "q", "short"]
# PostgreSQL's ILIKE may fold letters beyond ASCII (É/é), and U+212A KELVIN SIGN and
# U+0130 onto 'k' and 'i' (a libc C.UTF-8 collation); SQLite's folds ASCII only
NAMES = ["Été", "été", "ÉTÉ", "\u212aelvin", "kelvin", "KELVIN", "a_b", "axb"]
NAMES += ["\u0130stanbul", "istanbul", "a\\xb"]
TEXTS = 33  # traces of the experiment "driver-text"


def _text_record(exp: str, k: int) -> tuple[TraceInfo, list[dict[str, Any]]]:
    i = N + 3000 + k
    tags = {"note": NOTES[k % len(NOTES)]}
    info = TraceInfo(f"tr-{i:032x}", exp, 5000 + k, "OK", 10, tags=tags)
    return info, [_span(i, 0, NAMES[k % len(NAMES)])]


@pytest.fixture(scope="module")
def texts(populated: tuple[SqlTrackingStore, str]) -> tuple[SqlTrackingStore, str]:
    store, _ = populated
    exp = store.create_experiment("driver-text")
    store.log_traces([_text_record(exp, k) for k in range(TEXTS)])
    return store, exp


def _notes(*values: str) -> set[int]:
    return {k for k in range(TEXTS) if NOTES[k % len(NOTES)] in values}


TEXT_CASES = [
    # a value longer than its indexed prefix: the prefix's range, the whole value rechecked
    (f"tags.note = '{P}tail1'", _notes(P + "tail1")),
    (f"tags.note = '{P}'", _notes(P)),
    (f"tags.note IN ('{P}', 'short')", _notes(P, "short")),
    (f"tags.note != '{P}tail1'", _notes(*NOTES) - _notes(P + "tail1")),
    (f"tags.note NOT IN ('{P}', '{P[:199]}')", _notes(*NOTES) - _notes(P, P[:199])),
    (f"tags.note LIKE '{P}tail%'", _notes(P + "tail1", P + "tail2")),
    (f"tags.note LIKE '{P[:199]}%'", _notes(*NOTES) - _notes("short")),
    (f"tags.note ILIKE '{P.upper()}TAIL_'", _notes(P + "tail1", P + "tail2")),
    ("tags.note LIKE '%tail2'", _notes(P + "tail2")),  # the prefixes' skip scan
    ("span.name LIKE 'a_b'", {k for k in range(TEXTS) if NAMES[k % len(NAMES)] in ("a_b", "axb")}),
    # as the database compares: the walk's traces
    ("span.name ILIKE 'été'", None),
    ("span.name ILIKE 'ÉT%'", None),
    ("span.name ILIKE 'kel%'", None),
    ("span.name ILIKE 'KELVIN'", None),
    ("span.name ILIKE 'ist%'", None),
    ("span.name LIKE 'a\\_b'", None),  # PostgreSQL's LIKE escapes with a backslash
    ("span.name ILIKE '%TÉ'", None),
]


@pytest.mark.parametrize("flt,ids", TEXT_CASES)
def test_long_values_and_case_folding_as_the_walk_gives_them(
    texts: tuple[SqlTrackingStore, str],
    monkeypatch: pytest.MonkeyPatch,
    flt: str,
    ids: set[int] | None,
) -> None:
    """Values longer than PostgreSQL's indexed prefix, ILIKE beyond ASCII and LIKE's
    escape: the driven pages are the walk's (and the oracle's where both databases
    agree), under a code point collation and under one whose order is not (no ranges
    but ``=``/``IN``)."""
    store, exp = texts
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("SELECT traces.trace_id"):
            statements.append(statement)

    for name, value in (("DRIVE_MAX_ROWS", 0), ("WINDOW_TRACES", 0), ("FALLBACK_MAX_ROWS", 0)):
        monkeypatch.setattr(trace_search, name, value)
    walked = _pages(store, exp, flt, 4)
    count = store.trace_counts([exp], flt, None)
    monkeypatch.undo()
    if ids is not None:
        want = [f"tr-{N + 3000 + k:032x}" for k in sorted(ids, key=lambda k: -k)]
        assert walked == ([want[k : k + 4] for k in range(0, len(want), 4)] or [[]])
    assert walked != [[]], "a case that matches nothing tells nothing"
    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert _pages(store, exp, flt, 4) == walked
        assert any(_driven(store, s) for s in statements), statements
        assert store.trace_counts([exp], flt, None) == count
        text = trace_search._text
        monkeypatch.setattr(
            trace_search, "_text", lambda conn: dataclasses.replace(text(conn), ordered=False)
        )
        assert _pages(store, exp, flt, 4) == walked, "unordered"
        assert store.trace_counts([exp], flt, None) == count, "unordered"
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)


def test_ilike_variants() -> None:
    sqlite, pg = trace_search._SQLITE, trace_search._Text(pg=True, ordered=True, folds={"k": "K"})
    assert trace_search._ilike_prefixes("k1é", sqlite) == ["k1é", "K1é"]
    assert trace_search._ilike_prefixes("k1é", pg) == ["k1", "K1", "K1"]
    assert trace_search._ilike_prefixes("ék", pg) == [""]
    assert trace_search._like_prefix("a\\_b%", sqlite) == "a\\"
    assert trace_search._like_prefix("a\\_b%", pg) == "a"


def test_traces_without_duration_keep_their_place(
    populated: tuple[SqlTrackingStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Traces in progress (no duration) come first by ``execution_time DESC`` on
    PostgreSQL (NULLs sort high) and last on SQLite: a window of the longest traces must
    not leave them out (the walk's pages)."""
    store, _ = populated
    exp = store.create_experiment("driver-in-progress")
    records = []
    for k in range(120):
        i = N + 4000 + k
        info = TraceInfo(f"tr-{i:032x}", exp, 7000 + k, "OK", None if k % 10 == 3 else k)
        if info.execution_duration is None:
            info.state = "IN_PROGRESS"
        records.append((info, [_span(i, 0, "n0")]))
    store.log_traces(records)
    pages = {}
    for mode in ("the walk", "the newest traces, then the walk", "the newest traces, then driven"):
        for name, value in zip(
            ("DRIVE_MAX_ROWS", "WINDOW_TRACES", "FALLBACK_MAX_ROWS"), MODES[mode], strict=True
        ):
            monkeypatch.setattr(trace_search, name, value)
        pages[mode] = _pages(store, exp, "span.name = 'n0'", 4, "execution_time_ms DESC")
    assert len({json.dumps(p) for p in pages.values()}) == 1, pages
