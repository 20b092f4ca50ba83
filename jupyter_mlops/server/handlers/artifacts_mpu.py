"""MLflow's multipart upload through the artifact proxy: ``api/2.0/mlflow-artifacts/mpu/
create|complete|abort/<directory>``, what MLflow's client uses for large files with
``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true``.

``create`` (``{"path": <local file>, "num_parts": n}``) starts an upload of the file's name
into ``<directory>`` and answers one credential per part: a URL of ours,
``api/v1/artifacts/parts/<destination>?upload_id=&part_number=``, with the caller's own
``Authorization`` header to send (MLflow's client sends parts with the credential's headers
only, as it would to a presigned object-store URL). Each part is a streamed ``PUT``, answered
with its ``ETag``; ``complete`` (``{"upload_id", "parts": [{"part_number", "etag"}]}``) puts
the parts together, ``abort`` drops them. Each part is written straight to its offset of
the destination's file where it can be (:mod:`jupyter_mlops.tracking.multipart`: its
``Content-Length`` and ``create``'s ``num_parts`` say where); an artifact root that is not a
local directory answers MLflow's "not supported" message, on which the client falls back to
one ``PUT``. A part still streaming when its upload is completed or aborted writes nothing
more and is answered MLflow's 404 ``RESOURCE_DOES_NOT_EXIST`` (S3's ``NoSuchUpload``), like a
part sent after the end: ``complete`` and ``abort`` do not wait for it (the store's lock,
:class:`~jupyter_mlops.tracking.multipart.UploadLock`).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join
from tornado import web

from ...tracking.errors import TrackingError, invalid
from ...tracking.multipart import MAX_PARTS
from ..request import Fields, safe_artifact_path
from .artifacts import ArtifactsMixin, StreamedUploadHandler
from .base import PathRpcHandler

if TYPE_CHECKING:
    from collections.abc import Callable

    from ...tracking.artifacts import ArtifactWriter

#: MLflow's ``_UnsupportedMultipartUploadException.MESSAGE``: its client falls back to a
#: single PUT on an error whose message starts with it.
UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
PARTS_ROUTE = "api/v1/artifacts/parts"


@dataclass
class Caller:
    """What the mpu endpoints get: the proxy's root repository as the caller may use it,
    and how the caller reaches the part route."""

    repo: Any
    parts_url: str
    headers: dict[str, str] = field(default_factory=dict)

    def multipart(self) -> Any:
        mpu = self.repo.multipart()
        if mpu is None:
            raise TrackingError(UNSUPPORTED, "NOT_IMPLEMENTED")
        return mpu


def destination(f: Fields) -> str:
    """``<directory>/<name of the client's local file>``, checked."""
    directory = safe_artifact_path(f.string("artifact_path") or "", "artifact_path")
    local = f.string("path", required=True) or ""
    name = re.split(r"[\\/]", local.rstrip("/\\"))[-1]
    name = safe_artifact_path(name)
    if not name:
        raise invalid(f"Invalid path: '{local}' names no file (parameter 'path').")
    return posixpath.join(directory, name) if directory else name


def upload_id(f: Fields) -> str:
    return f.string("upload_id", required=True) or ""


def create(f: Fields, caller: Caller) -> dict[str, Any]:
    num_parts = f.integer("num_parts", required=True, minimum=1, maximum=MAX_PARTS) or 1
    dest = destination(f)
    try:
        uid = caller.multipart().create(dest, num_parts)
    except (IsADirectoryError, NotADirectoryError, FileExistsError):
        raise invalid(
            f"Cannot write artifact '{dest}': it is a directory or lies under a file."
        ) from None
    base = f"{caller.parts_url}/{quote(dest)}?"
    return {
        "upload_id": uid,
        "credentials": [
            {
                "url": base + urlencode({"upload_id": uid, "part_number": n}),
                "part_number": n,
                "headers": caller.headers,
            }
            for n in range(1, num_parts + 1)
        ],
    }


def complete(f: Fields, caller: Caller) -> dict[str, Any]:
    dest = destination(f)
    parts = [
        (
            p.integer("part_number", required=True, minimum=1, maximum=MAX_PARTS) or 0,
            p.string("etag") or "",
        )
        for p in f.objects("parts")
    ]
    caller.multipart().complete(dest, upload_id(f), parts)
    return {}


def abort(f: Fields, caller: Caller) -> dict[str, Any]:
    caller.multipart().abort(destination(f), upload_id(f))
    return {}


class MultipartHandler(PathRpcHandler, ArtifactsMixin):
    """The three JSON routes; endpoints get a :class:`Caller`."""

    def target(self, user: Any) -> Caller:
        parts_url = self.request.protocol + "://" + self.request.host
        parts_url += url_path_join(self.base_url, "mlops", PARTS_ROUTE)
        auth = self.request.headers.get("Authorization")
        return Caller(self.root_repo(), parts_url, {"Authorization": auth} if auth else {})


class PartHandler(StreamedUploadHandler):
    """``PUT api/v1/artifacts/parts/<destination>?upload_id=&part_number=``: one part of a
    multipart upload (raw body, streamed), answered with its ``ETag``."""

    def _query(self) -> tuple[str, int]:
        f = Fields.from_query(self.request.query_arguments)
        number = f.integer("part_number", required=True, minimum=1, maximum=MAX_PARTS) or 0
        return upload_id(f), number

    def writer_opener(self) -> Callable[[], ArtifactWriter]:
        def open_part() -> ArtifactWriter:
            uid, number = self._query()
            dest = safe_artifact_path(self.path_args[0])
            declared = self.request.headers.get("Content-Length", "").strip()
            length = int(declared) if declared.isdigit() else None  # (chunked: unknown)
            mpu = Caller(self.root_repo(), "").multipart()
            return mpu.part_writer(dest, uid, number, length)  # type: ignore[no-any-return]

        return open_part

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        self.refuse_if_forged()

        async def work() -> None:
            await self.finish_upload()
            uid, number = self._query()
            dest = safe_artifact_path(path)
            mpu = Caller(self.root_repo(), "").multipart()
            self.set_header("ETag", await self.run(mpu.part_etag, dest, uid, number))
            self.send_json("{}")

        await self.guarded(work)


def routes() -> list[tuple[str, Any, dict[str, Any]]]:
    base = r"api/2\.0/mlflow-artifacts/mpu"
    out: list[tuple[str, Any, dict[str, Any]]] = [
        (
            rf"{base}/{name}/?(?P<artifact_path>.*)",
            MultipartHandler,
            {"rpcs": {"POST": fn}},
        )
        for name, fn in (("create", create), ("complete", complete), ("abort", abort))
    ]
    out.append((PARTS_ROUTE + r"/(.+)", PartHandler, {}))
    return out
