"""Routes the JupyterLab panels need beyond MLflow's API (``api/v1/...``).

- ``GET api/v1/metrics/series-bulk?run_ids=..&run_ids=..&metric_key=..`` : the
  down-sampled series of one metric for many runs in one request (the compare
  view overlays up to hundreds of runs per chart).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...tracking.errors import invalid
from ..request import Fields, bad_value, missing
from .v1 import MAX_SERIES_POINTS

if TYPE_CHECKING:
    from ...tracking.store import TrackingStore

#: Most runs in one bulk request (the URL stays well under servers' limits).
MAX_BULK_RUNS = 200


def metric_series_bulk(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """One metric's down-sampled series for each run; a run that never logged
    the metric has no points (it is not an error: compared runs often differ)."""
    run_ids = list(dict.fromkeys(f.strings("run_ids", ids=True)))
    if not run_ids:
        raise missing("run_ids")
    if len(run_ids) > MAX_BULK_RUNS:
        raise invalid(f"At most {MAX_BULK_RUNS} run_ids per request (got {len(run_ids)}).")
    key = f.string("metric_key", required=True) or ""
    x_axis = f.string("x_axis", default="step") or "step"
    if x_axis not in ("step", "timestamp"):
        raise bad_value("x_axis", x_axis, "Value must be one of step, timestamp.")
    max_points = f.integer("max_points", default=1000, minimum=1, maximum=MAX_SERIES_POINTS) or 1000
    series = []
    for run_id in run_ids:
        points = store.get_metric_series(run_id, key, max_points=max_points, x_axis=x_axis)
        series.append({"run_id": run_id, "points": [p.to_dict() for p in points]})
    return {"series": series}


def routes() -> list[tuple[str, dict[str, Any]]]:
    """``(path under mlops/, RpcHandler kwargs)`` of the UI routes."""
    return [("api/v1/metrics/series-bulk", {"rpcs": {"GET": metric_series_bulk}})]
