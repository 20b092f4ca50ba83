"""A small client of the Kubeflow Pipelines REST API (v2beta1, and v1alpha1 for logs).

Synchronous (``requests``): the pipeline service calls it from its worker
threads, never on the event loop. Every failure becomes a :class:`KfpError`
that names the target, the request and what KFP answered, with the MLflow
error code our REST layer turns into a 4xx (or 503 when KFP is unreachable).
The bearer token is read again for every request: projected service-account
tokens are rotated by the kubelet while the server runs.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import requests

from ...tracking.errors import (
    HTTP_STATUS,
    INVALID_PARAMETER_VALUE,
    PERMISSION_DENIED,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    TrackingError,
)

#: Where a pod's projected Kubeflow Pipelines token is mounted (multi-user Kubeflow).
DEFAULT_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"
TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"

#: KFP's HTTP status → our error code. KFP's 401 is our 403: a 401 from our own API
#: would tell the browser that *its* Jupyter session is gone.
_CODES = {
    400: INVALID_PARAMETER_VALUE,
    401: PERMISSION_DENIED,
    403: PERMISSION_DENIED,
    404: RESOURCE_DOES_NOT_EXIST,
    409: "RESOURCE_CONFLICT",
}


class KfpError(TrackingError):
    """KFP refused a request or could not be reached.

    ``status`` is KFP's HTTP status (None: no answer at all, i.e. worth retrying)."""

    def __init__(self, message: str, error_code: str, status: int | None = None) -> None:
        super().__init__(message, error_code)
        self.status = status

    @property
    def http_status(self) -> int:
        """Ours, from the error code: ``status`` is the remote API's answer, not ours."""
        return HTTP_STATUS.get(self.error_code, 500)

    @property
    def transient(self) -> bool:
        """Worth trying again later: no answer, or a 5xx/429."""
        return self.status is None or self.status >= 500 or self.status == 429


class KfpClient:
    """One configured Kubeflow Pipelines endpoint, as one namespace's user."""

    def __init__(
        self,
        target: str,
        endpoint: str,
        namespace: str | None = None,
        *,
        token: Callable[[], str | None] | None = None,
        verify_ssl: bool | str = True,
        timeout: float = 30.0,
    ) -> None:
        self.target = target
        self.endpoint = endpoint.rstrip("/")
        self.namespace = namespace
        self._token = token or (lambda: None)
        self.timeout = timeout
        self.verify_ssl = verify_ssl
        self._local = threading.local()  # one Session per thread (callers use a pool)

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
            s.verify = self.verify_ssl
        return s

    # -- the calls -------------------------------------------------------------------
    def healthz(self) -> dict[str, Any]:
        return self._call("GET", "/apis/v2beta1/healthz")

    def find_experiment(self, name: str) -> dict[str, Any] | None:
        flt = {"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": name}]}
        query: dict[str, Any] = {"filter": json.dumps(flt), "page_size": 1}
        if self.namespace:
            query["namespace"] = self.namespace
        found = self._call("GET", "/apis/v2beta1/experiments", params=query)
        exps = [e for e in found.get("experiments") or [] if e.get("display_name") == name]
        return exps[0] if exps else None

    def experiment_id(self, name: str) -> str:
        """The id of the experiment ``name``, created when missing."""
        exp = self.find_experiment(name)
        if exp is None:
            body: dict[str, Any] = {"display_name": name}
            if self.namespace:
                body["namespace"] = self.namespace
            try:
                exp = self._call("POST", "/apis/v2beta1/experiments", json_body=body)
            except KfpError as e:
                if e.status != 409:  # someone else created it meanwhile: read it
                    raise
                exp = self.find_experiment(name)
                if exp is None:
                    raise
        return str(exp["experiment_id"])

    def create_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/apis/v2beta1/runs", json_body=body)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/apis/v2beta1/runs/{_seg(run_id)}")

    def terminate_run(self, run_id: str) -> None:
        self._call("POST", f"/apis/v2beta1/runs/{_seg(run_id)}:terminate", json_body={})

    def node_log(self, run_id: str, node_id: str) -> bytes:
        """A task pod's log (KFP serves it only under v1alpha1)."""
        return self._call(
            "GET", f"/apis/v1alpha1/runs/{_seg(run_id)}/nodes/{_seg(node_id)}/log", raw=True
        )

    # -- plumbing --------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        raw: bool = False,
    ) -> Any:
        headers = {"Accept": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        what = f"{method} {path}"
        try:
            r = self.session.request(
                method,
                self.endpoint + path,
                params=params,
                json=json_body,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as e:
            raise KfpError(
                f"Kubeflow target '{self.target}' is unreachable at "
                f"{self.endpoint} ({what}): {_short(e)}",
                TEMPORARILY_UNAVAILABLE,
            ) from None
        if r.status_code >= 400:
            raise self._refusal(r, what)
        if raw:
            return r.content
        if not r.content:
            return {}
        try:
            return r.json()
        except ValueError:
            raise KfpError(
                f"Kubeflow target '{self.target}' answered {what} with something "
                f"that is not JSON (is {self.endpoint} the pipelines API?)",
                TEMPORARILY_UNAVAILABLE,
                r.status_code,
            ) from None

    def _refusal(self, r: requests.Response, what: str) -> KfpError:
        said = _kfp_message(r)
        status = r.status_code
        hint = ""
        if status == 401:
            hint = " Check the target's token (token_path / token)."
        elif status == 403:
            hint = (
                f" The token is not allowed in namespace '{self.namespace}'."
                if self.namespace
                else " The token is not allowed there."
            )
        code = _CODES.get(
            status, TEMPORARILY_UNAVAILABLE if status >= 500 else INVALID_PARAMETER_VALUE
        )
        return KfpError(
            f"Kubeflow target '{self.target}' refused {what} (HTTP {status}): {said}.{hint}",
            code,
            status,
        )


def _kfp_message(r: requests.Response) -> str:
    """KFP's own words: grpc-gateway's ``{"error_message"|"message", "code", "details"}``."""
    try:
        body = r.json()
    except ValueError:
        text = r.text.strip()
        return text[:500] or r.reason or "no message"
    if isinstance(body, dict):
        for key in ("error_message", "message", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key][:2000]
    return json.dumps(body)[:500]


def _short(e: Exception) -> str:
    text = str(e)
    return text if len(text) < 300 else text[:300] + "…"


def _seg(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def token_reader(token: str | None, token_path: str | None) -> Callable[[], str | None]:
    """A callable giving the current bearer token: a fixed one, or a file read each time
    (a missing file gives none: KFP then says 401, which names the token)."""
    if token:
        return lambda: token

    def read() -> str | None:
        if not token_path:
            return None
        try:
            with open(token_path, encoding="utf-8") as f:
                return f.read().strip() or None
        except OSError:
            return None

    return read


def default_token_path() -> str | None:
    """``$KF_PIPELINES_SA_TOKEN_PATH``, else the standard mount, when the file exists."""
    path = os.environ.get(TOKEN_PATH_ENV) or DEFAULT_TOKEN_PATH
    return path if os.path.isfile(path) else None
