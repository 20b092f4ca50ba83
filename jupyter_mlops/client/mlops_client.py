"""``MlopsClient``: MlflowClient's methods for explicit run ids.

Writes (metrics, params, tags) go through the process's buffered
:class:`~.writer.Writer` for the tracking URI; reads flush it first so they
see everything logged before them.
"""

from __future__ import annotations

import getpass
import io
import json
import os
import posixpath
import random
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from ..tracking.clock import now_ms
from ..tracking.entities import (
    ACTIVE_ONLY,
    ALL,
    DELETED_ONLY,
    RUNNING,
    TAG_RUN_NAME,
    TERMINAL_STATUSES,
    Experiment,
    FileInfo,
    Metric,
    Run,
    RunData,
    RunInfo,
)
from ..tracking.errors import invalid
from .uris import get_tracking_uri
from .writer import SPOOLED, Writer, get_writer, heartbeat_timeout_ms

_VIEW_TYPES = {1: ACTIVE_ONLY, 2: DELETED_ONLY, 3: ALL}
_PAGE = 10_000


class PagedList(list):  # type: ignore[type-arg]
    """A page of results; ``token`` fetches the next one (None at the end)."""

    def __init__(self, items: Iterable[Any], token: str | None) -> None:
        super().__init__(items)
        self.token = token


def to_view_type(value: int | str | None) -> str:
    """MLflow's ViewType as an int (1, 2, 3) or a name."""
    if value is None:
        return ACTIVE_ONLY
    if isinstance(value, int):
        if value not in _VIEW_TYPES:
            raise invalid(
                f"Invalid view type {value!r}: use 1 (ACTIVE_ONLY), 2 (DELETED_ONLY) or 3 (ALL)"
            )
        return _VIEW_TYPES[value]
    name = str(value).upper()
    if name not in _VIEW_TYPES.values():
        raise invalid(f"Invalid view type {value!r}: use ACTIVE_ONLY, DELETED_ONLY or ALL")
    return name


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - getuser raises KeyError/OSError/ImportError by platform
        return "unknown"


_ADJ = (
    "amber",
    "brave",
    "calm",
    "clever",
    "eager",
    "gentle",
    "glad",
    "keen",
    "lucky",
    "merry",
    "polite",
    "quiet",
    "rapid",
    "shy",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "witty",
    "zesty",
)
_NOUN = (
    "ant",
    "bass",
    "crab",
    "deer",
    "eel",
    "finch",
    "goat",
    "hawk",
    "ibis",
    "jay",
    "koala",
    "lark",
    "mole",
    "newt",
    "owl",
    "panda",
    "quail",
    "robin",
    "seal",
    "toad",
)


def random_run_name() -> str:
    return f"{random.choice(_ADJ)}-{random.choice(_NOUN)}-{random.randint(100, 999)}"


class MlopsClient:
    """Like ``mlflow.MlflowClient``; ``tracking_uri`` defaults to the resolved one."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri or get_tracking_uri()
        self._writer: Writer = get_writer(self.tracking_uri)
        self._artifact_uris: dict[str, str] = {}

    @property
    def store(self) -> Any:
        return self._writer.store

    def flush(self) -> None:
        """Wait until everything logged is durable; raise the store's refusals."""
        self._writer.flush()

    def _sync(self) -> None:
        self._writer.flush(raise_errors=False)

    # -- experiments --------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
    ) -> str:
        return self.store.create_experiment(
            name, artifact_location, {str(k): str(v) for k, v in (tags or {}).items()}
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: int | str = 1,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        exps, token = self.store.search_experiments(
            to_view_type(view_type), max_results, filter_string, order_by, page_token
        )
        return PagedList(exps, token)

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.restore_experiment(str(experiment_id))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.store.rename_experiment(str(experiment_id), new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.store.set_experiment_tag(str(experiment_id), key, str(value))

    # -- runs ---------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
        user_id: str | None = None,
    ) -> Run:
        """Create a RUNNING run. Its id is made here, so a run created while the
        store is unreachable keeps it when the spool is replayed."""
        str_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        if run_name and str_tags.get(TAG_RUN_NAME, run_name) != run_name:
            raise invalid(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{run_name}', "
                f"mlflow.runName='{str_tags[TAG_RUN_NAME]}')."
            )
        run_name = run_name or str_tags.get(TAG_RUN_NAME) or random_run_name()
        str_tags[TAG_RUN_NAME] = run_name
        record: dict[str, Any] = {
            "op": "create_run",
            "experiment_id": str(experiment_id),
            "user_id": user_id or current_user(),
            "start_time": start_time if start_time is not None else now_ms(),
            "tags": str_tags,
            "run_name": run_name,
            "run_id": run_id or uuid.uuid4().hex,
        }
        result = self._writer.call(record)
        if result is SPOOLED:
            # The store is unreachable: the run exists in the spool only.
            result = Run(
                RunInfo(
                    run_id=record["run_id"],
                    experiment_id=record["experiment_id"],
                    run_name=run_name,
                    user_id=record["user_id"],
                    status=RUNNING,
                    start_time=record["start_time"],
                    end_time=None,
                    artifact_uri=f"mlflow-artifacts:/{record['experiment_id']}/{record['run_id']}/artifacts",
                ),
                RunData(tags=dict(str_tags)),
            )
        self._artifact_uris[result.info.run_id] = result.info.artifact_uri
        return result

    def kill_stale_runs(self) -> list[str]:
        """Mark KILLED the runs whose writers stopped sending heartbeats."""
        return self.store.kill_stale_runs(heartbeat_timeout_ms())

    def get_run(self, run_id: str) -> Run:
        self._sync()
        run = self.store.get_run(self._writer.server_run_id(run_id))
        self._artifact_uris[run_id] = run.info.artifact_uri
        return run

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        self._update(run_id, status=status, run_name=name)

    def set_terminated(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> None:
        """End a run (FINISHED unless told); waits for everything logged to it."""
        status = status or "FINISHED"
        if status not in TERMINAL_STATUSES:
            raise invalid(
                f"Invalid terminal status {status!r}: use one of {', '.join(TERMINAL_STATUSES)}"
            )
        self._update(run_id, status=status, end_time=end_time if end_time is not None else now_ms())

    def _update(self, run_id: str, **fields: Any) -> None:
        record = {
            "op": "update_run",
            "run_id": run_id,
            **{k: v for k, v in fields.items() if v is not None},
        }
        self._writer.call(record)

    def resume_run(self, run_id: str) -> Run:
        """Mark an existing run RUNNING again and heartbeat it."""
        run = self.get_run(run_id)
        if run.info.status != RUNNING:
            self._update(run_id, status=RUNNING)
            run.info.status = RUNNING
        self._writer.run_started(run.info.run_id)
        return run

    def delete_run(self, run_id: str) -> None:
        self._sync()
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.restore_run(run_id)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
    ) -> None:
        self._writer.log_metric(run_id, key, value, timestamp, step)
        if synchronous:
            self._writer.flush()

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        self._writer.log_param(run_id, key, value)
        if synchronous:
            self._writer.flush()
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        self._writer.set_tag(run_id, key, value)
        if synchronous:
            self._writer.flush()

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Any] = (),
        params: Sequence[Any] = (),
        tags: Sequence[Any] = (),
        synchronous: bool | None = None,
    ) -> None:
        """``metrics`` are Metric-like (key, value, timestamp, step); params and
        tags have ``key``/``value`` or are ``(key, value)`` pairs."""
        w = self._writer
        for p in params:
            k, v = _pair(p)
            w.log_param(run_id, k, v)
        for t in tags:
            k, v = _pair(t)
            w.set_tag(run_id, k, v)
        for m in metrics:
            w.log_metric(
                run_id, m.key, m.value, getattr(m, "timestamp", None), getattr(m, "step", None)
            )
        if synchronous:
            w.flush()

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[Any] | None = None,
        models: Sequence[Any] | None = None,
        synchronous: bool | None = None,
    ) -> None:
        """Record datasets a run used, as ``MlflowClient.log_inputs``: ``datasets`` are
        ``DatasetInput``s (ours or ``mlflow.entities``'), ``models`` logged-model ids or
        ``LoggedModelInput``s. Checked now, sent by the writer (non-blocking)."""
        from ..tracking.validation import parse_dataset_inputs

        raw = [dataset_input_dict(d) for d in datasets or ()]
        checked = [d.to_dict() for d in parse_dataset_inputs(raw)]
        ids = [m if isinstance(m, str) else str(m.model_id) for m in models or ()]
        self._writer.log_inputs(run_id, checked, ids)
        if synchronous:
            self._writer.flush()

    def delete_tag(self, run_id: str, key: str) -> None:
        self._writer.call({"op": "delete_tag", "run_id": run_id, "key": key})

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self._sync()
        out: list[Metric] = []
        token = None
        run_id = self._writer.server_run_id(run_id)
        while True:
            page, token = self.store.get_metric_history(
                run_id, key, max_results=25_000, page_token=token
            )
            out.extend(page)
            if not token:
                return out

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        run_view_type: int | str = 1,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        self._sync()
        if isinstance(experiment_ids, (str, int)):
            experiment_ids = [str(experiment_ids)]
        runs, token = self.store.search_runs(
            [str(e) for e in experiment_ids],
            filter_string or None,
            to_view_type(run_view_type),
            max_results,
            order_by,
            page_token,
        )
        return PagedList(runs, token)

    def search_all_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        run_view_type: int | str = 1,
        max_results: int = 100_000,
        order_by: list[str] | None = None,
    ) -> list[Run]:
        """Follow page tokens up to ``max_results`` runs."""
        out: list[Run] = []
        token = None
        while len(out) < max_results:
            page = self.search_runs(
                experiment_ids,
                filter_string,
                run_view_type,
                min(_PAGE, max_results - len(out)),
                order_by,
                token,
            )
            out.extend(page)
            token = page.token
            if not token:
                break
        return out

    # -- artifacts ----------------------------------------------------------
    def _repo(self, run_id: str) -> Any:
        uri = self._artifact_uris.get(run_id)
        if uri is None:
            uri = self.get_run(run_id).info.artifact_uri
        return self.store.artifact_repo(uri)

    def get_artifact_uri(self, run_id: str, artifact_path: str | None = None) -> str:
        uri = self._artifact_uris.get(run_id) or self.get_run(run_id).info.artifact_uri
        return posixpath.join(uri, artifact_path) if artifact_path else uri

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        if os.path.isdir(local_path):
            name = os.path.basename(os.path.normpath(local_path))
            self.log_artifacts(run_id, local_path, _join(artifact_path, name))
            return
        repo = self._repo(run_id)
        with open(local_path, "rb") as f:
            repo.put(_join(artifact_path, os.path.basename(local_path)), f)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        _upload_dir(self._repo(run_id), local_dir, artifact_path)

    def log_artifacts_to(self, artifact_uri: str, local_dir: str) -> None:
        """Upload a directory's files under an artifact URI of this store (an
        MLflow 3 logged model's ``<experiment>/models/<model_id>/artifacts``)."""
        _upload_dir(self.store.artifact_repo(artifact_uri), local_dir, None)

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        self._repo(run_id).put(artifact_file, data)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.log_bytes(run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, dictionary: dict[str, Any], artifact_file: str) -> None:
        """JSON for ``.json`` files, YAML for ``.yaml``/``.yml``; JSON otherwise."""
        ext = os.path.splitext(artifact_file)[1].lower()
        if ext in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(dictionary, default_flow_style=False, sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2, default=str)
        self.log_text(run_id, text, artifact_file)

    def log_figure(
        self,
        run_id: str,
        figure: Any,
        artifact_file: str,
        *,
        save_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """A matplotlib figure (any format savefig knows) or a plotly figure
        (``.html``, or an image format through kaleido)."""
        kwargs = dict(save_kwargs or {})
        ext = os.path.splitext(artifact_file)[1].lower().lstrip(".") or "png"
        module = type(figure).__module__
        if module.startswith("matplotlib"):
            buf = io.BytesIO()
            figure.savefig(buf, format=ext, **kwargs)
            data = buf.getvalue()
        elif module.startswith("plotly"):
            if ext == "html":
                data = figure.to_html(**kwargs).encode("utf-8")
            else:
                data = figure.to_image(format=ext, **kwargs)
        else:
            raise invalid(
                f"Unsupported figure type {type(figure).__name__}: use matplotlib or plotly"
            )
        self.log_bytes(run_id, data, artifact_file)

    def log_image(
        self,
        run_id: str,
        image: Any,
        artifact_file: str | None = None,
        key: str | None = None,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """A numpy array (HxW, HxWx3, HxWx4; floats in [0, 1]) or a PIL image,
        saved as PNG at ``artifact_file`` or, with ``key``, under
        ``images/<key>/step_<step>_<timestamp>.png``."""
        if (artifact_file is None) == (key is None):
            raise invalid("log_image needs exactly one of artifact_file and key")
        if key is not None:
            artifact_file = f"images/{key}/step_{step or 0}_{timestamp or now_ms()}.png"
        assert artifact_file is not None
        from PIL import Image

        if not isinstance(image, Image.Image):
            import numpy as np

            arr = np.asarray(image)
            if arr.dtype.kind == "f":
                arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype("uint8")
            elif arr.dtype != np.uint8:
                arr = np.clip(arr, 0, 255).astype("uint8")
            if arr.ndim == 3 and arr.shape[2] == 1:
                arr = arr[:, :, 0]
            image = Image.fromarray(arr)
        ext = os.path.splitext(artifact_file)[1].lower().lstrip(".") or "png"
        buf = io.BytesIO()
        image.save(buf, format={"jpg": "JPEG"}.get(ext, ext.upper()))
        self.log_bytes(run_id, buf.getvalue(), artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self._repo(run_id).list(path or "")

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Copy a file or a directory of the run's artifacts to ``dst_path``
        (a new temporary directory by default); returns the local path."""
        repo = self._repo(run_id)
        dst = dst_path or tempfile.mkdtemp(prefix="mlops-artifacts-")
        path = (path or "").strip("/")

        def fetch(p: str) -> str:
            local = os.path.join(dst, *p.split("/")) if p else dst
            if p and not repo.is_dir(p):
                os.makedirs(os.path.dirname(local), exist_ok=True)
                with repo.open(p) as src, open(local, "wb") as out:
                    out.write(src.read())
                return local
            os.makedirs(local, exist_ok=True)
            for f in repo.list(p):
                fetch(f.path)
            return local

        return fetch(path)


_DATASET_FIELDS = ("name", "digest", "source_type", "source", "schema", "profile")


def dataset_input_dict(item: Any) -> dict[str, Any]:
    """MLflow's JSON of a ``DatasetInput`` (ours, mlflow's entity, or such a dict)."""
    if isinstance(item, dict):
        return item
    to_dict = getattr(item, "to_dict", None)
    if to_dict is not None and not hasattr(item, "to_proto"):
        return to_dict()  # type: ignore[no-any-return]
    ds = item.dataset
    return {
        "dataset": {k: getattr(ds, k) for k in _DATASET_FIELDS if getattr(ds, k, None) is not None},
        "tags": [{"key": t.key, "value": t.value} for t in (item.tags or ())],
    }


def _pair(item: Any) -> tuple[str, Any]:
    if isinstance(item, (tuple, list)):
        return item[0], item[1]
    return item.key, item.value


def _upload_dir(repo: Any, local_dir: str, artifact_path: str | None) -> None:
    """Every file below ``local_dir`` into ``repo`` under ``artifact_path``."""
    for root, _dirs, files in os.walk(local_dir):
        rel = os.path.relpath(root, local_dir)
        sub = _join(artifact_path, "" if rel == "." else rel.replace(os.sep, "/"))
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                repo.put(_join(sub, name), f)


def _join(*parts: str | None) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))
