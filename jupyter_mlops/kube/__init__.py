"""The one Kubernetes API layer that pipelines, training jobs, deployments and the hub share.

- :mod:`.config`: a target's cluster settings (``api_url``, ``namespace``, ``token`` |
  ``token_path``, ``ca_cert``, ``verify_tls``, ``request_timeout``), in-cluster defaults from the
  pod's service-account files, errors naming target and field (:class:`KubeConfig`,
  :func:`read_kube_config`, :data:`KUBE_FIELDS`).
- :mod:`.client`: :class:`KubeClient`, an async client of the REST API over plain dicts: get, list,
  create, patch, replace, delete of core and custom resources in a namespace, the ``status``
  subresource, watch and ``wait_for``, pod logs (one pod, or every pod matching a label, with
  tail and follow). Every refusal is a :class:`KubeError` carrying the API's ``Status`` message.
- :mod:`.watch`: :func:`follow_object`, a target's watcher of one object: every change until
  the target is done with it, the API server's trouble reported and retried with backoff.
- :class:`Resource` names a resource type (``Resource("trainer.kubeflow.org", "v1alpha1",
  "trainjobs", kind="TrainJob")``); :data:`PODS`, :data:`DEPLOYMENTS`, ... are predefined.

A Kubernetes target (:mod:`jupyter_mlops.targets`) is built from these pieces::

    class TrainJobTarget(Target[JobItem, JobContext]):
        kind = "trainjob"

        @classmethod
        def from_config(cls, name, settings):
            settings.check_unknown({*KUBE_FIELDS, "runtime", "display_name"})
            return cls(name, read_kube_config(name, settings),
                       settings.text("runtime", default="torch-distributed"),
                       settings.text("display_name"))

        async def submit(self, item, ctx):
            await self.client.create(TRAINJOBS, manifest(item))   # KubeError: not started
            await ctx.set_ref(item, name)
            self.watchers.start(item.id, lambda: follow_object(
                self.client, TRAINJOBS, name, on_change, on_trouble=on_trouble))

Importing this package is cheap; :mod:`aiohttp` (the ``kubernetes`` extra, also pulled in by
the ``hub`` extra) is imported when a client first sends a request.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "KubeConfig": ".config",
    "read_kube_config": ".config",
    "KUBE_FIELDS": ".config",
    "SERVICE_ACCOUNT_DIR": ".config",
    "KubeClient": ".client",
    "KubeError": ".client",
    "WatchEvent": ".client",
    "Resource": ".resources",
    "PODS": ".resources",
    "SERVICES": ".resources",
    "CONFIGMAPS": ".resources",
    "SECRETS": ".resources",
    "EVENTS": ".resources",
    "PERSISTENTVOLUMECLAIMS": ".resources",
    "DEPLOYMENTS": ".resources",
    "JOBS": ".resources",
    "condition": ".resources",
    "follow_object": ".watch",
}
__all__ = [
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "EVENTS",
    "JOBS",
    "KUBE_FIELDS",
    "PERSISTENTVOLUMECLAIMS",
    "PODS",
    "SECRETS",
    "SERVICES",
    "SERVICE_ACCOUNT_DIR",
    "KubeClient",
    "KubeConfig",
    "KubeError",
    "Resource",
    "WatchEvent",
    "condition",
    "follow_object",
    "read_kube_config",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
