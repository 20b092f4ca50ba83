"""The ``python_function`` flavor: a loaded model with ``predict``.

:class:`PyFuncModel` is what :func:`jupyter_mlops.load_model` returns, whatever
the flavor underneath. :class:`PythonModel` is the base for custom models
(``load_context`` once, then ``predict(context, model_input, params)``), as in
MLflow. This module is also the ``loader_module`` that ``MLmodel`` names for
models saved from plain objects, so ``mlflow.pyfunc.load_model`` can load them
where jupyter-mlops is installed.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from ..tracking.errors import invalid
from .model_format import input_columns, read_mlmodel

PYTHON_MODEL_FILE = "python_model.pkl"


class PythonModelContext:
    """What ``load_context`` gets: the model's ``artifacts`` (name -> local path)."""

    def __init__(
        self, artifacts: dict[str, str], model_config: dict[str, Any] | None = None
    ) -> None:
        self.artifacts = artifacts
        self.model_config = model_config or {}


class PythonModel:
    """Base class of custom models: override ``predict`` (and ``load_context``)."""

    def load_context(self, context: PythonModelContext) -> None:
        """Called once after loading: open files named in ``context.artifacts``."""

    def predict(self, context: PythonModelContext, model_input: Any, params: Any = None) -> Any:
        raise NotImplementedError


class _PythonModelWrapper:
    def __init__(self, model: PythonModel, context: PythonModelContext) -> None:
        self.model = model
        self.context = context

    def predict(self, data: Any, params: Any = None) -> Any:
        return self.model.predict(self.context, data, params)


class _ObjectWrapper:
    """Any object with ``predict``."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def predict(self, data: Any, params: Any = None) -> Any:
        return self.obj.predict(data)


def _load_pyfunc(path: str) -> Any:
    """MLflow's loader hook: the model object of a directory saved by
    :func:`jupyter_mlops.registry.flavors.save_model` from a plain object."""
    model_dir = os.path.dirname(path) if os.path.isfile(path) else path
    mlmodel = read_mlmodel(model_dir)
    conf = mlmodel["flavors"].get("python_function", {})
    with open(os.path.join(model_dir, conf.get("python_model", PYTHON_MODEL_FILE)), "rb") as f:
        try:
            import cloudpickle

            obj = cloudpickle.load(f)
        except ImportError:
            obj = pickle.load(f)
    if isinstance(obj, PythonModel) or (hasattr(obj, "load_context") and _takes_context(obj)):
        artifacts = {
            k: os.path.join(model_dir, v) for k, v in (conf.get("artifacts") or {}).items()
        }
        ctx = PythonModelContext(artifacts, conf.get("model_config"))
        obj.load_context(ctx)
        return _PythonModelWrapper(obj, ctx)
    if not hasattr(obj, "predict"):
        raise invalid(f"The model in '{model_dir}' has no predict method.")
    return _ObjectWrapper(obj)


def _takes_context(obj: Any) -> bool:
    import inspect

    try:
        params = list(inspect.signature(obj.predict).parameters)
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 and params[0] == "context"


class PyFuncModel:
    """A loaded model: ``predict(data)``; ``metadata`` is the MLmodel dict."""

    def __init__(
        self, impl: Any, metadata: dict[str, Any], model_dir: str, raw_model: Any = None
    ) -> None:
        self._impl = impl
        self.metadata = metadata
        self.model_dir = model_dir
        self._raw = raw_model
        #: Input column names from the signature (None for tensors).
        self.input_columns = input_columns(metadata)
        feature_names = getattr(raw_model, "feature_names_in_", None)
        self._feature_names = [str(c) for c in feature_names] if feature_names is not None else None

    @property
    def model_id(self) -> str | None:
        return self.metadata.get("model_id")

    @property
    def run_id(self) -> str | None:
        return self.metadata.get("run_id")

    @property
    def columns(self) -> list[str] | None:
        """Column order the model expects, if known (signature, else the estimator)."""
        return self._feature_names or self.input_columns

    def unwrap_python_model(self) -> Any:
        return self._raw if self._raw is not None else getattr(self._impl, "model", self._impl)

    def predict(self, data: Any, params: Any = None) -> Any:
        return self._impl.predict(data, params) if params is not None else self._impl.predict(data)

    def predict_array(self, matrix: Any) -> Any:
        """Fast path for the scoring server: a 2-D numpy array already in
        :attr:`columns` order. Estimators fitted on a DataFrame are given the array
        directly (no DataFrame is built; scikit-learn's feature-name warning, which
        only says that, is silenced)."""
        if self._raw is not None and self._feature_names is not None:
            import warnings

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                return self._raw.predict(matrix)
        if self._raw is not None:
            return self._raw.predict(matrix)
        if self.input_columns:
            import pandas as pd

            return self.predict(pd.DataFrame(matrix, columns=self.input_columns))
        return self.predict(matrix)

    def __repr__(self) -> str:
        flavors = ", ".join(self.metadata.get("flavors", {}))
        return f"<PyFuncModel flavors=[{flavors}] run_id={self.run_id}>"
