"""A Kubeflow pipeline step that runs a training job as a TrainJob and waits for it:
``python3 -m jupyter_mlops.jobs.launcher --manifest JSON``.

What a ``train:`` step of a pipeline compiles to for Kubeflow Pipelines (the launcher
component of Kubeflow's own examples): the step's pod creates the TrainJob the compiler built
(:func:`.kube.launcher_args`) in its own namespace, with its service account, follows it until
it ends, prints its state changes and, at the end, every node's log, and exits 0 when it
completed, 1 when it failed (the reason printed), so the pipeline's DAG goes on or stops
there. A retried step finds the TrainJob of its first attempt and follows it. When the step
is stopped (SIGTERM: the run was terminated) the TrainJob is deleted with it.

The cluster is the pod's own (service account, ``KUBERNETES_SERVICE_HOST``), or
``JUPYTER_MLOPS_KUBE_API_URL`` / ``JUPYTER_MLOPS_KUBE_NAMESPACE`` when set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from typing import Any

ENV_API_URL = "JUPYTER_MLOPS_KUBE_API_URL"
ENV_NAMESPACE = "JUPYTER_MLOPS_KUBE_NAMESPACE"


def _say(text: str) -> None:
    print(f"[jupyter-mlops] {text}", flush=True)


async def launch(manifest: dict[str, Any], environ: dict[str, str] | None = None) -> int:
    from ..kube.client import KubeClient, KubeError
    from ..kube.config import read_kube_config
    from ..kube.watch import follow_object
    from ..targets import ConfigReader
    from .kube import TRAINJOBS, trainjob_state

    env = dict(os.environ if environ is None else environ)
    raw = {
        k: v
        for k, v in (("api_url", env.get(ENV_API_URL)), ("namespace", env.get(ENV_NAMESPACE)))
        if v
    }
    config = read_kube_config("launcher", ConfigReader("launcher", raw), environ=env)
    client = KubeClient(config)
    name = manifest["metadata"]["name"]
    where = f"TrainJob {config.namespace}/{name}"
    try:
        try:
            await client.create(TRAINJOBS, manifest)
            _say(f"created {where}")
        except KubeError as e:
            if e.status != 409:
                _say(f"could not create {where}: {e.message}")
                return 1
            _say(f"{where} exists (a retried step): following it")
        result: list[tuple[str, str | None]] = []
        last: list[tuple[str | None, str | None]] = [(None, None)]

        async def on_change(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                result.append(("FAILED", f"{where} was deleted"))
                return True
            status, reason = trainjob_state(obj)
            if (status, reason) != last[0]:
                last[0] = (status, reason)
                if status is not None:
                    _say(f"{where}: {status}" + (f" ({reason})" if reason else ""))
            if status in ("SUCCEEDED", "FAILED"):
                result.append((status, reason))
                return True
            return False

        async def on_trouble(error: KubeError | None) -> None:
            _say(f"not watched right now: {error.message}" if error else "watched again")

        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, stopping.set)
        follow = asyncio.ensure_future(
            follow_object(client, TRAINJOBS, name, on_change, on_trouble=on_trouble)
        )
        stop = asyncio.ensure_future(stopping.wait())
        await asyncio.wait([follow, stop], return_when=asyncio.FIRST_COMPLETED)
        if not follow.done():  # the step was stopped: so is its TrainJob
            follow.cancel()
            _say(f"stopped: deleting {where}")
            await client.delete(TRAINJOBS, name, propagation="Foreground", missing_ok=True)
            return 143
        stop.cancel()
        status, reason = result[0]
        selector = (
            f"jobset.sigs.k8s.io/jobset-name={name},jobset.sigs.k8s.io/replicatedjob-name=node"
        )
        with contextlib.suppress(KubeError):
            for pod, log in (await client.logs(selector)).items():
                sys.stdout.write(f"----- {pod} -----\n")
                sys.stdout.write(log.decode("utf-8", "replace"))
        sys.stdout.flush()
        if status == "SUCCEEDED":
            _say(f"{where} completed")
            return 0
        _say(f"{where} failed: {reason}")
        return 1
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jupyter_mlops.jobs.launcher")
    ap.add_argument("--manifest", required=True, help="the TrainJob to create (JSON)")
    args = ap.parse_args(argv)
    return asyncio.run(launch(json.loads(args.manifest)))


if __name__ == "__main__":
    sys.exit(main())
