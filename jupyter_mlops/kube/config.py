"""How a target reaches its cluster: the Kubernetes settings every Kubernetes target shares.

A target's settings dict holds these fields next to its own (read them with
:func:`read_kube_config` on the target's :class:`~jupyter_mlops.targets.ConfigReader`, and pass
:data:`KUBE_FIELDS` to ``check_unknown`` with the target's own fields):

============== =================================================================================
``api_url``     the API server, ``https://host:port``; default in a pod: the in-cluster
                ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``
``namespace``   where the target's objects go; default: the pod's own namespace (its
                service-account ``namespace`` file), else ``default``
``token``       a bearer token; or ``token_path``, a file read again on every request (projected
                tokens rotate); default: the pod's service-account token when present
``ca_cert``     CA bundle to verify the API server; default: the service account's ``ca.crt``
                when ``api_url`` is the in-cluster default
``verify_tls``  false to skip TLS verification (test clusters only); default true
``request_timeout`` seconds for one API call (watches and followed logs excepted); default 30
============== =================================================================================
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..targets import ConfigReader

#: Where a pod's service-account token, CA bundle and namespace are mounted.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: The settings :func:`read_kube_config` reads.
KUBE_FIELDS = (
    "api_url",
    "namespace",
    "token",
    "token_path",
    "ca_cert",
    "verify_tls",
    "request_timeout",
)


@dataclass(frozen=True)
class KubeConfig:
    """One target's connection to a cluster, checked. ``target`` names it in messages."""

    target: str
    api_url: str
    namespace: str
    token: str | None = None
    token_path: str | None = None
    ca_cert: str | None = None
    verify_tls: bool = True
    request_timeout: float = 30.0

    def read_token(self) -> str | None:
        """The bearer token to send now (``token_path`` is read on every call)."""
        if self.token:
            return self.token
        if self.token_path:
            try:
                with open(self.token_path, encoding="utf-8") as f:
                    return f.read().strip() or None
            except OSError:
                return None
        return None


def read_kube_config(
    name: str,
    settings: ConfigReader,
    environ: Mapping[str, str] | None = None,
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
) -> KubeConfig:
    """Read the :data:`KUBE_FIELDS` of one target's settings (in-cluster defaults from
    ``environ`` and ``service_account_dir``); mistakes raise
    :class:`~jupyter_mlops.targets.TargetConfigError` naming the target and the field."""
    env = os.environ if environ is None else environ
    sa = service_account_dir
    in_cluster = False
    api_url = settings.text("api_url", url=True)
    if api_url is None:
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
        if not host:
            raise settings.error(
                "api_url",
                "required (this server does not run in a "
                "Kubernetes pod: no KUBERNETES_SERVICE_HOST)",
            )
        api_url = f"https://{_host(host)}:{port or 443}"
        in_cluster = True
    namespace = settings.text("namespace")
    if namespace is None:
        namespace = _read(os.path.join(sa, "namespace")) or "default"
    token, token_path = settings.text("token"), settings.text("token_path")
    if token and token_path:
        raise settings.error(None, "give token or token_path, not both")
    if token_path is not None and not os.path.isfile(token_path):
        raise settings.error("token_path", f"no such file: {token_path!r}")
    if token is None and token_path is None and os.path.isfile(os.path.join(sa, "token")):
        token_path = os.path.join(sa, "token")
    ca_cert = settings.text("ca_cert")
    if ca_cert is not None and not os.path.isfile(ca_cert):
        raise settings.error("ca_cert", f"no such file: {ca_cert!r}")
    if ca_cert is None and in_cluster and os.path.isfile(os.path.join(sa, "ca.crt")):
        ca_cert = os.path.join(sa, "ca.crt")
    return KubeConfig(
        target=name,
        api_url=api_url.rstrip("/"),
        namespace=namespace,
        token=token,
        token_path=token_path,
        ca_cert=ca_cert,
        verify_tls=settings.flag("verify_tls", True),
        request_timeout=settings.number("request_timeout", 30.0, high=600.0),
    )


def _host(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None
