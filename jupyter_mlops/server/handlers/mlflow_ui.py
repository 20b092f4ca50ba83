"""The routes MLflow's server has for its own web UI, beside its REST API.

So tools written against MLflow's server (the MLflow UI's requests, scripts that
download through ``/get-artifact``) work here too:

- ``GET version``: the MLflow version whose REST API this server speaks;
- ``GET get-artifact?run_id=&path=`` and ``GET model-versions/get-artifact?name=&version=&path=``:
  one artifact of a run or of a model version, as an attachment;
- ``GET ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id=..&metric_key=``: one metric's
  points for up to 100 runs;
- ``GET ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=..&metric_key=``: the
  same, sampled to at most ``max_results`` points per run (first and last kept);
- ``POST ajax-api/2.0/mlflow/upload-artifact?run_uuid=&path=``: a file (raw body, 10 MB) into
  a run's artifacts;
- ``GET api/2.0/mlflow/logged-models/<id>/artifacts/directories?artifact_directory_path=``
  and ``.../artifacts/files?artifact_file_path=``: a logged model's files.

(``experiments/search-datasets`` is in :mod:`.mlflow_api`; every ``api/2.0`` route is also
served under ``ajax-api/2.0``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...tracking.errors import TrackingError, invalid, not_found
from ..request import Fields, missing, safe_artifact_path
from .artifacts import send_artifact
from .base import MLOpsHandler, RpcHandler, to_json

if TYPE_CHECKING:
    from ...tracking.artifacts import ArtifactRepository
    from ...tracking.store import TrackingStore

#: The MLflow release whose REST API and client this server was checked against.
MLFLOW_VERSION = "3.17.2"
#: MLflow's limits of the UI's bulk history routes.
MAX_BULK_RUN_IDS = 100
MAX_BULK_HISTORY_RESULTS = 25000
MAX_INTERVAL_RESULTS_PER_RUN = 2500
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def mlflow_path(path: str | None) -> str:
    """An artifact path checked as MLflow's UI routes check it (their message is exactly
    ``Invalid path``, which clients compare)."""
    try:
        return safe_artifact_path(path)
    except TrackingError:
        raise invalid("Invalid path") from None


# -- metric histories ---------------------------------------------------------------
def get_history_bulk(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_ids = f.strings("run_id", ids=True)
    if not run_ids:
        raise invalid("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_ids) > MAX_BULK_RUN_IDS:
        raise invalid(
            f"GetMetricHistoryBulk request cannot specify more than {MAX_BULK_RUN_IDS} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    key = f.string("metric_key")
    if key is None:
        raise invalid("GetMetricHistoryBulk request must specify a metric_key.")
    max_results = min(
        f.integer("max_results", default=MAX_BULK_HISTORY_RESULTS) or MAX_BULK_HISTORY_RESULTS,
        MAX_BULK_HISTORY_RESULTS,
    )
    out: list[dict[str, Any]] = []
    for run_id in sorted(run_ids):
        points, _ = store.get_metric_history(run_id, key, max_results=max_results)
        points.sort(key=lambda m: (m.timestamp, m.step, m.value))
        out.extend({**m.to_dict(), "run_id": run_id} for m in points)
    return {"metrics": out[:max_results]}


def evenly_spaced(total: int, max_results: int) -> list[int]:
    """At most ``max_results`` evenly spaced indices of ``total`` items, the first and the
    last always among them (only the last when ``max_results`` is 1); MLflow's sampling."""
    if total <= 0:
        return []
    if total <= max_results:
        return list(range(total))
    if max_results == 1:
        return [total - 1]
    step = (total - 1) / (max_results - 1)
    return sorted({round(i * step) for i in range(max_results)})


def get_history_bulk_interval(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_ids = f.strings("run_ids", ids=True)
    if not run_ids:
        raise missing("run_ids")
    if len(run_ids) > MAX_BULK_RUN_IDS:
        raise invalid(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUN_IDS} "
            f"run_ids. Received {len(run_ids)} run_ids."
        )
    key = f.string("metric_key", required=True) or ""
    start, end = f.integer("start_step"), f.integer("end_step")
    max_results = f.integer("max_results", default=MAX_INTERVAL_RESULTS_PER_RUN)
    if max_results is None or not 1 <= max_results <= MAX_INTERVAL_RESULTS_PER_RUN:
        raise invalid(f"max_results must be between 1 and {MAX_INTERVAL_RESULTS_PER_RUN}.")
    if start is not None and end is not None:
        if start > end:
            raise invalid(
                "end_step must be greater than start_step. "
                f"Found start_step={start} and end_step={end}."
            )
    elif start is not None or end is not None:
        raise invalid("If either start step or end step are specified, both must be specified.")
    out: list[dict[str, Any]] = []
    for run_id in run_ids:
        points, _ = store.get_metric_history(run_id, key)
        if start is not None and end is not None:
            points = [m for m in points if start <= m.step <= end]
        points.sort(key=lambda m: (m.step, m.timestamp, m.value))
        out.extend(
            {**points[i].to_dict(), "run_id": run_id}
            for i in evenly_spaced(len(points), max_results)
        )
    return {"metrics": out} if out else {}


# -- artifacts ------------------------------------------------------------------------
class _DownloadHandler(MLOpsHandler):
    """A GET that streams one artifact chosen by query fields."""

    def locate(self, f: Fields) -> tuple[ArtifactRepository, str]:
        raise NotImplementedError

    @web.authenticated
    @authorized
    async def get(self, *args: str, **kwargs: str) -> None:
        query = self.request.query_arguments

        async def work() -> None:
            def opener() -> tuple[BinaryIO, str]:
                repo, rel = self.locate(Fields.from_query(query))
                if not rel or repo.is_dir(rel) or not repo.exists(rel):
                    raise not_found(f"No such artifact: '{rel}'")
                return repo.open(rel), rel

            stream, rel = await self.run(opener)
            await send_artifact(self, stream, rel)

        await self.guarded(work)


class RunArtifactHandler(_DownloadHandler):
    """``GET get-artifact?run_id=&path=``: a run's artifact (MLflow UI's download link)."""

    def locate(self, f: Fields) -> tuple[ArtifactRepository, str]:
        path = f.string("path")
        if path is None:
            raise missing("path")
        rel = mlflow_path(path)
        run = self.store.get_run(f.run_id())
        return self.store.artifact_repo(run.info.artifact_uri), rel


class ModelVersionArtifactHandler(_DownloadHandler):
    """``GET model-versions/get-artifact?name=&version=&path=``: a model version's file."""

    def locate(self, f: Fields) -> tuple[ArtifactRepository, str]:
        path = f.string("path")
        if path is None:
            raise missing("path")
        rel = mlflow_path(path)
        name = f.string("name", required=True) or ""
        version = f.ident("version", required=True) or ""
        uri = self.mlops.registry_store.get_model_version_download_uri(name, version)
        return self.store.artifact_repo(uri), rel


class LoggedModelFileHandler(_DownloadHandler):
    """``GET .../logged-models/<id>/artifacts/files?artifact_file_path=``."""

    def locate(self, f: Fields) -> tuple[ArtifactRepository, str]:
        rel = mlflow_path(f.string("artifact_file_path", required=True))
        return self.store.artifact_repo(_logged_model_uri(self, self.path_kwargs["model_id"])), rel


def _logged_model_uri(handler: MLOpsHandler, model_id: str) -> str:
    model = handler.mlops.registry_store.get_logged_model(model_id)
    info = model.get("info", model)
    return str(info["artifact_uri"])


class LoggedModelDirectoryHandler(MLOpsHandler):
    """``GET .../logged-models/<id>/artifacts/directories?artifact_directory_path=``:
    ``{"files": [FileInfo]}`` with paths relative to the model's root."""

    @web.authenticated
    @authorized
    async def get(self, model_id: str) -> None:
        query = self.request.query_arguments

        def listing() -> str:
            f = Fields.from_query(query)
            rel = mlflow_path(f.string("artifact_directory_path"))
            repo = self.store.artifact_repo(_logged_model_uri(self, model_id))
            files = [fi.to_dict() for fi in repo.list(rel)]
            return to_json({"files": files} if files else {})

        async def work() -> None:
            self.send_json(await self.run(listing))

        await self.guarded(work)


class UploadArtifactHandler(MLOpsHandler):
    """``POST ajax-api/2.0/mlflow/upload-artifact?run_uuid=&path=``: the raw body (at most
    10 MB, MLflow's limit) becomes ``path`` in the run's artifacts."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        query = self.request.query_arguments
        body = self.request.body

        def upload() -> None:
            f = Fields.from_query(query)
            run_id = f.string("run_uuid") or f.string("run_id")
            if not run_id:
                raise invalid("Request must specify run_uuid.")
            path = f.string("path")
            if not path:
                raise invalid("Request must specify path.")
            rel = mlflow_path(path)
            if len(body) > MAX_UPLOAD_BYTES:
                raise invalid("Artifact size is too large. Max size is 10MB.")
            if not body:
                raise invalid("Request must specify data.")
            run = self.store.get_run(run_id)
            repo = self.store.artifact_repo(run.info.artifact_uri)
            try:
                repo.put(rel, body)
            except (IsADirectoryError, NotADirectoryError, FileExistsError):
                raise invalid(
                    f"Cannot write artifact '{path}': it is a directory or lies under a file."
                ) from None

        async def work() -> None:
            await self.run(upload)
            self.send_json("{}")

        await self.guarded(work)


class VersionHandler(MLOpsHandler):
    """``GET version``: the MLflow version this server's REST API matches (plain text)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(MLFLOW_VERSION, set_content_type="text/plain; charset=utf-8")


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(url regex under mlops/, handler, kwargs)`` of the MLflow UI routes."""
    ajax = r"ajax-api/2\.0/mlflow/"
    lm = r"api/2\.0/mlflow/logged-models/(?P<model_id>[^/]+)/artifacts/"
    return [
        (r"version", VersionHandler, {}),
        (r"get-artifact", RunArtifactHandler, {}),
        # MLflow's UI (and tests) also reach it as ``//model-versions/...``
        (r"/?model-versions/get-artifact", ModelVersionArtifactHandler, {}),
        (ajax + r"metrics/get-history-bulk", RpcHandler, {"rpcs": {"GET": get_history_bulk}}),
        (
            ajax + r"metrics/get-history-bulk-interval",
            RpcHandler,
            {"rpcs": {"GET": get_history_bulk_interval}},
        ),
        (ajax + r"upload-artifact", UploadArtifactHandler, {}),
        (lm + "files", LoggedModelFileHandler, {}),
        (lm + "directories", LoggedModelDirectoryHandler, {}),
    ]
