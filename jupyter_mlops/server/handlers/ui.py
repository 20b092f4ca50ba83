"""Routes the JupyterLab panels need beyond MLflow's API (``api/v1/...``).

- ``GET api/v1/metrics/series-bulk?run_ids=..&run_ids=..&metric_key=..`` : the
  down-sampled series of one metric for many runs in one request (the compare
  view overlays up to hundreds of runs per chart).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...tracking.errors import invalid
from ..request import Fields, bad_value, missing
from .v1 import MAX_SERIES_POINTS

if TYPE_CHECKING:
    from ...tracking.store import TrackingStore

#: Most runs in one bulk request (the URL stays well under servers' limits).
MAX_BULK_RUNS = 200


@dataclass(frozen=True)
class BulkRequest:
    """What a ``series-bulk`` request asks for (checked)."""

    run_ids: list[str]
    key: str
    x_axis: str
    max_points: int


def bulk_request(f: Fields) -> BulkRequest:
    """The fields of a ``series-bulk`` request (also read by the hub relay, hub_relay.py)."""
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
    return BulkRequest(run_ids, key, x_axis, max_points)


def metric_series_bulk(f: Fields, store: TrackingStore) -> dict[str, Any]:
    """One metric's down-sampled series for each run; a run that never logged
    the metric has no points (it is not an error: compared runs often differ)."""
    asked = bulk_request(f)
    series = []
    for run_id in asked.run_ids:
        points = store.get_metric_series(
            run_id, asked.key, max_points=asked.max_points, x_axis=asked.x_axis
        )
        series.append({"run_id": run_id, "points": [p.to_dict() for p in points]})
    return {"series": series}


def routes() -> list[tuple[str, dict[str, Any]]]:
    """``(path under mlops/, RpcHandler kwargs)`` of the UI routes."""
    return [("api/v1/metrics/series-bulk", {"rpcs": {"GET": metric_series_bulk}})]
