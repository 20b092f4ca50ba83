"""MLflow's model directory format: the ``MLmodel`` descriptor, the signature,
the input example and the environment files.

A model directory holds ``MLmodel`` (YAML: flavors, signature, run and model
ids), the serialized model, ``requirements.txt``, ``python_env.yaml``,
``conda.yaml`` and optionally ``input_example.json`` /
``serving_input_example.json`` — the same files, fields and spellings MLflow
writes, so each side loads the other's models.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import uuid
from collections.abc import Iterable
from importlib import metadata
from typing import Any

MLMODEL = "MLmodel"
FORMAT_VERSION_NOTE = "jupyter-mlops"


def _yaml() -> Any:
    import yaml  # PyYAML: needed only when reading or writing a model

    return yaml


def read_mlmodel(model_dir: str) -> dict[str, Any]:
    path = os.path.join(model_dir, MLMODEL)
    if not os.path.isfile(path):
        from ..tracking.errors import not_found

        raise not_found(f"No MLmodel file in '{model_dir}': not an MLflow model directory.")
    with open(path, encoding="utf-8") as f:
        data = _yaml().safe_load(f) or {}
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        from ..tracking.errors import invalid

        raise invalid(f"'{path}' is not a valid MLmodel file (no flavors).")
    return data


def write_mlmodel(model_dir: str, mlmodel: dict[str, Any]) -> None:
    with open(os.path.join(model_dir, MLMODEL), "w", encoding="utf-8") as f:
        _yaml().safe_dump(mlmodel, f, default_flow_style=False, sort_keys=True)


def new_mlmodel(
    run_id: str | None, artifact_path: str | None, flavors: dict[str, Any]
) -> dict[str, Any]:
    return {
        "artifact_path": artifact_path,
        "flavors": flavors,
        "model_uuid": uuid.uuid4().hex,
        "run_id": run_id,
        "utc_time_created": str(datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)),
        "is_signature_from_type_hint": False,
        "type_hint_from_example": False,
        "saved_by": FORMAT_VERSION_NOTE,
    }


def python_version() -> str:
    return platform.python_version()


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def pinned(packages: Iterable[str]) -> list[str]:
    out = []
    for p in packages:
        v = package_version(p)
        out.append(f"{p}=={v}" if v else p)
    return out


def write_environment(model_dir: str, requirements: list[str]) -> dict[str, str]:
    """``requirements.txt``, ``python_env.yaml``, ``conda.yaml``; returns the
    ``env`` entry of the python_function flavor."""
    yaml = _yaml()
    with open(os.path.join(model_dir, "requirements.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(requirements) + ("\n" if requirements else ""))
    pip = package_version("pip") or "23.0"
    with open(os.path.join(model_dir, "python_env.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(
            {
                "python": python_version(),
                "build_dependencies": [
                    f"pip=={pip}",
                    f"setuptools=={package_version('setuptools')}"
                    if package_version("setuptools")
                    else "setuptools",
                    "wheel",
                ],
                "dependencies": ["-r requirements.txt"],
            },
            f,
            default_flow_style=False,
            sort_keys=False,
        )
    with open(os.path.join(model_dir, "conda.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(
            {
                "channels": ["conda-forge"],
                "dependencies": [
                    f"python={python_version()}",
                    f"pip<={pip}",
                    {"pip": list(requirements)},
                ],
                "name": "mlflow-env",
            },
            f,
            default_flow_style=False,
            sort_keys=False,
        )
    return {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}


# -- signature and input example ------------------------------------------------------
_NUMPY_TO_COLUMN = {
    "f": "double",
    "i": "long",
    "u": "long",
    "b": "boolean",
    "O": "string",
    "U": "string",
    "S": "binary",
}


def _column_type(dtype: Any) -> str:
    if getattr(dtype, "kind", "") == "f" and getattr(dtype, "itemsize", 8) == 4:
        return "float"
    if getattr(dtype, "kind", "") == "i" and getattr(dtype, "itemsize", 8) == 4:
        return "integer"
    if getattr(dtype, "kind", "") == "M":
        return "datetime"
    return _NUMPY_TO_COLUMN.get(getattr(dtype, "kind", "O"), "string")


def schema_of(data: Any) -> list[dict[str, Any]] | None:
    """MLflow's schema JSON for a DataFrame (named columns) or an array (tensor)."""
    import numpy as np

    if hasattr(data, "dtypes") and hasattr(data, "columns"):  # pandas DataFrame
        return [
            {"type": _column_type(dt), "name": str(c), "required": True}
            for c, dt in zip(data.columns, data.dtypes)
        ]
    if hasattr(data, "dtype") and hasattr(data, "name") and hasattr(data, "index"):  # Series
        return [{"type": _column_type(data.dtype), "required": True}]
    try:
        arr = np.asarray(data)
    except Exception:  # noqa: BLE001 - not array-like: no signature
        return None
    if arr.dtype == object:
        return None
    shape = [-1, *arr.shape[1:]]
    return [{"type": "tensor", "tensor-spec": {"dtype": str(arr.dtype), "shape": shape}}]


def infer_signature(model_input: Any, model_output: Any = None) -> dict[str, Any]:
    """``{"inputs": <json str>, "outputs": <json str|None>, "params": None}``."""
    inputs = schema_of(model_input)
    outputs = schema_of(model_output) if model_output is not None else None
    return {
        "inputs": json.dumps(inputs) if inputs else None,
        "outputs": json.dumps(outputs) if outputs else None,
        "params": None,
    }


def signature_dict(signature: Any) -> dict[str, Any] | None:
    """A signature given as our dict, an ``mlflow.models.ModelSignature`` (duck-typed
    ``to_dict``) or ``{"inputs": [...], "outputs": [...]}`` with lists."""
    if signature is None:
        return None
    if hasattr(signature, "to_dict"):
        signature = signature.to_dict()
    if not isinstance(signature, dict):
        from ..tracking.errors import invalid

        raise invalid("signature must be a dict with 'inputs'/'outputs' or a ModelSignature.")
    out = {}
    for k in ("inputs", "outputs", "params"):
        v = signature.get(k)
        out[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
    return out


def _jsonable(arr: Any) -> Any:
    import numpy as np

    a = np.asarray(arr)
    if a.dtype.kind == "M":
        return a.astype(str).tolist()
    return a.tolist()


def write_input_example(model_dir: str, example: Any) -> dict[str, Any]:
    """``input_example.json`` + ``serving_input_example.json``; returns
    ``saved_input_example_info``."""
    if hasattr(example, "to_dict") and hasattr(example, "columns"):  # DataFrame
        split = {
            "columns": [str(c) for c in example.columns],
            "data": _jsonable(example.to_numpy()),
        }
        with open(os.path.join(model_dir, "input_example.json"), "w") as f:
            json.dump(split, f)
        with open(os.path.join(model_dir, "serving_input_example.json"), "w") as f:
            json.dump({"dataframe_split": split}, f, indent=2)
        return {
            "artifact_path": "input_example.json",
            "serving_input_path": "serving_input_example.json",
            "type": "dataframe",
            "pandas_orient": "split",
        }
    if isinstance(example, dict) and not any(hasattr(v, "shape") for v in example.values()):
        # column -> values: a one-table example
        import pandas as pd

        return write_input_example(
            model_dir,
            pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in example.items()}),
        )
    data = _jsonable(example)
    with open(os.path.join(model_dir, "input_example.json"), "w") as f:
        json.dump(data, f)
    with open(os.path.join(model_dir, "serving_input_example.json"), "w") as f:
        json.dump({"inputs": data}, f, indent=2)
    return {
        "artifact_path": "input_example.json",
        "serving_input_path": "serving_input_example.json",
        "type": "ndarray",
    }


def input_columns(mlmodel: dict[str, Any]) -> list[str] | None:
    """Column names of the signature's inputs (None for tensors or no signature)."""
    sig = mlmodel.get("signature") or {}
    raw = sig.get("inputs")
    if not raw:
        return None
    try:
        spec = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    names: list[Any] = [c.get("name") for c in spec if isinstance(c, dict)]
    return names if names and all(names) else None
