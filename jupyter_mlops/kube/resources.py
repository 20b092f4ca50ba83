"""Resource types of the Kubernetes API, and small readers of the objects' status."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any, NamedTuple


class Resource(NamedTuple):
    """A resource type: ``group`` ("" for the core API), ``version``, ``plural``; ``kind`` for
    bodies and messages. Custom resources need no registration: name them and use them."""

    group: str
    version: str
    plural: str
    kind: str = ""
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """``apiVersion`` of its objects: ``v1``, ``apps/v1``, ``trainer.kubeflow.org/v1alpha1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """``plural.group`` (``pods`` for the core API), as ``kubectl`` names it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(
        self, namespace: str | None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path of the collection, or of one object (and its subresource)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.key} is namespaced: a namespace is required")
            base += f"/namespaces/{_seg(namespace)}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{_seg(name)}"
            if subresource:
                base += f"/{subresource}"
        return base


def _seg(s: str) -> str:
    return urllib.parse.quote(s, safe="")


PODS = Resource("", "v1", "pods", "Pod")
SERVICES = Resource("", "v1", "services", "Service")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
EVENTS = Resource("", "v1", "events", "Event")
PERSISTENTVOLUMECLAIMS = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
JOBS = Resource("batch", "v1", "jobs", "Job")


def condition(obj: Mapping[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    """The ``status.conditions`` entry of type ``ctype`` (None: absent)."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == ctype:
            return dict(c)
    return None
