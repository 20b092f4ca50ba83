"""follow_object: a target's watcher of one object, through the API server's refusals."""

from __future__ import annotations

import asyncio

from kubehelpers import TRAINJOBS, client, unique

from jupyter_mlops.kube import KubeError, condition, follow_object

TJ = "trainjobs.trainer.kubeflow.org"


def job(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"trainer": {"command": ["true"]}}}


async def until(predicate, what: str, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_follow_reports_trouble_keeps_going_and_stops_when_done(k8s):
    k8s.register("trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob")
    ns = unique("follow")
    kc = client(k8s, namespace=ns)
    name = unique("tj")
    seen: list[str] = []
    trouble: list[str | None] = []

    async def on_change(obj: dict | None) -> bool:
        state = "absent" if obj is None else ("Complete" if condition(obj, "Complete") else "on")
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "Complete"

    async def on_trouble(e: KubeError | None) -> None:
        trouble.append(None if e is None else f"{e.status} {e.reason}")

    k8s.forbid("list", TJ, ns)
    try:
        task = asyncio.ensure_future(
            follow_object(kc, TRAINJOBS, name, on_change, on_trouble=on_trouble, first_delay=0.05)
        )
        await until(lambda: trouble == ["403 Forbidden"], "the refusal to be reported")
        assert seen == []
        k8s.forbidden.discard(("list", TJ, ns))  # RBAC fixed: it lists again
        await until(lambda: seen == ["absent"], "the object to be reported missing")
        assert trouble == ["403 Forbidden", None]
        await kc.create(TRAINJOBS, job(name))
        await until(lambda: seen == ["absent", "on"], "the object to be seen")
        await asyncio.to_thread(
            k8s.call, k8s.set_condition, TJ, ns, name, "Complete", "True", "JobsCompleted", ""
        )
        await asyncio.wait_for(task, 60)  # it stops following once on_change says so
        assert seen == ["absent", "on", "Complete"]
    finally:
        k8s.forbidden.discard(("list", TJ, ns))
        await kc.close()
