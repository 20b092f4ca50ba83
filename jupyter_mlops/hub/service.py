"""``jupyter mlops service``: the hub-wide tracking service, run as a JupyterHub service.

A Jupyter server with only the jupyter-mlops extension, in its multi-user mode
(:mod:`jupyter_mlops.server.access`), identifying callers by their hub token
(:mod:`jupyter_mlops.hub.identity`). The hub starts it with ``JUPYTERHUB_API_TOKEN``,
``JUPYTERHUB_API_URL``, ``JUPYTERHUB_SERVICE_PREFIX`` and ``JUPYTERHUB_SERVICE_URL``
in its environment; MLflow clients reach it at ``<hub>/services/<name>/mlops``.

Wired into the main CLI with ``add_subparsers(subparsers)``; ``run(args)`` serves
until interrupted.
"""

from __future__ import annotations

import argparse
import os
from typing import Any
from urllib.parse import urlsplit

HUB_ENV = ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL")


def add_subparsers(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``service`` command to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "service",
        help="the hub-wide tracking service (run by JupyterHub as a service)",
        description="Serve MLflow's tracking API to every hub user from one database, "
        "authenticating each request with the caller's hub token and applying the "
        "per-user, per-team access rules.",
    )
    p.set_defaults(func=run)
    p.add_argument(
        "--database-url",
        default=os.environ.get("JUPYTER_MLOPS_SERVICE_DATABASE_URL"),
        help="SQLAlchemy URL of the shared store, postgresql://... "
        "(default: $JUPYTER_MLOPS_SERVICE_DATABASE_URL)",
    )
    p.add_argument(
        "--artifact-root",
        default=os.environ.get("JUPYTER_MLOPS_SERVICE_ARTIFACT_ROOT"),
        help="directory or fsspec URL for artifacts "
        "(default: $JUPYTER_MLOPS_SERVICE_ARTIFACT_ROOT, else the store's own)",
    )
    p.add_argument(
        "--ip",
        default=None,
        help="address to listen on (default: from $JUPYTERHUB_SERVICE_URL, else 127.0.0.1)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="port (default: from $JUPYTERHUB_SERVICE_URL, else 8000)",
    )
    p.add_argument(
        "--team-can-write",
        action="store_true",
        help="teammates may change each other's runs (default: read-only)",
    )
    p.add_argument(
        "--config",
        default=None,
        help="a jupyter_server config file with further MLOpsApp/AccessPolicy settings",
    )
    return p


def hub_service(
    name: str,
    url: str,
    database_url: str,
    artifact_root: str | None = None,
    environment: dict[str, str] | None = None,
    python: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``c.JupyterHub.services`` entry that runs this service at ``url`` and the
    ``c.JupyterHub.load_roles`` entry it needs: ``read:groups`` to learn teams from
    hub groups, ``read:users`` to know who is an admin."""
    import sys

    command = [
        python or sys.executable,
        "-m",
        "jupyter_mlops.cli",
        "service",
        f"--database-url={database_url}",
    ]
    if artifact_root:
        command.append(f"--artifact-root={artifact_root}")
    service = {
        "name": name,
        "url": url,
        "command": command,
        "environment": dict(environment or {}),
        "display": False,
        # the admin deployed it: a browser logging in is not asked to confirm (OAuth)
        "oauth_no_confirm": True,
    }
    role = {"name": f"{name}-service", "scopes": ["read:groups", "read:users"], "services": [name]}
    return service, role


def _listen_ip(host: str | None) -> str:
    """Listen on the service URL's address if it is a loopback or literal one, else on all
    (a DNS name such as z2jh's ``hub`` that the proxy resolves from another pod)."""
    import ipaddress

    if not host or host == "localhost":
        return "127.0.0.1"
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        return "0.0.0.0"


def service_argv(args: argparse.Namespace) -> list[str]:
    """The server's command line for these arguments and the hub's environment
    (command-line settings take precedence over config files found on the path)."""
    from ..cli_common import CLIError

    missing = [name for name in HUB_ENV if not os.environ.get(name)]
    if missing:
        raise CLIError(
            f"{', '.join(missing)} not set: 'jupyter mlops service' runs as a "
            "JupyterHub service (c.JupyterHub.services)"
        )
    if not args.database_url:
        raise CLIError("--database-url is required (the shared store, postgresql://...)")
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", ""))
    argv = [
        f"--ServerApp.ip={args.ip or _listen_ip(url.hostname)}",
        f"--ServerApp.port={args.port or url.port or 8000}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={os.environ.get('JUPYTERHUB_SERVICE_PREFIX', '/')}",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",  # it runs no kernels or terminals: root is no wider access
        "--ServerApp.identity_provider_class=jupyter_mlops.hub.identity.HubIdentityProvider",
        "--ServerApp.jpserver_extensions=jupyter_mlops=True",
        "--MLOpsApp.multi_user=True",
        "--MLOpsApp.export_kernel_env=False",
        f"--MLOpsApp.database_url={args.database_url}",
    ]
    if args.artifact_root:
        argv.append(f"--MLOpsApp.artifact_root={args.artifact_root}")
    if args.team_can_write:
        argv.append("--AccessPolicy.team_can_write=True")
    if args.config:
        argv.append(f"--config={args.config}")
    return argv


def run(args: argparse.Namespace) -> int:
    """Start the service and serve until interrupted."""
    from jupyter_server.serverapp import ServerApp

    app = ServerApp.instance()
    # find_extensions=False: only jupyter-mlops, whatever else is installed and enabled.
    app.initialize(argv=service_argv(args), find_extensions=False)
    app.start()
    return 0
