"""What MLflow's API lacks (``api/v1/...``): down-sampled series, columnar bulk
logging, run creation with a client-made id, heartbeats, the count of a run search,
the OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ...tracking.clock import now_ms
from ...tracking.entities import ACTIVE_ONLY
from ...tracking.errors import invalid
from ..request import INT64_MAX, INT64_MIN, Fields, bad_value, to_float, to_int
from .base import MLOpsHandler, to_json
from .mlflow_api import VIEW_TYPES, create_run_fields, data_keys, known_id_range

if TYPE_CHECKING:
    from ...tracking.store import TrackingStore

MAX_SERIES_POINTS = 100_000
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def metric_series(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_id = f.run_id()
    key = f.string("metric_key", required=True) or ""
    x_axis = f.string("x_axis", default="step") or "step"
    if x_axis not in ("step", "timestamp"):
        raise bad_value("x_axis", x_axis, "Value must be one of step, timestamp.")
    points = store.get_metric_series(
        run_id,
        key,
        max_points=f.integer("max_points", default=1000, minimum=1, maximum=MAX_SERIES_POINTS)
        or 1000,
        x_axis=x_axis,
        start_step=f.integer("start_step"),
        end_step=f.integer("end_step"),
    )
    return {"points": [p.to_dict() for p in points]}


def count_runs(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """How many runs MLflow's ``runs/search`` finds with the same fields, over all pages
    (the runs table's count: it pages the rows as they scroll into view)."""
    asked = f.strings("experiment_ids", ids=True)
    experiment_ids = [i for i in asked if known_id_range(i)]
    if asked and not experiment_ids:
        return {"count": 0}
    count = store.count_runs(
        experiment_ids,
        filter_string=f.string("filter"),
        run_view_type=f.enum("run_view_type", VIEW_TYPES, ACTIVE_ONLY) or ACTIVE_ONLY,
    )
    return {"count": count}


#: Most runs ``runs/changes`` answers at once.
MAX_CHANGED_RUNS = 1000


def changed_runs(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """The runs of the experiments that changed since ``since`` (epoch ms, the ``now`` of
    the previous answer): the runs table's live updates read these, not its pages."""
    now = now_ms()
    asked = f.strings("experiment_ids", ids=True)
    experiment_ids = [i for i in asked if known_id_range(i)]
    since = f.integer("since", required=True, minimum=0, maximum=INT64_MAX) or 0
    limit = f.integer("max_results", default=500, minimum=1, maximum=MAX_CHANGED_RUNS) or 500
    if not experiment_ids:
        return {"runs": [], "now": now, "truncated": False}
    found, truncated = store.changed_runs(
        experiment_ids, since, max_results=limit, data_keys=data_keys(f)
    )
    return {"runs": [r.to_dict() for r in found], "now": now, "truncated": truncated}


#: Most keys of each kind ``runs/keys`` answers.
MAX_RUN_KEYS = 1000


def run_keys(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """The param, metric and tag keys of an experiment's runs containing ``search``
    (the runs table's column picker; an experiment may have thousands)."""
    asked = f.strings("experiment_ids", ids=True)
    experiment_ids = [i for i in asked if known_id_range(i)]
    limit = f.integer("max_results", default=200, minimum=1, maximum=MAX_RUN_KEYS) or 200
    search = f.string("search", default="", max_length=250) or ""
    if not experiment_ids:
        return {"params": [], "metrics": [], "tags": []}
    return store.run_keys(experiment_ids, search=search, max_results=limit)


def _plain_column(raw: list[Any], convert: Any) -> list[Any] | None:
    """The column as is when it holds only plain JSON numbers of the right kind
    (what our client sends): no per-element conversion on the bulk hot path.
    None when any element needs :func:`to_int` / :func:`to_float`'s checks."""
    if not raw:
        return raw
    if convert is to_float:
        if all(type(v) is float or type(v) is int for v in raw):
            try:
                return [float(v) for v in raw]
            except OverflowError:
                return None
        return None
    if all(type(v) is int for v in raw) and min(raw) >= INT64_MIN and max(raw) <= INT64_MAX:
        return raw
    return None


def _column(o: Fields, name: str, convert: Any) -> list[Any] | None:
    raw = o.data.get(name)
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise bad_value(o.path(name), raw)
    plain = _plain_column(raw, convert)
    if plain is not None:
        return plain
    path = o.path(name)
    return [convert(v, f"{path}[{i}]") for i, v in enumerate(raw)]


def log_bulk(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """Columnar metrics (``steps``/``timestamps``/``values`` of one key), plus
    params and tags, in one store transaction; no MLflow batch limits."""
    run_id = f.run_id()
    metrics: list[tuple[str, list[int], list[int], list[float]]] = []
    for o in f.objects("metrics"):
        key = o.string("key", required=True) or ""
        values = _column(o, "values", to_float)
        if values is None:
            raise invalid(f"Missing value for required parameter '{o.path('values')}'.")
        steps = _column(o, "steps", to_int)
        if steps is None:
            steps = [0] * len(values)
        timestamps = _column(o, "timestamps", to_int)
        if timestamps is None:
            raise invalid(f"Missing value for required parameter '{o.path('timestamps')}'.")
        if not len(values) == len(steps) == len(timestamps):
            raise invalid(
                f"'{o.path('values')}', '{o.path('steps')}' and '{o.path('timestamps')}' must "
                f"have the same length (got {len(values)}, {len(steps)}, {len(timestamps)})."
            )
        metrics.append((key, steps, timestamps, values))
    params = f.key_values("params")
    keys = [k for k, _ in params]
    if len(set(keys)) != len(keys):
        raise invalid("Duplicate parameter keys have been submitted in one request.")
    store.log_bulk(run_id, metrics=metrics, params=params, tags=f.key_values("tags"))
    return {}


def create_run_with_id(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_id = f.ident("run_id")
    if run_id is not None and not _RUN_ID.match(run_id):
        raise bad_value("run_id", run_id, "A run id is 32 lowercase hexadecimal digits.")
    return create_run_fields(f, store, run_id=run_id)


def heartbeat(f: Fields, store: TrackingStore) -> dict[str, Any]:
    run_ids = f.strings("run_ids")
    if run_ids:
        store.heartbeat(run_ids)
    return {}


def run_ended(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """A client that wrote a run's end straight into the database says so: the run is read
    from the store and its end told (notifications), once."""
    info = store.get_run(f.run_id()).info
    tell = getattr(store, "ended", None)  # the single-user server's RunEndRelay
    if callable(tell):
        tell(info)
    return {}


def health(f: Fields, store: TrackingStore) -> dict[str, Any]:
    return {"status": "OK"}


class OpenAPIHandler(MLOpsHandler):
    """``GET api/v1/openapi.json``: the document of every route, with this server's URL.
    ``document(server_url)`` builds it (``server/openapi.py``, passed in by the app: the
    document describes the handlers, so they do not import it)."""

    def initialize(  # type: ignore[override]
        self, name: str, document: Callable[[str], dict[str, Any]]
    ) -> None:
        super().initialize(name)
        self.document = document

    @web.authenticated
    @authorized
    async def get(self) -> None:
        base_url = self.settings.get("base_url", "/")
        self.send_json(to_json(self.document(f"{base_url}mlops")))


class UIRedirectHandler(MLOpsHandler):
    """``GET {base_url}mlops/``: the MLflow client prints run links as
    ``<tracking URI>/#/experiments/<exp>/runs/<run>``; send them to JupyterLab.
    The browser keeps the ``#/...`` fragment across the redirect, so the front end
    can open that run."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.redirect(url_path_join(self.settings.get("base_url", "/"), "lab"))


def routes() -> list[tuple[str, dict[str, Any]]]:
    """``(path under mlops/, RpcHandler kwargs)`` of the v1 routes served by RpcHandler."""
    return [
        ("api/v1/metrics/series", {"rpcs": {"GET": metric_series}}),
        ("api/v1/runs/log-bulk", {"rpcs": {"POST": log_bulk}}),
        ("api/v1/runs/create", {"rpcs": {"POST": create_run_with_id}}),
        ("api/v1/runs/heartbeat", {"rpcs": {"POST": heartbeat}}),
        ("api/v1/runs/ended", {"rpcs": {"POST": run_ended}}),
        ("api/v1/runs/count", {"rpcs": {"POST": count_runs}}),
        ("api/v1/runs/keys", {"rpcs": {"POST": run_keys}}),
        ("api/v1/runs/changes", {"rpcs": {"POST": changed_runs}}),
        ("health", {"rpcs": {"GET": health}}),
    ]
