"""Request bodies of MLflow's scoring protocol, turned into model input.

JSON: ``{"dataframe_split": {"columns", "data"}}``, ``{"dataframe_records": [...]}``,
``{"instances": ...}`` or ``{"inputs": ...}`` (optionally with ``"params"``);
CSV (``text/csv``) with a header row. Tabular input becomes a 2-D numpy array in
the model's column order: no DataFrame is built on the hot path.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np

KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class BadInput(ValueError):
    """The request cannot be scored: answered with 400 and this message."""


def _matrix(rows: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(rows, dtype=np.float64)
    except OverflowError:
        raise BadInput(f"{what}: a number is out of the range of a double.") from None
    except (TypeError, ValueError):
        try:
            arr = np.asarray(rows, dtype=object)
        except (TypeError, ValueError) as e:
            raise BadInput(f"{what}: rows of unequal length or mixed shapes ({e}).") from None
        if arr.ndim != 2:
            raise BadInput(f"{what}: rows must all have the same number of values.") from None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if arr.size and not isinstance(rows[0], list) else arr
    if arr.ndim != 2:
        raise BadInput(f"{what} must be a list of rows (a 2-D array), got {arr.ndim} dimension(s).")
    return arr


def _reorder(arr: np.ndarray, given: list[str], expected: list[str] | None) -> np.ndarray:
    if expected is None or given == expected:
        return arr
    missing = [c for c in expected if c not in given]
    if missing:
        raise BadInput(f"Missing column(s) {missing}: the model expects {expected}.")
    pos = {c: i for i, c in enumerate(given)}
    return arr[:, [pos[c] for c in expected]]


def _check_width(arr: np.ndarray, expected: list[str] | None) -> np.ndarray:
    if expected is not None and arr.shape[1] != len(expected):
        raise BadInput(
            f"Expected {len(expected)} value(s) per row ({', '.join(expected)}), "
            f"got {arr.shape[1]}."
        )
    return arr


def _records(records: Any, expected: list[str] | None) -> np.ndarray:
    if isinstance(records, dict):
        records = [records]
    if (
        not isinstance(records, list)
        or not records
        or not all(isinstance(r, dict) for r in records)
    ):
        raise BadInput("dataframe_records must be a non-empty list of objects ({column: value}).")
    cols = expected or list(records[0])
    try:
        rows = [[r[c] for c in cols] for r in records]
    except KeyError as e:
        raise BadInput(
            f"A record has no value for column {e.args[0]!r}; the model expects {cols}."
        ) from None
    return _matrix(rows, "dataframe_records")


def _split(split: Any, expected: list[str] | None) -> np.ndarray:
    if not isinstance(split, dict) or "data" not in split:
        raise BadInput("dataframe_split must be an object with 'data' (and 'columns').")
    data = split["data"]
    if not isinstance(data, list) or not data:
        raise BadInput("dataframe_split.data must be a non-empty list of rows.")
    arr = _matrix(data, "dataframe_split.data")
    cols = split.get("columns")
    if cols is not None:
        if not isinstance(cols, list) or len(cols) != arr.shape[1]:
            raise BadInput(
                f"dataframe_split has {len(cols) if isinstance(cols, list) else '?'} "
                f"column name(s) for rows of {arr.shape[1]} value(s)."
            )
        return _reorder(arr, [str(c) for c in cols], expected)
    return _check_width(arr, expected)


def _tensor(value: Any, key: str, expected: list[str] | None) -> np.ndarray:
    if isinstance(value, dict):  # columnar: {"a": [..], "b": [..]}
        cols = list(value)
        try:
            columns = [np.asarray(value[c]).reshape(-1) for c in cols]
            arr = np.column_stack(columns)
        except ValueError as e:
            raise BadInput(f"{key}: columns of different lengths ({e}).") from None
        if arr.dtype.kind not in "fiub":
            arr = _matrix(arr.tolist(), key)
        return _reorder(arr.astype(np.float64) if arr.dtype.kind in "iub" else arr, cols, expected)
    if not isinstance(value, list) or not value:
        raise BadInput(f"{key} must be a non-empty list of rows or an object of columns.")
    if not isinstance(value[0], list):
        value = (
            [value]
            if expected is not None and len(value) == len(expected)
            else [[v] for v in value]
        )
    return _check_width(_matrix(value, key), expected)


def parse_json(body: bytes, expected: list[str] | None) -> tuple[np.ndarray, Any]:
    """``(matrix, params)`` of a JSON scoring request."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"Invalid JSON input: {str(e)[:200]}") from None
    except RecursionError:
        raise BadInput("Invalid JSON input: nested too deeply.") from None
    if not isinstance(doc, dict):
        raise BadInput(f"The JSON input must be an object with one of the keys {', '.join(KEYS)}.")
    present = [k for k in KEYS if k in doc]
    unknown = sorted(set(doc) - set(KEYS) - {"params"})
    if len(present) != 1 or unknown:
        raise BadInput(
            f"The JSON input must have exactly one of the keys {', '.join(KEYS)} "
            f"(and optionally 'params'); got {sorted(doc)}."
        )
    key = present[0]
    value = doc[key]
    if key == "dataframe_split":
        arr = _split(value, expected)
    elif key == "dataframe_records":
        arr = _records(value, expected)
    else:
        arr = _tensor(value, key, expected)
    return arr, doc.get("params")


def parse_csv(body: bytes, expected: list[str] | None) -> np.ndarray:
    """A CSV body with a header row."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("The CSV input is not UTF-8 text.") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if len(rows) < 2:
        raise BadInput("The CSV input needs a header row and at least one data row.")
    header, data = rows[0], rows[1:]
    if any(len(r) != len(header) for r in data):
        raise BadInput(f"Every CSV row must have {len(header)} values (the header's count).")
    return _reorder(_matrix(data, "CSV data"), [h.strip() for h in header], expected)


def predictions_json(result: Any) -> bytes:
    """``{"predictions": ...}`` as MLflow answers."""
    if hasattr(result, "to_dict") and hasattr(result, "columns"):  # DataFrame
        preds: Any = result.to_dict(orient="records")
    elif hasattr(result, "tolist"):
        preds = result.tolist()
    else:
        preds = result
    return json.dumps({"predictions": preds}, default=str).encode()
