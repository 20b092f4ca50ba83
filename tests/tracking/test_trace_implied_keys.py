"""Implied trace tags and metadata (migration 0020, issue 17): ``mlflow.traceName``,
``mlflow.trace.spansLocation`` and ``mlflow.trace_schema.version`` with their usual
values are bits of ``traces.implied``, not rows, yet answered, searched and ordered as
before; a different value is a row and kept; changes turn bits back into rows. The
migration moves existing rows to the bits (and back), keeping every other row."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from migrator import Migrator

from jupyter_mlops.tracking import migrate
from jupyter_mlops.tracking import trace_metrics as tm
from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
from jupyter_mlops.tracking.traces import TraceInfo

REVISION = "0020_trace_rows"
NAME, LOC, SCHEMA = t.TAG_TRACE_NAME, t.TAG_SPANS_LOCATION, t.META_SCHEMA_VERSION


def _span(i: int, j: int) -> dict[str, Any]:
    return {
        "trace_id": t.hex_to_b64(f"{i:032x}"),
        "span_id": t.hex_to_b64(f"{i:012x}{j:04x}"),
        "parent_span_id": None if j == 0 else t.hex_to_b64(f"{i:012x}{j - 1:04x}"),
        "name": f"step{j}",
        "start_time_unix_nano": 1_000_000_000 + i + j,
        "end_time_unix_nano": 2_000_000_000 + i,
        "status": {"code": "STATUS_CODE_OK"},
        "attributes": {"mlflow.spanType": '"CHAIN"', "mlflow.spanInputs": json.dumps({"i": i})},
        "events": [],
    }


def _record(
    exp: str, i: int, tags: dict[str, str], meta: dict[str, str]
) -> tuple[TraceInfo, list[dict[str, Any]]]:
    info = TraceInfo(f"tr-{i:032x}", exp, 1000 + i, state="OK", execution_duration=5)
    info.tags.update(tags)
    info.trace_metadata.update(meta)
    return info, [_span(i, 0), _span(i, 1)]


def _rows(store: SqlTrackingStore, table: sa.Table, key: str) -> dict[str, str]:
    with store._read() as conn:
        return dict(
            conn.execute(sa.select(table.c.trace_id, table.c.value).where(table.c.key == key)).all()
        )


def _ids(store: SqlTrackingStore, exp: str, flt: str, **kw: Any) -> list[str]:
    found, _ = store.search_traces([exp], flt, **kw)
    return [i.trace_id for i in found]


@pytest.fixture
def logged(store: SqlTrackingStore) -> tuple[str, list[str]]:
    """Four traces: 0 and 1 with the usual values (as our client sends them), 2 with
    other values, 3 with none (the tag ``mlflow.trace.spansLocation`` is the store's)."""
    exp = store.create_experiment("implied")
    usual = {SCHEMA: "3"}
    store.log_traces(
        [
            _record(exp, 0, {NAME: "chat"}, usual),
            _record(exp, 1, {NAME: "agent", LOC: t.SPANS_IN_TRACKING_STORE}, usual),
            _record(exp, 2, {NAME: "x" * 600, LOC: "ARTIFACT_REPO"}, {SCHEMA: "2"}),
            _record(exp, 3, {}, {}),
        ]
    )
    return exp, [f"tr-{i:032x}" for i in range(4)]


def test_answers_hold_implied_values_and_kept_other_values(
    store: SqlTrackingStore, logged: tuple[str, list[str]]
) -> None:
    exp, ids = logged
    infos = {i.trace_id: i for i in store.search_traces([exp], max_results=10)[0]}
    assert infos[ids[0]].tags == {NAME: "chat", LOC: t.SPANS_IN_TRACKING_STORE}
    assert infos[ids[0]].trace_metadata == {SCHEMA: "3"}
    assert infos[ids[2]].tags == {NAME: "x" * 600, LOC: "ARTIFACT_REPO"}
    assert infos[ids[2]].trace_metadata == {SCHEMA: "2"}
    assert infos[ids[3]].tags == {LOC: t.SPANS_IN_TRACKING_STORE}
    assert infos[ids[3]].trace_metadata == {}
    got = store.get_trace_info(ids[1])
    assert got.tags == {NAME: "agent", LOC: t.SPANS_IN_TRACKING_STORE}
    v3, v2 = got.to_dict(), got.to_v2_dict()
    assert v3["tags"][NAME] == "agent" and v3["trace_metadata"] == {SCHEMA: "3"}
    assert {"key": SCHEMA, "value": "3"} in v2["request_metadata"]
    assert {"key": LOC, "value": t.SPANS_IN_TRACKING_STORE} in v2["tags"]
    # the usual values are no rows; the others are
    assert _rows(store, t.trace_tags, NAME) == {ids[2]: "x" * 600}
    assert _rows(store, t.trace_tags, LOC) == {ids[2]: "ARTIFACT_REPO"}
    assert _rows(store, t.trace_metadata, SCHEMA) == {ids[2]: "2"}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (f"tags.{NAME} = 'chat'", [0]),
        (f"tags.`{NAME}` IN ('chat', 'agent')", [0, 1]),
        (f"tags.{NAME} != 'chat'", [1, 2]),
        (f"tags.{NAME} LIKE 'ag%'", [1]),
        (f"tags.{NAME} ILIKE 'XX%'", [2]),
        (f"tags.{NAME} IS NULL", [3]),
        (f"tags.{NAME} IS NOT NULL", [0, 1, 2]),
        (f"tags.`{LOC}` = 'TRACKING_STORE'", [0, 1, 3]),
        (f"tags.`{LOC}` = 'ARTIFACT_REPO'", [2]),
        (f"tags.`{LOC}` NOT IN ('ARTIFACT_REPO')", [0, 1, 3]),
        (f"metadata.`{SCHEMA}` = '3'", [0, 1]),
        (f"metadata.`{SCHEMA}` != '3'", [2]),
        (f"metadata.`{SCHEMA}` IS NULL", [3]),
        (f"request_metadata.`{SCHEMA}` IS NOT NULL AND tags.{NAME} = 'agent'", [1]),
        (f"trace.name = 'chat' AND metadata.`{SCHEMA}` = '3'", [0]),
    ],
)
def test_filters_on_implied_keys(
    store: SqlTrackingStore, logged: tuple[str, list[str]], flt: str, expected: list[int]
) -> None:
    exp, ids = logged
    assert sorted(_ids(store, exp, flt)) == [ids[i] for i in expected]
    assert store.trace_counts([exp], flt, None)[0][1] == len(expected)


def test_order_by_implied_keys(store: SqlTrackingStore, logged: tuple[str, list[str]]) -> None:
    exp, ids = logged
    by_name = _ids(store, exp, None, order_by=[f"tags.{NAME} ASC"])
    # NULLs sort first ascending on both backends' order here: compare the named ones
    assert [i for i in by_name if i != ids[3]] == [ids[1], ids[0], ids[2]]
    by_schema = _ids(
        store, exp, f"metadata.`{SCHEMA}` IS NOT NULL", order_by=[f"metadata.`{SCHEMA}` DESC"]
    )
    assert by_schema[:2] == [ids[1], ids[0]] and by_schema[2] == ids[2]


def test_trace_metrics_filter_on_an_implied_tag(
    store: SqlTrackingStore, logged: tuple[str, list[str]]
) -> None:
    exp = logged[0]
    q = tm.MetricsQuery(
        [int(exp)],
        "TRACES",
        "trace_count",
        [tm.Aggregation("COUNT")],
        [],
        [f"trace.tag.{NAME} = 'agent'"],
    )
    assert store.trace_metrics(q)[0]["values"]["COUNT"] == 1


def test_changes_turn_bits_into_rows(
    store: SqlTrackingStore, logged: tuple[str, list[str]]
) -> None:
    exp, ids = logged
    store.set_trace_tag(ids[0], NAME, "renamed")
    got = store.get_trace_info(ids[0])
    assert got.tags == {NAME: "renamed", LOC: t.SPANS_IN_TRACKING_STORE}
    assert got.trace_metadata == {SCHEMA: "3"}
    assert _ids(store, exp, f"tags.{NAME} = 'renamed'") == [ids[0]]
    assert _ids(store, exp, f"tags.{NAME} = 'chat'") == []
    store.delete_trace_tag(ids[1], LOC)
    assert store.get_trace_info(ids[1]).tags == {NAME: "agent"}
    assert _ids(store, exp, f"tags.`{LOC}` IS NULL") == [ids[1]]
    with pytest.raises(Exception, match="No trace tag"):
        store.delete_trace_tag(ids[1], LOC)
    # sent again: the info is merged as before
    info, spans = _record(exp, 1, {NAME: "agent2"}, {"extra": "y"})
    store.log_traces([(info, spans)])
    got = store.get_trace_info(ids[1])
    assert got.tags == {NAME: "agent2", LOC: t.SPANS_IN_TRACKING_STORE}
    assert got.trace_metadata == {SCHEMA: "3", "extra": "y"}
    with store._read() as conn:
        bits = dict(conn.execute(sa.select(t.traces.c.trace_id, t.traces.c.implied)).all())
    assert bits[ids[0]] == 0 and bits[ids[1]] == 0  # their values are rows now


def test_v2_and_v3_starts(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("starts")
    started = store.start_trace_v2(exp, 1000, {SCHEMA: "3"}, {NAME: "v2"})
    assert started.tags[NAME] == "v2" and started.trace_metadata == {SCHEMA: "3"}
    ended = store.end_trace_v2(started.trace_id, 1500, "OK", {SCHEMA: "2"}, {})
    assert ended.trace_metadata == {SCHEMA: "2"} and ended.tags[NAME] == "v2"
    bare = store.start_trace_v2(exp, 2000, {}, {})
    assert NAME not in bare.tags and SCHEMA not in bare.trace_metadata
    info = TraceInfo("", exp, 3000, state="OK")
    info.tags[NAME] = "v3"
    info.trace_metadata[SCHEMA] = "3"
    got = store.start_trace(info)
    assert got.tags[NAME] == "v3" and got.trace_metadata == {SCHEMA: "3"}
    # the ended v2 trace's metadata changed: its implied values became rows
    assert _rows(store, t.trace_tags, NAME) == {started.trace_id: "v2"}
    assert _ids(store, exp, f"metadata.`{SCHEMA}` = '3'") == [got.trace_id]


def test_otlp_traces_hold_them_as_bits(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("otlp")
    span = {
        "span_id": t.hex_to_b64("00000000000000aa"),
        "name": "root",
        "start_time_unix_nano": 1_000_000_000,
        "end_time_unix_nano": 2_000_000_000,
        "status": {"code": "STATUS_CODE_OK"},
        "attributes": {"input": '"q"'},
    }
    store.log_spans(exp, {"ab" * 16: [span]})
    got = store.get_trace_info("tr-" + "ab" * 16)
    assert got.tags == {NAME: "root", LOC: t.SPANS_IN_TRACKING_STORE}
    assert got.trace_metadata == {SCHEMA: "3"}
    assert _rows(store, t.trace_tags, NAME) == {}


# -- the migration ------------------------------------------------------------------------
def _previous() -> str:
    with migrate.make_engine("sqlite://").connect() as conn:
        scripts = ScriptDirectory.from_config(migrate.alembic_config(conn))
    before = scripts.get_revision(REVISION).down_revision
    assert isinstance(before, str)
    return before


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar() or 0
            for name in (
                "traces",
                "spans",
                "span_attributes",
                "trace_tags",
                "trace_metadata",
                "trace_runs",
            )
        }


def test_migration_moves_rows_to_bits_and_back(store_uri: str, migrator: Migrator) -> None:
    engine = migrator.engine
    before = _previous()
    migrator.up(before)
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run(
            "INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
            "VALUES (7, 'old', 'active')"
        )
        run(
            "INSERT INTO traces (trace_id, experiment_id, request_time, state, name, data_file) "
            "VALUES ('tr-1', 7, 1000, 'OK', 'chat', 'f'), ('tr-2', 7, 2000, 'OK', 'agent', 'f'), "
            "('tr-3', 7, 3000, 'OK', 'old', NULL), ('tr-4', 7, 4000, 'OK', NULL, NULL)"
        )
        run(
            "INSERT INTO trace_tags (trace_id, key, value) VALUES "
            f"('tr-1', '{NAME}', 'chat'), ('tr-1', '{LOC}', 'TRACKING_STORE'), ('tr-1', 'env', 'a'), "
            f"('tr-2', '{NAME}', 'agent'), ('tr-2', '{LOC}', 'TRACKING_STORE'), "
            f"('tr-3', '{NAME}', 'renamed'), ('tr-3', '{LOC}', 'ELSEWHERE')"
        )
        run(
            "INSERT INTO trace_metadata (trace_id, key, value) VALUES "
            f"('tr-1', '{SCHEMA}', '3'), ('tr-2', '{SCHEMA}', '3'), ('tr-3', '{SCHEMA}', '2'), "
            "('tr-4', 'other', '3')"
        )
        run(
            "INSERT INTO spans (trace_id, span_id, name, status, start_time_ns) VALUES "
            "('tr-1', 'a', 'root', 'OK', 1), ('tr-1', 'b', 'leaf', 'ERROR', 2), "
            "('tr-2', 'c', 'root', 'OK', 3)"
        )
        run(
            "INSERT INTO span_attributes (trace_id, span_id, key, value) VALUES "
            "('tr-1', 'a', 'input', 'q'), ('tr-1', 'b', 'input', 'r')"
        )
        run("INSERT INTO trace_runs (trace_id, run_id) VALUES ('tr-1', 'r1'), ('tr-9', 'r2')")
    counts = _counts(engine)
    migrator.up(REVISION)
    after = _counts(engine)
    assert after == {  # tr-1 and tr-2 hold their three as bits now
        **counts,
        "trace_tags": counts["trace_tags"] - 4,
        "trace_metadata": counts["trace_metadata"] - 2,
    }
    with engine.connect() as conn:
        bits = dict(conn.exec_driver_sql("SELECT trace_id, implied FROM traces").all())
    assert bits == {"tr-1": 7, "tr-2": 7, "tr-3": 0, "tr-4": 0}
    migrator.down(before)
    assert _counts(engine) == counts
    migrator.up(REVISION)
    store = SqlTrackingStore(store_uri)
    try:
        one = store.get_trace_info("tr-1")
        assert one.tags == {NAME: "chat", LOC: "TRACKING_STORE", "env": "a"}
        assert one.trace_metadata == {SCHEMA: "3"}
        three = store.get_trace_info("tr-3")
        assert three.tags == {NAME: "renamed", LOC: "ELSEWHERE"}
        assert three.trace_metadata == {SCHEMA: "2"}
        assert store.get_trace_info("tr-4").tags == {}
        assert sorted(_ids(store, "7", f"metadata.`{SCHEMA}` = '3'")) == ["tr-1", "tr-2"]
        assert _ids(store, "7", f"tags.{NAME} = 'renamed'") == ["tr-3"]
        assert _ids(store, "7", "span.status = 'ERROR'") == ["tr-1"]
        assert _ids(store, "7", "span.attributes.input = 'r'") == ["tr-1"]
        assert _ids(store, "7", "trace.run_id = 'r1'") == ["tr-1"]
    finally:
        store.close()
