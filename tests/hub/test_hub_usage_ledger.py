"""The ledger's persisted history and GPU-hours, job leases in the team quota, and the culling decisions,
driven with a scripted clock (no hub): what the hub's routes and culler compute from."""

from __future__ import annotations

from pathlib import Path

import pytest
from hubhelpers import TEST_TEAMS

from jupyter_mlops.hub.ops import HubOps, ServerInfo
from jupyter_mlops.hub.policy import GpuLedger, SpawnRefused, plan_spawn
from jupyter_mlops.hub.teams import check_text
from jupyter_mlops.hub.usage import UsageHistory

H = 3600.0
CULLING = """
    culling:
      cpu_timeout: 2h
      gpu_timeout: 60m
      gpu_threshold: 10
      warn_before: 10m
      max_age: 1d
      exempt_users: [carol]
"""


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def teams(culling: str = CULLING, dry_run: bool = False) -> object:
    text = TEST_TEAMS.replace(
        "    gpu_quota: 4\n", "    gpu_quota: 4\n" + culling.strip("\n") + "\n", 1
    )
    if dry_run:
        text = text.replace(
            "      exempt_users: [carol]", "      exempt_users: [carol]\n      dry_run: true"
        )
    config, problems = check_text(text)
    assert config is not None, problems
    return config


def plan(config: object, user: str, gpus: int) -> object:
    return plan_spawn(config, user, ["vision"], {"profile": "torch", "gpus": gpus})  # type: ignore[arg-type]


def test_gpu_hours_of_a_scripted_sequence_survive_a_hub_restart(tmp_path: Path) -> None:
    config, clock = teams(), Clock()
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    history = UsageHistory(url, clock)
    ledger = GpuLedger(history)
    t0 = clock.t
    ledger.reserve(plan(config, "alice", 2), "jhub/jupyter-alice")  # alice 2 GPUs from t0
    clock.t += 1 * H
    ledger.reserve(plan(config, "bob", 1), "jhub/jupyter-bob")  # bob 1 GPU from t0+1h
    clock.t += 0.5 * H
    ledger.release("jhub/jupyter-alice")  # alice: 1.5 h x 2 = 3 GPU-hours
    ledger.reserve(plan(config, "carol", 0), "jhub/jupyter-carol")  # a CPU server: 0 GPU-hours
    clock.t += 2 * H
    ledger.mark_end("jhub/jupyter-bob", "cull", "idle for 60 min")
    ledger.release("jhub/jupyter-bob")  # bob: 2.5 h x 1, culled

    # the hub restarts: a new ledger over the same database adopts alice's pod started again meanwhile
    clock.t += 1 * H
    ledger.reserve(
        plan(config, "alice", 1), "jhub/jupyter-alice"
    )  # alice again, 1 GPU from t0+4.5h
    history2 = UsageHistory(url, clock)
    ledger2 = GpuLedger(history2)
    pod = {
        "metadata": {
            "annotations": {
                "mlops.jupyter.org/team": "vision",
                "mlops.jupyter.org/gpus": "1",
                "mlops.jupyter.org/user": "alice",
            }
        },
        "status": {"phase": "Running"},
    }
    ledger2.adopt_pods({"jhub/jupyter-alice": pod})  # continues the interval: no second start
    clock.t += 2 * H  # alice's second server still runs: 2 h so far

    report = history2.report(t0 - 10 * H)
    users = {u: v for (t, u), v in report.users.items()}
    assert users["alice"]["gpu_hours"] == pytest.approx(3 + 2)
    assert users["bob"]["gpu_hours"] == pytest.approx(2.5)
    assert users["bob"]["culls"] == 1
    assert users["carol"]["gpu_hours"] == 0
    assert report.teams["vision"]["gpu_hours"] == pytest.approx(7.5)
    # a window cuts intervals: the last 3 hours hold only alice's second server (2 h x 1 GPU); bob's ended
    # as the window starts
    recent = history2.report(clock.t - 3 * H)
    assert recent.teams["vision"]["gpu_hours"] == pytest.approx(2)
    rows = recent.to_csv().splitlines()
    assert rows[0] == "team,user,gpu_hours,notebook_gpu_hours,job_gpu_hours,culls"
    assert "vision,alice,2.0,2.0,0.0,0" in rows


def test_jobs_count_against_the_team_quota_and_leases_lapse(tmp_path: Path) -> None:
    config, clock = teams(), Clock()
    history = UsageHistory(f"sqlite:///{tmp_path / 'u.sqlite'}", clock)
    ledger = GpuLedger(history)
    ops = HubOps(ledger, lambda: config, lease_seconds=60, clock=clock)  # type: ignore[arg-type]
    vision = config.teams["vision"]  # type: ignore[attr-defined]
    ledger.reserve(plan(config, "alice", 2), "jhub/jupyter-alice")
    alloc, usage = ops.lease("bob", vision, 2, "train-ddp")
    assert usage.gpus == 4
    with pytest.raises(SpawnRefused) as e:
        ops.lease("carol", vision, 1, "sweep")
    assert e.value.message.startswith(
        "team vision: 4 of 4 GPUs in use by alice (notebook, 2), bob (job train-ddp, 2)"
    )
    with pytest.raises(SpawnRefused, match="bob \\(job train-ddp, 2\\)"):
        ledger.reserve(plan(config, "dan", 1), "jhub/jupyter-dan")  # a notebook sees jobs too
    lease_id = alloc.key.split("/", 1)[1]
    clock.t += 50
    assert ops.renew("bob", lease_id) is not None  # reported by bob's server: 60 s more
    assert ops.renew("alice", lease_id) is None  # not hers
    clock.t += 50
    assert ledger.usage("vision").gpus == 4
    clock.t += 61  # bob's server stopped reporting: the lease lapses
    assert ledger.usage("vision").gpus == 2
    ends = [e["event"] for e in history.events(0) if e["kind"] == "job"]
    assert ends == ["lease", "expired"]


def _server(ledger: GpuLedger, config: object, user: str, gpus: int, started: float) -> ServerInfo:
    ledger.reserve(plan(config, user, gpus), f"jhub/jupyter-{user}")
    alloc = ledger.get(f"jhub/jupyter-{user}")
    assert alloc is not None
    return ServerInfo(alloc, started)


def test_culling_warns_then_stops_idle_gpu_servers_and_keeps_working_ones(tmp_path: Path) -> None:
    config, clock = teams(), Clock()
    history = UsageHistory(f"sqlite:///{tmp_path / 'c.sqlite'}", clock)
    ledger = GpuLedger(history)
    ops = HubOps(ledger, lambda: config, clock=clock)  # type: ignore[arg-type]
    t0 = clock.t
    idle = _server(ledger, config, "alice", 2, t0)
    busy_gpu = _server(ledger, config, "bob", 1, t0)
    kernel = _server(ledger, config, "dan", 1, t0)
    exempt = _server(ledger, config, "carol", 0, t0)
    servers = [idle, busy_gpu, kernel, exempt]

    def report(user: str, util: float | None = None, working: list[str] | None = None) -> None:
        ops.report(
            user,
            "",
            {"last_activity": t0, "gpu_utilization": util, "working": working or []},
            "vision",
        )

    def at(minutes: float) -> None:  # time passes; the servers report as every minute
        clock.t = t0 + minutes * 60
        report("bob", 80)  # training in a notebook: its GPU is busy
        report("dan", 0, ["kernel 1234 is busy"])

    at(49)
    report("alice", 0)
    assert ops.cull_pass(servers) == []  # 49 min: nothing yet
    at(50)
    actions = ops.cull_pass(servers)
    assert [(a.kind, a.info.alloc.user) for a in actions] == [("warn", "alice")]
    assert (
        actions[0].message
        == "This server holds 2 GPUs and has been idle for 50 min; it stops in 10 min"
    )
    answer = ops.report("alice", "", {"last_activity": t0, "gpu_utilization": 0}, "vision")
    assert answer["notifications"][0]["actions"] == [{"id": "keep", "label": "Keep running"}]
    at(55)
    assert ops.cull_pass(servers) == []  # the warning runs
    at(60)
    actions = ops.cull_pass(servers)
    assert [(a.kind, a.info.alloc.user) for a in actions] == [("stop", "alice")]
    assert ledger.get("jhub/jupyter-alice") is None  # freed at once
    assert ledger.usage("vision").gpus == 2
    culls = [e for e in history.events(0) if e["event"] == "cull"]
    assert [(e["user"], e["reason"]) for e in culls] == [
        ("alice", "idle for 60 min (timeout 60 min), GPU utilization under 10 %")
    ]
    # carol is exempt, even past her CPU timeout
    at(5 * 60)
    assert ops.cull_pass([busy_gpu, kernel, exempt]) == []


def test_keep_running_postpones_and_a_due_schedule_protects(tmp_path: Path) -> None:
    config, clock = teams(), Clock()
    ledger = GpuLedger()
    ops = HubOps(ledger, lambda: config, clock=clock)  # type: ignore[arg-type]
    t0 = clock.t
    alice = _server(ledger, config, "alice", 2, t0)
    clock.t = t0 + 50 * 60
    assert [a.kind for a in ops.cull_pass([alice])] == ["warn"]
    ops.keep("alice", "")  # the user pressed Keep running
    clock.t = t0 + 61 * 60
    assert ops.cull_pass([alice]) == []  # idle counts from the keep
    clock.t = t0 + 50 * 60 + 50 * 60
    assert [a.kind for a in ops.cull_pass([alice])] == ["warn"]
    ops.report("alice", "", {"next_schedule": clock.t + 30 * 60}, "vision")
    clock.t += 20 * 60
    ops.report("alice", "", {"next_schedule": clock.t + 10 * 60}, "vision")
    assert ops.cull_pass([alice]) == []  # a schedule is due within the timeout: kept
    assert ops.state("alice", "").warning is None  # and the warning withdrawn


def test_max_age_stops_a_used_server_but_never_one_at_work(tmp_path: Path) -> None:
    config, clock = teams(), Clock()  # max_age 1d, warned 10 min before
    history = UsageHistory(f"sqlite:///{tmp_path / 'a.sqlite'}", clock)
    ledger = GpuLedger(history)
    ops = HubOps(ledger, lambda: config, clock=clock)  # type: ignore[arg-type]
    t0 = clock.t
    used = _server(ledger, config, "bob", 1, t0)
    working = _server(ledger, config, "dan", 1, t0)

    def at(minutes: float) -> None:  # both used all along: recent activity, a busy GPU
        clock.t = t0 + minutes * 60
        for user in ("bob", "dan"):
            body = {"last_activity": clock.t, "gpu_utilization": 80, "working": []}
            if user == "dan":
                body["working"] = ["pipeline run 01234567 is running"]
            ops.report(user, "", body, "vision")

    at(24 * 60 - 11)
    assert ops.cull_pass([used, working]) == []
    at(24 * 60 - 10)
    (warn,) = ops.cull_pass([used, working])
    assert (warn.kind, warn.info.alloc.user) == ("warn", "bob")
    assert warn.message == (
        "This server holds 1 GPU and has been running for 23 h 50 min (at most 24 h); "
        "it stops in 10 min"
    )
    # the maximum age is not postponed: no Keep running, and pressing it anyway (or using the server) keeps
    # the warning
    answer = ops.report("bob", "", {"last_activity": clock.t, "gpu_utilization": 80}, "vision")
    assert answer["notifications"][0]["actions"] == []
    ops.keep("bob", "")
    assert ops.state("bob", "").warning is not None
    at(24 * 60)
    (stop,) = ops.cull_pass([used, working])
    assert (stop.kind, stop.info.alloc.user) == ("stop", "bob")
    assert ledger.get("jhub/jupyter-bob") is None
    assert ledger.get("jhub/jupyter-dan") is not None  # its pipeline runs: kept past the age
    culls = [(e["user"], e["reason"]) for e in history.events(0) if e["event"] == "cull"]
    assert culls == [("bob", "older than the maximum age 24 h")]


def test_dry_run_stops_nothing(tmp_path: Path) -> None:
    config, clock = teams(dry_run=True), Clock()
    ledger = GpuLedger()
    ops = HubOps(ledger, lambda: config, clock=clock)  # type: ignore[arg-type]
    alice = _server(ledger, config, "alice", 2, clock.t)
    clock.t += 3 * H
    for _ in range(3):
        actions = ops.cull_pass([alice])
        assert [(a.kind, a.dry_run) for a in actions] == [("warn", True)]
    assert ledger.get("jhub/jupyter-alice") is not None
    assert ops.state("alice", "").warning is None  # nobody was warned either


def test_culling_settings_are_checked_with_line_and_field() -> None:
    bad = TEST_TEAMS.replace(
        "    gpu_quota: 4\n",
        "    gpu_quota: 4\n    culling:\n      gpu_timeout: 10m\n      warn_before: 20m\n      gpu_threshold: 150\n"
        "      idle: 5\n",
        1,
    )
    config, problems = check_text(bad, "teams.yaml")
    assert config is None
    text = "\n".join(str(p) for p in problems)
    assert "teams.vision.culling.idle: unknown field" in text
    assert "teams.vision.culling.gpu_threshold: must be between 0 and 100, got 150" in text
    assert (
        "teams.vision.culling.warn_before: the warning (1200 s) must come before the gpu_timeout"
        in text
    )
    assert "teams.yaml:" in text


def test_the_shipped_hub_config_serves_team_operations_and_runs_the_culler(
    tmp_path: Path, monkeypatch
) -> None:
    """spawner/jupyterhub_config.py: the /hub/api/mlops/ handlers and the culler service with its role."""
    from traitlets.config.loader import PyFileConfigLoader

    from jupyter_mlops.hub.api import handlers

    (tmp_path / "teams.yaml").write_text(TEST_TEAMS)
    monkeypatch.setenv("JUPYTER_MLOPS_TEAMS", str(tmp_path / "teams.yaml"))
    monkeypatch.setenv("JUPYTER_MLOPS_CULL_EVERY", "30")
    spawner_dir = Path(__file__).resolve().parents[2] / "spawner"
    c = PyFileConfigLoader("jupyterhub_config.py", str(spawner_dir)).load_config()
    routes = [route for route, _ in c.JupyterHub.extra_handlers.get_value([])]  # appended to
    assert routes == [route for route, _ in handlers()]
    assert "/api/mlops/cull" in routes and "/api/mlops/usage" in routes
    (culler,) = [s for s in c.JupyterHub.services.get_value([]) if s["name"] == "mlops-culler"]
    assert culler["command"][-3:] == ["culler", "--every=30"] or culler["command"][-2:] == [
        "culler",
        "--every=30",
    ]
    (role,) = [r for r in c.JupyterHub.load_roles.get_value([]) if r["name"] == "mlops-culler"]
    assert role == {
        "name": "mlops-culler",
        "scopes": ["admin:servers"],
        "services": ["mlops-culler"],
    }
    monkeypatch.setenv("JUPYTER_MLOPS_CULL_EVERY", "0")
    c = PyFileConfigLoader("jupyterhub_config.py", str(spawner_dir)).load_config()
    services = c.JupyterHub.services
    assert not [
        s
        for s in (services.get_value([]) if hasattr(services, "get_value") else services)
        if s["name"] == "mlops-culler"
    ]
