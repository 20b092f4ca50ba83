"""The tracking domain's entities.

Plain dataclasses with MLflow's field names. ``to_dict()`` gives the JSON shape
of MLflow's REST API (snake_case, unset fields omitted, timestamps in epoch
milliseconds), which is what the server sends and the HTTP client reads back
with ``from_dict()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Run statuses and lifecycle stages, as MLflow names them.
RUNNING, SCHEDULED, FINISHED, FAILED, KILLED = (
    "RUNNING",
    "SCHEDULED",
    "FINISHED",
    "FAILED",
    "KILLED",
)
RUN_STATUSES = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)
TERMINAL_STATUSES = (FINISHED, FAILED, KILLED)
ACTIVE, DELETED = "active", "deleted"

# View types of search calls.
ACTIVE_ONLY, DELETED_ONLY, ALL = "ACTIVE_ONLY", "DELETED_ONLY", "ALL"
VIEW_TYPES = (ACTIVE_ONLY, DELETED_ONLY, ALL)

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"

# System tags (mlflow/utils/mlflow_tags.py).
TAG_RUN_NAME = "mlflow.runName"
TAG_USER = "mlflow.user"
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_BRANCH = "mlflow.source.git.branch"
TAG_GIT_REPO_URL = "mlflow.source.git.repoURL"
TAG_GIT_DIRTY = "mlflow.source.git.dirty"
TAG_NOTE = "mlflow.note.content"
TAG_DATASET_CONTEXT = "mlflow.data.context"


@dataclass
class Tag:
    key: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


@dataclass
class Param:
    key: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


@dataclass
class Metric:
    key: str
    value: float
    timestamp: int  # epoch ms
    step: int = 0
    # MLflow 3: the logged model the point is also a metric of, and its dataset
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        value = json_float(self.value)
        d = {"key": self.key, "value": value, "timestamp": self.timestamp, "step": self.step}
        for k in ("model_id", "dataset_name", "dataset_digest"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metric:
        return cls(d["key"], float(d["value"]), int(d.get("timestamp", 0)), int(d.get("step", 0)))


@dataclass
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = ACTIVE
    creation_time: int | None = None
    last_update_time: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "artifact_location": self.artifact_location,
            "lifecycle_stage": self.lifecycle_stage,
        }
        if self.last_update_time is not None:
            d["last_update_time"] = self.last_update_time
        if self.creation_time is not None:
            d["creation_time"] = self.creation_time
        if self.tags:
            d["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Experiment:
        return cls(
            experiment_id=str(d["experiment_id"]),
            name=d["name"],
            artifact_location=d.get("artifact_location", ""),
            lifecycle_stage=d.get("lifecycle_stage", ACTIVE),
            creation_time=d.get("creation_time"),
            last_update_time=d.get("last_update_time"),
            tags={t["key"]: t.get("value", "") for t in d.get("tags", [])},
        )


@dataclass
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = ACTIVE
    #: When the run was deleted (None while active). MLflow keeps it for ``gc
    #: --older-than`` under this name; served only when set.
    deleted_time: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "run_id": self.run_id,
            "run_uuid": self.run_id,
            "run_name": self.run_name,
            "experiment_id": self.experiment_id,
            "user_id": self.user_id,
            "status": self.status,
            "artifact_uri": self.artifact_uri,
            "lifecycle_stage": self.lifecycle_stage,
        }
        if self.start_time is not None:
            d["start_time"] = self.start_time
        if self.end_time is not None:
            d["end_time"] = self.end_time
        if self.deleted_time is not None:
            d["deleted_time"] = self.deleted_time
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunInfo:
        return cls(
            run_id=d.get("run_id") or d["run_uuid"],
            experiment_id=str(d["experiment_id"]),
            run_name=d.get("run_name", ""),
            user_id=d.get("user_id", ""),
            status=d.get("status", RUNNING),
            start_time=d.get("start_time"),
            end_time=d.get("end_time"),
            artifact_uri=d.get("artifact_uri", ""),
            lifecycle_stage=d.get("lifecycle_stage", ACTIVE),
            deleted_time=d.get("deleted_time"),
        )


class MetricValue(float):
    """The latest value of a run's metric: a float, as in MLflow's ``RunData.metrics``
    (``run.data.metrics["acc"] > 0.9``), that also carries its point's ``key``, ``step``
    and ``timestamp``. ``.value`` is the float itself, for code written against earlier
    jupyter-mlops releases, whose ``RunData.metrics`` held :class:`Metric` objects."""

    __slots__ = ("key", "step", "timestamp")
    key: str
    step: int
    timestamp: int

    def __new__(cls, key: str, value: float, timestamp: int = 0, step: int = 0) -> MetricValue:
        obj = super().__new__(cls, value)
        obj.key, obj.timestamp, obj.step = key, timestamp, step
        return obj

    def __getnewargs__(self) -> tuple[Any, ...]:  # type: ignore[override]
        return (self.key, float(self), self.timestamp, self.step)

    @classmethod
    def of(cls, metric: Metric) -> MetricValue:
        return cls(metric.key, metric.value, metric.timestamp, metric.step)

    @property
    def value(self) -> float:
        return float(self)

    def to_metric(self) -> Metric:
        return Metric(self.key, float(self), self.timestamp, self.step)

    def to_dict(self) -> dict[str, Any]:
        return self.to_metric().to_dict()


def _metric_value(key: str, value: Any) -> MetricValue:
    if isinstance(value, MetricValue):
        return value
    if isinstance(value, Metric):
        return MetricValue.of(value)
    return MetricValue(key, float(value))


@dataclass
class RunData:
    """A run's latest metric values (floats, see :class:`MetricValue`), params and tags,
    as MLflow's ``RunData``; ``_metric_objs`` lists the metrics as :class:`Metric`
    objects, as MLflow's does."""

    metrics: dict[str, float] = field(default_factory=dict)  # latest value per key
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if any(not isinstance(v, MetricValue) for v in self.metrics.values()):
            self.metrics = {k: _metric_value(k, v) for k, v in self.metrics.items()}

    @property
    def _metric_objs(self) -> list[Metric]:
        return [_metric_value(k, v).to_metric() for k, v in self.metrics.items()]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.metrics:
            d["metrics"] = [_metric_value(k, v).to_dict() for k, v in self.metrics.items()]
        if self.params:
            d["params"] = [{"key": k, "value": v} for k, v in self.params.items()]
        if self.tags:
            d["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunData:
        return cls(
            metrics={m["key"]: MetricValue.of(Metric.from_dict(m)) for m in d.get("metrics", [])},
            params={p["key"]: p.get("value", "") for p in d.get("params", [])},
            tags={t["key"]: t.get("value", "") for t in d.get("tags", [])},
        )


@dataclass
class Dataset:
    """A dataset as MLflow records it: its name and digest identify it within an
    experiment; ``source`` (JSON text) says where it came from, ``source_type`` what
    kind of place that is (``local``, ``http``, ``s3``, ...); ``schema`` and
    ``profile`` are JSON texts (MLflow's colspec schema; row and element counts)."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "digest": self.digest,
            "source_type": self.source_type,
            "source": self.source,
        }
        if self.schema is not None:
            d["schema"] = self.schema
        if self.profile is not None:
            d["profile"] = self.profile
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Dataset:
        return cls(
            name=d.get("name", ""),
            digest=d.get("digest", ""),
            source_type=d.get("source_type", ""),
            source=d.get("source", ""),
            schema=d.get("schema"),
            profile=d.get("profile"),
        )


@dataclass
class DatasetInput:
    """A dataset a run used, with the input's tags (``mlflow.data.context``:
    ``training``, ``eval``, ...), in the order they were logged."""

    dataset: Dataset
    tags: list[Tag] = field(default_factory=list)

    @property
    def context(self) -> str | None:
        for t in self.tags:
            if t.key == TAG_DATASET_CONTEXT:
                return t.value
        return None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"dataset": self.dataset.to_dict()}
        if self.tags:
            d["tags"] = [t.to_dict() for t in self.tags]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetInput:
        return cls(
            Dataset.from_dict(d.get("dataset") or {}),
            [Tag(t.get("key", ""), t.get("value", "")) for t in d.get("tags", [])],
        )


@dataclass
class RunInputs:
    """What a run consumed: datasets and (MLflow 3) logged models, by id."""

    dataset_inputs: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.dataset_inputs:
            d["dataset_inputs"] = [i.to_dict() for i in self.dataset_inputs]
        if self.model_inputs:
            d["model_inputs"] = [{"model_id": m} for m in self.model_inputs]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunInputs:
        return cls(
            [DatasetInput.from_dict(i) for i in d.get("dataset_inputs", [])],
            [m["model_id"] for m in d.get("model_inputs", []) if m.get("model_id")],
        )


@dataclass
class Run:
    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "info": self.info.to_dict(),
            "data": self.data.to_dict(),
            "inputs": self.inputs.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        return cls(
            RunInfo.from_dict(d["info"]),
            RunData.from_dict(d.get("data", {})),
            RunInputs.from_dict(d.get("inputs") or {}),
        )


@dataclass
class FileInfo:
    path: str
    is_dir: bool
    file_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "is_dir": self.is_dir}
        if not self.is_dir and self.file_size is not None:
            d["file_size"] = self.file_size
        return d


@dataclass
class SeriesPoint:
    """One bucket of a down-sampled metric series (min/max preserving)."""

    step: int  # first step of the bucket
    timestamp: int  # timestamp of the first point of the bucket
    value: float  # the last value of the bucket (what a plain line shows)
    min: float
    max: float
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "timestamp": self.timestamp,
            "value": json_float(self.value),
            "min": json_float(self.min),
            "max": json_float(self.max),
            "count": self.count,
        }


def json_float(v: float) -> Any:
    """A number as MLflow's JSON carries it: NaN and the infinities as the strings
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (JSON has no such numbers)."""
    if v != v:  # noqa: PLR0124 - NaN test
        return "NaN"
    if v == math.inf:
        return "Infinity"
    if v == -math.inf:
        return "-Infinity"
    return v
