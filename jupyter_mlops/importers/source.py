"""What an MLflow tracking store holds, as the importer reads it.

Two readers produce these records: :mod:`.mlflow_files` (an ``mlruns``
directory in MLflow's file-store layout) and :mod:`.mlflow_sql` (MLflow's
SQL schema, read with SQLAlchemy Core). Neither imports ``mlflow``.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from ..tracking.entities import Metric

# MLflow's RunStatus enum numbers, as the file store writes them.
RUN_STATUS_BY_NUMBER = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


class SourceError(Exception):
    """The source cannot be read (missing, not an MLflow store, corrupt)."""


@dataclass
class SourceExperiment:
    experiment_id: str
    name: str
    lifecycle_stage: str = "active"
    artifact_location: str = ""
    creation_time: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceRun:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str


class MlflowSource(abc.ABC):
    """Read access to one MLflow tracking store."""

    #: Human-readable description for messages.
    description: str
    #: What the reader had to leave out (an unreadable run, say); the importer
    #: reports and clears these.
    warnings: list[str]

    @abc.abstractmethod
    def experiments(self) -> list[SourceExperiment]:
        """Every experiment, deleted ones included, ordered by id."""

    @abc.abstractmethod
    def runs(self, experiment_id: str) -> list[SourceRun]:
        """Every run of an experiment (deleted ones included), oldest first."""

    @abc.abstractmethod
    def params(self, run: SourceRun) -> dict[str, str]: ...

    @abc.abstractmethod
    def tags(self, run: SourceRun) -> dict[str, str]: ...

    @abc.abstractmethod
    def metrics(self, run: SourceRun) -> Iterator[tuple[str, list[Metric]]]:
        """``(key, history)`` per metric key, history in logging order."""

    def metric_counts(self, run: SourceRun) -> dict[str, int] | None:
        """Points per metric key, if the reader can count without reading them."""
        return None

    def artifact_dir_candidates(self, run: SourceRun) -> list[str]:
        """Local directories that may hold the run's artifacts, best first."""
        path = local_path(run.artifact_uri)
        return [path] if path else []

    def close(self) -> None:  # noqa: B027 - an optional hook, a no-op unless a source holds something
        """Release what the reader holds."""


def local_path(uri: str) -> str | None:
    """The local path of a ``file:`` URI or a plain path; None for other schemes."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            return None
        return unquote(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:  # "C:\..." has a one-letter scheme
        return None
    return os.path.abspath(uri)


def mlflow_artifacts_path(uri: str) -> str | None:
    """The path part of an ``mlflow-artifacts:`` URI (relative to the server's
    artifact destination), or None for other URIs."""
    parsed = urlparse(uri)
    if parsed.scheme != "mlflow-artifacts":
        return None
    return unquote(parsed.path).lstrip("/")
