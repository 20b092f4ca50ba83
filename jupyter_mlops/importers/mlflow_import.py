"""Import experiments, runs and artifacts from an MLflow tracking store.

The source is read directly (:mod:`.mlflow_files`, :mod:`.mlflow_sql`); the
destination is written only through the :class:`TrackingStore` interface.

Run ids are kept. Experiments are matched by name: an experiment of the same
name in the destination is merged into, since ids cannot be kept (both stores
number their own). Importing is resumable and idempotent: a run already in the
destination gets only what it lacks (params, tags, metric points, artifact
files), and one that lacks nothing is counted as skipped. Values already in the
destination are never overwritten. Status (RUNNING -> ended) and deletion follow
the source; a run or experiment is deleted only once it imported without
problems, since a deleted run takes no more data.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ..tracking.entities import DELETED, RUNNING, TERMINAL_STATUSES, Metric
from ..tracking.errors import RESOURCE_DOES_NOT_EXIST, TrackingError
from .source import (
    MlflowSource,
    SourceError,
    SourceExperiment,
    SourceRun,
    local_path,
    mlflow_artifacts_path,
)

if TYPE_CHECKING:
    from ..tracking.store import TrackingStore

#: Metric points per log_batch call: big batches, bounded memory per call.
METRIC_CHUNK = 50_000


def open_source(source: str) -> MlflowSource:
    """An MLflow store from a path (``mlruns`` directory, ``file:`` URI) or a
    database URI (``sqlite:///...``, ``postgresql://...``)."""
    if "://" in source and not source.startswith("file:"):
        from .mlflow_sql import SqlSource

        return SqlSource(source)
    from .mlflow_files import FileStoreSource

    path = local_path(source) if source.startswith("file:") else source
    if not path:
        raise SourceError(f"{source}: not a local file URI")
    if os.path.isfile(path):
        raise SourceError(
            f"{source}: is a file; for an MLflow SQLite database use sqlite:///{os.path.abspath(path)}"
        )
    return FileStoreSource(path)


@dataclass
class ImportStats:
    experiments_created: int = 0
    experiments_merged: int = 0
    runs_imported: int = 0
    runs_completed: int = 0  # existed, but lacked something (an interrupted import)
    runs_skipped: int = 0  # existed with everything
    params: int = 0
    tags: int = 0
    metric_points: int = 0
    artifact_files: int = 0
    artifact_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"experiments: {self.experiments_created} created, {self.experiments_merged} merged; "
            f"runs: {self.runs_imported} imported, {self.runs_completed} completed, "
            f"{self.runs_skipped} already there; "
            f"added {self.params} params, {self.tags} tags, {self.metric_points} metric points, "
            f"{self.artifact_files} artifact files ({_size(self.artifact_bytes)})"
        )


@dataclass
class _RunChanges:
    params: int = 0
    tags: int = 0
    points: int = 0
    files: int = 0
    bytes: int = 0

    @property
    def any(self) -> bool:
        return bool(self.params or self.tags or self.points or self.files)


class MlflowImporter:
    """Copies an MLflow store into ``store``; ``echo`` gets progress lines."""

    def __init__(
        self,
        source: MlflowSource,
        store: TrackingStore,
        artifacts_root: str | None = None,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.source = source
        self.store = store
        self.artifacts_root = artifacts_root
        self.echo = echo
        self.stats = ImportStats()

    def select(self, names: Sequence[str] | None) -> list[SourceExperiment]:
        """The source experiments named (by name or id), or all of them."""
        experiments = self.source.experiments()
        self._source_warnings()
        if not names:
            return experiments
        by_key = {e.name: e for e in experiments}
        by_key.update({e.experiment_id: e for e in experiments if e.experiment_id not in by_key})
        missing = [n for n in names if n not in by_key]
        if missing:
            known = ", ".join(repr(e.name) for e in experiments) or "none"
            raise SourceError(
                f"no experiment {', '.join(map(repr, missing))} in {self.source.description} "
                f"(it has: {known})"
            )
        chosen = {by_key[n].experiment_id: by_key[n] for n in names}
        return list(chosen.values())

    def run(self, experiments: Sequence[SourceExperiment]) -> ImportStats:
        for exp in experiments:
            try:
                self._import_experiment(exp)
            except TrackingError as e:  # refused by the store: report, go on
                self._problem(f"experiment {exp.name!r}: {e.message}")
        return self.stats

    # -- experiments --------------------------------------------------------
    def _import_experiment(self, exp: SourceExperiment) -> None:
        runs = self.source.runs(exp.experiment_id)
        self._source_warnings()
        existing = self.store.get_experiment_by_name(exp.name)
        existing_stage = existing.lifecycle_stage if existing is not None else None
        if existing is None:
            dest_id = self.store.create_experiment(exp.name)
            self.stats.experiments_created += 1
            self.echo(f"experiment {exp.name!r}: created (id {dest_id}), {len(runs)} runs")
            self._set_experiment_tags(exp, dest_id, exp.tags)
        else:
            dest_id = existing.experiment_id
            if existing.lifecycle_stage == DELETED and exp.lifecycle_stage != DELETED:
                self._problem(
                    f"experiment {exp.name!r}: deleted in the destination (id {dest_id}); "
                    f"restore or purge it there first - skipped {len(runs)} runs"
                )
                return
            self.stats.experiments_merged += 1
            state = " (deleted)" if existing.lifecycle_stage == DELETED else ""
            self.echo(
                f"experiment {exp.name!r}: exists{state} (id {dest_id}), merging into it, "
                f"{len(runs)} runs"
            )
            if not state:  # a deleted experiment takes no changes
                missing = {k: v for k, v in exp.tags.items() if k not in existing.tags}
                self._set_experiment_tags(exp, dest_id, missing)
        problems_before = len(self.stats.problems)
        for i, run in enumerate(runs, 1):
            try:
                self._import_run(run, dest_id, f"  [{i}/{len(runs)}]")
            except TrackingError as e:
                self._problem(f"run {run.run_id}: {e.message}")
        if exp.lifecycle_stage == DELETED and existing_stage != DELETED:
            self._delete_experiment(exp, dest_id, {r.run_id for r in runs}, problems_before)

    def _set_experiment_tags(
        self, exp: SourceExperiment, dest_id: str, tags: dict[str, str]
    ) -> None:
        for key, value in tags.items():
            try:
                self.store.set_experiment_tag(dest_id, key, value)
                self.stats.tags += 1
            except TrackingError as e:
                self._problem(f"experiment {exp.name!r}: tag {key!r} not imported: {e.message}")

    def _delete_experiment(
        self, exp: SourceExperiment, dest_id: str, source_run_ids: set[str], problems_before: int
    ) -> None:
        """Delete the experiment, as in the source, once its runs are complete and
        if it holds nothing but them (deleting cascades to every run in it)."""
        if len(self.stats.problems) > problems_before:
            # Deleting would freeze its runs; a later import completes them first.
            self.echo(f"experiment {exp.name!r}: left active until its runs import cleanly")
            return
        from ..tracking.entities import ALL

        token: str | None = None
        while True:
            dest_runs, token = self.store.search_runs(
                [dest_id], run_view_type=ALL, page_token=token
            )
            others = [r.info.run_id for r in dest_runs if r.info.run_id not in source_run_ids]
            if others:
                self.echo(
                    f"experiment {exp.name!r}: deleted in the source but kept here, "
                    f"it has runs of its own (e.g. {others[0]})"
                )
                return
            if not token:
                break
        self.store.delete_experiment(dest_id)
        self.echo(f"experiment {exp.name!r}: deleted, as in the source")

    # -- runs ---------------------------------------------------------------
    def _import_run(self, run: SourceRun, dest_exp_id: str, prefix: str) -> None:
        label = f"{prefix} run {run.run_id}" + (f" {run.run_name!r}" if run.run_name else "")
        try:
            dest = self.store.get_run(run.run_id)
        except TrackingError as e:
            if e.error_code != RESOURCE_DOES_NOT_EXIST:
                raise
            dest = None
        if dest is not None and dest.info.experiment_id != dest_exp_id:
            self._problem(
                f"{label.strip()}: already in experiment {dest.info.experiment_id} of the "
                f"destination, not {dest_exp_id} - skipped"
            )
            return
        if dest is not None and dest.info.lifecycle_stage == DELETED:
            self.stats.runs_skipped += 1
            self.echo(f"{label}: already there (deleted)")
            return

        problems_before = len(self.stats.problems)
        tags = self.source.tags(run)
        params = self.source.params(run)
        changes = _RunChanges()
        if dest is None:
            # Tags go in with the rest below, where one bad item cannot sink the run.
            name = run.run_name or tags.get("mlflow.runName") or None
            if run.run_name:  # the name MLflow shows wins over a stale tag
                tags["mlflow.runName"] = run.run_name
            dest = self.store.create_run(
                dest_exp_id,
                user_id=run.user_id,
                start_time=run.start_time,
                tags={"mlflow.runName": name} if name else None,
                run_name=name,
                run_id=run.run_id,
            )
            new = True
        else:
            new = False
        run_id = dest.info.run_id
        have_params = dict(dest.data.params)
        have_tags = set(dest.data.tags)
        if new:
            changes.tags += len(have_tags)

        for k, v in params.items():
            # (a longer value than the store takes was truncated by it, not changed)
            if k in have_params and not v.startswith(have_params[k]):
                self._problem(f"{label.strip()}: param {k!r} differs in the destination - kept")
        add_params = [(k, v) for k, v in params.items() if k not in have_params]
        add_tags = [(k, v) for k, v in tags.items() if k not in have_tags]
        changes.params += self._log_items(run_id, "params", add_params, label)
        changes.tags += self._log_items(run_id, "tags", add_tags, label)

        metrics = (
            () if not new and self._metrics_complete(run, run_id) else self.source.metrics(run)
        )
        for key, history in metrics:
            if not new:
                history = self._missing_points(run_id, key, history)
            for i in range(0, len(history), METRIC_CHUNK):
                try:
                    self.store.log_batch(run_id, metrics=history[i : i + METRIC_CHUNK])
                except TrackingError as e:
                    self._problem(f"{label.strip()}: metric {key!r}: {e.message}")
                    break
                changes.points += len(history[i : i + METRIC_CHUNK])

        self._copy_artifacts(run, dest.info.artifact_uri, changes, label)

        # Status last, so an interrupted import leaves the run RUNNING and the
        # next one finishes it; a run that ended in MLflow since is updated too.
        ended = not new and dest.info.status == RUNNING and run.status in TERMINAL_STATUSES
        if new or ended:
            self.store.update_run_info(run_id, status=run.status, end_time=run.end_time)
        # A deleted run takes no more data: delete it only once it is complete.
        clean = len(self.stats.problems) == problems_before
        deleted_now = run.lifecycle_stage == DELETED and clean
        if deleted_now:
            self.store.delete_run(run_id)

        s = self.stats
        s.params += changes.params
        s.tags += changes.tags
        s.metric_points += changes.points
        s.artifact_files += changes.files
        s.artifact_bytes += changes.bytes
        what = (
            f"{changes.params} params, {changes.tags} tags, {changes.points} metric points, "
            f"{changes.files} artifact files"
        )
        if new:
            s.runs_imported += 1
            self.echo(f"{label}: imported {what}" + (" (deleted)" if deleted_now else ""))
        elif changes.any or ended or deleted_now:
            s.runs_completed += 1
            also = "".join(
                [
                    f", now {run.status}" if ended else "",
                    ", deleted as in the source" if deleted_now else "",
                ]
            )
            self.echo(f"{label}: completed, added {what}{also}")
        else:
            s.runs_skipped += 1
            self.echo(f"{label}: already there")

    def _log_items(
        self, run_id: str, kind: Literal["params", "tags"], items: list[tuple[str, str]], label: str
    ) -> int:
        """Log params or tags 100 at a time; a refused batch is retried item by
        item so that only the bad items are left out (and reported)."""
        done = 0
        for i in range(0, len(items), 100):
            batch = items[i : i + 100]
            try:
                self._log_batch(run_id, kind, batch)
                done += len(batch)
                continue
            except TrackingError:
                pass
            for item in batch:
                try:
                    self._log_batch(run_id, kind, [item])
                    done += 1
                except TrackingError as e:
                    self._problem(
                        f"{label.strip()}: {kind[:-1]} {item[0]!r} not imported: {e.message}"
                    )
        return done

    def _log_batch(
        self, run_id: str, kind: Literal["params", "tags"], items: list[tuple[str, str]]
    ) -> None:
        if kind == "params":
            self.store.log_batch(run_id, params=items)
        else:
            self.store.log_batch(run_id, tags=items)

    def _metrics_complete(self, run: SourceRun, run_id: str) -> bool:
        """Whether every series of an existing run has as many points here as in
        the source: then re-importing need not read them (cheap on big runs)."""
        counts = self.source.metric_counts(run)
        if counts is None:
            return False
        for key, n in counts.items():
            buckets = self.store.get_metric_series(run_id, key, max_points=1)
            if sum(b.count for b in buckets) != n:
                return False
        return True

    def _missing_points(self, run_id: str, key: str, history: list[Metric]) -> list[Metric]:
        """The points of ``history`` not yet in the destination's series. The store keeps
        an identical point (step, timestamp, value) once, as MLflow's database stores do,
        so a repeat in the source (its file store keeps them) is never missing."""
        have, _ = self.store.get_metric_history(run_id, key)
        if not have:
            return history
        seen = {_point_key(m) for m in have}
        missing = []
        for m in history:
            k = _point_key(m)
            if k not in seen:
                seen.add(k)
                missing.append(m)
        return missing

    # -- artifacts ----------------------------------------------------------
    def _copy_artifacts(
        self, run: SourceRun, dest_uri: str, changes: _RunChanges, label: str
    ) -> None:
        src_dir = self._artifact_source(run, label)
        if src_dir is None:
            return
        files = _walk_files(src_dir)
        if not files:
            return
        repo = self.store.artifact_repo(dest_uri)
        for rel, path in files:
            if os.path.islink(path) and not _inside(os.path.realpath(path), src_dir):
                self._problem(f"{label.strip()}: artifact {rel} links outside the run - skipped")
                continue
            if repo.exists(rel):
                continue
            try:
                with open(path, "rb") as f:
                    repo.put(rel, f)
            except OSError as e:
                self._problem(f"{label.strip()}: artifact {rel}: {e.strerror or e}")
                continue
            changes.files += 1
            changes.bytes += os.path.getsize(path)

    def _artifact_source(self, run: SourceRun, label: str) -> str | None:
        uri = run.artifact_uri
        rel = mlflow_artifacts_path(uri)
        if rel is not None:
            if not self.artifacts_root:
                self._problem(
                    f"{label.strip()}: artifacts at {uri} are served by an MLflow server; "
                    "pass --artifacts-root (its --artifacts-destination directory) to import them"
                )
                return None
            target = os.path.normpath(os.path.join(self.artifacts_root, rel))
            if not _inside(target, self.artifacts_root):
                self._problem(f"{label.strip()}: artifact URI {uri} leaves --artifacts-root")
                return None
            candidates = [target]
        else:
            candidates = self.source.artifact_dir_candidates(run)
            if not candidates and uri:
                self._problem(
                    f"{label.strip()}: artifacts at {uri} are not on a local path - not imported"
                )
                return None
            if self.artifacts_root:
                moved = os.path.join(
                    self.artifacts_root, run.experiment_id, run.run_id, "artifacts"
                )
                candidates.append(moved)
        for path in candidates:
            if os.path.isdir(path):
                return path
        # MLflow creates the artifact directory on first use: none means none logged.
        return None

    def _source_warnings(self) -> None:
        for message in self.source.warnings:
            self._problem(message)
        self.source.warnings.clear()

    def _problem(self, message: str) -> None:
        self.stats.problems.append(message)
        self.echo(f"WARNING: {message}")


def _walk_files(root: str) -> list[tuple[str, str]]:
    """``(relative POSIX path, absolute path)`` of every file under ``root``."""
    result = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            result.append((os.path.relpath(path, root).replace(os.sep, "/"), path))
    return result


def _inside(path: str, root: str) -> bool:
    root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(path), root]) == root


def _point_key(m: Metric) -> tuple[int, int, float | str]:
    value: float | str = "nan" if math.isnan(m.value) else m.value
    return (m.step, m.timestamp, value)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


__all__ = ["ImportStats", "MlflowImporter", "SourceError", "open_source"]
