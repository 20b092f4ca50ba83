"""``jupyter mlops serve <model uri>``: a scoring server speaking MLflow's protocol.

``GET /ping`` and ``GET /health`` (200 once the model is loaded), ``GET /version``,
``POST /invocations`` with JSON (``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs``) or CSV; answers ``{"predictions": [...]}``. Bad input
is a 400 with ``{"error_code": "BAD_REQUEST", "message": ...}``, an unsupported
content type a 415.

Built for single-row latency: one tornado process, the request parsed straight
into a numpy array in the model's column order and handed to the estimator (no
DataFrame, no per-request thread hop).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tornado import httpserver, ioloop, web

from .pyfunc import PyFuncModel
from .scoring_input import BadInput, parse_csv, parse_json, predictions_json

log = logging.getLogger("jupyter_mlops.serve")

#: Largest request body (MLflow's default is 100 MB too: MLFLOW_SCORING_SERVER_REQUEST_BODY...).
MAX_BODY = 100 * 1024 * 1024


def _version() -> str:
    from .._version import __version__

    return str(__version__)


class _Base(web.RequestHandler):
    def initialize(self, model: PyFuncModel) -> None:  # type: ignore[override]
        self.model = model

    def set_default_headers(self) -> None:
        self.set_header("Server", "jupyter-mlops")

    def error(self, status: int, message: str, code: str = "BAD_REQUEST") -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error_code": code, "message": message}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        code = "BAD_REQUEST" if status_code < 500 else "INTERNAL_ERROR"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error_code": code, "message": self._reason}))

    def compute_etag(self) -> None:
        return None


class PingHandler(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish("\n")


class VersionHandler(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.finish(_version())


class InvocationsHandler(_Base):
    def post(self) -> None:
        ctype = (self.request.headers.get("Content-Type") or "application/json").split(";")[0]
        ctype = ctype.strip().lower()
        columns = self.model.columns
        try:
            if ctype == "application/json":
                matrix, params = parse_json(self.request.body, columns)
            elif ctype == "text/csv":
                matrix, params = parse_csv(self.request.body, columns), None
            else:
                self.error(
                    415,
                    f"This predictor only supports the following content types: "
                    f"application/json, text/csv. Got '{ctype}'.",
                )
                return
        except BadInput as e:
            self.error(400, str(e))
            return
        try:
            if params:
                import pandas as pd

                data = pd.DataFrame(matrix, columns=columns) if columns else matrix
                result = self.model.predict(data, params)
            else:
                result = self.model.predict_array(matrix)
        except Exception as e:  # noqa: BLE001 - the model refused this input: the caller's problem
            self.error(400, f"Failed to predict: {type(e).__name__}: {e}")
            return
        self.set_header("Content-Type", "application/json")
        self.finish(predictions_json(result))


def make_app(model: PyFuncModel) -> web.Application:
    kw = {"model": model}
    return web.Application(
        [
            (r"/ping", PingHandler, kw),
            (r"/health", PingHandler, kw),
            (r"/version", VersionHandler, kw),
            (r"/invocations", InvocationsHandler, kw),
        ],
        compress_response=False,
    )


def serve(
    model_uri: str, host: str = "127.0.0.1", port: int = 5000, tracking_uri: str | None = None
) -> None:
    """Load the model, then serve until interrupted."""
    from .api import load_model

    model = load_model(model_uri, tracking_uri=tracking_uri)
    # tornado's access log costs more than a prediction: keep it for warnings only.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    server = httpserver.HTTPServer(make_app(model), max_body_size=MAX_BODY, xheaders=False)
    server.listen(port, host)
    print(
        f"jupyter-mlops scoring server: {model_uri} on http://{host}:{port} (POST /invocations)",
        flush=True,
    )
    try:
        ioloop.IOLoop.current().start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
