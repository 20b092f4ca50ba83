"""Trace data in batch files (migration 0015): one file per ingest batch, each trace a byte
range of it; reads by range; deletion drops a file once none of its traces is left;
acknowledged traces survive kill -9 and no trace is visible without its data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
from jupyter_mlops.tracking.traces import TraceInfo


def _span(i: int, j: int, parent: int | None) -> dict[str, Any]:
    return {
        "trace_id": t.hex_to_b64(f"{i:032x}"),
        "span_id": t.hex_to_b64(f"{i:012x}{j:04x}"),
        "parent_span_id": None if parent is None else t.hex_to_b64(f"{i:012x}{parent:04x}"),
        "name": f"step{j}",
        "start_time_unix_nano": 1_000_000_000 + i,
        "end_time_unix_nano": 2_000_000_000 + i,
        "status": {"code": "STATUS_CODE_OK"},
        "attributes": {"mlflow.spanType": '"CHAIN"', "mlflow.spanInputs": json.dumps({"i": i})},
        "events": [],
    }


def _record(exp: str, i: int, ts: int = 1000) -> tuple[TraceInfo, list[dict[str, Any]]]:
    info = TraceInfo(f"tr-{i:032x}", exp, ts + i, state="OK", execution_duration=5)
    return info, [_span(i, 0, None), _span(i, 1, 0), _span(i, 2, 1)]


def _batch_files(store: SqlTrackingStore, exp: str) -> list[str]:
    loc = store.get_experiment(exp).artifact_location
    return [f.path for f in store.artifact_repo(loc).list(t.BATCH_DIR)]


def test_one_file_per_batch_read_by_range(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("batches")
    first = [_record(exp, i) for i in range(50)]
    store.log_traces(first)
    store.log_traces([_record(exp, i) for i in range(50, 60)])
    assert len(_batch_files(store, exp)) == 2
    for info, spans in first[:3] + first[-2:]:
        assert store.get_trace_spans(info.trace_id) == spans
    got = store.get_trace_info(first[7][0].trace_id)
    # MLflow's client reads such a trace through traces/batchGet, not traces.json
    assert got.tags[t.TAG_SPANS_LOCATION] == t.SPANS_IN_TRACKING_STORE
    with store._read() as conn:
        rows = list(conn.execute(sa.select(t.traces.c.data_file, t.traces.c.data_offset)))
    assert {r.data_file for r in rows} == {
        f"{store.get_experiment(exp).artifact_location.rstrip('/')}/{p}"
        for p in _batch_files(store, exp)
    }
    assert len({(r.data_file, r.data_offset) for r in rows}) == 60


def test_concurrent_batches(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("concurrent")
    errors: list[BaseException] = []

    def ingest(k: int) -> None:
        try:
            for b in range(5):
                base = k * 1000 + b * 20
                store.log_traces([_record(exp, base + i) for i in range(20)])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=ingest, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors
    assert len(_batch_files(store, exp)) == 20
    infos, _ = store.search_traces([exp], max_results=500)
    assert len(infos) == 400
    for k in range(4):
        i = k * 1000 + 97
        assert store.get_trace_spans(f"tr-{i:032x}") == _record(exp, i)[1]


def test_delete_compacts_files_without_traces(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("compaction")
    a = [_record(exp, i) for i in range(10)]
    b = [_record(exp, i, ts=10_000) for i in range(10, 20)]
    store.log_traces(a)
    store.log_traces(b)
    assert len(_batch_files(store, exp)) == 2
    # part of batch a: its file stays, the rest of its traces still read
    assert store.delete_traces(exp, trace_ids=[r[0].trace_id for r in a[:6]]) == 6
    assert len(_batch_files(store, exp)) == 2
    assert store.get_trace_spans(a[8][0].trace_id) == a[8][1]
    # the rest of batch a: its file goes
    store.delete_traces(exp, trace_ids=[r[0].trace_id for r in a[6:]])
    assert len(_batch_files(store, exp)) == 1
    # retention (older than a time) takes batch b's file with its traces
    assert store.delete_traces(exp, max_timestamp_millis=20_000) == 10
    assert _batch_files(store, exp) == []


def test_resent_trace_moves_and_old_file_goes(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("resent")
    info, spans = _record(exp, 1)
    store.log_traces([(info, spans)])
    spans2 = [*spans, _span(1, 3, 2)]
    store.log_traces([(_record(exp, 1)[0], spans2)])
    assert store.get_trace_spans(info.trace_id) == spans2
    assert len(_batch_files(store, exp)) == 1


def _otlp_span(i: int, j: int, parent: int | None) -> dict[str, Any]:
    """A span as OTLP ingest makes it (no MLflow tracer attributes: not client-owned)."""
    s = _span(i, j, parent)
    s["attributes"] = {"k": json.dumps(j)}
    return s


def test_otlp_batch_file_and_a_trace_continued_in_a_later_request(
    store: SqlTrackingStore,
) -> None:
    exp = store.create_experiment("otlp")
    # first export: the children of trace 1 (the root ends later) and all of trace 2
    store.log_spans(
        exp,
        {
            f"{1:032x}": [_otlp_span(1, 1, 0), _otlp_span(1, 2, 1)],
            f"{2:032x}": [_otlp_span(2, 0, None), _otlp_span(2, 1, 0)],
        },
    )
    assert len(_batch_files(store, exp)) == 1
    one, two = f"tr-{1:032x}", f"tr-{2:032x}"
    assert store.get_trace_info(one).state == "IN_PROGRESS"
    info2 = store.get_trace_info(two)
    assert info2.state == "OK" and info2.tags[t.TAG_SPANS_LOCATION] == t.SPANS_IN_TRACKING_STORE
    assert [s["name"] for s in store.get_trace_spans(two)] == ["step0", "step1"]
    # second export: trace 1's root; its spans are rewritten whole into the new file,
    # and the first file stays for trace 2
    store.log_spans(exp, {f"{1:032x}": [_otlp_span(1, 0, None)]})
    assert store.get_trace_info(one).state == "OK"
    assert sorted(s["name"] for s in store.get_trace_spans(one)) == ["step0", "step1", "step2"]
    assert len(_batch_files(store, exp)) == 2
    found, _ = store.search_traces([exp], "span.attributes.k = '2'")
    assert [i.trace_id for i in found] == [one]
    # trace 2 continued too: the first file has no trace left and goes
    store.log_spans(exp, {f"{2:032x}": [_otlp_span(2, 2, 1)]})
    assert len(_batch_files(store, exp)) == 2
    assert len(store.get_trace_spans(two)) == 3


def test_many_traces_continued_in_one_request_from_several_files(
    store: SqlTrackingStore,
) -> None:
    """An exporter's batches split traces wherever they end: a request continuing traces
    of two earlier files completes those whose root came, keeps the others in progress,
    adds only spans not stored yet, and frees the file none of whose traces is left."""
    exp = store.create_experiment("split")
    tid = {i: f"tr-{i:032x}" for i in range(1, 7)}
    store.log_spans(
        exp, {f"{i:032x}": [_otlp_span(i, 1, 0), _otlp_span(i, 2, 1)] for i in (1, 2, 3, 4)}
    )
    store.log_spans(exp, {f"{i:032x}": [_otlp_span(i, 1, 0), _otlp_span(i, 2, 1)] for i in (5, 6)})
    assert len(_batch_files(store, exp)) == 2
    again = _otlp_span(3, 1, 0)
    again["attributes"] = {"k": json.dumps("changed")}  # a span sent again: the first stays
    store.log_spans(
        exp,
        {
            **{f"{i:032x}": [_otlp_span(i, 0, None)] for i in (1, 2, 5)},
            f"{3:032x}": [again],
            f"{6:032x}": [_otlp_span(6, 3, 2)],
        },
    )
    states = {i: store.get_trace_info(tid[i]) for i in tid}
    assert {i for i, info in states.items() if info.state == "OK"} == {1, 2, 5}
    assert all(states[i].tags[t.TAG_TRACE_NAME] == "step0" for i in (1, 2, 5))
    assert all(states[i].state == "IN_PROGRESS" for i in (3, 4, 6))
    names = {i: sorted(s["name"] for s in store.get_trace_spans(tid[i])) for i in tid}
    assert names == {
        1: ["step0", "step1", "step2"],
        2: ["step0", "step1", "step2"],
        3: ["step1", "step2"],
        4: ["step1", "step2"],
        5: ["step0", "step1", "step2"],
        6: ["step1", "step2", "step3"],
    }
    found, _ = store.search_traces([exp], "span.name = 'step0'")
    assert {i.trace_id for i in found} == {tid[1], tid[2], tid[5]}
    assert store.search_traces([exp], "span.attributes.k = 'changed'")[0] == []
    found, _ = store.search_traces([exp], "span.attributes.k = '3'")
    assert [i.trace_id for i in found] == [tid[6]]
    # the first file still holds trace 4; the second none (5 and 6 moved): gone
    assert len(_batch_files(store, exp)) == 2


def test_traces_sent_again_in_bulk_each_keep_their_own_info(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("again")
    first = [_record(exp, i) for i in range(3)]
    for n, (info, _spans) in enumerate(first):
        info.tags["env"] = f"e{n}"
        info.response_preview = f"answer {n}"
    store.log_traces(first)
    one, two, three = (_record(exp, i) for i in range(3))
    one[0].tags["env"] = "changed"  # a tag given again takes the new value
    two[0].state = "ERROR"
    two[0].execution_duration = 9
    spans_two = [*two[1], _span(1, 3, 2)]
    store.log_traces([one, (two[0], spans_two), three])
    got = [store.get_trace_info(f"tr-{i:032x}") for i in range(3)]
    assert [g.tags["env"] for g in got] == ["changed", "e1", "e2"]
    # what the new info leaves empty is kept
    assert [g.response_preview for g in got] == ["answer 0", "answer 1", "answer 2"]
    assert [(g.state, g.execution_duration) for g in got] == [("OK", 5), ("ERROR", 9), ("OK", 5)]
    assert store.get_trace_spans(got[1].trace_id) == spans_two
    assert len(_batch_files(store, exp)) == 1


CHILD = """
import sys
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.traces import TraceInfo
sys.path.insert(0, {tests!r})
from test_trace_batch_files import _record
store = SqlTrackingStore({uri!r}, artifact_root={root!r})
exp = store.get_experiment_by_name("crash").experiment_id
b = 0
while True:
    batch = [_record(exp, b * 200 + i) for i in range(200)]
    store.log_traces(batch)
    print(f"ACK {{b}}", flush=True)
    b += 1
"""


def test_kill_9_mid_batch(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlops.db'}"
    root = str(tmp_path / "artifacts")
    store = SqlTrackingStore(uri, artifact_root=root)
    exp = store.create_experiment("crash")
    store.close()
    code = CHILD.format(tests=str(Path(__file__).parent), uri=uri, root=root)
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 240
        while len(acked) < 3 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            if line.startswith("ACK "):
                acked.append(int(line.split()[1]))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(60)
    assert len(acked) >= 3, child.stderr.read() if child.stderr else ""
    store = SqlTrackingStore(uri, artifact_root=root)
    try:
        for b in acked:  # every acknowledged trace is there, whole
            for i in (b * 200, b * 200 + 199):
                assert store.get_trace_spans(f"tr-{i:032x}") == _record(exp, i)[1]
        # no trace visible without its data: whole batches only, each readable
        infos, _ = store.search_traces([exp], max_results=500)
        n = store.trace_counts([exp], None, None)[0][1]
        assert n % 200 == 0 and n >= 200 * len(acked)
        for info in infos:
            assert len(store.get_trace_spans(info.trace_id)) == 3
    finally:
        store.close()
