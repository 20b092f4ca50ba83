"""The Open Inference Protocol (V2, KServe's "predict protocol v2") over a PyFunc model.

``POST /v2/models/{name}/infer`` takes ``{"id"?, "parameters"?, "inputs": [{"name", "shape",
"datatype", "data", "parameters"?}], "outputs"?: [{"name"}]}`` and answers ``{"model_name",
"model_version", "id", "outputs": [{"name", "shape", "datatype", "data"}]}``. A tabular model
(one with named input columns) takes either one input per column (shape ``[N]`` or ``[N, 1]``,
matched by name, any order) or a single input of shape ``[N, <columns>]`` in the model's column
order; a tensor model takes its inputs as they come. ``data`` is row-major, flat or nested, and
must fit the declared ``datatype`` and ``shape``. Bad input is a :class:`BadInput` whose
message names the field (``inputs[1].shape``, ...).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np

from .scoring_input import BadInput

#: V2 datatype -> numpy dtype (BF16 has no numpy type: read as float32).
DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BF16": np.float32,
    "BYTES": object,
}
_INT_RANGES = {
    k: (int(np.iinfo(v).min), int(np.iinfo(v).max))
    for k, v in DTYPES.items()
    if k.startswith(("INT", "UINT"))
}

#: MLflow signature column types -> V2 datatypes (the model metadata's inputs).
_SIGNATURE_TYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}


def _flatten(data: Any, where: Any) -> list[Any]:
    """``data`` flattened row-major (``where()`` names the field in errors)."""
    if type(data) is not list:
        raise BadInput(f"{where()} must be a list (row-major, flat or nested).")
    if not data or type(data[0]) is not list:
        for v in data:
            if type(v) is list:
                raise BadInput(f"{where()} mixes lists and values at the same depth.")
        return data
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item, where))
    return out


_NUMBER = (int, float)


def _check_values(flat: list[Any], datatype: str, field: Any) -> list[Any]:
    """``flat`` if its values fit ``datatype``, else a BadInput naming the first bad one."""
    if datatype[0] in "FB" and datatype != "BOOL":  # FP16/32/64, BF16
        for v in flat:
            if type(v) not in _NUMBER:
                break
        else:
            return flat
        where = field()
        i, v = next((i, v) for i, v in enumerate(flat) if type(v) not in _NUMBER)
        raise BadInput(f"{where}[{i}] is {json.dumps(v)}: {datatype} data must be numbers.")
    where = field()
    if datatype == "BYTES":
        for i, v in enumerate(flat):
            if not isinstance(v, str):
                raise BadInput(f"{where}[{i}] is {json.dumps(v)}: BYTES data must be strings.")
        return flat
    if datatype == "BOOL":
        for i, v in enumerate(flat):
            if not isinstance(v, bool):
                raise BadInput(f"{where}[{i}] is {json.dumps(v)}: BOOL data must be true/false.")
        return flat
    lo, hi = _INT_RANGES[datatype]
    for i, v in enumerate(flat):
        if type(v) is not int:
            raise BadInput(f"{where}[{i}] is {json.dumps(v)}: {datatype} data must be integers.")
        if not lo <= v <= hi:
            raise BadInput(f"{where}[{i}] is {v}: out of range for {datatype} [{lo}, {hi}].")
    return flat


class Tensor:
    """One checked request input: ``name``, ``shape``, ``datatype`` and its values (``flat``,
    row-major; ``array()`` builds the numpy array of ``shape``)."""

    __slots__ = ("datatype", "flat", "index", "name", "shape")

    def __init__(self, raw: Any, i: int) -> None:
        if type(raw) is not dict:
            raise BadInput(f"inputs[{i}] must be an object with name, shape, datatype and data.")
        try:
            name, shape, datatype, data = raw["name"], raw["shape"], raw["datatype"], raw["data"]
        except KeyError as e:
            raise BadInput(
                f"inputs[{i}] has no '{e.args[0]}' (name, shape, datatype and data are required)."
            ) from None
        if type(name) is not str or not name:
            raise BadInput(f"inputs[{i}].name must be a non-empty string.")
        self.name, self.shape, self.datatype, self.index = name, shape, datatype, i
        if type(shape) is not list or not shape:
            self._bad_shape()
        size = 1
        for d in shape:
            if type(d) is not int or d < 0:
                self._bad_shape()
            size *= d
        if datatype not in DTYPES:
            raise BadInput(
                f"{self.where}.datatype {json.dumps(datatype)} is not a V2 datatype "
                f"({', '.join(DTYPES)})."
            )
        flat = _flatten(data, self._data_field)
        if len(flat) != size:
            raise BadInput(
                f"{self.where}.data has {len(flat)} element(s); shape {shape} needs {size}."
            )
        self.flat = _check_values(flat, datatype, self._data_field)

    @property
    def where(self) -> str:
        """How errors name this input: ``inputs[1] ('age')``."""
        return f"inputs[{self.index}] ({self.name!r})"

    def _data_field(self) -> str:
        return f"{self.where}.data"

    def _bad_shape(self) -> None:
        raise BadInput(
            f"{self.where}.shape must be a non-empty list of non-negative integers, "
            f"got {json.dumps(self.shape)}."
        )

    def array(self) -> np.ndarray:
        return np.asarray(self.flat, dtype=DTYPES[self.datatype]).reshape(self.shape)


def parse_infer(body: bytes, columns: list[str] | None) -> tuple[np.ndarray, Any, list[str] | None]:
    """``(matrix, request id, requested output names)`` of an infer request body."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"Invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BadInput("The request must be a JSON object with 'inputs'.")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadInput(
            "'inputs' must be a non-empty list of tensors ({name, shape, datatype, data})."
        )
    tensors = [Tensor(raw, i) for i, raw in enumerate(inputs)]
    names = [t.name for t in tensors]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BadInput(f"inputs: the name(s) {dup} appear more than once.")
    wanted = None
    outputs = doc.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
        ):
            raise BadInput("'outputs' must be a list of objects with a 'name'.")
        wanted = [o["name"] for o in outputs]
    rid = doc.get("id")
    if rid is not None and not isinstance(rid, str):
        raise BadInput("'id' must be a string.")
    return _matrix(tensors, columns), rid, wanted


def _column(t: Tensor) -> list[Any]:
    if len(t.shape) == 1 or (len(t.shape) == 2 and t.shape[1] == 1):
        return t.flat
    raise BadInput(f"{t.where}.shape is {t.shape}: a column input needs shape [N] or [N, 1].")


def _stack(tensors: list[Tensor]) -> np.ndarray:
    """Column inputs side by side: one (N, columns) array, built in one numpy call."""
    cols = [_column(t) for t in tensors]
    if len({len(c) for c in cols}) > 1:
        counts = ", ".join(f"{t.name}: {len(c)}" for t, c in zip(tensors, cols, strict=True))
        raise BadInput(f"inputs: columns of different lengths ({counts}).")
    dtype = object if any(t.datatype == "BYTES" for t in tensors) else np.float64
    return np.array(cols, dtype=dtype).T


def _matrix(tensors: list[Tensor], columns: list[str] | None) -> np.ndarray:
    by_name = {t.name: t for t in tensors}
    if columns and (len(tensors) > 1 or (tensors[0].name in columns and len(columns) == 1)):
        missing = [c for c in columns if c not in by_name]
        if missing:
            raise BadInput(
                f"inputs: no input named {missing} (the model's inputs are "
                f"{', '.join(columns)}; one per column, or one input of shape "
                f"[N, {len(columns)}])."
            )
        extra = [n for n in by_name if n not in columns]
        if extra:
            raise BadInput(f"inputs: {extra} are not inputs of the model ({', '.join(columns)}).")
        return _stack([by_name[c] for c in columns])
    if len(tensors) == 1:
        t = tensors[0]
        arr = t.array()
        if columns:
            if arr.ndim == 1 and len(columns) > 1 and arr.shape[0] == len(columns):
                arr = arr.reshape(1, -1)
            if arr.ndim != 2 or arr.shape[1] != len(columns):
                raise BadInput(
                    f"{t.where}.shape is {t.shape}: the model takes "
                    f"{len(columns)} column(s) ({', '.join(columns)}), so one input "
                    f"needs shape [N, {len(columns)}] (or give one input per column)."
                )
        elif arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        return arr.astype(np.float64) if arr.dtype.kind in "iub" else arr
    return _stack(tensors)


def _datatype(arr: np.ndarray) -> str:
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind == "i":
        return f"INT{size * 8}"
    if kind == "u":
        return f"UINT{size * 8}"
    if kind == "f":
        return f"FP{size * 8}"
    return "BYTES"


def _output(name: str, values: Any) -> dict[str, Any]:
    arr = np.asarray(values)
    dt = _datatype(arr)
    data = arr.reshape(-1).tolist()
    if dt == "BYTES":
        data = [v if isinstance(v, str) else str(v) for v in data]
    return {"name": name, "shape": list(arr.shape), "datatype": dt, "data": data}


def infer_response(
    result: Any,
    model_name: str,
    model_version: str | None,
    rid: str | None,
    wanted: list[str] | None,
) -> bytes:
    """The V2 answer: one output ``predict`` (or one per column of a DataFrame result)."""
    if hasattr(result, "columns") and hasattr(result, "to_numpy"):  # DataFrame
        outputs = [_output(str(c), result[c].to_numpy()) for c in result.columns]
    elif isinstance(result, dict):
        outputs = [_output(str(k), v) for k, v in result.items()]
    else:
        outputs = [_output("predict", result.to_numpy() if hasattr(result, "to_numpy") else result)]
    if wanted is not None:
        have = {o["name"]: o for o in outputs}
        unknown = [n for n in wanted if n not in have]
        if unknown:
            raise BadInput(f"outputs: {unknown} are not outputs of the model ({', '.join(have)}).")
        outputs = [have[n] for n in wanted]
    doc: dict[str, Any] = {
        "model_name": model_name,
        "id": rid or uuid.uuid4().hex,
        "outputs": outputs,
    }
    if model_version:
        doc["model_version"] = model_version
    return json.dumps(doc, separators=(",", ":")).encode()


def _spec(raw: Any, prefix: str) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        spec = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    out = []
    for i, col in enumerate(spec if isinstance(spec, list) else []):
        if not isinstance(col, dict):
            continue
        if col.get("type") == "tensor":
            ts = col.get("tensor-spec") or {}
            dt = _datatype(np.empty(0, dtype=ts.get("dtype", "float64")))
            out.append(
                {
                    "name": col.get("name") or f"{prefix}-{i}",
                    "datatype": dt,
                    "shape": list(ts.get("shape") or [-1]),
                }
            )
        else:
            out.append(
                {
                    "name": col.get("name") or f"{prefix}-{i}",
                    "datatype": _SIGNATURE_TYPES.get(str(col.get("type")), "BYTES"),
                    "shape": [-1],
                }
            )
    return out


def model_metadata(
    mlmodel: dict[str, Any], name: str, version: str | None, columns: list[str] | None
) -> dict[str, Any]:
    """``GET /v2/models/{name}``: inputs and outputs from the model's signature."""
    sig = mlmodel.get("signature") or {}
    inputs = _spec(sig.get("inputs"), "input")
    if not inputs and columns:
        inputs = [{"name": c, "datatype": "FP64", "shape": [-1]} for c in columns]
    outputs = _spec(sig.get("outputs"), "output")
    if len(outputs) == 1 and outputs[0]["name"] == "output-0":
        outputs[0]["name"] = "predict"
    flavors = [f for f in (mlmodel.get("flavors") or {}) if f != "python_function"]
    return {
        "name": name,
        "versions": [version] if version else [],
        "platform": flavors[0] if flavors else "python_function",
        "inputs": inputs,
        "outputs": outputs,
    }
