"""Migration 0021: an integer key per trace, the span tables keyed and joined by it.
Spans and attributes stored before it keep their traces (found by search, deleted with
them), new traces get larger keys, and the downgrade gives the rows their trace ids back;
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from migrator import Migrator

from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
from jupyter_mlops.tracking.traces import TraceInfo

BEFORE = "0020_trace_rows"
REVISION = "0021_trace_keys"

#: (trace id, request time, its spans: (span id, name, status, attribute "model"))
OLD = [
    ("tr-c", 3000, [("s1", "root", "OK", "small")]),
    ("tr-a", 1000, [("s1", "root", "ERROR", "gpt"), ("s2", "tool", "OK", None)]),
    ("tr-b", 2000, [("s1", "root", "OK", "small")]),
]


def _insert_old(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
            "VALUES (7, 'old', 'active')"
        )
        for trace_id, at, spans in OLD:
            conn.execute(
                sa.text(
                    "INSERT INTO traces (trace_id, experiment_id, request_time, state) "
                    "VALUES (:t, 7, :at, 'OK')"
                ),
                {"t": trace_id, "at": at},
            )
            conn.execute(
                sa.text("INSERT INTO trace_tags (trace_id, key, value) VALUES (:t, 'env', :t)"),
                {"t": trace_id},
            )
            for span_id, name, status, model in spans:
                conn.execute(
                    sa.text(
                        "INSERT INTO spans (trace_id, span_id, name, status, start_time_ns) "
                        "VALUES (:t, :s, :n, :st, 1)"
                    ),
                    {"t": trace_id, "s": span_id, "n": name, "st": status},
                )
                if model is not None:
                    conn.execute(
                        sa.text(
                            "INSERT INTO span_attributes (trace_id, span_id, key, value) "
                            "VALUES (:t, :s, 'model', :m)"
                        ),
                        {"t": trace_id, "s": span_id, "m": model},  # stored unwrapped
                    )


def _span_rows(engine: sa.Engine, link: str) -> set[tuple[Any, ...]]:
    """Every span and attribute row with its trace's id, through ``link``."""
    with engine.connect() as conn:
        spans = conn.exec_driver_sql(
            f"SELECT t.trace_id, s.span_id, s.name, s.status FROM spans s "
            f"JOIN traces t ON t.{link} = s.{link}"
        ).all()
        attrs = conn.exec_driver_sql(
            f"SELECT t.trace_id, a.span_id, a.value FROM span_attributes a "
            f"JOIN traces t ON t.{link} = a.{link}"
        ).all()
    return {("span", *r) for r in spans} | {("attr", *r) for r in attrs}


def _expected() -> set[tuple[Any, ...]]:
    out: set[tuple[Any, ...]] = set()
    for trace_id, _, spans in OLD:
        for span_id, name, status, model in spans:
            out.add(("span", trace_id, span_id, name, status))
            if model is not None:
                out.add(("attr", trace_id, span_id, model))
    return out


def _search(store: SqlTrackingStore, flt: str) -> list[str]:
    found, _ = store.search_traces(["7"], flt, order_by=["timestamp_ms ASC"])
    return [i.trace_id for i in found]


def _new_trace(i: int) -> tuple[TraceInfo, list[dict[str, Any]]]:
    span = {
        "trace_id": t.hex_to_b64(f"{i:032x}"),
        "span_id": t.hex_to_b64(f"{i:016x}"),
        "parent_span_id": None,
        "name": "root",
        "start_time_unix_nano": 5_000_000_000 + i,
        "end_time_unix_nano": 6_000_000_000 + i,
        "status": {"code": "STATUS_CODE_ERROR"},
        "attributes": {"model": json.dumps("gpt")},
        "events": [],
    }
    return TraceInfo(f"tr-{i:032x}", "7", 5000 + i, "OK", 1), [span]


def test_upgrade_keys_old_spans_and_downgrade_gives_back_their_trace_ids(
    store_uri: str, migrator: Migrator
) -> None:
    engine = migrator.engine
    migrator.up(BEFORE)
    _insert_old(engine)

    migrator.up(REVISION)
    assert _span_rows(engine, "trace_key") == _expected()
    with engine.connect() as conn:
        keys = dict(conn.exec_driver_sql("SELECT trace_id, trace_key FROM traces").all())
        if not migrator.pg:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    assert len(set(keys.values())) == 3 and all(isinstance(k, int) for k in keys.values())

    store = SqlTrackingStore(store_uri)
    try:
        assert _search(store, "span.status = 'ERROR'") == ["tr-a"]
        assert _search(store, "span.attributes.model = 'gpt'") == ["tr-a"]
        assert _search(store, "span.name = 'root'") == ["tr-a", "tr-b", "tr-c"]
        # new traces take keys past the old ones, and are searched with them
        store.log_traces([_new_trace(1), _new_trace(2)])
        with store._read() as conn:
            new = conn.execute(
                sa.select(t.traces.c.trace_key).where(t.traces.c.trace_id.like("tr-0%"))
            ).scalars()
            assert min(new) > max(keys.values())
        assert _search(store, "span.attributes.model = 'gpt'") == [
            "tr-a",
            f"tr-{1:032x}",
            f"tr-{2:032x}",
        ]
        # a deleted trace takes its spans and attributes with it, and only its own
        store.delete_traces("7", trace_ids=["tr-a", f"tr-{1:032x}", f"tr-{2:032x}"])
        assert {r[1] for r in _span_rows(engine, "trace_key")} == {"tr-b", "tr-c"}
        with store._read() as conn:
            n_spans = conn.execute(sa.select(sa.func.count()).select_from(t.spans)).scalar()
            n_attrs = conn.execute(
                sa.select(sa.func.count()).select_from(t.span_attributes)
            ).scalar()
        assert (n_spans, n_attrs) == (2, 2)
    finally:
        store.close()

    migrator.down(BEFORE)
    left = {r for r in _expected() if r[1] != "tr-a"}
    assert _span_rows(engine, "trace_id") == left
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("traces")}
    assert "trace_key" not in columns

    migrator.up(REVISION)  # and up again over the downgraded rows
    assert _span_rows(engine, "trace_key") == left
