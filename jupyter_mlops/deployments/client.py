"""The Python API of deployments: ``dep = mlops.deploy(name, model_uri=..., target="local")``.

Deployments are run by the Jupyter server (it supervises their processes), so this talks to
its ``api/v1/deployments`` routes: the server a kernel was launched by
(``$JUPYTER_MLOPS_SERVER_URL`` and ``$JUPYTER_MLOPS_SERVER_TOKEN``, exported by the server),
else an ``http(s)://.../mlops`` tracking URI with its token, or what ``server_url=`` and
``token=`` say.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ..tracking.errors import TrackingError

#: Statuses a rollout ends in.
SETTLED = ("READY", "FAILED", "STOPPED")


def server_location(server_url: str | None = None, token: str | None = None) -> tuple[str, str]:
    """``(base URL ending in mlops/, token)`` of the Jupyter server that runs deployments."""
    if server_url:
        base = server_url.rstrip("/")
        if not base.endswith("/mlops"):
            base += "/mlops"
        return base + "/", token or os.environ.get("JUPYTER_MLOPS_SERVER_TOKEN", "")
    url = os.environ.get("JUPYTER_MLOPS_SERVER_URL")
    if url:
        return url.rstrip("/") + "/mlops/", token or os.environ.get(
            "JUPYTER_MLOPS_SERVER_TOKEN", ""
        )
    for var, tvar in (
        ("JUPYTER_MLOPS_TRACKING_URI", "JUPYTER_MLOPS_TRACKING_TOKEN"),
        ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"),
    ):
        uri = os.environ.get(var, "")
        if uri.startswith(("http://", "https://")):
            return uri.rstrip("/") + "/", token or os.environ.get(tvar, "")
    raise TrackingError(
        "Deployments are run by a Jupyter server with jupyter-mlops: none is known here. "
        "Call this from a notebook of that server, or give server_url= (and token=), or set "
        "JUPYTER_MLOPS_SERVER_URL and JUPYTER_MLOPS_SERVER_TOKEN.",
        "INVALID_PARAMETER_VALUE",
    )


class DeploymentsAPI:
    """``api/v1/deployments`` over HTTP (errors are TrackingErrors with the server's code)."""

    def __init__(self, server_url: str | None = None, token: str | None = None) -> None:
        import requests

        self.base, token = server_location(server_url, token)
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"token {token}"

    def call(
        self,
        method: str,
        path: str = "",
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        text: bool = False,
    ) -> Any:
        import requests

        url = self.base + "api/v1/deployments" + (f"/{path}" if path else "")
        try:
            r = self.session.request(method, url, json=body, params=params, timeout=60)
        except requests.RequestException as e:
            raise TrackingError(
                f"Cannot reach the Jupyter server at {self.base}: {e}", "TEMPORARILY_UNAVAILABLE"
            ) from None
        if r.status_code >= 400:
            try:
                err = r.json()
                raise TrackingError(
                    err.get("message") or r.text, err.get("error_code") or "INTERNAL_ERROR"
                )
            except ValueError:
                raise TrackingError(
                    f"HTTP {r.status_code} from {url}: {r.text[:200]}", "INTERNAL_ERROR"
                ) from None
        return r.text if text else r.json()


class Deployment:
    """A deployment as the server knows it: ``url``, ``status`` (read fresh on every access),
    ``update(model_uri=...)``, ``rollback()``, ``delete()``, ``logs()``."""

    def __init__(self, api: DeploymentsAPI, data: dict[str, Any]) -> None:
        self._api = api
        self._data = data
        self.name: str = data["name"]

    def refresh(self) -> Deployment:
        self._data = self._api.call("GET", self.name)["deployment"]
        return self

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    @property
    def status(self) -> str:
        return str(self.refresh()._data["status"])

    @property
    def url(self) -> str | None:
        if not self._data.get("url"):
            self.refresh()
        return self._data.get("url")

    @property
    def reason(self) -> str | None:
        return self.refresh()._data.get("reason")

    @property
    def model_version(self) -> str | None:
        return self.refresh()._data.get("model_version")

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.refresh()._data.get("history") or [])

    def wait(self, timeout: float = 300.0) -> Deployment:
        """Until the rollout this object last asked for (its ``generation``) has ended and
        the status settled; raises if that rollout failed (the old version keeps serving).
        A status read before the server started that rollout is the previous one's: it
        does not count."""
        generation = self._data.get("generation")
        deadline = time.monotonic() + timeout
        while True:
            d = self.refresh()._data
            observed = d.get("observed_generation")
            if generation is None or observed is None:  # a server without rollout counts
                ended, error = True, None
                if (d.get("reason") or "").find(" failed: ") > 0:
                    error = d.get("reason")
            else:
                ended = observed >= generation
                error = d.get("rollout_error") if observed == generation else None
            if ended and d["status"] in SETTLED:
                if error or d["status"] == "FAILED":
                    raise TrackingError(
                        f"Deployment '{self.name}': {error or d.get('reason')}", "INVALID_STATE"
                    )
                return self
            if time.monotonic() > deadline:
                raise TrackingError(
                    f"Deployment '{self.name}' is still {d['status']} after {timeout:.0f} s.",
                    "TEMPORARILY_UNAVAILABLE",
                )
            time.sleep(0.1)

    def update(
        self,
        model_uri: str | None = None,
        *,
        replicas: int | None = None,
        follow_alias: bool | None = None,
        resources: dict[str, Any] | None = None,
        canary_percent: int | None = None,
        wait: bool = True,
    ) -> Deployment:
        """Roll to ``model_uri`` (start new, wait ready, switch, stop old); with
        ``canary_percent`` the new version gets that share of the
        requests beside the old one until :meth:`promote` or :meth:`rollback`."""
        body = {
            k: v
            for k, v in {
                "model_uri": model_uri,
                "replicas": replicas,
                "follow_alias": follow_alias,
                "resources": resources,
                "canary_percent": canary_percent,
            }.items()
            if v is not None
        }
        self._data = self._api.call("PATCH", self.name, body)["deployment"]
        return self.wait() if wait else self

    def rollback(self, wait: bool = True) -> Deployment:
        """Serve the previously served version again (during a canary: drop the canary)."""
        self._data = self._api.call("POST", f"{self.name}/rollback", {})["deployment"]
        return self.wait() if wait else self

    def promote(self, wait: bool = True) -> Deployment:
        """The canary's version gets all the traffic."""
        self._data = self._api.call("POST", f"{self.name}/promote", {})["deployment"]
        return self.wait() if wait else self

    @property
    def traffic(self) -> list[dict[str, Any]]:
        """The versions served now and their share of the requests (``percent``)."""
        return list(self.refresh()._data.get("traffic") or [])

    def delete(self) -> None:
        self._api.call("DELETE", self.name)

    def logs(self, tail: int = 65536) -> str:
        return str(self._api.call("GET", f"{self.name}/logs", params={"tail": tail}, text=True))

    def __repr__(self) -> str:
        d = self._data
        return (
            f"<Deployment {self.name}: {d.get('status')} {d.get('url') or ''} "
            f"{d.get('model_name') or ''} v{d.get('model_version') or '?'}>"
        )


def deploy(
    name: str,
    model_uri: str,
    target: str = "local",
    *,
    replicas: int = 1,
    resources: dict[str, Any] | None = None,
    follow_alias: bool = False,
    wait: bool = True,
    server_url: str | None = None,
    token: str | None = None,
) -> Deployment:
    """Create deployment ``name`` serving ``model_uri`` (``models:/m/3``, ``models:/m@champion``
    — with ``follow_alias=True`` it follows the alias —, ``runs:/...`` or a directory) and,
    unless ``wait=False``, wait until it serves. Its ``url`` speaks MLflow's protocol
    (``/invocations``) and V2 (``/v2/models/<name>/infer``)."""
    api = DeploymentsAPI(server_url, token)
    data = api.call(
        "POST",
        body={
            "name": name,
            "model_uri": model_uri,
            "target": target,
            "replicas": replicas,
            "resources": resources,
            "follow_alias": follow_alias,
        },
    )["deployment"]
    dep = Deployment(api, data)
    return dep.wait() if wait else dep


def get_deployment(
    name: str, server_url: str | None = None, token: str | None = None
) -> Deployment:
    api = DeploymentsAPI(server_url, token)
    return Deployment(api, api.call("GET", name)["deployment"])


def list_deployments(server_url: str | None = None, token: str | None = None) -> list[Deployment]:
    api = DeploymentsAPI(server_url, token)
    return [Deployment(api, d) for d in api.call("GET")["deployments"]]
