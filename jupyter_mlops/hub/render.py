"""Build the pod manifest a spawn would create, without a hub or a cluster (CLI ``render`` and the benchmark).

It runs the same steps as ``TeamSpawner.load_user_options`` and ``get_pod_manifest`` — validate, reserve in a
ledger, apply the plan — on a spawner whose user and hub are stand-ins.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from .policy import GpuLedger, SpawnPlan

#: a kubeconfig that names no reachable cluster: KubeSpawner insists on loading one, render never calls the API
_DUMMY_KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "offline",
    "clusters": [{"name": "offline", "cluster": {"server": "http://127.0.0.1:1"}}],
    "users": [{"name": "offline", "user": {"token": "offline"}}],
    "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
}


def ensure_kubeconfig() -> None:
    """Point $KUBECONFIG at a dummy file when no cluster configuration exists (render never contacts a cluster)."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") or os.environ.get("KUBECONFIG"):
        return
    if Path("~/.kube/config").expanduser().exists():
        return
    fd, path = tempfile.mkstemp(prefix="mlops-offline-kubeconfig-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(_DUMMY_KUBECONFIG, f)
    os.environ["KUBECONFIG"] = path
    # kubernetes_asyncio reads $KUBECONFIG once, at import: tell it if it was imported already
    kube_config: Any = sys.modules.get("kubernetes_asyncio.config.kube_config")
    if kube_config is not None:
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = path


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


class OfflineUser:
    """The parts of JupyterHub's User a spawner reads while building a pod."""

    def __init__(self, name: str, groups: list[str], uid: int = 1) -> None:
        self.name = name
        self.id = uid
        self.url = f"/user/{name}/"
        self.groups = [_Named(g) for g in groups]


class OfflineHub:
    def __init__(self) -> None:
        self.public_host = ""
        self.url = "http://hub:8081/hub/"
        self.base_url = "/hub/"
        self.api_url = "http://hub:8081/hub/api"


def offline_spawner(
    teams_file: str, user: str, groups: list[str], config: Any = None, **traits: Any
) -> Any:
    """A TeamSpawner for ``user`` in ``groups``; must be called with an event loop running."""
    ensure_kubeconfig()
    from .spawner import TeamSpawner

    kwargs: dict[str, Any] = {"teams_file": teams_file, **traits}
    if config is not None:
        kwargs["config"] = config
    spawner = TeamSpawner(_mock=True, user=OfflineUser(user, groups), hub=OfflineHub(), **kwargs)
    spawner.api_token = "<the user's hub API token>"
    return spawner


async def render_pod(
    spawner: Any, options: dict[str, Any], ledger: GpuLedger | None = None, key: str | None = None
) -> tuple[SpawnPlan, dict[str, Any]]:
    """Validate ``options``, reserve in ``ledger`` and return the plan and the pod as Kubernetes JSON.

    Raises :class:`~jupyter_mlops.hub.policy.SpawnRefused` exactly where a real spawn would be refused.
    """
    spawner.user_options = options
    plan = spawner.plan()
    ledger = ledger if ledger is not None else GpuLedger()
    ledger.reserve(plan, key or f"{spawner.namespace}/{spawner.pod_name}")
    spawner.apply_plan(plan)
    spawner._mlops_plan = plan
    pod = await spawner.get_pod_manifest()
    # the spawner's own client only serialises here: render never sends a request
    return plan, spawner.api.api_client.sanitize_for_serialization(pod)
