"""Upkeep of trace batch files (tracking/trace_files.py): a file most of whose traces are
deleted is rewritten with the rest; a file left by a failed commit is swept once older
than the grace period; concurrent writes of the same new trace ids (PostgreSQL) all
succeed and leave one trace each."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from jupyter_mlops.tracking import trace_files
from jupyter_mlops.tracking import traces as t
from jupyter_mlops.tracking.clock import now_ms
from jupyter_mlops.tracking.errors import TrackingError
from jupyter_mlops.tracking.sqlstore import SqlTrackingStore
from jupyter_mlops.tracking.traces import TraceInfo


def _record(exp: str, i: int, payload: str = "") -> tuple[TraceInfo, list[dict[str, Any]]]:
    span = {
        "trace_id": t.hex_to_b64(f"{i:032x}"),
        "span_id": t.hex_to_b64(f"{i:016x}"),
        "parent_span_id": None,
        "name": f"root{i}",
        "start_time_unix_nano": 1_000_000_000 + i,
        "end_time_unix_nano": 2_000_000_000 + i,
        "status": {"code": "STATUS_CODE_OK"},
        "attributes": {"mlflow.spanType": '"CHAIN"', "mlflow.spanInputs": f'"{payload}{i}"'},
        "events": [],
    }
    return TraceInfo(f"tr-{i:032x}", exp, 1000 + i, state="OK", execution_duration=5), [span]


def _files(store: SqlTrackingStore, exp: str) -> dict[str, int]:
    loc = store.get_experiment(exp).artifact_location
    return {
        f.path: f.file_size or 0 for f in store.artifact_repo(loc).list(t.BATCH_DIR) if not f.is_dir
    }


def _data_files(store: SqlTrackingStore, ids: list[str]) -> set[str]:
    with store._read() as conn:
        return set(
            conn.execute(
                sa.select(t.traces.c.data_file).where(t.traces.c.trace_id.in_(ids))
            ).scalars()
        )


def test_a_mostly_deleted_file_is_rewritten_with_the_rest(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("compact")
    records = [_record(exp, i, "x" * 500) for i in range(10)]
    store.log_traces(records)
    (first,) = _files(store, exp)
    ids = [info.trace_id for info, _ in records]
    # a few gone: the file stays as it is
    store.delete_traces(exp, trace_ids=ids[:3])
    assert list(_files(store, exp)) == [first]
    # most gone: rewritten with the live traces only, the old file deleted
    store.delete_traces(exp, trace_ids=ids[3:7])
    files = _files(store, exp)
    assert first not in files and len(files) == 1
    (second,) = files
    assert files[second] < 0.5 * 10 * 500
    assert {u.rpartition("/")[2] for u in _data_files(store, ids[7:])} == {
        second.rpartition("/")[2]
    }
    for info, spans in records[7:]:
        assert store.get_trace_spans(info.trace_id) == spans
    # the last ones gone: no file left
    store.delete_traces(exp, trace_ids=ids[7:])
    assert _files(store, exp) == {}


def test_a_resent_trace_counts_as_gone_from_its_old_file(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("resent")
    records = [_record(exp, i, "y" * 300) for i in range(4)]
    store.log_traces(records)
    (first,) = _files(store, exp)
    store.log_traces(records[:3])  # three of four moved to a new file
    files = _files(store, exp)
    assert first not in files, "the sparse old file was compacted"
    for info, spans in records:
        assert store.get_trace_spans(info.trace_id) == spans


def test_orphans_of_a_failed_commit_are_swept_after_the_grace(store: SqlTrackingStore) -> None:
    exp = store.create_experiment("orphans")
    store.log_traces([_record(exp, 1)])
    (kept,) = _files(store, exp)
    # a batch whose rows are refused after its file was written (a tag key too long):
    # the file stays, named by no row, as after a crash between file and commit
    info, spans = _record(exp, 2)
    info.tags["k" * 10_000] = "v"
    with pytest.raises(TrackingError):
        store.log_traces([(info, spans)])
    files = _files(store, exp)
    assert len(files) == 2
    (orphan,) = set(files) - {kept}
    # young: kept
    assert trace_files.sweep_orphans(store, grace_s=3600) == []
    assert orphan in _files(store, exp)
    # an hour later: swept; the file rows name stays, and so does its trace
    swept = trace_files.sweep_orphans(store, grace_s=3600, now=now_ms() + 3_700_000)
    assert [u.rpartition("/")[2] for u in swept] == [orphan.rpartition("/")[2]]
    assert list(_files(store, exp)) == [kept]
    assert store.get_trace_spans(_record(exp, 1)[0].trace_id) == _record(exp, 1)[1]


def test_files_of_the_former_naming_are_aged_by_their_mtime(
    store: SqlTrackingStore, tmp_path: Any
) -> None:
    exp = store.create_experiment("legacy")
    loc = store.get_experiment(exp).artifact_location
    repo = store.artifact_repo(f"{loc}/{t.BATCH_DIR}")
    repo.put("0123456789abcdef0123456789abcdef.jsonl", b'{"spans": []}\n')
    assert trace_files.sweep_orphans(store, grace_s=3600) == []
    assert len(trace_files.sweep_orphans(store, grace_s=3600, now=now_ms() + 3_700_000)) == 1
    assert _files(store, exp) == {}


def test_concurrent_writes_of_the_same_new_traces(store: SqlTrackingStore) -> None:
    """Eight writers send the same new traces at once (a client retrying while its first
    request is still being committed; two exporters): every call succeeds, one trace each."""
    exp = store.create_experiment("race")
    errors: list[BaseException] = []
    rounds, writers = 5, 8
    for r in range(rounds):
        barrier = threading.Barrier(writers)
        batch = [_record(exp, 100 * r + i) for i in range(20)]

        def send(k: int, batch: list[Any] = batch, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                if k % 2:
                    store.log_traces(batch)
                else:
                    for info, _ in batch[:5]:
                        store.start_trace(
                            TraceInfo(info.trace_id, exp, info.request_time, state="OK")
                        )
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=send, args=(k,)) for k in range(writers)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert errors == []
    with store._read() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(t.traces)).scalar()
    assert n == rounds * 20
    for r in range(rounds):
        info, spans = _record(exp, 100 * r + 3)
        assert store.get_trace_spans(info.trace_id) == spans
