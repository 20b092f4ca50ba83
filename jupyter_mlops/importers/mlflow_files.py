"""Reader for MLflow's file store (an ``mlruns`` directory).

Layout: ``<root>/<exp_id>/meta.yaml`` and ``<exp_id>/tags/<key>``; runs in
``<exp_id>/<run_id>/`` with ``meta.yaml``, ``params/<key>``, ``tags/<key>``,
``metrics/<key>`` (lines ``<timestamp> <value> [<step>]``) and ``artifacts/``.
Keys may contain ``/`` and are then nested directories. Deleted experiments
live in ``<root>/.trash/<exp_id>/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..tracking.entities import Metric
from .metayaml import MetaYamlError, parse_meta_yaml
from .source import RUN_STATUS_BY_NUMBER, MlflowSource, SourceError, SourceExperiment, SourceRun

TRASH = ".trash"


class FileStoreSource(MlflowSource):
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.description = f"MLflow file store {self.root}"
        self.warnings = []
        if not os.path.isdir(self.root):
            raise SourceError(f"{root}: no such directory")
        self._exp_dirs: dict[str, str] = {}
        for parent in (self.root, os.path.join(self.root, TRASH)):
            for name in _listdir(parent):
                path = os.path.join(parent, name)
                if name != TRASH and os.path.isfile(os.path.join(path, "meta.yaml")):
                    self._exp_dirs.setdefault(name, path)
        if not self._exp_dirs:
            raise SourceError(
                f"{root}: not an MLflow file store (no <experiment id>/meta.yaml inside)"
            )

    def experiments(self) -> list[SourceExperiment]:
        result = []
        for exp_id, path in self._exp_dirs.items():
            try:
                meta = _read_meta(os.path.join(path, "meta.yaml"))
            except SourceError as e:  # MLflow too skips what it cannot read
                self.warnings.append(f"experiment skipped: {e}")
                continue
            result.append(
                SourceExperiment(
                    experiment_id=str(meta.get("experiment_id", exp_id)),
                    name=str(meta.get("name") or ""),
                    lifecycle_stage=str(meta.get("lifecycle_stage") or "active"),
                    artifact_location=str(meta.get("artifact_location") or ""),
                    creation_time=_int(meta.get("creation_time")),
                    tags=_read_key_files(os.path.join(path, "tags")),
                )
            )
        return sorted(result, key=lambda e: _id_order(e.experiment_id))

    def runs(self, experiment_id: str) -> list[SourceRun]:
        exp_dir = self._exp_dirs.get(experiment_id)
        if exp_dir is None:
            return []
        result = []
        for name in _listdir(exp_dir):
            meta_path = os.path.join(exp_dir, name, "meta.yaml")
            if name == "tags" or not os.path.isfile(meta_path):
                continue
            try:
                meta = _read_meta(meta_path)
            except SourceError as e:
                self.warnings.append(f"run skipped: {e}")
                continue
            status = meta.get("status")
            if isinstance(status, int):
                status = RUN_STATUS_BY_NUMBER.get(status, "FINISHED")
            result.append(
                SourceRun(
                    run_id=str(meta.get("run_id") or meta.get("run_uuid") or name),
                    experiment_id=experiment_id,
                    run_name=str(meta.get("run_name") or ""),
                    user_id=str(meta.get("user_id") or ""),
                    status=str(status or "FINISHED"),
                    start_time=_int(meta.get("start_time")),
                    end_time=_int(meta.get("end_time")),
                    lifecycle_stage=str(meta.get("lifecycle_stage") or "active"),
                    artifact_uri=str(meta.get("artifact_uri") or ""),
                )
            )
        return sorted(result, key=lambda r: (r.start_time or 0, r.run_id))

    def _run_dir(self, run: SourceRun) -> str:
        return os.path.join(self._exp_dirs[run.experiment_id], run.run_id)

    def params(self, run: SourceRun) -> dict[str, str]:
        return _read_key_files(os.path.join(self._run_dir(run), "params"))

    def tags(self, run: SourceRun) -> dict[str, str]:
        return _read_key_files(os.path.join(self._run_dir(run), "tags"))

    def metrics(self, run: SourceRun) -> Iterator[tuple[str, list[Metric]]]:
        base = os.path.join(self._run_dir(run), "metrics")
        for key, path in _key_files(base):
            history = []
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    parts = line.split()
                    if not parts:
                        continue
                    try:
                        ts, value = int(parts[0]), float(parts[1])
                        step = int(parts[2]) if len(parts) > 2 else 0
                    except (ValueError, IndexError):
                        raise SourceError(
                            f"{path}:{lineno}: not '<timestamp> <value> [<step>]'"
                        ) from None
                    history.append(Metric(key, value, ts, step))
            yield key, history

    def metric_counts(self, run: SourceRun) -> dict[str, int] | None:
        counts = {}
        for key, path in _key_files(os.path.join(self._run_dir(run), "metrics")):
            with open(path, "rb") as f:
                counts[key] = sum(1 for line in f if line.strip())
        return counts

    def artifact_dir_candidates(self, run: SourceRun) -> list[str]:
        # The recorded URI first; then where the layout puts it, for an
        # mlruns directory copied from elsewhere.
        found = super().artifact_dir_candidates(run)
        here = os.path.join(self._run_dir(run), "artifacts")
        return found + [here] if here not in found else found


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise SourceError(f"{path}: {e.strerror}") from None


def _read_meta(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return parse_meta_yaml(f.read())
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: cannot read ({e})") from None
    except MetaYamlError as e:
        raise SourceError(f"{path}: {e}") from None


def _key_files(base: str) -> Iterator[tuple[str, str]]:
    """``(key, path)`` of each file under ``base``; nested dirs make ``a/b`` keys."""
    if not os.path.isdir(base):
        return
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            yield os.path.relpath(path, base).replace(os.sep, "/"), path


def _read_key_files(base: str) -> dict[str, str]:
    result = {}
    for key, path in _key_files(base):
        try:
            with open(path, encoding="utf-8") as f:
                result[key] = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise SourceError(f"{path}: cannot read ({e})") from None
    return result


def _int(value: object) -> int | None:
    try:
        return int(value) if value is not None else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _id_order(exp_id: str) -> tuple[int, str]:
    return (int(exp_id), "") if exp_id.isdigit() else (1 << 62, exp_id)
