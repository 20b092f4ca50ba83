"""Hub team operations with 1,000 servers: one cull pass, and the status bar's quota request.

- cull pass: what ``POST /hub/api/mlops/cull`` does over 1,000 running servers in 20 teams with culling on, every
  server having reported (a mix of idle, GPU-busy, working and warned servers): collect the ready servers from the
  hub's in-memory users (``running_servers``) and decide (``HubOps.cull_pass``); the hub's CPU per pass.
  Target <= 200 ms.
- quota request: what the hub does for ``GET /hub/api/mlops/quota`` (the team's usage and holders, as JSON), served
  by a tornado handler over loopback HTTP with 1,000 servers and 200 job leases in the ledger. Target <= 20 ms.

    PYTHONPATH=. python bench/bench_hub_ops.py [--servers 1000] [--write]

--write replaces the "## Hub team operations" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import yaml
from tornado import httpclient, web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from jupyter_mlops.hub.ops import HubOps, running_servers
from jupyter_mlops.hub.policy import GpuLedger, plan_spawn
from jupyter_mlops.hub.teams import check_text

TEAMS = 20
CULL_TARGET_MS = 200.0
QUOTA_TARGET_MS = 20.0


def teams_text() -> str:
    doc = {
        "images": {"torch": {"image": "reg.example/torch:1", "gpu": True}},
        "sizes": {"small": {"cpu": 1, "memory": "2G"}},
        "teams": {
            f"team{t}": {
                "groups": [f"g{t}"],
                "images": ["torch"],
                "max_gpus_per_user": 2,
                "gpu_quota": 10_000,
                "culling": {"cpu_timeout": "2h", "gpu_timeout": "1h", "warn_before": "10m"},
            }
            for t in range(TEAMS)
        },
    }
    return yaml.safe_dump(doc)


class FakeSpawner:
    """What the cull handler reads of a JupyterHub spawner (the hub holds these in memory)."""

    def __init__(self, started: float) -> None:
        self.ready, self.pending = True, None
        when = datetime.fromtimestamp(started, timezone.utc).replace(tzinfo=None)
        self.orm_spawner = SimpleNamespace(started=when, last_activity=when)


def setup(servers: int) -> tuple[HubOps, list, list]:
    config, problems = check_text(teams_text())
    assert config is not None, problems
    clock = [1_000_000.0]
    ledger = GpuLedger()
    ops = HubOps(ledger, lambda: config, clock=lambda: clock[0])
    users = []
    for i in range(servers):
        team = f"team{i % TEAMS}"
        plan = plan_spawn(config, f"user{i}", [f"g{i % TEAMS}"], {"gpus": i % 3})
        ledger.reserve(plan, f"jhub/jupyter-user{i}")
        alloc = ledger.get(f"jhub/jupyter-user{i}")
        assert alloc is not None and alloc.team == team
        users.append(
            SimpleNamespace(name=f"user{i}", spawners={"": FakeSpawner(clock[0] - 3600 * (i % 5))})
        )
    for i in range(servers // 5):  # 200 job leases
        ops.lease(f"user{i}", config.teams[f"team{i % TEAMS}"], 1, f"job{i}")
    clock[0] += 40 * 60
    for i in range(servers):
        kind = i % 4
        ops.report(
            f"user{i}",
            "",
            {
                "last_activity": clock[0] - (60 if kind == 0 else 3000),
                "gpu_utilization": 80.0 if kind == 1 else 0.0,
                "working": ["kernel 1 is busy"] if kind == 2 else [],
            },
            f"team{i % TEAMS}",
        )
    return ops, users, clock


def bench_cull(ops: HubOps, users: list, clock: list, passes: int) -> list[float]:
    """What ``POST /hub/api/mlops/cull`` does: the running servers from the hub's users, the decisions."""
    cpu = []
    for _ in range(passes):
        clock[0] += 1
        c0 = time.thread_time()
        ops.cull_pass(running_servers(users, ops.ledger))
        cpu.append((time.thread_time() - c0) * 1000)
        for st in ops.states.values():  # keep the same mix every pass: nobody stopped for good
            st.warning = None
    return cpu


async def bench_quota(ops: HubOps, requests: int) -> tuple[list[float], list[float]]:
    config = ops.teams()
    team = [config.teams["team3"]]
    cpu: list[float] = []

    class Quota(web.RequestHandler):
        def get(self) -> None:
            c0 = time.thread_time()
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"user": "user3", "teams": ops.quota(team)}))
            cpu.append((time.thread_time() - c0) * 1000)

    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application([("/quota", Quota)]))
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    client = httpclient.AsyncHTTPClient()
    wall = []
    for _ in range(requests):
        t0 = time.perf_counter()
        r = await client.fetch(f"http://127.0.0.1:{port}/quota")
        wall.append((time.perf_counter() - t0) * 1000)
        assert json.loads(r.body)["teams"][0]["team"] == "team3"
    server.stop()
    return cpu, wall


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[max(0, int(q * len(values)) - 1)]


def write_results(r: dict) -> None:
    path = Path(__file__).resolve().parent / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = (
        "## Hub team operations\n\n"
        f"`bench/bench_hub_ops.py`: {r['servers']:,} running servers in {TEAMS} teams with culling on, all "
        f"reported (idle, GPU-busy, working, recently active), 200 job leases; {platform.python_implementation()} "
        f"{platform.python_version()}, shared 2-core machine (load average {os.getloadavg()[0]:.1f}).\n\n"
        "| measure | median | p95 | target |\n|---|---|---|---|\n"
        f"| one cull pass, hub CPU | {statistics.median(r['cull']):.1f} ms | {pct(r['cull'], 0.95):.1f} ms "
        f"| <= {CULL_TARGET_MS:g} ms |\n"
        f"| quota request (status bar), hub CPU | {statistics.median(r['quota_cpu']):.2f} ms "
        f"| {pct(r['quota_cpu'], 0.95):.2f} ms | |\n"
        f"| quota request, loopback HTTP round trip | {statistics.median(r['quota_wall']):.2f} ms "
        f"| {pct(r['quota_wall'], 0.95):.2f} ms | <= {QUOTA_TARGET_MS:g} ms |\n\n"
        "The hub's own token check and the single-user server's hop (it relays the request with the user's "
        "token) come on top of the round trip; both are a few ms on loopback.\n"
    )
    marker = "## Hub team operations\n"
    if marker in text:
        start = text.index(marker)
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--write", action="store_true", help="record in bench/RESULTS.md")
    args = parser.parse_args()
    ops, users, clock = setup(args.servers)
    bench_cull(ops, users, clock, 3)  # warm up
    cull = bench_cull(ops, users, clock, args.passes)
    quota_cpu, quota_wall = asyncio.run(bench_quota(ops, args.requests))
    r = {"servers": args.servers, "cull": cull, "quota_cpu": quota_cpu, "quota_wall": quota_wall}
    print(
        f"cull pass over {args.servers} servers: median {statistics.median(cull):.1f} ms CPU, "
        f"p95 {pct(cull, 0.95):.1f} ms (target <= {CULL_TARGET_MS:g} ms)"
    )
    print(
        f"quota request: hub CPU median {statistics.median(quota_cpu):.2f} ms; loopback round trip median "
        f"{statistics.median(quota_wall):.2f} ms, p95 {pct(quota_wall, 0.95):.2f} ms "
        f"(target <= {QUOTA_TARGET_MS:g} ms)"
    )
    if args.write:
        write_results(r)
    ok = (
        statistics.median(cull) <= CULL_TARGET_MS
        and statistics.median(quota_wall) <= QUOTA_TARGET_MS
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
