"""MLflow's own code (autologging, ``evaluate``) logging into jupyter-mlops runs.

Where MLflow's implementation is the honest one (dozens of framework integrations,
the evaluation harness), ``mlops.autolog()`` and ``mlops.evaluate()`` run it, with
mlflow's fluent API pointed at :class:`MlopsMlflowStore`: a tracking store of MLflow's
kind (``mlflow.store.tracking.abstract_store.AbstractStore``) over this process's
jupyter-mlops client. So what MLflow logs goes through our writer (queued, non-blocking,
spooled while the store is unreachable) into the store jupyter-mlops uses, whatever
that is (SQLite, PostgreSQL, a Jupyter server); mlflow's active run mirrors ours.

``mlflow`` is optional: these functions say how to install it when it is absent. The
bridge registers the tracking-URI scheme ``jupyter-mlops:`` with mlflow and sets mlflow's
tracking URI to ``jupyter-mlops:<our tracking URI>`` for the process.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any
from urllib.parse import quote, unquote

SCHEME = "jupyter-mlops"
_lock = threading.Lock()
_registered = False


def require_mlflow(what: str) -> Any:
    """The ``mlflow`` module, or an ImportError that says how to get it."""
    try:
        import mlflow
    except ImportError:
        raise ImportError(
            f"jupyter_mlops.{what}() runs MLflow's own {what} code, and the 'mlflow' package "
            "is not installed: install it with `pip install mlflow` (or `pip install "
            "'jupyter-mlops[mlflow]'`)."
        ) from None
    return mlflow


def bridge_uri(tracking_uri: str) -> str:
    return f"{SCHEME}:{quote(tracking_uri, safe='')}"


def connect() -> Any:
    """Point mlflow's fluent API at the current jupyter-mlops store; put our active run on
    mlflow's run stack. Returns the ``mlflow`` module."""
    global _registered
    mlflow = require_mlflow("autolog")
    from . import fluent

    with _lock:
        if not _registered:
            from mlflow.tracking._tracking_service.utils import _tracking_store_registry

            _tracking_store_registry.register(SCHEME, _build_store)
            _registered = True
    ours = fluent.get_tracking_uri()
    token = os.environ.get("JUPYTER_MLOPS_TRACKING_TOKEN")
    if ours.startswith(("http://", "https://")) and token:
        # mlflow uploads artifacts itself (to the server's artifact proxy) with its token
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    uri = bridge_uri(ours)
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
    sync_active_run()
    return mlflow


def disconnect() -> None:
    """Undo :func:`connect`: mlflow's tracking URI back to its default, its run stack empty
    (our runs are not ended)."""
    global _registered
    if not _registered:
        return
    import mlflow
    from mlflow.tracking._tracking_service import utils

    while mlflow.active_run() is not None:
        _end_mlflow_run_quietly(mlflow)
    utils._tracking_uri = None
    _registered = False


def connected() -> bool:
    """True once :func:`connect` ran in this process (fluent start/end mirror then)."""
    return _registered


def sync_active_run() -> None:
    """mlflow's active run follows ours: started (resumed) when ours is, ended with it."""
    import mlflow

    from . import fluent

    ours = fluent.active_run()
    theirs = mlflow.active_run()
    want = ours.info.run_id if ours is not None else None
    have = theirs.info.run_id if theirs is not None else None
    if want == have:
        return
    while mlflow.active_run() is not None:
        _end_mlflow_run_quietly(mlflow)
    if want is not None:
        mlflow.start_run(run_id=want)


def _end_mlflow_run_quietly(mlflow: Any) -> None:
    """Pop mlflow's run stack without mlflow ending the run (ours ends it)."""
    from mlflow.tracking import fluent as mf

    stack = mf._active_run_stack.get()
    if stack:
        stack.pop()
    mf._active_run_stack.set(stack)


_store_cls: Any = None


def _build_store(store_uri: str, artifact_uri: str | None = None) -> Any:
    global _store_cls
    if _store_cls is None:
        _store_cls = _make_store_class()
    return _store_cls(unquote(store_uri[len(SCHEME) + 1 :]))


def _make_store_class() -> type:
    from mlflow.entities import (
        Experiment,
        LoggedModel,
        Metric,
        Run,
        RunInfo,
    )
    from mlflow.protos import service_pb2
    from mlflow.store.tracking.abstract_store import AbstractStore
    from mlflow.utils.proto_json_utils import parse_dict

    from ..registry.client import RegistryClient
    from ..tracking.artifacts import _join_root
    from .mlops_client import MlopsClient, dataset_input_dict

    def to_proto(message: Any, d: dict[str, Any]) -> Any:
        parse_dict(d, message)
        return message

    class MlopsMlflowStore(AbstractStore):  # type: ignore[misc, valid-type]
        """MLflow's tracking store interface over the jupyter-mlops client of a URI."""

        def __init__(self, tracking_uri: str) -> None:
            super().__init__()
            self.tracking_uri = tracking_uri
            self.client = MlopsClient(tracking_uri)
            self.registry = RegistryClient(tracking_uri)

        # -- artifact locations --------------------------------------------------------
        def _concrete(self, uri: str) -> str:
            """``mlflow-artifacts:/x`` as a location mlflow can write without a server of
            its own: the artifact root's directory (``file://``), its fsspec URL, or the
            Jupyter server's artifact proxy (``http(s)://.../mlflow-artifacts/artifacts/x``)."""
            if not uri.startswith("mlflow-artifacts:"):
                return uri
            rest = uri[len("mlflow-artifacts:") :].lstrip("/")
            location = _join_root(self.client.store.artifact_root, rest)
            if "://" not in location:
                location = "file://" + os.path.abspath(location)
            return location

        def _run(self, run: Any) -> Any:
            d = run.to_dict()
            d["info"]["artifact_uri"] = self._concrete(d["info"].get("artifact_uri", ""))
            return Run.from_proto(to_proto(service_pb2.Run(), d))

        def _experiment(self, exp: Any) -> Any:
            d = exp.to_dict()
            d["artifact_location"] = self._concrete(d.get("artifact_location", ""))
            return Experiment.from_proto(to_proto(service_pb2.Experiment(), d))

        def _logged_model(self, model: Any) -> Any:
            d = model.to_dict()
            info = d.get("info", d)
            info["artifact_uri"] = self._concrete(info.get("artifact_uri", ""))
            return LoggedModel.from_proto(to_proto(service_pb2.LoggedModel(), d))

        # -- experiments ------------------------------------------------------------------
        def get_experiment(self, experiment_id: str) -> Any:
            return self._experiment(self.client.get_experiment(str(experiment_id)))

        def get_experiment_by_name(self, experiment_name: str) -> Any:
            exp = self.client.get_experiment_by_name(experiment_name)
            return self._experiment(exp) if exp is not None else None

        def create_experiment(
            self, name: str, artifact_location: Any = None, tags: Any = None, **kwargs: Any
        ) -> str:
            tag_dict = {t.key: t.value for t in tags or ()}
            return self.client.create_experiment(name, artifact_location, tag_dict or None)

        def search_experiments(
            self,
            view_type: Any = 1,
            max_results: int = 1000,
            filter_string: Any = None,
            order_by: Any = None,
            page_token: Any = None,
        ) -> Any:
            from mlflow.store.entities.paged_list import PagedList

            page = self.client.search_experiments(
                view_type, max_results, filter_string, order_by, page_token
            )
            return PagedList([self._experiment(e) for e in page], page.token)

        def delete_experiment(self, experiment_id: str) -> None:
            self.client.delete_experiment(experiment_id)

        def restore_experiment(self, experiment_id: str) -> None:
            self.client.restore_experiment(experiment_id)

        def rename_experiment(self, experiment_id: str, new_name: str) -> None:
            self.client.rename_experiment(experiment_id, new_name)

        def set_experiment_tag(self, experiment_id: str, tag: Any) -> None:
            self.client.set_experiment_tag(experiment_id, tag.key, tag.value)

        def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
            self.client.store.delete_experiment_tag(experiment_id, key)

        # -- runs -------------------------------------------------------------------------
        def create_run(
            self, experiment_id: str, user_id: str, start_time: int, tags: Any, run_name: Any
        ) -> Any:
            tag_dict = {t.key: t.value for t in tags or ()}
            return self._run(
                self.client.create_run(
                    str(experiment_id),
                    start_time=start_time,
                    tags=tag_dict,
                    run_name=run_name,
                )
            )

        def get_run(self, run_id: str) -> Any:
            self.client._sync()  # what was queued for it is in
            return self._run(self.client.get_run(run_id))

        def update_run_info(
            self, run_id: str, run_status: Any, end_time: Any, run_name: Any
        ) -> Any:
            from mlflow.entities import RunStatus

            status = RunStatus.to_string(run_status) if isinstance(run_status, int) else run_status
            self.client._sync()
            info = self.client.store.update_run_info(
                run_id, status=status, end_time=end_time, run_name=run_name
            )
            d = info.to_dict()
            d["artifact_uri"] = self._concrete(d.get("artifact_uri", ""))
            return RunInfo.from_proto(to_proto(service_pb2.RunInfo(), d))

        def delete_run(self, run_id: str) -> None:
            self.client.delete_run(run_id)

        def restore_run(self, run_id: str) -> None:
            self.client.restore_run(run_id)

        def log_batch(self, run_id: str, metrics: Any, params: Any, tags: Any) -> None:
            # queued: the writer sends it (MLflow's own client would block per call)
            self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)

        def log_inputs(self, run_id: str, datasets: Any = None, models: Any = None) -> None:
            self.client.log_inputs(
                run_id,
                [dataset_input_dict(d) for d in datasets or ()],
                [m.model_id for m in models or ()],
            )

        def log_outputs(self, run_id: str, models: Any) -> None:
            self.client._sync()
            self.registry.log_outputs(run_id, list(models))

        def set_tag(self, run_id: str, tag: Any) -> None:
            self.client.set_tag(run_id, tag.key, tag.value)

        def delete_tag(self, run_id: str, key: str) -> None:
            self.client.delete_tag(run_id, key)

        def get_metric_history(
            self, run_id: str, metric_key: str, max_results: Any = None, page_token: Any = None
        ) -> Any:
            from mlflow.store.entities.paged_list import PagedList

            self.client._sync()
            points = self.client.get_metric_history(run_id, metric_key)
            return PagedList([Metric(m.key, m.value, m.timestamp, m.step) for m in points], None)

        def _search_runs(
            self,
            experiment_ids: Any,
            filter_string: Any,
            run_view_type: Any,
            max_results: int,
            order_by: Any,
            page_token: Any,
        ) -> Any:
            self.client._sync()
            page = self.client.search_runs(
                list(experiment_ids),
                filter_string or "",
                run_view_type,
                max_results,
                order_by,
                page_token,
            )
            return [self._run(r) for r in page], page.token

        def record_logged_model(self, run_id: str, mlflow_model: Any) -> None:
            key = "mlflow.log-model.history"
            run = self.client.get_run(run_id)
            history = json.loads(run.data.tags.get(key) or "[]")
            history.append(mlflow_model.get_tags_dict())
            self.client.set_tag(run_id, key, json.dumps(history))

        # -- logged models ------------------------------------------------------------------
        def create_logged_model(
            self,
            experiment_id: str,
            name: Any = None,
            source_run_id: Any = None,
            tags: Any = None,
            params: Any = None,
            model_type: Any = None,
        ) -> Any:
            self.client._sync()
            from .fluent import note_logged_model

            model = self.registry.create_logged_model(
                experiment_id,
                name=name,
                source_run_id=source_run_id,
                tags={t.key: t.value for t in tags or ()},
                params={p.key: p.value for p in params or ()},
                model_type=model_type,
            )
            note_logged_model(model.model_id)
            return self._logged_model(model)

        def finalize_logged_model(self, model_id: str, status: Any) -> Any:
            return self._logged_model(self.registry.finalize_logged_model(model_id, status))

        def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> Any:
            return self._logged_model(self.registry.get_logged_model(model_id))

        def set_logged_model_tags(self, model_id: str, tags: Any) -> None:
            self.registry.set_logged_model_tags(model_id, {t.key: t.value for t in tags})

        def delete_logged_model_tag(self, model_id: str, key: str) -> None:
            self.registry.delete_logged_model_tag(model_id, key)

        def log_logged_model_params(self, model_id: str, params: Any) -> None:
            self.registry.log_model_params(model_id, {p.key: p.value for p in params})

        def search_logged_models(
            self,
            experiment_ids: Any,
            filter_string: Any = None,
            datasets: Any = None,
            max_results: Any = None,
            order_by: Any = None,
            page_token: Any = None,
        ) -> Any:
            from mlflow.store.entities.paged_list import PagedList

            self.client._sync()
            page = self.registry.search_logged_models(
                list(experiment_ids),
                filter_string,
                max_results or 100,
                order_by,
                page_token,
                datasets=list(datasets or ()),
            )
            return PagedList([self._logged_model(m) for m in page], page.token)

    return MlopsMlflowStore
