"""MLflow's server-side checks of a model version's ``source`` (``model-versions/create``).

A version's source is where its files are read from (``get-download-uri``,
``model-versions/get-artifact``), so the server refuses sources that would reach files
outside the run or logged model they claim to come from, as MLflow's server does:

- a local path (no scheme, or ``file:`` without a remote host) only inside the artifact
  directory of the run named by ``run_id`` (or the logged model named by ``model_id``);
  this server keeps artifacts under ``mlflow-artifacts:/``, so in practice a local path
  is refused;
- any other URI only as an absolute path without relative parts (``..``, ``.``, a NUL,
  also percent-encoded);
- ``models:/m-<id>`` names the logged model it is: with a ``model_id``, the same one.

As MLflow's 3.x server before 3.12 (and its REST tests), a ``runs:/`` source need not
name the ``run_id`` sent with it, nor a run this server has.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from ..tracking.errors import TrackingError, invalid

if TYPE_CHECKING:
    from ..registry.abstract_store import AbstractRegistryStore
    from ..tracking.store import TrackingStore

_LOGGED_MODEL = re.compile(r"models:/(m-[0-9a-fA-F]+)/?")


def is_local(uri: str) -> bool:
    """MLflow's ``is_local_uri``: a path, or ``file:`` on this machine."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return parsed.netloc in ("", "localhost", "127.0.0.1")
    return parsed.scheme == "" or bool(re.fullmatch(r"[a-zA-Z]", parsed.scheme))


def _local_path(uri: str) -> PurePosixPath:
    path = urllib.parse.urlparse(uri).path if uri.startswith("file:") else uri
    return PurePosixPath(posixpath.normpath(urllib.parse.unquote(path) or "."))


def _not_absolute(source: str) -> TrackingError:
    return invalid(
        f"Invalid model version source: '{source}'. If supplying a source as an http, https, "
        "local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be "
        "provided without relative path references present. Please provide an absolute path."
    )


def _not_contained(source: str, id_name: str) -> TrackingError:
    owner = "run" if id_name == "run_id" else "logged model"
    return invalid(
        f"Invalid model version source: '{source}'. To use a local path as a model version "
        f"source, the {id_name} request parameter has to be specified and the local path has "
        f"to be contained within the artifact directory of the {owner} specified by the "
        f"{id_name}."
    )


def check_relative_parts(source: str) -> None:
    """A non-local source: an absolute, normalized path (decoded until stable)."""
    while (decoded := urllib.parse.unquote_plus(source)) != source:
        source = decoded
    path = re.sub(r"/+", "/", urllib.parse.urlparse(source).path.rstrip("/"))
    if "\x00" in path or ".." in source.split("/"):
        raise _not_absolute(source)
    if not path.startswith("/") or posixpath.normpath(path) != path:
        raise _not_absolute(source)


def _within(source: str, root: str) -> bool:
    if not is_local(root):
        return False
    base, path = _local_path(root), _local_path(source)
    return path == base or base in path.parents


def check_source(
    source: str,
    run_id: str | None,
    model_id: str | None,
    tracking: TrackingStore | None,
    registry: AbstractRegistryStore,
) -> None:
    """Refuse (INVALID_PARAMETER_VALUE, MLflow's message) a source MLflow's server refuses."""
    id_name = "model_id" if model_id else "run_id"
    if is_local(source):
        root = None
        try:
            if model_id:
                model = registry.get_logged_model(model_id)
                root = str(model.get("info", model)["artifact_uri"])
            elif run_id and tracking is not None:
                root = tracking.get_run(run_id).info.artifact_uri
        except TrackingError as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        if root is None or not _within(source, root):
            raise _not_contained(source, id_name)
        return
    check_relative_parts(source)
    m = _LOGGED_MODEL.fullmatch(source)
    if m and model_id and m.group(1) != model_id:
        raise invalid(
            f"Invalid model version source: '{source}'. The model_id request parameter must "
            "identify the resource that contains the source."
        )
