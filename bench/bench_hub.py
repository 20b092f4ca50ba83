"""Hub spawn path: policy check + GPU ledger + pod manifest per spawn, with 1,000 servers already running.

Measures what TeamSpawner does between a spawn request and the pod POST, without the network: validate the
user's options (plan_spawn), bring the ledger in line with the pod reflector's 1,000 pods (adopt_pods), reserve
the team's GPUs atomically, apply the plan to the spawner's traits and build + serialise the pod manifest.
Target: <= 5 ms per spawn.

    PYTHONPATH=. python bench/bench_hub.py [--servers 1000] [--spawns 400] [--write]

--write replaces the "## Hub" section of bench/RESULTS.md with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from jupyter_mlops.hub.policy import GpuLedger, plan_spawn
from jupyter_mlops.hub.render import offline_spawner

TEAMS = 20
TARGET_MS = 5.0


def teams_yaml(path: Path) -> None:
    doc = {
        "images": {
            "py": {"image": "reg.example/py:1"},
            "torch": {"image": "reg.example/torch:1", "gpu": True},
        },
        "sizes": {"small": {"cpu": 1, "memory": "2G"}, "big": {"cpu": 8, "memory": "64G"}},
        "gpu": {
            "node_selector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
        },
        "teams": {
            f"team{t}": {
                "groups": [f"g{t}"],
                "images": ["py", "torch"],
                "max_gpus_per_user": 2,
                "gpu_quota": 10_000,
                "max_servers": 10_000,
            }
            for t in range(TEAMS)
        },
        "defaults": {"image": "py", "size": "small"},
    }
    path.write_text(yaml.safe_dump(doc))


def running_pods(n: int) -> dict[str, dict]:
    """What the pod reflector holds with n single-user pods: the fields the ledger reads."""
    pods = {}
    for i in range(n):
        name = f"jupyter-user{i}"
        pods[f"jhub/{name}"] = {
            "metadata": {
                "name": name,
                "namespace": "jhub",
                "annotations": {
                    "mlops.jupyter.org/team": f"team{i % TEAMS}",
                    "mlops.jupyter.org/gpus": str(i % 2),
                    "mlops.jupyter.org/user": f"user{i}",
                    "hub.jupyter.org/username": f"user{i}",
                },
            },
            "status": {"phase": "Running", "podIP": "10.0.0.1"},
        }
    return pods


async def bench(servers: int, spawns: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "teams.yaml"
        teams_yaml(path)
        pods = running_pods(servers)
        ledger = GpuLedger()
        ledger.adopt_pods(pods)
        assert len(ledger) == servers
        users = 50
        spawners = [
            offline_spawner(str(path), f"new{u}", [f"g{u % TEAMS}"], namespace="jhub")
            for u in range(users)
        ]
        config = spawners[0].teams_config
        options = [{"profile": "torch", "gpus": 1, "size": "big"}, {"profile": "py"}]
        # warm up (imports, caches)
        for s in spawners[:5]:
            s.user_options = options[0]
            await s.get_pod_manifest()
        times, cpu_times = [], []
        try:
            for i in range(spawns):
                spawner = spawners[i % users]
                key = f"jhub/{spawner.pod_name}"
                t0, c0 = time.perf_counter(), time.thread_time()
                spawner.user_options = options[i % 2]
                plan = plan_spawn(
                    config, spawner.user.name, spawner.user_groups(), spawner.user_options
                )
                ledger.adopt_pods(pods)
                ledger.reserve(plan, key)
                spawner.apply_plan(plan)
                pod = await spawner.get_pod_manifest()
                spawner.api.api_client.sanitize_for_serialization(pod)
                times.append((time.perf_counter() - t0) * 1000)
                cpu_times.append((time.thread_time() - c0) * 1000)
                ledger.release(
                    key
                )  # the server stops again: the next spawn sees 1,000 running servers
        finally:
            for s in spawners:
                await s.api.api_client.close()
        times.sort()
        cpu_times.sort()
        return {
            "cpu_median": statistics.median(cpu_times),
            "cpu_p95": cpu_times[int(0.95 * len(cpu_times)) - 1],
            "median": statistics.median(times),
            "p95": times[int(0.95 * len(times)) - 1],
            "max": times[-1],
            "spawns": len(times),
            "servers": servers,
        }


def write_results(r: dict[str, float]) -> None:
    path = Path(__file__).resolve().parent / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = (
        "## Hub\n\n"
        f"Spawn path of `TeamSpawner` (policy check, ledger sync with the pod reflector, atomic GPU reservation, "
        f"pod manifest build and serialisation) with {r['servers']:,} servers running in {TEAMS} teams; "
        f"{r['spawns']} spawns, `bench/bench_hub.py` on {platform.python_implementation()} "
        f"{platform.python_version()}, shared 2-core machine (load average {os.getloadavg()[0]:.1f} "
        "while measuring). Wall time includes preemption by other processes; CPU time is this "
        "thread's own work.\n\n"
        "| per spawn | median | p95 | max | target |\n|---|---|---|---|---|\n"
        f"| wall time | {r['median']:.2f} ms | {r['p95']:.2f} ms | {r['max']:.2f} ms "
        f"| <= {TARGET_MS:g} ms |\n"
        f"| CPU time | {r['cpu_median']:.2f} ms | {r['cpu_p95']:.2f} ms | | |\n"
    )
    if "## Hub\n" in text:
        start = text.index("## Hub\n")
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--spawns", type=int, default=400)
    parser.add_argument(
        "--write", action="store_true", help="record the figures in bench/RESULTS.md"
    )
    args = parser.parse_args()
    r = asyncio.run(bench(args.servers, args.spawns))
    print(f"CPU time per spawn: median {r['cpu_median']:.2f} ms, p95 {r['cpu_p95']:.2f} ms")
    print(
        f"hub spawn path with {r['servers']} servers running: median {r['median']:.2f} ms, "
        f"p95 {r['p95']:.2f} ms, max {r['max']:.2f} ms over {r['spawns']} spawns (target <= {TARGET_MS:g} ms)"
    )
    if args.write:
        write_results(r)
    return 0 if r["median"] <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
