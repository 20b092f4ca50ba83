"""Saving and loading models in MLflow's format: the ``sklearn`` and
``python_function`` flavors.

scikit-learn models are written as MLflow writes them (``loader_module:
mlflow.sklearn``), so ``mlflow.pyfunc.load_model`` loads them natively;
``serialization_format`` is ``cloudpickle`` (the default when cloudpickle is
installed), ``pickle`` or ``skops`` (needs the ``skops`` package). Any other
object with ``predict``, or a :class:`~.pyfunc.PythonModel`, is cloudpickled
under ``python_function`` with this package as its loader.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from ..tracking.errors import invalid
from . import model_format as mf
from .pyfunc import PYTHON_MODEL_FILE, PyFuncModel, PythonModel, _load_pyfunc

SERIALIZATION_FORMATS = ("pickle", "cloudpickle", "skops")
_MODEL_FILES = {"pickle": "model.pkl", "cloudpickle": "model.pkl", "skops": "model.skops"}


def _is_sklearn(model: Any) -> bool:
    return any(c.__module__.startswith("sklearn.") for c in type(model).__mro__)


def _default_format() -> str:
    try:
        import cloudpickle  # noqa: F401

        return "cloudpickle"
    except ImportError:
        return "pickle"


def save_model(
    model: Any,
    path: str,
    *,
    signature: Any = None,
    input_example: Any = None,
    pip_requirements: list[str] | None = None,
    serialization_format: str | None = None,
    artifacts: dict[str, str] | None = None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    model_id: str | None = None,
) -> dict[str, Any]:
    """Write ``model`` as an MLflow model directory at ``path``; returns the MLmodel dict.

    Without ``signature``, one is inferred from ``input_example`` and the
    model's prediction on it.
    """
    if not hasattr(model, "predict"):
        raise invalid(f"Cannot log a {type(model).__name__}: it has no predict method.")
    os.makedirs(path, exist_ok=True)
    py = mf.python_version()
    if _is_sklearn(model):
        fmt = serialization_format or _default_format()
        if fmt not in SERIALIZATION_FORMATS:
            raise invalid(
                f"Unrecognized serialization format: {fmt}. Use one of "
                f"{', '.join(SERIALIZATION_FORMATS)}."
            )
        fname = _MODEL_FILES[fmt]
        _dump(model, os.path.join(path, fname), fmt)
        base = ["scikit-learn", "numpy", "scipy"] + (
            ["cloudpickle"] if fmt == "cloudpickle" else ["skops"] if fmt == "skops" else []
        )
        flavors: dict[str, Any] = {
            "python_function": {
                "loader_module": "mlflow.sklearn",
                "model_path": fname,
                "predict_fn": "predict",
                "python_version": py,
            },
            "sklearn": {
                "code": None,
                "pickled_model": fname,
                "serialization_format": fmt,
                "sklearn_version": mf.package_version("scikit-learn"),
                **({"skops_trusted_types": None} if fmt == "skops" else {}),
            },
        }
    else:
        _dump(model, os.path.join(path, PYTHON_MODEL_FILE), "cloudpickle")
        base = ["cloudpickle", "jupyter-mlops"]
        conf: dict[str, Any] = {
            "loader_module": "jupyter_mlops.registry.pyfunc",
            "python_model": PYTHON_MODEL_FILE,
            "python_version": py,
        }
        if artifacts:
            import shutil

            os.makedirs(os.path.join(path, "artifacts"), exist_ok=True)
            conf["artifacts"] = {}
            for name, src in artifacts.items():
                dst = os.path.join("artifacts", os.path.basename(src))
                (shutil.copytree if os.path.isdir(src) else shutil.copy2)(
                    src, os.path.join(path, dst)
                )
                conf["artifacts"][name] = dst
        flavors = {"python_function": conf}
    requirements = mf.pinned(base) + list(pip_requirements or [])
    flavors["python_function"]["env"] = mf.write_environment(path, _unique(requirements))
    mlmodel = mf.new_mlmodel(run_id, artifact_path, flavors)
    if model_id:
        mlmodel["model_id"] = model_id
    if input_example is not None:
        mlmodel["saved_input_example_info"] = mf.write_input_example(path, input_example)
    sig = mf.signature_dict(signature)
    if sig is None and input_example is not None:
        try:
            output = model.predict(input_example) if not isinstance(model, PythonModel) else None
        except Exception:  # noqa: BLE001 - a signature is a convenience: an example the model rejects
            output = None  # still logs
        sig = mf.infer_signature(input_example, output)
    if sig is not None and sig.get("inputs"):
        mlmodel["signature"] = sig
    mlmodel["model_size_bytes"] = sum(
        os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs
    )
    mf.write_mlmodel(path, mlmodel)
    return mlmodel


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for it in items:
        seen.setdefault(it.split("==")[0].split(">")[0].split("<")[0].strip().lower(), it)
    return list(seen.values())


def _dump(model: Any, path: str, fmt: str) -> None:
    if fmt == "skops":
        try:
            import skops.io
        except ImportError:
            raise invalid(
                "serialization_format='skops' needs the skops package (pip install skops)."
            ) from None
        skops.io.dump(model, path)
        return
    with open(path, "wb") as f:
        if fmt == "cloudpickle":
            import cloudpickle

            cloudpickle.dump(model, f)
        else:
            pickle.dump(model, f, protocol=pickle.DEFAULT_PROTOCOL)


def load_sklearn(model_dir: str, conf: dict[str, Any]) -> Any:
    """The estimator of an ``sklearn`` flavor (pickle, cloudpickle or skops)."""
    fmt = conf.get("serialization_format", "pickle")
    path = os.path.join(model_dir, conf.get("pickled_model", _MODEL_FILES.get(fmt, "model.pkl")))
    if fmt == "skops":
        try:
            import skops.io
        except ImportError:
            raise invalid(
                "This model was saved with skops: install the skops package to "
                "load it (pip install skops)."
            ) from None
        trusted = conf.get("skops_trusted_types")
        if not trusted:
            # Loading a model means trusting it (as with pickle): accept the types it names.
            trusted = skops.io.get_untrusted_types(file=path)
        return skops.io.load(path, trusted=trusted)
    if fmt not in ("pickle", "cloudpickle"):
        raise invalid(f"Unrecognized serialization format: {fmt}.")
    with open(path, "rb") as f:
        if fmt == "cloudpickle":
            import cloudpickle

            return cloudpickle.load(f)
        return pickle.load(f)


def load_model_dir(model_dir: str) -> PyFuncModel:
    """A loaded model of a local MLflow model directory."""
    mlmodel = mf.read_mlmodel(model_dir)
    flavors = mlmodel["flavors"]
    if "sklearn" in flavors:
        est = load_sklearn(model_dir, flavors["sklearn"])
        return PyFuncModel(_Estimator(est), mlmodel, model_dir, raw_model=est)
    conf = flavors.get("python_function")
    if conf is None:
        raise invalid(
            f"The model in '{model_dir}' has no python_function or sklearn flavor "
            f"(flavors: {', '.join(flavors)})."
        )
    loader = conf.get("loader_module")
    if loader == "jupyter_mlops.registry.pyfunc":
        return PyFuncModel(_load_pyfunc(model_dir), mlmodel, model_dir)
    if loader == "mlflow.sklearn":
        est = load_sklearn(model_dir, {"pickled_model": conf.get("model_path", "model.pkl")})
        return PyFuncModel(_Estimator(est), mlmodel, model_dir, raw_model=est)
    raise invalid(
        f"Loading models of loader module '{loader}' needs the mlflow package: "
        "jupyter-mlops loads sklearn and its own python_function models."
    )


class _Estimator:
    def __init__(self, est: Any) -> None:
        self.model = est

    def predict(self, data: Any, params: Any = None) -> Any:
        return self.model.predict(data)
