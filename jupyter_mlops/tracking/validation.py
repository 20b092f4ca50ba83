"""Validation of keys and values, with MLflow's limits and messages.

The messages are MLflow's own wording (``mlflow/utils/validation.py``) so clients
that match on them behave the same against this store.
"""

from __future__ import annotations

import json
import logging
import math
import posixpath
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import invalid

if TYPE_CHECKING:
    from .entities import DatasetInput

log = logging.getLogger(__name__)

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_KEY_LENGTH = 250
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
SEARCH_MAX_RESULTS = 50000
MAX_EXPERIMENTS_LISTED_PER_PAGE = 50000

_NAME_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,63}$")

BAD_CHARACTER_MESSAGE = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.),"
    " spaces ( ), colon(:) and slashes (/)."
)


def invalid_value_message(path: str, value: Any, message: str | None = None) -> str:
    formatted = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    if message:
        return f"Invalid value {formatted} for parameter '{path}' supplied: {message}"
    return f"Invalid value {formatted} for parameter '{path}' supplied."


def missing_value_message(path: str) -> str:
    return f"Missing value for required parameter '{path}'."


def exceeds_maximum_length_message(path: str, limit: int) -> str:
    return f"'{path}' exceeds the maximum length of {limit} characters"


def _path_not_unique(name: str) -> bool:
    norm = posixpath.normpath(name)
    return norm != name or norm == "." or norm.startswith(("..", "/"))


def validate_key(name: Any, path: str = "key", what: str = "key") -> str:
    """A metric/param/tag key: MLflow's allowed characters, no path tricks, ≤ 250 chars."""
    if name is None or (name == "" and what == "metric"):
        raise invalid(invalid_value_message(path, "", "A key name must be provided."))
    if not isinstance(name, str):
        raise invalid(invalid_value_message(path, name, "Expected a string."))
    if not _NAME_RE.match(name):
        raise invalid(invalid_value_message(path, name, BAD_CHARACTER_MESSAGE))
    if _path_not_unique(name):
        raise invalid(
            invalid_value_message(
                path,
                name,
                "Names may be treated as files in certain cases, and must not resolve to "
                "other names when treated as such. This name would resolve to "
                f"{posixpath.normpath(name)!r}",
            )
        )
    if len(name) > MAX_ENTITY_KEY_LENGTH:
        raise invalid(exceeds_maximum_length_message(path, MAX_ENTITY_KEY_LENGTH))
    return name


def truncate_value(entity: str, limit: int, value: Any) -> str:
    """MLflow truncates over-long param and tag values with a warning."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    if len(value) <= limit:
        return value
    log.warning(
        "%s '%s...' (%d characters) is truncated to %d characters to meet the length limit.",
        entity,
        value[:100],
        len(value),
        limit,
    )
    return value[:limit]


def validate_metric_value(
    key: str, value: Any, timestamp: Any, step: Any
) -> tuple[float, int, int]:
    """Coerce a metric point; booleans and non-numbers are refused as in MLflow."""
    if value is None:
        raise invalid(missing_value_message("value"))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            if isinstance(value, bool) or not isinstance(value, str):
                raise ValueError
            value = float(value)  # "NaN", "Infinity" as JSON clients send them
        except ValueError:
            raise invalid(
                invalid_value_message(
                    "value",
                    value,
                    f"(timestamp={timestamp}). "
                    "Please specify value as a valid double (64-bit floating point)",
                )
            ) from None
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) or timestamp < 0:
        raise invalid(
            invalid_value_message(
                "timestamp",
                timestamp,
                f"metric '{key}' (value={value}). "
                "Timestamp must be a nonnegative long (64-bit integer) ",
            )
        )
    if (
        isinstance(step, bool)
        or not isinstance(step, (int, float))
        or (isinstance(step, float) and not math.isfinite(step))
    ):
        raise invalid(
            invalid_value_message(
                "step",
                step,
                f"metric '{key}' (value={value}). Step must be a valid long (64-bit integer).",
            )
        )
    return float(value), int(timestamp), int(step)


def validate_experiment_name(name: Any) -> str:
    if name is None or name == "":
        raise invalid(f"Invalid experiment name: '{name if name is not None else ''}'")
    if not isinstance(name, str):
        raise invalid(f"Invalid experiment name: {name}. Expects a string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise invalid(exceeds_maximum_length_message("name", MAX_EXPERIMENT_NAME_LENGTH))
    return name


def validate_experiment_tag(key: Any, value: Any) -> tuple[str, str]:
    validate_key(key, "key")
    if len(key) > MAX_EXPERIMENT_TAG_KEY_LENGTH:
        raise invalid(exceeds_maximum_length_message("key", MAX_EXPERIMENT_TAG_KEY_LENGTH))
    value = "" if value is None else str(value)
    if len(value) > MAX_EXPERIMENT_TAG_VAL_LENGTH:
        raise invalid(exceeds_maximum_length_message("value", MAX_EXPERIMENT_TAG_VAL_LENGTH))
    return key, value


def validate_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise invalid(f"Invalid run ID: '{run_id}'")
    return run_id


def validate_max_results(max_results: Any, limit: int = SEARCH_MAX_RESULTS) -> int:
    """MLflow's bounds and wording for ``max_results`` of search calls."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise invalid(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be "
            "a positive integer"
        )
    if max_results > limit:
        raise invalid(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at "
            f"most {limit}"
        )
    return max_results


# -- datasets (runs/log-inputs) ---------------------------------------------------
# MLflow's limits (mlflow/utils/validation.py).
MAX_DATASETS_PER_BATCH = 1000
MAX_DATASET_NAME_SIZE = 500
MAX_DATASET_DIGEST_SIZE = 36
MAX_DATASET_SOURCE_TYPE_SIZE = 36
MAX_DATASET_SCHEMA_SIZE = 1048575
MAX_DATASET_SOURCE_SIZE = 65535
#: MLflow allows 16 MB (its MEDIUMTEXT column); a profile is a few counts (rows, elements),
#: and runs/get carries it, so this store takes 1 MB, as for the schema.
MAX_DATASET_PROFILE_SIZE = 1048575
#: A source type names a kind of place (MLflow's: ``local``, ``http``, ``s3``, ``gs``, ``hf``,
#: ``code``, ``delta_table``, ``uc_volume``, ``spark``, ...); MLflow's server takes any string,
#: this one a name: letters, digits and ``_ - . :``.
_SOURCE_TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:\-]*$")
MAX_INPUT_TAG_KEY_SIZE = 255
MAX_INPUT_TAG_VALUE_SIZE = 500


def _text(
    d: dict[str, Any], key: str, path: str, limit: int | None, required: bool = True
) -> str | None:
    value = d.get(key)
    if value is None or (required and value == ""):
        if required:
            raise invalid(f"Missing value for required parameter '{path}.{key}'.")
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid value {value!r} for parameter '{path}.{key}': it must be a string.")
    if "\x00" in value:
        raise invalid(f"Invalid value for parameter '{path}.{key}': it contains a NUL character.")
    if limit is not None and len(value) > limit:
        raise invalid(
            f"'{key}' exceeds the maximum length of {limit} characters "
            f"(parameter '{path}.{key}' has {len(value)})."
        )
    return value


def parse_dataset_inputs(items: Sequence[Any], path: str = "datasets") -> list[DatasetInput]:
    """MLflow's ``DatasetInput`` JSON objects, checked against MLflow's limits; a
    message names the offending field (``datasets[2].dataset.profile``)."""
    if len(items) > MAX_DATASETS_PER_BATCH:
        raise invalid(
            f"A batch logging request can contain at most {MAX_DATASETS_PER_BATCH} datasets. "
            f"Got {len(items)} datasets."
        )
    from .entities import Dataset, DatasetInput, Tag

    out = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise invalid(f"Invalid value {item!r} for parameter '{where}': it must be an object.")
        ds = item.get("dataset")
        if not isinstance(ds, dict):
            raise invalid(f"Missing value for required parameter '{where}.dataset'.")
        dpath = f"{where}.dataset"
        dataset = Dataset(
            name=_text(ds, "name", dpath, MAX_DATASET_NAME_SIZE) or "",
            digest=_text(ds, "digest", dpath, MAX_DATASET_DIGEST_SIZE) or "",
            source_type=_text(ds, "source_type", dpath, MAX_DATASET_SOURCE_TYPE_SIZE) or "",
            source=_text(ds, "source", dpath, MAX_DATASET_SOURCE_SIZE, required=False) or "",
            schema=_text(ds, "schema", dpath, MAX_DATASET_SCHEMA_SIZE, required=False),
            profile=_text(ds, "profile", dpath, MAX_DATASET_PROFILE_SIZE, required=False),
        )
        if not _SOURCE_TYPE_RE.match(dataset.source_type):
            raise invalid(
                f"Invalid value {dataset.source_type!r} for parameter '{dpath}.source_type': "
                "a source type is a name (letters, digits, '_', '-', '.', ':'), such as "
                "'local', 'http', 's3', 'gs', 'hf' or 'code'."
            )
        if ds.get("source") is None:
            raise invalid(f"Missing value for required parameter '{dpath}.source'.")
        tags = item.get("tags") or []
        if not isinstance(tags, list):
            raise invalid(f"Invalid value for parameter '{where}.tags': it must be a list.")
        parsed: list[Tag] = []
        for j, t in enumerate(tags):
            tpath = f"{where}.tags[{j}]"
            if not isinstance(t, dict):
                raise invalid(f"Invalid value {t!r} for parameter '{tpath}': it must be an object.")
            key = _text(t, "key", tpath, MAX_INPUT_TAG_KEY_SIZE) or ""
            value = _text(t, "value", tpath, MAX_INPUT_TAG_VALUE_SIZE, required=False)
            if value is None:
                raise invalid(f"Missing value for required parameter '{tpath}.value'.")
            parsed.append(Tag(key, value))
        out.append(DatasetInput(dataset, parsed))
    return out


def check_dataset_inputs(inputs: Sequence[DatasetInput]) -> list[DatasetInput]:
    """Entities made in process (the client's store transport) go through the same checks."""
    return parse_dataset_inputs([i.to_dict() for i in inputs])


#: What the database's BIGINT columns hold (ids, times, durations).
INT64 = range(-(2**63), 2**63)


def experiment_int_ids(experiment_ids: Sequence[str]) -> list[int]:
    """Experiment ids as the column's integers, for filters: ids beyond int64 match
    nothing (no experiment has one) and are dropped, where binding them would overflow
    the database driver."""
    ids = []
    for e in experiment_ids:
        try:
            n = int(e)
        except (TypeError, ValueError):
            raise invalid(f"Invalid experiment ID: {e!r}") from None
        if n in INT64:
            ids.append(n)
    return ids
