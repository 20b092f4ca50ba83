"""A :class:`TrackingStore` over HTTP: our Jupyter server's MLflow API (plus
its ``api/v1`` extras), or a stock MLflow tracking server.

The write path prefers ``POST api/v1/runs/log-bulk`` (columnar, no batch
limits) and falls back to MLflow's ``runs/log-batch`` in chunks of 1000 when
the server does not have it. Connection errors, 5xx and 429 are retried with
backoff, then raised as :class:`StoreUnavailable` so the writer spools. A
refused token (401, or a 403 that says the caller is not authenticated) is
neither an outage nor a refusal of the data: it is raised as :class:`AuthRefused`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from http.cookiejar import DefaultCookiePolicy
from typing import Any, BinaryIO

import requests

from ..tracking.artifacts import ArtifactRepository
from ..tracking.entities import (
    ACTIVE_ONLY,
    DatasetInput,
    Experiment,
    FileInfo,
    Metric,
    Run,
    RunInfo,
    SeriesPoint,
    json_float,
)
from ..tracking.errors import RESOURCE_DOES_NOT_EXIST, UNAUTHENTICATED, TrackingError, invalid
from ..tracking.store import (
    Columns,
    DataKeys,
    Series,
    TrackingStore,
    metric_columns,
    series_columns,
)
from .transient import AuthRefused, StoreUnavailable

# MLflow's log-batch limits (the fallback path for stock MLflow servers).
_BATCH_METRICS, _BATCH_PARAMS, _BATCH_TAGS = 1000, 100, 100
# Points per log-bulk request: keeps bodies far below the server's 64 MiB cap.
_BULK_POINTS = 200_000
# 507: the server's disk is full (jupyter-mlops answers it so): the batch waits in the spool.
_RETRY_STATUSES = (408, 429, 500, 502, 503, 504, 507)


def _auth_refusal(status: int, err: Any) -> bool:
    """Whether an error answer refuses the caller rather than the request: HTTP 401,
    MLflow's UNAUTHENTICATED, or a 403 from before any user was known (ours says
    "Not authenticated"; a proxy's is not MLflow JSON). A 403 PERMISSION_DENIED about
    a run (another user's, on a shared service) is a refusal of that request only."""
    if status == 401:
        return True
    if isinstance(err, dict) and "error_code" in err:
        if err["error_code"] == UNAUTHENTICATED:
            return True
        return status == 403 and str(err.get("message", "")).startswith("Not authenticated")
    return status == 403


class _EndpointMissing(Exception):
    """The server has no such route (a stock MLflow server for ``api/v1``)."""


class RestTrackingStore(TrackingStore):
    """Tracking over HTTP. ``uri`` is the tracking URI, e.g.
    ``http://host:8888/<base_url>mlops`` or ``http://mlflow-host:5000``.
    ``token_source`` gives the token currently configured (for :meth:`refresh_token`;
    :func:`~jupyter_mlops.client.uris.open_tracking_store` passes the environment's)."""

    def __init__(
        self,
        uri: str,
        token: str | None = None,
        max_retries: int = 3,
        backoff: float = 0.25,
        timeout: float = 120.0,
        token_source: Callable[[], str | None] | None = None,
    ) -> None:
        self.uri = uri
        self.base = uri.rstrip("/")
        self.artifact_root = self.base + "/api/2.0/mlflow-artifacts/artifacts"
        self.token = token
        self.token_source = token_source
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        self._local = threading.local()  # one keep-alive session per thread
        self._has_v1 = True

    # -- HTTP ---------------------------------------------------------------
    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["User-Agent"] = "jupyter-mlops-client"
            # Every request carries the token: no cookies, or Jupyter's login cookie
            # (set on a token-authenticated answer) would outlive a token change.
            s.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            self._local.session = s
        return s

    def refresh_token(self) -> bool:
        """Adopt the token now configured (``token_source``: the environment's
        JUPYTER_MLOPS_TRACKING_TOKEN or MLFLOW_TRACKING_TOKEN) if it differs from ours:
        after a refusal, the user fixes the variable and the writer tries again. True if
        the token changed."""
        if self.token_source is None:
            return False
        token = self.token_source()
        if not token or token == self.token:
            return False
        self.token = token
        return True

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        data: bytes | BinaryIO | None = None,
        raw: bool = False,
    ) -> Any:
        """Send one request, retrying transient failures; return the decoded
        JSON (or the response when ``raw``). Error JSON becomes TrackingError."""
        url = f"{self.base}/{path.lstrip('/')}"
        headers = {}
        if self.token:  # per request, so a refreshed token applies at once
            headers["Authorization"] = f"token {self.token}"
        body: Any = data
        if json_body is not None:
            body = json.dumps(json_body, allow_nan=True).encode()
            headers["Content-Type"] = "application/json"
        last: BaseException | None = None
        retries = getattr(self._local, "max_retries", None)
        for attempt in range((self.max_retries if retries is None else retries) + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
                if hasattr(body, "seek"):
                    body.seek(0)
            try:
                resp = self._session().request(
                    method,
                    url,
                    data=body,
                    params=params,
                    headers=headers,
                    timeout=(10.0, self.timeout),
                    stream=raw,
                )
            except requests.RequestException as e:
                last = e
                self._local.session = None  # a broken keep-alive connection
                continue
            if resp.status_code in _RETRY_STATUSES:
                last = StoreUnavailable(
                    f"{method} {url}: HTTP {resp.status_code} {resp.text[:200]}"
                )
                continue
            return self._decode(resp, method, url, raw)
        raise StoreUnavailable(f"{method} {url} failed: {last}") from last

    def _decode(self, resp: requests.Response, method: str, url: str, raw: bool) -> Any:
        if resp.status_code < 300:
            if raw:
                return resp
            return resp.json() if resp.content.strip() else {}
        try:
            err = resp.json()
        except ValueError:
            err = None
        if _auth_refusal(resp.status_code, err):
            raise self._refused(resp, err)
        if isinstance(err, dict) and "error_code" in err:
            if err["error_code"] == "ENDPOINT_NOT_FOUND":
                raise _EndpointMissing(url)
            raise TrackingError(str(err.get("message", "")), str(err["error_code"]))
        if resp.status_code in (404, 405):
            raise _EndpointMissing(url)
        code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}.get(
            resp.status_code, "BAD_REQUEST"
        )
        raise TrackingError(f"{method} {url}: HTTP {resp.status_code} {resp.text[:300]}", code)

    def _refused(self, resp: requests.Response, err: Any) -> AuthRefused:
        said = str(err.get("message", "")) if isinstance(err, dict) else resp.text[:200].strip()
        if not said or said.startswith("Not authenticated") or "<" in said:
            said = resp.reason or "refused"  # ours (said below) or a proxy's HTML page
        which = "the token" if self.token else "a request without a token"
        return AuthRefused(
            f"The tracking server {self.base} refused {which} (HTTP {resp.status_code}: "
            f"{said}). Set JUPYTER_MLOPS_TRACKING_TOKEN (or MLFLOW_TRACKING_TOKEN) to a token "
            "it accepts: the Jupyter server's token, or your JupyterHub API token for the "
            "hub's tracking service."
        )

    def _mlflow(self, method: str, endpoint: str, body: Any = None, params: Any = None) -> Any:
        try:
            return self.request(method, "api/2.0/mlflow/" + endpoint, json_body=body, params=params)
        except _EndpointMissing:
            raise TrackingError(
                f"{self.base} has no MLflow endpoint {endpoint}", "ENDPOINT_NOT_FOUND"
            ) from None

    def _v1(self, method: str, endpoint: str, body: Any) -> Any:
        """Call an ``api/v1`` route; raises _EndpointMissing on stock MLflow."""
        if not self._has_v1:
            raise _EndpointMissing(endpoint)
        try:
            return self.request(method, "api/v1/" + endpoint, json_body=body)
        except _EndpointMissing:
            self._has_v1 = False
            raise

    @contextlib.contextmanager
    def fast_fail(self) -> Iterator[None]:
        """No retries in this thread for the duration: the writer probes a
        store it knows is down without stalling on backoff."""
        self._local.max_retries = 0
        try:
            yield
        finally:
            self._local.max_retries = None

    # -- experiments --------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        body: dict[str, Any] = {"name": name}
        if artifact_location:
            body["artifact_location"] = artifact_location
        if tags:
            body["tags"] = _kv(tags.items())
        return str(self._mlflow("POST", "experiments/create", body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        d = self._mlflow("GET", "experiments/get", params={"experiment_id": experiment_id})
        return Experiment.from_dict(d["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            d = self._mlflow("GET", "experiments/get-by-name", params={"experiment_name": name})
        except TrackingError as e:
            if e.error_code == RESOURCE_DOES_NOT_EXIST:
                return None
            raise
        return Experiment.from_dict(d["experiment"])

    def search_experiments(
        self,
        view_type: str = ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Experiment], str | None]:
        body: dict[str, Any] = {"view_type": view_type, "max_results": max_results}
        if filter_string:
            body["filter"] = filter_string
        if order_by:
            body["order_by"] = list(order_by)
        if page_token:
            body["page_token"] = page_token
        d = self._mlflow("POST", "experiments/search", body)
        exps = [Experiment.from_dict(e) for e in d.get("experiments", [])]
        return exps, d.get("next_page_token") or None

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._mlflow(
            "POST", "experiments/update", {"experiment_id": experiment_id, "new_name": new_name}
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self._mlflow("POST", "experiments/delete", {"experiment_id": experiment_id})

    def restore_experiment(self, experiment_id: str) -> None:
        self._mlflow("POST", "experiments/restore", {"experiment_id": experiment_id})

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._mlflow(
            "POST",
            "experiments/set-experiment-tag",
            {"experiment_id": experiment_id, "key": key, "value": value},
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._mlflow(
            "POST",
            "experiments/delete-experiment-tag",
            {"experiment_id": experiment_id, "key": key},
        )

    # -- runs ---------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str = "",
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        body: dict[str, Any] = {"experiment_id": str(experiment_id), "user_id": user_id}
        if start_time is not None:
            body["start_time"] = start_time
        if tags:
            body["tags"] = _kv(tags.items())
        if run_name:
            body["run_name"] = run_name
        if run_id:
            try:
                return Run.from_dict(
                    self._v1("POST", "runs/create", {**body, "run_id": run_id})["run"]
                )
            except _EndpointMissing:
                pass  # stock MLflow: the server picks the id
        return Run.from_dict(self._mlflow("POST", "runs/create", body)["run"])

    def get_run(self, run_id: str) -> Run:
        return Run.from_dict(self._mlflow("GET", "runs/get", params={"run_id": run_id})["run"])

    def update_run_info(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        body: dict[str, Any] = {"run_id": run_id, "run_uuid": run_id}
        if status:
            body["status"] = status
        if end_time is not None:
            body["end_time"] = end_time
        if run_name:
            body["run_name"] = run_name
        d = self._mlflow("POST", "runs/update", body)
        if "run_info" in d:
            return RunInfo.from_dict(d["run_info"])
        return self.get_run(run_id).info

    def delete_run(self, run_id: str) -> None:
        self._mlflow("POST", "runs/delete", {"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self._mlflow("POST", "runs/restore", {"run_id": run_id})

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._log_columns(run_id, metric_columns(metrics), list(params), list(tags))

    def log_bulk(
        self,
        run_id: str,
        metrics: Sequence[Series] = (),
        params: Sequence[tuple[str, str]] = (),
        tags: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Columnar log_batch, sent as ``api/v1/runs/log-bulk``."""
        self._log_columns(run_id, series_columns(metrics), list(params), list(tags))

    def _log_columns(
        self,
        run_id: str,
        metrics: Columns,
        params: Sequence[Any],
        tags: Sequence[Any],
    ) -> None:
        try:
            for body in _bulk_bodies(run_id, metrics, params, tags):
                self._v1("POST", "runs/log-bulk", body)
            return
        except _EndpointMissing:
            pass
        self._log_batch_chunks(run_id, metrics, params, tags)

    def _log_batch_chunks(
        self, run_id: str, metrics: Columns, params: Iterable[Any], tags: Iterable[Any]
    ) -> None:
        plist = _kv(params)
        tlist = _kv(tags)
        for i in range(0, len(plist), _BATCH_PARAMS):
            self._mlflow(
                "POST", "runs/log-batch", {"run_id": run_id, "params": plist[i : i + _BATCH_PARAMS]}
            )
        for i in range(0, len(tlist), _BATCH_TAGS):
            self._mlflow(
                "POST", "runs/log-batch", {"run_id": run_id, "tags": tlist[i : i + _BATCH_TAGS]}
            )
        chunk: list[dict[str, Any]] = []
        for key, (steps, stamps, values) in metrics.items():
            for s, t, v in zip(steps, stamps, values):
                chunk.append({"key": key, "value": json_float(v), "timestamp": t, "step": s})
                if len(chunk) == _BATCH_METRICS:
                    self._mlflow("POST", "runs/log-batch", {"run_id": run_id, "metrics": chunk})
                    chunk = []
        if chunk:
            self._mlflow("POST", "runs/log-batch", {"run_id": run_id, "metrics": chunk})

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] = (),
        models: Sequence[str] = (),
    ) -> None:
        body: dict[str, Any] = {"run_id": run_id, "datasets": [d.to_dict() for d in datasets]}
        if models:
            body["models"] = [{"model_id": m} for m in models]
        self._mlflow("POST", "runs/log-inputs", body)

    def search_datasets(self, experiment_ids: Sequence[str]) -> list[dict[str, object]]:
        d = self._mlflow(
            "POST",
            "experiments/search-datasets",
            {"experiment_ids": [str(e) for e in experiment_ids]},
        )
        return list(d.get("dataset_summaries") or [])

    # -- traces (MLflow 3 tracing) ----------------------------------------------------
    def log_traces(self, records: Sequence[Any]) -> None:
        """Whole traces in one request (``api/v1/traces/log-bulk``)."""
        body = {
            "traces": [{"info": info.to_dict(), "spans": list(spans)} for info, spans in records]
        }
        self._v1("POST", "traces/log-bulk", body)

    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        visible_owners: Sequence[str] | None = None,
        viewer: str | None = None,
    ) -> tuple[list[Any], str | None]:
        """(``visible_owners``/``viewer``: the server applies its own access rules.)"""
        from ..tracking.traces import TraceInfo

        body: dict[str, Any] = {
            "locations": [
                {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": str(e)}}
                for e in experiment_ids
            ],
            "max_results": max_results,
        }
        if filter_string:
            body["filter"] = filter_string
        if order_by:
            body["order_by"] = list(order_by)
        if page_token:
            body["page_token"] = page_token
        d = self.request("POST", "api/3.0/mlflow/traces/search", json_body=body)
        infos = [TraceInfo.from_dict(t) for t in d.get("traces") or []]
        return infos, d.get("next_page_token")

    def get_trace_info(self, trace_id: str) -> Any:
        from ..tracking.traces import TraceInfo

        d = self.request("GET", f"api/3.0/mlflow/traces/{trace_id}")
        return TraceInfo.from_dict(d["trace"]["trace_info"])

    def get_trace_spans(self, trace_id: str) -> list[dict[str, Any]]:
        d = self.request(
            "GET", "ajax-api/2.0/mlflow/get-trace-artifact", params={"request_id": trace_id}
        )
        return list(d.get("spans") or [])

    def create_assessment(self, trace_id: str, assessment: dict[str, Any]) -> dict[str, Any]:
        d = self.request(
            "POST",
            f"api/3.0/mlflow/traces/{trace_id}/assessments",
            json_body={"assessment": assessment},
        )
        return dict(d["assessment"])

    def delete_tag(self, run_id: str, key: str) -> None:
        self._mlflow("POST", "runs/delete-tag", {"run_id": run_id, "key": key})

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Metric], str | None]:
        params: dict[str, Any] = {"run_id": run_id, "run_uuid": run_id, "metric_key": key}
        if max_results is not None:
            params["max_results"] = max_results
        if page_token:
            params["page_token"] = page_token
        d = self._mlflow("GET", "metrics/get-history", params=params)
        metrics = [Metric.from_dict(m) for m in d.get("metrics", [])]
        return metrics, d.get("next_page_token") or None

    def get_metric_series(
        self,
        run_id: str,
        key: str,
        max_points: int = 1000,
        x_axis: str = "step",
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> list[SeriesPoint]:
        params: dict[str, Any] = {
            "run_id": run_id,
            "metric_key": key,
            "max_points": max_points,
            "x_axis": x_axis,
        }
        if start_step is not None:
            params["start_step"] = start_step
        if end_step is not None:
            params["end_step"] = end_step
        try:
            d = self.request("GET", "api/v1/metrics/series", params=params)
        except _EndpointMissing:
            raise TrackingError(
                "the server has no api/v1/metrics/series", "ENDPOINT_NOT_FOUND"
            ) from None
        return [
            SeriesPoint(
                step=int(p["step"]),
                timestamp=int(p["timestamp"]),
                value=float(p["value"]),
                min=float(p["min"]),
                max=float(p["max"]),
                count=int(p.get("count", 1)),
            )
            for p in d.get("points", [])
        ]

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
        if visible_user_ids is not None or viewer_id is not None:
            # the server applies its own access rules for this client's token
            raise invalid("a REST store cannot narrow a search to other users' view")
        body: dict[str, Any] = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "run_view_type": run_view_type,
            "max_results": max_results,
        }
        if filter_string:
            body["filter"] = filter_string
        if order_by:
            body["order_by"] = list(order_by)
        if page_token:
            body["page_token"] = page_token
        if data_keys is not None:
            # ours: a stock MLflow server ignores it and sends every key (more, not fewer)
            body["data_keys"] = {k: list(v) for k, v in data_keys.items()}
        d = self._mlflow("POST", "runs/search", body)
        return [Run.from_dict(r) for r in d.get("runs", [])], d.get("next_page_token") or None

    # -- liveness -----------------------------------------------------------
    def heartbeat(self, run_ids: Sequence[str], now: int | None = None) -> None:
        if not run_ids:
            return
        try:
            self._v1("POST", "runs/heartbeat", {"run_ids": list(run_ids)})
        except _EndpointMissing:
            pass  # a stock MLflow server keeps no heartbeats

    def kill_stale_runs(self, older_than_ms: int, now: int | None = None) -> list[str]:
        # The server sweeps stale runs itself; a client cannot do it over HTTP.
        return []

    def purge_deleted_runs(self, older_than_ms: int = 0) -> list[str]:
        raise TrackingError(
            "purging deleted runs is done on the server (jupyter mlops gc)", "NOT_IMPLEMENTED"
        )

    # -- artifacts ----------------------------------------------------------
    def artifact_repo(self, artifact_uri: str) -> ArtifactRepository:
        prefix = "mlflow-artifacts:"
        if artifact_uri.startswith(prefix):
            rest = artifact_uri[len(prefix) :].lstrip("/")
            # mlflow-artifacts://host:port/path carries a host we do not use
            if artifact_uri.startswith(prefix + "//"):
                rest = rest.split("/", 1)[1] if "/" in rest else ""
            return HttpArtifactRepository(self, rest)
        if artifact_uri.startswith(self.artifact_root):
            return HttpArtifactRepository(self, artifact_uri[len(self.artifact_root) :].lstrip("/"))
        from ..tracking.artifacts import artifact_repo_for

        return artifact_repo_for(artifact_uri, artifact_uri)

    def close(self) -> None:
        s = getattr(self._local, "session", None)
        if s is not None:
            s.close()


class HttpArtifactRepository(ArtifactRepository):
    """Artifacts through ``api/2.0/mlflow-artifacts/artifacts/<root>/<path>``."""

    def __init__(self, store: RestTrackingStore, root: str) -> None:
        self.store = store
        self.root = root.strip("/")

    def _full(self, path: str) -> str:
        path = _safe_path(path)
        return f"{self.root}/{path}".strip("/") if path else self.root

    def _url(self, path: str) -> str:
        from urllib.parse import quote

        return "api/2.0/mlflow-artifacts/artifacts/" + quote(self._full(path))

    def put(self, path: str, data: bytes | BinaryIO) -> None:
        if not _safe_path(path):
            raise invalid("an artifact needs a file name")
        try:
            self.store.request("PUT", self._url(path), data=data)
        except _EndpointMissing:
            raise TrackingError(
                "the server does not serve artifacts (mlflow-artifacts)", "ENDPOINT_NOT_FOUND"
            ) from None

    def open(self, path: str) -> BinaryIO:
        try:
            resp = self.store.request("GET", self._url(path), raw=True)
        except _EndpointMissing:
            raise TrackingError(f"No such artifact: {path!r}", RESOURCE_DOES_NOT_EXIST) from None
        return io.BytesIO(resp.content)

    def list(self, path: str = "") -> list[FileInfo]:
        try:
            d = self.store.request(
                "GET", "api/2.0/mlflow-artifacts/artifacts", params={"path": self._full(path)}
            )
        except _EndpointMissing:
            return []
        base = _safe_path(path)
        out = []
        for f in d.get("files", []):
            rel = f"{base}/{f['path']}" if base else f["path"]
            out.append(FileInfo(rel, bool(f.get("is_dir")), f.get("file_size")))
        return out

    def delete(self, path: str = "") -> None:
        try:
            self.store.request("DELETE", self._url(path))
        except _EndpointMissing:
            pass

    def is_dir(self, path: str) -> bool:
        return bool(self.list(path))

    def exists(self, path: str) -> bool:
        if self.is_dir(path):
            return True
        parent, _, name = _safe_path(path).rpartition("/")
        return any(f.path.rpartition("/")[2] == name and not f.is_dir for f in self.list(parent))


def _safe_path(path: str) -> str:
    """Normalize a relative artifact path; refuse anything that could escape."""
    path = path or ""
    if "\\" in path:
        raise invalid("artifact paths use '/', not backslashes")
    if path.startswith("/"):
        raise invalid(f"artifact path {path!r} must be relative")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise invalid(f"artifact path {path!r} must not contain '..'")
    return "/".join(parts)


def _kv(items: Iterable[Any]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in items]


def _json_values(values: list[float]) -> list[Any]:
    if all(map(math.isfinite, values)):
        return values
    return [json_float(v) for v in values]


def _bulk_bodies(run_id: str, metrics: Columns, params: Any, tags: Any) -> Iterable[dict[str, Any]]:
    """log-bulk bodies of at most ``_BULK_POINTS`` points each; params and tags
    ride with the first body."""
    body: dict[str, Any] = {
        "run_id": run_id,
        "metrics": [],
        "params": _kv(params),
        "tags": _kv(tags),
    }
    size = 0
    for key, (steps, stamps, values) in metrics.items():
        for i in range(0, len(steps), _BULK_POINTS):
            n = min(_BULK_POINTS, len(steps) - i)
            if size and size + n > _BULK_POINTS:
                yield body
                body = {"run_id": run_id, "metrics": [], "params": [], "tags": []}
                size = 0
            body["metrics"].append(
                {
                    "key": key,
                    "steps": steps[i : i + n],
                    "timestamps": stamps[i : i + n],
                    "values": _json_values(values[i : i + n]),
                }
            )
            size += n
    yield body
