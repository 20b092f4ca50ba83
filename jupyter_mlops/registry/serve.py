"""``jupyter mlops serve <model uri>``: a scoring server speaking MLflow's protocol and the
Open Inference Protocol (V2).

MLflow's: ``GET /ping`` and ``GET /health`` (200 once the model is loaded), ``GET /version``,
``POST /invocations`` with JSON (``dataframe_split``, ``dataframe_records``, ``instances``,
``inputs``) or CSV; answers ``{"predictions": [...]}``. Bad input is a 400 with
``{"error_code": "BAD_REQUEST", "message": ...}``, an unsupported content type a 415.

V2 (KServe's): ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2``,
``GET /v2/models/{name}[/versions/{v}]``, ``GET .../ready``, ``POST .../infer`` (see
:mod:`.v2`); errors are ``{"error": ...}`` (400 bad input, 404 another model's name).

``GET /metrics``: Prometheus text (requests, latency histogram, errors by code, the model's
name and version). A body larger than ``--max-body-size`` is refused with 413 as soon as its
``Content-Length`` is read (a chunked one as soon as it grows past the limit): never buffered.

Built for single-row latency: one tornado process, the request parsed straight into a numpy
array in the model's column order and handed to the estimator (no DataFrame, no per-request
thread hop). SIGTERM stops listening, lets requests in flight finish, then exits (a rollout
switches traffic away first, so no request is cut).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
from typing import Any

from tornado import httpserver, ioloop, web

from .pyfunc import PyFuncModel
from .scoring_input import BadInput, parse_csv, parse_json, predictions_json

log = logging.getLogger("jupyter_mlops.serve")

#: Default largest request body (``--max-body-size``; MLflow's server allows 100 MB).
MAX_BODY = 20 * 1024 * 1024
ENV_MAX_BODY = "JUPYTER_MLOPS_SCORING_MAX_BODY"
#: Longest wait for requests in flight after SIGTERM, in seconds.
DRAIN_SECONDS = 30.0
#: Longest error message: the input a message quotes is cut past this.
MAX_MESSAGE = 500


def short(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    return message[:MAX_MESSAGE] + f"... ({len(message) - MAX_MESSAGE} more characters)"


def _version() -> str:
    from .._version import __version__

    return str(__version__)


class Served:
    """What every handler shares: the model, its V2 name and version, counters."""

    def __init__(
        self, model: PyFuncModel, name: str, version: str | None, uri: str, max_body: int
    ) -> None:
        from .metrics import Metrics

        self.model = model
        self.name = name
        self.version = version
        self.max_body = max_body
        self.in_flight = 0
        self.metrics = Metrics(
            {"name": name, "version": version or "", "uri": uri, "run_id": model.run_id or ""}
        )


@web.stream_request_body
class _Base(web.RequestHandler):
    #: Label of the request in /metrics (None: not counted).
    endpoint: str | None = None

    def initialize(self, served: Served) -> None:  # type: ignore[override]
        self.served = served
        self._chunks: list[bytes] = []
        self._size = 0
        self._refused = False
        self._counted = True
        served.in_flight += 1

    def _done(self) -> None:
        if self._counted:
            self._counted = False
            self.served.in_flight -= 1

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self._done()

    def set_default_headers(self) -> None:
        self.set_header("Server", "jupyter-mlops")

    def prepare(self) -> None:
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > self.served.max_body:
            self._too_large(int(length))

    def data_received(self, chunk: bytes) -> None:
        if self._refused:
            return
        self._size += len(chunk)
        if self._size > self.served.max_body:
            self._chunks = []
            self._too_large(None)
            return
        self._chunks.append(chunk)

    def _too_large(self, size: int | None) -> None:
        self._refused = True
        got = f" (Content-Length {size})" if size is not None else ""
        # Finishing before the body is read makes tornado close the connection after this
        # answer instead of reading (or buffering) the rest.
        self.error(
            413,
            f"Request body too large{got}: this server accepts at most "
            f"{self.served.max_body} bytes (--max-body-size).",
        )

    @property
    def body(self) -> bytes:
        return self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)

    def error(self, status: int, message: str, code: str = "BAD_REQUEST") -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error_code": code, "message": short(message)}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        code = "BAD_REQUEST" if status_code < 500 else "INTERNAL_ERROR"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error_code": code, "message": self._reason}))

    def compute_etag(self) -> None:
        return None

    def on_finish(self) -> None:
        self._done()
        if self.endpoint is not None:
            self.served.metrics.observe(
                self.endpoint, self.get_status(), self.request.request_time()
            )


class PingHandler(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish("\n")


class VersionHandler(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.finish(_version())


class MetricsHandler(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(self.served.metrics.render())


class InvocationsHandler(_Base):
    endpoint = "invocations"

    def post(self) -> None:
        if self._finished:
            return
        # As MLflow's scoring server: a request without a Content-Type is refused (415).
        raw = self.request.headers.get("Content-Type")
        ctype = (raw or "").split(";")[0].strip().lower()
        model = self.served.model
        columns = model.columns
        try:
            if ctype == "application/json":
                matrix, params = parse_json(self.body, columns)
            elif ctype == "text/csv":
                matrix, params = parse_csv(self.body, columns), None
            else:
                self.error(
                    415,
                    f"This predictor only supports the following content types: "
                    f"application/json, text/csv. Got '{(raw or '')[:100]}'.",
                )
                return
            params = known_params(model, params)
        except BadInput as e:
            self.error(400, str(e))
            return
        except (OverflowError, RecursionError) as e:  # a number past float64, deep nesting
            why = "nested too deeply" if isinstance(e, RecursionError) else str(e)
            self.error(400, f"The input cannot be read as numbers: {why}.")
            return
        try:
            if params:
                import pandas as pd

                data = pd.DataFrame(matrix, columns=columns) if columns else matrix
                result = model.predict(data, params)
            else:
                result = model.predict_array(matrix)
        except Exception as e:  # noqa: BLE001 - the model refused this input: the caller's problem
            self.error(400, f"Failed to predict: {type(e).__name__}: {e}")
            return
        self.set_header("Content-Type", "application/json")
        self.finish(predictions_json(result))


def known_params(model: Any, params: Any) -> dict[str, Any] | None:
    """``params`` as MLflow's pyfunc takes them (``_enforce_params_schema``): without a
    params schema in the model's signature they are ignored, whatever they are; with one
    they must be an object, and keys the schema does not name are dropped. Whatever is
    ignored is named in a warning in the log."""
    if params is None:
        return None
    schema = params_schema(model)
    if schema is None:
        if params not in ({}, None):
            what = sorted(params)[:20] if isinstance(params, dict) else "not an object"
            log.warning("params ignored (%s): the model's signature defines no params schema", what)
        return None
    if not isinstance(params, dict):
        raise BadInput(f"Parameters must be a dictionary. Got type '{type(params).__name__}'.")
    unknown = sorted(set(params) - set(schema))
    if unknown:
        log.warning(
            "Unrecognized params %s are ignored (the model's signature names %s)",
            unknown[:20],
            sorted(schema),
        )
    return {k: v for k, v in params.items() if k in schema} or None


def params_schema(model: Any) -> dict[str, Any] | None:
    """``{name: spec}`` of the signature's params schema, or None without one."""
    sig = (getattr(model, "metadata", None) or {}).get("signature") or {}
    raw = sig.get("params") if isinstance(sig, dict) else None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, list):
        return None
    return {str(p["name"]): p for p in raw if isinstance(p, dict) and "name" in p}


# -- Open Inference Protocol (V2) ---------------------------------------------------------
class _V2(_Base):
    def error(self, status: int, message: str, code: str = "") -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": short(message)}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": self._reason}))

    def ours(self, name: str, version: str | None) -> bool:
        """True for this server's model; else a 404 naming what is served."""
        s = self.served
        if name != s.name:
            self.error(404, f"Model '{name}' is not served here (this server serves '{s.name}').")
            return False
        if version is not None and version != (s.version or ""):
            self.error(
                404,
                f"Model '{name}' version '{version}' is not served here (this "
                f"server serves version '{s.version or ''}').",
            )
            return False
        return True


class V2LiveHandler(_V2):
    def get(self) -> None:
        self.finish()


class V2ServerHandler(_V2):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"name": "jupyter-mlops", "version": _version(), "extensions": []}))


class V2ModelHandler(_V2):
    def get(self, name: str, version: str | None, what: str | None) -> None:
        if not self.ours(name, version):
            return
        if what == "ready":
            self.finish()
            return
        from .v2 import model_metadata

        s = self.served
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(model_metadata(s.model.metadata, s.name, s.version, s.model.columns))
        )


class V2InferHandler(_V2):
    endpoint = "v2_infer"

    def post(self, name: str, version: str | None) -> None:
        if self._finished or not self.ours(name, version):
            return
        from .v2 import infer_response, parse_infer

        s = self.served
        try:
            matrix, rid, wanted = parse_infer(self.body, s.model.columns)
        except BadInput as e:
            self.error(400, str(e))
            return
        try:
            result = s.model.predict_array(matrix)
        except Exception as e:  # noqa: BLE001 - the model refused this input
            self.error(400, f"Failed to predict: {type(e).__name__}: {e}")
            return
        try:
            answer = infer_response(result, s.name, s.version, rid, wanted)
        except BadInput as e:
            self.error(400, str(e))
            return
        self.set_header("Content-Type", "application/json")
        self.finish(answer)


class NotFoundHandler(_Base):
    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            self.error(
                404, f"No endpoint {self.request.method} {self.request.path}", "ENDPOINT_NOT_FOUND"
            )


def make_app(
    model: PyFuncModel,
    name: str = "model",
    version: str | None = None,
    uri: str = "",
    max_body: int = MAX_BODY,
) -> web.Application:
    kw = {"served": Served(model, name, version, uri, max_body)}
    model_path = r"/v2/models/([^/]+)(?:/versions/([^/]+))?"
    app = web.Application(
        [
            (r"/ping", PingHandler, kw),
            (r"/health", PingHandler, kw),
            (r"/version", VersionHandler, kw),
            (r"/invocations", InvocationsHandler, kw),
            (r"/metrics", MetricsHandler, kw),
            (r"/v2/health/(?:live|ready)", V2LiveHandler, kw),
            (r"/v2/?", V2ServerHandler, kw),
            (model_path + r"/infer", V2InferHandler, kw),
            (model_path + r"(?:/(ready))?", V2ModelHandler, kw),
            (r".*", NotFoundHandler, kw),
        ],
        compress_response=False,
    )
    app.served = kw["served"]  # type: ignore[attr-defined]
    return app


def model_identity(model_uri: str, tracking_uri: str | None) -> tuple[str, str | None]:
    """``(name, version)`` the V2 protocol shows for ``model_uri``: the registered model's
    name and version (an alias or stage resolved now), else the directory's name."""
    m = re.fullmatch(r"models:/([^/@]+)(?:@([^/]+)|/([^/]+))/?", model_uri)
    if m and not m.group(1).startswith("m-"):
        name, alias, which = m.group(1), m.group(2), m.group(3)
        if which and which.isdigit():
            return name, which
        from .client import RegistryClient

        reg = RegistryClient(tracking_uri)
        if alias:
            return name, str(reg.get_model_version_by_alias(name, alias).version)
        versions = (
            reg.get_latest_versions(name)
            if which.lower() == "latest"
            else reg.get_latest_versions(name, [which])
        )
        return name, (str(max(int(v.version) for v in versions)) if versions else None)
    base = os.path.basename(model_uri.rstrip("/")) or "model"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", base), None


def serve(
    model_uri: str,
    host: str = "127.0.0.1",
    port: int = 5000,
    tracking_uri: str | None = None,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    max_body_size: int | None = None,
) -> None:
    """Load the model, then serve until interrupted (SIGTERM: drain, then exit)."""
    from .api import load_model

    model = load_model(model_uri, tracking_uri=tracking_uri)
    if model_name is None or model_version is None:
        name, version = model_identity(model_uri, tracking_uri)
        model_name = model_name or name
        model_version = model_version if model_version is not None else version
    if max_body_size is None:
        max_body_size = int(os.environ.get(ENV_MAX_BODY) or MAX_BODY)
    # tornado's access log costs more than a prediction: keep it for warnings only.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    app = make_app(model, model_name, model_version or None, model_uri, max_body_size)
    # Bodies are limited by the handlers (a 413 naming the limit); tornado's own cap only
    # guards against absurd sizes.
    server = httpserver.HTTPServer(app, max_body_size=1 << 40, xheaders=False)
    server.listen(port, host)
    loop = ioloop.IOLoop.current()
    served: Served = app.served  # type: ignore[attr-defined]

    def drain() -> None:
        server.stop()  # no new connections; those open keep being served
        deadline = loop.time() + DRAIN_SECONDS

        def check() -> None:
            if served.in_flight <= 0 or loop.time() > deadline:
                loop.stop()
            else:
                loop.call_later(0.01, check)

        loop.call_later(0.05, check)  # requests already on the wire get read first

    signal.signal(signal.SIGTERM, lambda *_: loop.add_callback_from_signal(drain))
    shown = f"{model_name}" + (f" version {model_version}" if model_version else "")
    print(
        f"jupyter-mlops scoring server: {model_uri} ({shown}) on http://{host}:{port} "
        f"(POST /invocations, POST /v2/models/{model_name}/infer)",
        flush=True,
    )
    try:
        loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model_uri",
        metavar="MODEL_URI",
        help="runs:/<run>/<path>, models:/<name>/<version|stage>, "
        "models:/<name>@<alias>, or a local model directory",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    p.add_argument("-p", "--port", type=int, default=5000, help="port (5000)")
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="where models:/ and runs:/ URIs are resolved (default: the "
        "resolved tracking URI, as for the client)",
    )
    p.add_argument(
        "--model-name",
        metavar="NAME",
        help="the model's name in the V2 protocol (/v2/models/NAME/infer; default: the "
        "registered model's name, else the model directory's name)",
    )
    p.add_argument(
        "--model-version",
        metavar="VERSION",
        help="the version the V2 protocol and /metrics report (default: the registered "
        "version the URI resolves to)",
    )
    p.add_argument(
        "--max-body-size",
        type=int,
        metavar="BYTES",
        help=f"largest request body; larger ones get 413 before they are read (default "
        f"{MAX_BODY}, or ${ENV_MAX_BODY})",
    )


def standby(warm_uri: str) -> argparse.Namespace | None:
    """A warm spare (``--standby``): load ``warm_uri`` to import everything a model like it
    needs (numpy, pandas, its flavor's library: most of a cold start), drop it, then wait for
    one line of JSON on stdin naming what to serve (``model_uri``, ``port`` and optionally
    ``host``, ``model_name``, ``model_version``, ``max_body_size``). A deployment's rollout
    then costs the new model's load, not an interpreter's start. None: stdin closed (the
    process that started the spare is gone): exit."""
    from .api import load_model

    try:
        load_model(warm_uri)
    except Exception as e:  # noqa: BLE001 - warming is best effort; serving will say more
        print(f"standby: warming with {warm_uri} failed: {e}", flush=True)
    import gc

    gc.collect()
    print("standby: ready for a model", flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        return None
    cmd = json.loads(line)
    return argparse.Namespace(
        model_uri=str(cmd["model_uri"]),
        host=str(cmd.get("host") or "127.0.0.1"),
        port=int(cmd["port"]),
        tracking_uri=None,
        model_name=cmd.get("model_name"),
        model_version=cmd.get("model_version"),
        max_body_size=cmd.get("max_body_size"),
    )


def run(args: argparse.Namespace) -> int:
    if getattr(args, "standby", False):
        cmd = standby(args.model_uri)
        if cmd is None:
            return 0
        args = cmd
    serve(
        args.model_uri,
        args.host,
        args.port,
        args.tracking_uri,
        model_name=args.model_name,
        model_version=args.model_version,
        max_body_size=args.max_body_size,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m jupyter_mlops.registry.serve``: the model image's entry point (needs only
    the scoring server's dependencies, not the Jupyter server's)."""
    p = argparse.ArgumentParser(
        prog="python -m jupyter_mlops.registry.serve",
        description="Serve a model (MLflow's protocol and V2).",
    )
    add_arguments(p)
    p.add_argument(
        "--standby",
        action="store_true",
        help="a warm spare: load MODEL_URI only to import what it needs, then wait for a "
        "JSON line on stdin saying what to serve (model_uri, port, model_name, ...)",
    )
    args = p.parse_args(argv)
    try:
        return run(args)
    except Exception as e:  # a missing model etc.: one line, exit 1
        from ..tracking.errors import TrackingError

        if not isinstance(e, TrackingError):
            raise
        print(f"error: {e.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
