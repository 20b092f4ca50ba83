"""The buffered writer: logging calls append to an in-memory queue and return;
one thread per tracking URI sends batches to the store.

What goes through the queue, in order:

* data items (metrics, params, tags) as plain tuples, the cheapest thing to
  append: ``(run_id, key, value, timestamp, step)`` for a metric,
  ``(_PARAM|_TAG, run_id, key, value)`` for the others;
* operations that must stay ordered with the data (create a run, update a run,
  delete a tag) and flush markers, as ``(_OP, record, future)``;
* records nobody waits for (a run's inputs: ``log_input``) as ``(_REC, record)``:
  applied in order, their refusals raised by the next flush like data's.

The thread turns runs of data items into one ``log`` record per run (metrics
columnar per key) and applies records to the store. A record that cannot reach
the store, and every record after it, goes to the :class:`~.spool.Spool`
until a replay succeeds, so order is kept and nothing is lost. A record the
store refuses (a param conflict, a deleted run) is kept as an error that the
next :meth:`Writer.flush` raises with the store's message.

A refused token is neither: the data is fine and the store is up, but nothing
will get in until the token is fixed. The refused record and everything after
it go to the spool (nothing acknowledged is lost), the refusal is said once (a
warning, and an error raised by the next flush), and the spool is not retried
in a loop: a flush retries it once the token in the environment has changed,
and a later process logging to the same URI replays what this one left.

While runs are active the thread also sends heartbeats.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from typing import Any

from ..tracking.entities import TERMINAL_STATUSES, DatasetInput, Metric
from ..tracking.errors import UNAUTHENTICATED, TrackingError, invalid
from . import run_end_notice
from .spool import TOKEN_REFUSED, UNREACHABLE, Record, Spool, spool_dir_for
from .transient import AuthRefused, is_transient

log = logging.getLogger(__name__)

_PARAM, _TAG, _OP, _REC, _TRACE = 1, 2, 3, 4, 5
MAX_KEY_LENGTH = 250
SPOOLED = object()  # the result of an operation that went to the spool


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def is_auth_refusal(exc: BaseException) -> bool:
    """The store refused the caller's credentials (the REST store's AuthRefused)."""
    return getattr(exc, "error_code", None) == UNAUTHENTICATED


def heartbeat_interval() -> float:
    """Seconds between heartbeats (``JUPYTER_MLOPS_HEARTBEAT_INTERVAL``, default 10)."""
    return max(0.05, _env_float("JUPYTER_MLOPS_HEARTBEAT_INTERVAL", 10.0))


def heartbeat_timeout_ms() -> int:
    """A RUNNING run whose writer has been silent this long is KILLED at the
    next start_run: ``JUPYTER_MLOPS_HEARTBEAT_TIMEOUT`` seconds. The default,
    300 s (the server's reaper uses the same), is long because a kernel stuck
    in C code that holds the GIL cannot heartbeat but is not dead."""
    default = max(30 * heartbeat_interval(), 300.0)
    return int(1000 * _env_float("JUPYTER_MLOPS_HEARTBEAT_TIMEOUT", default))


class Future:
    """The result of one queued operation."""

    __slots__ = ("_done", "_error", "_result")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None

    def set_result(self, value: Any) -> None:
        self._result = value
        self._done.set()

    def set_error(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise TimeoutError("the tracking writer did not answer in time")
        if self._error is not None:
            raise self._error
        return self._result


class Writer:
    """One per (process, tracking URI); see the module docstring."""

    def __init__(
        self,
        uri: str,
        store: Any,
        spool_root: str,
        max_queue: int = 100_000,
        batch_items: int = 50_000,
        interval: float = 0.1,
        retry_interval: float = 1.0,
    ) -> None:
        """``store``: the store, or a callable that opens it. Opening a SQL store costs a
        few hundred milliseconds (SQLAlchemy, the schema check): a callable is called on
        the writer thread as it starts, so the first logging call does not wait for it."""
        self.uri = uri
        self._store: Any = None if callable(store) else store
        self._opener: Any = store if callable(store) else None
        self._open_lock = threading.Lock()
        self.spool = Spool(spool_dir_for(uri, spool_root), uri)
        self._spool_root = spool_root
        self._q: deque[tuple[Any, ...]] = deque()
        self._max = max_queue
        self._batch = batch_items
        self._wake_at = batch_items // 2
        self._interval = interval
        self._retry_interval = retry_interval
        self._wake = threading.Event()
        self._space = threading.Condition()
        self._waiters = 0
        self._drain_lock = threading.RLock()
        self._errors: list[BaseException] = []
        self._params: dict[tuple[str, str], str] = {}  # what this process logged
        self._live: set[str] = set()  # runs created here and not ended
        self._id_map: dict[str, str] = {}  # client id -> server id (stock MLflow)
        self._hb_interval = heartbeat_interval()
        self._next_hb = 0.0
        self._next_retry = 0.0
        self._offline_warned = False
        #: The credentials refusal the spool is waiting on (None: not refused).
        self._auth_refused: BaseException | None = None
        self._closed = False
        self._held_for_fork = False
        self._parent_pool: Any = None
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="mlops-writer", daemon=True)
        self._thread.start()

    @property
    def store(self) -> Any:
        """The store (opened now, once, if the writer thread has not opened it yet; an
        opening error is raised to whoever asked, and the next one tries again)."""
        store = self._store
        if store is None:
            with self._open_lock:
                if self._store is None:
                    self._store = self._opener()
                store = self._store
        return store

    def _after_fork_in_child(self) -> None:
        """A forked child (multiprocessing) keeps logging to the same runs with
        fresh state: the parent's queued items are the parent's to send, its
        locks may be held, its database connections must not be shared."""
        self._q = deque()
        self._wake = threading.Event()
        self._space = threading.Condition()
        self._waiters = 0
        self._drain_lock = threading.RLock()
        self._errors = []
        self._live = set()  # the parent heartbeats its runs
        self.spool = Spool(spool_dir_for(self.uri, self._spool_root), self.uri)
        self._pid = os.getpid()
        self._open_lock = threading.Lock()
        engine = getattr(self._store, "engine", None)  # not opened here if it was not
        if engine is not None and hasattr(engine, "dispose"):
            # SQLAlchemy's recipe for forked children; the parent's connections
            # are kept referenced so they are never closed here (closing a
            # SQLite connection in a child can upset the parent's locks).
            self._parent_pool = getattr(engine, "pool", None)
            engine.dispose(close=False)
        if hasattr(self._store, "_local"):
            self._store._local = threading.local()  # no shared keep-alive sockets
        # the thread starts on first need (_ensure_thread), not in the fork hook
        self._thread = threading.Thread(target=self._run, name="mlops-writer", daemon=True)

    # -- the hot path (caller threads) --------------------------------------
    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
    ) -> None:
        if type(key) is not str or not key or len(key) > MAX_KEY_LENGTH:
            raise invalid(
                f"Invalid metric key {key!r}: a non-empty string of at most 250 characters"
            )
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise invalid(
                f"Got invalid value {value!r} for metric {key!r} (expected a number)"
            ) from None
        q = self._q
        if len(q) >= self._max:
            self._wait_space()
        q.append(
            (
                run_id,
                key,
                value,
                # tracking.clock.now_ms() inlined: this is the caller's hot path
                time.time_ns() // 1_000_000 if timestamp is None else int(timestamp),
                0 if step is None else int(step),
            )
        )
        if len(q) >= self._wake_at and not self._wake.is_set():
            self._ensure_thread()
            self._wake.set()

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Queue a param; a different value for a key this process already
        logged for the run raises at once (the store would refuse it later)."""
        _check_key(key, "param")
        value = str(value)
        old = self._params.get((run_id, key))
        if old is not None and old != value:
            raise invalid(
                f"Changing param values is not allowed. Param with key={key!r} was already logged "
                f"with value={old!r} for run ID={run_id!r}. Attempted logging new value {value!r}."
            )
        self._params[(run_id, key)] = value
        self._put((_PARAM, run_id, key, value))

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        _check_key(key, "tag")
        self._put((_TAG, run_id, key, str(value)))

    def log_inputs(self, run_id: str, datasets: list[dict[str, Any]], models: list[str]) -> None:
        """Queue a run's inputs (``DatasetInput`` JSON objects, logged-model ids); the
        caller has checked them."""
        self._put(
            (_REC, {"op": "log_inputs", "run_id": run_id, "datasets": datasets, "models": models})
        )

    def log_trace(self, root: Any, experiment_id: str, run_id: str | None) -> None:
        """Queue a finished trace (its root :class:`~.tracing.Span`); the thread makes its
        JSON and sends traces in batches."""
        self._put((_TRACE, root, experiment_id, run_id))

    def _put(self, item: tuple[Any, ...]) -> None:
        if len(self._q) >= self._max:
            self._wait_space()
        self._q.append(item)
        if len(self._q) >= self._wake_at:
            self._ensure_thread()
            self._wake.set()

    def _wait_space(self) -> None:
        """Back-pressure: block until the writer has made room."""
        self._ensure_thread()
        self._wake.set()
        with self._space:
            self._waiters += 1
            try:
                while len(self._q) >= self._max:
                    if not self._thread.is_alive():
                        self._drain_all()
                        break
                    self._space.wait(0.5)
            finally:
                self._waiters -= 1

    # -- operations ---------------------------------------------------------
    def call(self, record: Record | None, timeout: float | None = None) -> Any:
        """Queue an operation behind everything logged so far and wait for it.
        Returns the store's answer, or :data:`SPOOLED` when it was spooled."""
        fut = Future()
        self._ensure_thread()
        self._q.append((_OP, record, fut))
        self._wake.set()
        if not self._thread.is_alive():
            self._drain_all()
        return fut.result(timeout)

    def flush(self, raise_errors: bool = True) -> None:
        """Wait until everything queued so far is in the store or in the
        (fsynced) spool; retry the spool once. Raises the store's errors."""
        self.call(None)
        if raise_errors:
            self.raise_errors()

    def take_errors(self) -> list[BaseException]:
        errors, self._errors = self._errors, []
        return errors

    def raise_errors(self) -> None:
        errors = self.take_errors()
        if not errors:
            return
        first = errors[0]
        if len(errors) == 1:
            raise first
        more = "; ".join(str(e) for e in errors[1:4])
        code = getattr(first, "error_code", "INVALID_PARAMETER_VALUE")
        raise TrackingError(
            f"{first} (and {len(errors) - 1} more logging errors: {more})", code
        ) from first

    def run_started(self, run_id: str) -> None:
        """A resumed run: heartbeat it while it is active."""
        self._live.add(run_id)
        self._next_hb = 0.0

    def server_run_id(self, run_id: str) -> str:
        return self._id_map.get(run_id, run_id)

    @property
    def offline(self) -> bool:
        return self.spool.pending

    def close(self) -> None:
        """Flush, stop the thread and release the spool (left for a later
        process to replay if the store is still unreachable)."""
        if self._closed:
            return
        try:
            self.flush(raise_errors=False)
        finally:
            self._closed = True
            self._wake.set()
            if self._thread.is_alive() and threading.current_thread() is not self._thread:
                self._thread.join(timeout=5)
            with self._drain_lock:
                self.spool.close()
            for e in self.take_errors():
                log.error("jupyter-mlops: a logging call failed: %s", e)

    # -- the writer thread --------------------------------------------------
    def _ensure_thread(self) -> None:
        """Start the writer thread if there is none yet (a forked child)."""
        if self._thread.ident is None and not self._closed:
            try:
                self._thread.start()
            except RuntimeError:  # interpreter shutting down: callers drain
                pass

    def _run(self) -> None:
        try:
            self.store  # noqa: B018 - opened here, off the caller's thread
        except Exception as e:  # noqa: BLE001 - raised again to the first call that needs it
            log.debug("jupyter-mlops: opening the tracking store failed: %s", e)
        try:
            with self._drain_lock:
                if self.spool.adopt_orphans():
                    self._try_replay()
        except Exception as e:  # noqa: BLE001 - never let start-up kill the thread
            log.warning("jupyter-mlops: could not replay left-over spool files: %s", e)
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                with self._drain_lock:
                    self._drain_all()
                    now = time.monotonic()
                    if self.spool.pending and now >= self._next_retry and not self._auth_refused:
                        self._try_replay()
                    if self._live and now >= self._next_hb and not self.spool.pending:
                        self._heartbeat()
            except Exception:  # a bug must not silently stop logging
                log.exception("jupyter-mlops: the tracking writer hit an error")
                time.sleep(self._interval)

    def _drain_all(self) -> None:
        with self._drain_lock:
            while self._q:
                self._drain_batch()

    def _drain_batch(self) -> None:
        """Pop up to one batch of items, emitting log records and running
        operations in queue order."""
        q = self._q
        runs: dict[
            str,
            tuple[
                dict[str, tuple[list[int], list[int], list[float]]], dict[str, str], dict[str, str]
            ],
        ] = {}
        traces: list[dict[str, Any]] = []
        n = 0
        limit = self._batch
        while n < limit:
            try:
                item = q.popleft()
            except IndexError:
                break
            n += 1
            if len(item) == 5:
                run_id, key, value, ts, step = item
                entry = runs.get(run_id)
                if entry is None:
                    entry = runs[run_id] = ({}, {}, {})
                col = entry[0].get(key)
                if col is None:
                    col = entry[0][key] = ([], [], [])
                col[0].append(step)
                col[1].append(ts)
                col[2].append(value)
            elif item[0] == _OP:
                self._emit_logs(runs, traces)
                runs, traces = {}, []
                self._run_op(item[1], item[2])
            elif item[0] == _REC:
                self._emit_logs(runs, traces)
                runs, traces = {}, []
                self._emit(item[1])
            elif item[0] == _TRACE:
                from .trace_json import trace_payload

                traces.append(trace_payload(item[1], item[2], item[3]))
            else:
                kind, run_id, key, value = item
                entry = runs.get(run_id)
                if entry is None:
                    entry = runs[run_id] = ({}, {}, {})
                entry[1 if kind == _PARAM else 2][key] = value
        self._emit_logs(runs, traces)
        if self._waiters:
            with self._space:
                self._space.notify_all()

    def _emit_logs(self, runs: dict[str, Any], traces: list[dict[str, Any]] | None = None) -> None:
        """The data gathered so far, before what comes next in the queue: runs' logs,
        then finished traces (after the runs they may name)."""
        self._flush_runs(runs)
        if traces:
            self._emit({"op": "log_traces", "traces": traces})

    def _flush_runs(self, runs: dict[str, Any]) -> None:
        for run_id, (metrics, params, tags) in runs.items():
            self._emit(
                {
                    "op": "log",
                    "run_id": run_id,
                    "metrics": metrics,
                    "params": list(params.items()),
                    "tags": list(tags.items()),
                }
            )

    def _run_op(self, record: Record | None, fut: Future) -> None:
        if record is None:  # a flush marker
            try:
                if self._auth_refused is not None:
                    self._retry_with_new_token()
                elif self.spool.pending:
                    self._try_replay()
                self.spool.sync()
            except Exception as e:  # noqa: BLE001 - the writer thread must go on; the spool keeps the data
                log.warning("jupyter-mlops: flushing the spool failed: %s", e)
            fut.set_result(None)
            return
        try:
            result = self._emit(record, collect=False)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller, who re-raises it
            fut.set_error(e)
        else:
            fut.set_result(result)

    def _emit(self, record: Record, collect: bool = True) -> Any:
        """Apply one record, or spool it (and everything after it) while the
        store is unreachable. Refusals are collected (or raised when the caller
        waits for this record)."""
        if self._auth_refused is not None and record.get("op") == "create_run":
            # A new run is a synchronous call: refuse it clearly rather than
            # start a run that exists in the spool only.
            self._retry_with_new_token()
            if self._auth_refused is not None:
                raise self._refusal_error(self._auth_refused)
        if self.spool.pending:
            self.spool.append(record)
            return SPOOLED
        try:
            return self._apply_checked(record, collect)
        except Exception as e:
            if is_auth_refusal(e) and (collect or record.get("op") != "create_run"):
                # Data, or a change to a run (its end): keep it, and what follows,
                # for a replay. Only a new run is refused to its caller at once.
                self.spool.append(record, TOKEN_REFUSED)
                self._note_auth_refused(e)
                return SPOOLED
            if not is_transient(e):
                raise
            if not self._offline_warned:
                log.warning(
                    "jupyter-mlops: the tracking store is unreachable (%s); spooling to %s",
                    e,
                    self.spool.directory,
                )
                self._offline_warned = True
            self.spool.append(record, UNREACHABLE)
            self._next_retry = time.monotonic() + self._retry_interval
            return SPOOLED

    def _apply_checked(self, record: Record, collect: bool = True) -> Any:
        """Apply a record; on a refusal of a log record with params, apply the
        rest without them and the params one by one, so one bad param loses
        nothing else. Transient errors propagate."""
        try:
            return self._apply(record)
        except Exception as e:
            if is_transient(e) or is_auth_refusal(e):
                raise
            if (
                record.get("op") == "log"
                and len(record.get("params") or ())
                and (record.get("metrics") or record.get("tags") or len(record["params"]) > 1)
            ):
                rest = {**record, "params": []}
                if rest["metrics"] or rest["tags"]:
                    self._apply_checked(rest, collect=True)
                for p in record["params"]:
                    self._apply_checked(
                        {
                            "op": "log",
                            "run_id": record["run_id"],
                            "metrics": {},
                            "params": [p],
                            "tags": [],
                        },
                        collect=True,
                    )
                return None
            if not collect:
                raise
            self._errors.append(e)
            return None

    def _apply(self, record: Record) -> Any:
        op = record["op"]
        store = self.store
        if op == "log":
            run_id = self.server_run_id(record["run_id"])
            metrics = record.get("metrics") or {}
            params = [tuple(p) for p in record.get("params") or ()]
            tags = [tuple(t) for t in record.get("tags") or ()]
            log_bulk = getattr(store, "log_bulk", None)
            if log_bulk is not None:  # columnar: no per-point objects
                log_bulk(run_id, [(k, c[0], c[1], c[2]) for k, c in metrics.items()], params, tags)
            else:
                ms = [
                    Metric(key, v, t, s)
                    for key, (steps, stamps, values) in metrics.items()
                    for s, t, v in zip(steps, stamps, values)
                ]
                store.log_batch(run_id, metrics=ms, params=params, tags=tags)
            return None
        if op == "create_run":
            run = store.create_run(
                experiment_id=record["experiment_id"],
                user_id=record.get("user_id", ""),
                start_time=record.get("start_time"),
                tags=record.get("tags") or {},
                run_name=record.get("run_name"),
                run_id=record["run_id"],
            )
            if run.info.run_id != record["run_id"]:
                self._id_map[record["run_id"]] = run.info.run_id
            self._live.add(run.info.run_id)
            self._safe_heartbeat([run.info.run_id])  # so a crash right now is detected
            return run
        if op == "update_run":
            run_id = self.server_run_id(record["run_id"])
            info = store.update_run_info(
                run_id,
                status=record.get("status"),
                end_time=record.get("end_time"),
                run_name=record.get("run_name"),
            )
            if record.get("status") in TERMINAL_STATUSES:
                self._live.discard(run_id)
                if run_end_notice.wanted(store):  # the server's notifications
                    run_end_notice.tell(run_id)
            return info
        if op == "log_inputs":
            store.log_inputs(
                self.server_run_id(record["run_id"]),
                [DatasetInput.from_dict(d) for d in record.get("datasets") or ()],
                list(record.get("models") or ()),
            )
            return None
        if op == "log_traces":
            from ..tracking.traces import TraceInfo

            infos = []
            for t in record["traces"]:
                info = TraceInfo.from_dict(t["info"])
                run = info.trace_metadata.get("mlflow.sourceRun")
                if run:  # a run created offline may have another id on the server
                    info.trace_metadata["mlflow.sourceRun"] = self.server_run_id(run)
                infos.append((info, t["spans"]))
            store.log_traces(infos)
            return None
        if op == "delete_tag":
            store.delete_tag(self.server_run_id(record["run_id"]), record["key"])
            return None
        raise ValueError(f"unknown spool record {op!r}")

    def _try_replay(self) -> None:
        self._next_retry = time.monotonic() + self._retry_interval
        fast = getattr(self.store, "fast_fail", None)
        try:
            if fast is not None:
                with fast():
                    self.spool.replay(self._replay_one, self._replay_orphan)
            else:
                self.spool.replay(self._replay_one, self._replay_orphan)
        except Exception as e:
            if is_auth_refusal(e):
                self._note_auth_refused(e)
                return
            if not is_transient(e):
                raise
            return
        if not self.spool.pending and self._offline_warned:
            log.warning("jupyter-mlops: the tracking store is back; the spool was replayed")
            self._offline_warned = False

    def _note_auth_refused(self, error: BaseException) -> None:
        """Say once per refusal that the store refused our token and where the
        data waits; the next flush raises it."""
        if self._auth_refused is not None:
            return
        self._auth_refused = error
        self.spool.note_reason(TOKEN_REFUSED)  # also when spooled as unreachable before
        refusal = self._refusal_error(error)
        log.warning("jupyter-mlops: %s", refusal)
        self._errors.append(refusal)

    def _refusal_error(self, error: BaseException) -> AuthRefused:
        return AuthRefused(
            f"{error} Logging continues into the spool {self.spool.directory}, and nothing "
            "logged is lost: once the token is set, jupyter_mlops.flush() replays it (or the "
            f"next process that logs to {self.uri} with a valid token, after this one exits)."
        )

    def _retry_with_new_token(self) -> None:
        """After a refusal, replay the spool if the token in the environment changed
        (never in a loop with the token that was refused)."""
        refresh = getattr(self.store, "refresh_token", None)
        if refresh is None or not refresh():
            return
        self._auth_refused = None
        if self.spool.pending:
            self._try_replay()
            if not self.spool.pending and self._auth_refused is None:
                log.warning("jupyter-mlops: the new token was accepted; the spool was replayed")

    def _replay_one(self, record: Record) -> None:
        self._apply_checked(record, collect=True)

    def apply_left_over(self, record: Record) -> None:
        """Apply one record a gone process spooled (``jupyter mlops spool replay``),
        as the automatic replay does: raises when the store is unreachable or
        refuses the token; a refusal of the data itself is logged, not raised."""
        with self._drain_lock:
            self._replay_orphan(record)

    def _replay_orphan(self, record: Record) -> None:
        """Records another (gone) process spooled: its refusals are logged
        here, not raised from this process's flush."""
        errors = self._errors
        self._errors = []
        try:
            self._apply_checked(record, collect=True)
        finally:
            for e in self._errors:
                log.warning("jupyter-mlops: a record left by an earlier process was refused: %s", e)
            self._errors = errors

    def _heartbeat(self) -> None:
        self._next_hb = time.monotonic() + self._hb_interval
        self._safe_heartbeat(sorted(self._live))

    def _safe_heartbeat(self, run_ids: list[str]) -> None:
        try:
            self.store.heartbeat(run_ids)
        except Exception as e:  # noqa: BLE001 - liveness is best effort
            log.debug("jupyter-mlops: heartbeat failed: %s", e)


def _check_key(key: Any, what: str) -> None:
    if type(key) is not str or not key or len(key) > MAX_KEY_LENGTH:
        raise invalid(f"Invalid {what} key {key!r}: a non-empty string of at most 250 characters")


# -- one writer per tracking URI per process ---------------------------------
_writers: dict[str, Writer] = {}
_writers_lock = threading.Lock()


def spool_root() -> str:
    """``JUPYTER_MLOPS_SPOOL_DIR``, else ``<jupyter data dir>/mlops/spool``."""
    env = os.environ.get("JUPYTER_MLOPS_SPOOL_DIR")
    if env:
        return env
    from .uris import mlops_data_dir

    return os.path.join(mlops_data_dir(), "spool")


def get_writer(uri: str) -> Writer:
    w = _writers.get(uri)
    if w is not None and not w._closed:
        return w
    with _writers_lock:
        w = _writers.get(uri)
        if w is None or w._closed:
            from .uris import check_tracking_uri, open_tracking_store

            check_tracking_uri(uri)  # a wrong URI is the caller's error, at once
            w = _writers[uri] = Writer(uri, lambda: open_tracking_store(uri), spool_root())
        return w


def close_all() -> None:
    """Flush every writer (interpreter exit)."""
    for w in list(_writers.values()):
        try:
            w.close()
        except Exception as e:  # noqa: BLE001 - at exit: report, flush the other writers
            log.error("jupyter-mlops: flushing %s at exit failed: %s", w.uri, e)


def _before_fork() -> None:
    # Fork only between batches: a child must not inherit a connection that is
    # in the middle of a transaction.
    for w in list(_writers.values()):
        if not w._closed:
            w._drain_lock.acquire()
            w._held_for_fork = True


def _after_fork_in_parent() -> None:
    for w in list(_writers.values()):
        if getattr(w, "_held_for_fork", False):
            w._held_for_fork = False
            w._drain_lock.release()


def _after_fork_in_child() -> None:
    global _writers_lock
    _writers_lock = threading.Lock()
    for w in _writers.values():
        w._held_for_fork = False
        w._after_fork_in_child()


atexit.register(close_all)
os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)
