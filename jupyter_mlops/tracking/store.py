"""The tracking store interface.

Everything that reads or writes tracking data goes through a
:class:`TrackingStore`: the server's REST handlers, the in-process client
transport (``sqlite://`` / ``postgresql://`` tracking URIs) and the CLI. The
SQL implementation lives in :mod:`jupyter_mlops.tracking.sqlstore`; open one
with :func:`jupyter_mlops.tracking.open_store`.

Conventions: ids are strings (experiment ids are decimal integers, run ids
32-hex uuids); times are epoch milliseconds; every method raises
:class:`~jupyter_mlops.tracking.errors.TrackingError` with MLflow's error code
for anything a caller did wrong. Validation limits follow MLflow (keys 250
chars, params 6000, tags 8000, a batch at most 1000 metrics / 100 params /
100 tags through the MLflow REST API; the store itself takes bigger batches).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from operator import attrgetter
from typing import TYPE_CHECKING

from .entities import (
    ACTIVE_ONLY,
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunInfo,
    SeriesPoint,
)
from .errors import invalid
from .evaluation_store import EvaluationStore
from .trace_store import TraceStore

if TYPE_CHECKING:
    from .artifacts import ArtifactRepository

#: One run's metric points by key, as columns ``(steps, timestamps, values)``: the shape
#: stores write (and ``POST api/v1/runs/log-bulk`` sends) without a Metric per point.
Columns = dict[str, tuple[list[int], list[int], list[float]]]
#: ``(key, steps, timestamps, values)``: one series as :meth:`TrackingStore.log_bulk` takes it.
Series = tuple[str, Sequence[int], Sequence[int], Sequence[float]]

_get_key = attrgetter("key")
_get_step = attrgetter("step")
_get_ts = attrgetter("timestamp")
_get_value = attrgetter("value")


def metric_columns(metrics: Sequence[Metric]) -> Columns:
    """Points grouped by key into columns, in arrival order within each key (runs of
    one key are taken whole, which is what a writer's batches hold)."""
    groups: dict[str, list[Metric]] = {}
    for key, grp in groupby(metrics, _get_key):
        lst = groups.get(key)
        if lst is None:
            groups[key] = list(grp)
        else:
            lst.extend(grp)
    return {
        key: (list(map(_get_step, ms)), list(map(_get_ts, ms)), list(map(_get_value, ms)))
        for key, ms in groups.items()
    }


def series_columns(series: Iterable[Series]) -> Columns:
    """Series as columns by key; a key given again is appended to."""
    cols: Columns = {}
    for key, steps, stamps, values in series:
        old = cols.get(key)
        if old is None:
            cols[key] = (list(steps), list(stamps), list(values))
        else:
            old[0].extend(steps)
            old[1].extend(stamps)
            old[2].extend(values)
    return cols


#: The kinds of a run's data a search may narrow to some keys (``data_keys``).
DATA_KEY_KINDS = ("params", "metrics", "tags")

#: ``{"params": [...], "metrics": [...], "tags": [...]}``: the keys of each kind a
#: search's runs carry (a kind left out: all its keys).
DataKeys = Mapping[str, Sequence[str]]

#: Most keys of one kind a search may name in ``data_keys``.
MAX_DATA_KEYS = 1000


def check_data_keys(data_keys: DataKeys | None) -> None:
    """Refuse ``data_keys`` naming another kind, or too many keys of one."""
    if data_keys is None:
        return
    for kind, keys in data_keys.items():
        if kind not in DATA_KEY_KINDS:
            raise invalid(
                f"Invalid data_keys kind '{kind}'. Valid kinds are {list(DATA_KEY_KINDS)}"
            )
        if len(keys) > MAX_DATA_KEYS:
            raise invalid(
                f"data_keys names {len(keys)} {kind} keys: at most {MAX_DATA_KEYS} of a kind"
            )


class TrackingStore(TraceStore, EvaluationStore, abc.ABC):
    """Experiments, runs, params, metrics and tags; artifacts by location; traces
    (:class:`~.trace_store.TraceStore`); evaluation datasets and scorers
    (:class:`~.evaluation_store.EvaluationStore`)."""

    #: The URI this store was opened with (credentials included).
    uri: str
    #: Where artifacts of experiments without an explicit location go:
    #: a local directory path or an fsspec URL.
    artifact_root: str

    # -- experiments --------------------------------------------------------
    @abc.abstractmethod
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Create an experiment and return its id.

        A name in use, even by a deleted experiment, is RESOURCE_ALREADY_EXISTS.
        Without ``artifact_location`` it is ``mlflow-artifacts:/<id>``, resolved
        against :attr:`artifact_root`.
        """

    @abc.abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abc.abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment of that name (active preferred), or None."""

    @abc.abstractmethod
    def search_experiments(
        self,
        view_type: str = ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Experiment], str | None]: ...

    @abc.abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...

    @abc.abstractmethod
    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete the experiment and its runs (lifecycle ``deleted``)."""

    @abc.abstractmethod
    def restore_experiment(self, experiment_id: str) -> None: ...

    @abc.abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    @abc.abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None: ...

    # -- runs ---------------------------------------------------------------
    @abc.abstractmethod
    def create_run(
        self,
        experiment_id: str,
        user_id: str = "",
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run. A missing name is generated (and tagged
        ``mlflow.runName``); the parent is tag ``mlflow.parentRunId``.
        ``run_id`` lets a client that made its id offline (spooling) keep it."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with the latest value of each metric."""

    @abc.abstractmethod
    def update_run_info(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo: ...

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None: ...

    @abc.abstractmethod
    def restore_run(self, run_id: str) -> None: ...

    @abc.abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Append metrics, write params (write-once; the same value again is
        fine, a different one is INVALID_PARAMETER_VALUE) and set tags, in one
        transaction. The hot path of logging: it must take 100k points at a time."""

    def log_bulk(
        self,
        run_id: str,
        metrics: Sequence[Series] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Columnar :meth:`log_batch`: ``metrics`` holds ``(key, steps, timestamps,
        values)`` per series, the shape of ``POST api/v1/runs/log-bulk``. Stores that
        can write columns without per-point objects override this."""
        points = [
            Metric(key, value, ts, step)
            for key, steps, timestamps, values in metrics
            for step, ts, value in zip(steps, timestamps, values, strict=True)
        ]
        self.log_batch(run_id, metrics=points, params=params, tags=tags)

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.log_batch(run_id, metrics=[metric])

    def log_param(self, run_id: str, key: str, value: str) -> None:
        self.log_batch(run_id, params=[(key, value)])

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.log_batch(run_id, tags=[(key, value)])

    @abc.abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] = (),
        models: Sequence[str] = (),
    ) -> None:
        """Record datasets (and logged models, by id) a run used, as MLflow's
        ``runs/log-inputs`` does: a dataset is stored once per experiment by (name,
        digest), a run takes each dataset once. The run must be active. All or nothing."""
        raise NotImplementedError("This tracking store does not record run inputs.")

    def search_datasets(self, experiment_ids: Sequence[str]) -> list[dict[str, object]]:
        """MLflow's dataset summaries (``experiment_id``, ``name``, ``digest``,
        ``context``) of the inputs of these experiments' runs."""
        raise NotImplementedError("This tracking store does not record run inputs.")

    @abc.abstractmethod
    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Metric], str | None]:
        """Every point of one series ordered by (step, timestamp); offset page
        tokens when ``max_results`` is given."""

    @abc.abstractmethod
    def get_metric_series(
        self,
        run_id: str,
        key: str,
        max_points: int = 1000,
        x_axis: str = "step",
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> list[SeriesPoint]:
        """A down-sampled series of at most ``max_points`` buckets, each with
        the min and max of its points so spikes survive. ``x_axis`` is
        ``step`` or ``timestamp``. Fast on million-point series."""

    @abc.abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: str = ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible_user_ids: Sequence[str] | None = None,
        viewer_id: str | None = None,
        data_keys: DataKeys | None = None,
    ) -> tuple[list[Run], str | None]:
        """MLflow's search: the filter grammar of ``tracking.search``, offset
        page tokens (base64 JSON ``{"offset": N}``).

        ``data_keys`` (ours, not MLflow's): the runs carry only these keys of each
        kind it names (the runs table reads the columns it shows, not a wide run's
        thousands of keys); a store may carry more, never fewer.

        ``visible_user_ids`` (a shared service's access rules): only runs whose
        ``user_id`` is one of these; with it, runs tagged
        ``mlops.visibility=private`` are left out unless their user is
        ``viewer_id``. Filtered in the query, so pages stay full."""

    def count_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: str = ACTIVE_ONLY,
        visible_user_ids: Sequence[str] | None = None,
        viewer_id: str | None = None,
    ) -> int:
        """How many runs :meth:`search_runs` finds over all its pages (the runs table's
        count). This default pages through the search; SQL stores count in the query."""
        total, token = 0, None
        while True:
            found, token = self.search_runs(
                experiment_ids,
                filter_string,
                run_view_type,
                max_results=1000,
                page_token=token,
                visible_user_ids=visible_user_ids,
                viewer_id=viewer_id,
            )
            total += len(found)
            if not token:
                return total

    def changed_runs(
        self,
        experiment_ids: Sequence[str],
        since: int,
        max_results: int = 500,
        visible_user_ids: Sequence[str] | None = None,
        viewer_id: str | None = None,
        data_keys: DataKeys | None = None,
    ) -> tuple[list[Run], bool]:
        """The runs of ``experiment_ids`` (deleted ones too) that changed at or after
        ``since`` (epoch ms), oldest change first, at most ``max_results``, and whether
        there were more (the runs table's live updates); ``data_keys`` as in
        :meth:`search_runs`. A store that cannot tell answers ``([], True)``: the
        caller reads everything again."""
        return [], True

    def run_keys(
        self,
        experiment_ids: Sequence[str],
        search: str = "",
        max_results: int = 200,
        visible_user_ids: Sequence[str] | None = None,
        viewer_id: str | None = None,
    ) -> dict[str, list[str]]:
        """The distinct param, metric and tag keys of the active runs of
        ``experiment_ids`` containing ``search`` (case-insensitive), sorted, at most
        ``max_results`` of each kind (the runs table's column picker: experiments may
        have thousands of keys). This default pages through the search; SQL stores
        ask the key tables."""
        needle = search.lower()
        found: dict[str, set[str]] = {"params": set(), "metrics": set(), "tags": set()}
        token = None
        while True:
            page, token = self.search_runs(
                experiment_ids,
                max_results=1000,
                page_token=token,
                visible_user_ids=visible_user_ids,
                viewer_id=viewer_id,
            )
            for run in page:
                for kind, items in (
                    ("params", run.data.params),
                    ("metrics", run.data.metrics),
                    ("tags", run.data.tags),
                ):
                    found[kind].update(k for k in items if needle in k.lower())
            if not token:
                break
        return {kind: sorted(keys)[:max_results] for kind, keys in found.items()}

    # -- liveness of runs ---------------------------------------------------
    @abc.abstractmethod
    def heartbeat(self, run_ids: Sequence[str], now: int | None = None) -> None:
        """Record that the writers of these runs are alive."""

    @abc.abstractmethod
    def kill_stale_runs(self, older_than_ms: int, now: int | None = None) -> list[str]:
        """Mark KILLED every RUNNING run that has had a heartbeat but none for
        ``older_than_ms``; return their ids. Runs that never had a heartbeat
        (created by other clients) are left alone."""

    # -- maintenance --------------------------------------------------------
    @abc.abstractmethod
    def purge_deleted_runs(self, older_than_ms: int = 0) -> list[str]:
        """Permanently remove runs deleted at least ``older_than_ms`` ago and
        their data; return their ids (the caller removes their artifacts)."""

    def artifact_repo(self, artifact_uri: str) -> ArtifactRepository:
        """The repository behind an artifact URI (``mlflow-artifacts:/...``
        resolved against :attr:`artifact_root`; local paths; fsspec URLs)."""
        from .artifacts import artifact_repo_for

        return artifact_repo_for(artifact_uri, self.artifact_root)

    def close(self) -> None:
        """Release connections."""
