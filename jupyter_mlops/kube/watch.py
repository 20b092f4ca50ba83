"""Following one object for as long as a target watches it: what every Kubernetes target's
watcher does (a TrainJob until Complete or Failed, an InferenceService while it serves).

    async def on_change(job: dict | None) -> bool:
        ...record the job's state through the target's context...
        return job is None or ended(job)            # True: stop following

    async def on_trouble(error: KubeError | None) -> None:
        await ctx.transition(item, None, reason=f"not watched right now: {error.message}"
                             if error else None)

    watchers.start(item.id, lambda: follow_object(client, TRAINJOBS, name, on_change,
                                                  on_trouble=on_trouble))
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .client import KubeClient, KubeError
from .resources import Resource

#: Longest wait between attempts while the API server does not answer or refuses.
MAX_BACKOFF = 60.0


async def follow_object(
    client: KubeClient,
    res: Resource,
    name: str,
    on_change: Callable[[dict[str, Any] | None], Awaitable[bool]],
    *,
    namespace: str | None = None,
    on_trouble: Callable[[KubeError | None], Awaitable[None]] | None = None,
    first_delay: float = 1.0,
    max_backoff: float = MAX_BACKOFF,
) -> None:
    """Call ``on_change(object)`` with the object as it is (None: it does not exist, or was
    deleted) and again after each change, until it returns True. It may see the same state
    twice (after a watch ends the object is listed again): make it idempotent.

    The API server's trouble does not end the following: no answer, a 5xx, a refused token
    (projected tokens rotate) or a missing permission or resource type (RBAC and CRDs get
    fixed) call ``on_trouble(error)`` once per distinct message, then retry after a delay
    doubling from ``first_delay`` up to ``max_backoff`` seconds; ``on_trouble(None)`` says
    the API answers again. Cancel the task to stop following."""
    ns = namespace or client.namespace
    selector = f"metadata.name={name}"
    delay = first_delay
    complaint: str | None = None
    while True:
        try:
            found = await client.list(res, namespace=ns, field_selector=selector)
            if complaint is not None:
                complaint = None
                if on_trouble is not None:
                    await on_trouble(None)
            delay = first_delay
            if await on_change(next(iter(found.get("items") or []), None)):
                return
            rv = (found.get("metadata") or {}).get("resourceVersion")
            async for ev in client.watch(
                res, namespace=ns, field_selector=selector, resource_version=rv
            ):
                if await on_change(None if ev.type == "DELETED" else ev.object):
                    return
        except KubeError as e:
            if e.status == 410:  # the version expired: list again at once
                continue
            if e.message != complaint:
                complaint = e.message
                if on_trouble is not None:
                    await on_trouble(e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
