"""Spawn policy, the team GPU ledger, and the pod a TeamSpawner builds (offline: no hub, no cluster)."""

from __future__ import annotations

import asyncio

import pytest

from jupyter_mlops.hub.policy import GpuLedger, SpawnRefused, plan_spawn
from jupyter_mlops.hub.teams import check_text

TEAMS = """\
images:
  py: {image: reg.example/py:1, display_name: Python}
  torch: {image: reg.example/torch:1, gpu: true, display_name: Torch}
  tf: {image: reg.example/tf:1, gpu: true}
sizes:
  small: {cpu: 1, memory: 2G}
  big: {cpu: 4, memory: 16G}
gpu:
  node_selector: {nvidia.com/gpu.present: "true"}
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
teams:
  vision:
    groups: [vision]
    images: [py, torch]
    max_gpus_per_user: 2
    gpu_quota: 4
    max_servers: 6
  nlp:
    groups: [nlp]
    images: [py, tf]
    sizes: [small]
    max_gpus_per_user: 1
    gpu_quota: 1
    custom_images: true
defaults: {image: py, size: small}
custom_images:
  enabled: true
  pattern: '^reg\\.example/[a-z]+:[0-9]+$'
  gpu: true
"""


@pytest.fixture(scope="module")
def config():
    cfg, problems = check_text(TEAMS, "teams.yaml")
    assert cfg is not None, problems
    return cfg


def refused(config, groups, options, user="alice") -> str:
    with pytest.raises(SpawnRefused) as e:
        plan_spawn(config, user, groups, options)
    return e.value.message


def test_plan_defaults_and_choices(config):
    plan = plan_spawn(config, "alice", ["vision"], {})
    assert (plan.profile, plan.image, plan.gpus, plan.size.id, plan.team.name) == (
        "py",
        "reg.example/py:1",
        0,
        "small",
        "vision",
    )
    plan = plan_spawn(config, "alice", ["vision"], {"profile": "torch", "gpus": "2", "size": "big"})
    assert (plan.image, plan.gpus, plan.size.cpu) == ("reg.example/torch:1", 2, 4.0)
    # in two teams: py is offered by both; the first team is charged unless the user names one
    assert plan_spawn(config, "zoe", ["nlp", "vision"], {"profile": "py"}).team.name == "vision"
    assert (
        plan_spawn(config, "zoe", ["nlp", "vision"], {"profile": "py", "team": "nlp"}).team.name
        == "nlp"
    )
    # custom images: only for teams that enable them, only matching the whole anchored pattern
    plan = plan_spawn(
        config,
        "nina",
        ["nlp"],
        {"profile": "custom", "image--unlisted-choice": "reg.example/x:1", "gpus": 1},
    )
    assert (plan.image, plan.custom, plan.team.name, plan.gpus) == (
        "reg.example/x:1",
        True,
        "nlp",
        1,
    )


def test_plan_refusals(config):
    assert "image 'tf' is not offered to alice's teams (vision)" in refused(
        config, ["vision"], {"profile": "tf"}
    )
    assert "team vision allows at most 2 GPUs per user; 3 requested" in refused(
        config, ["vision"], {"profile": "torch", "gpus": 3}
    )
    assert "image 'py' is not GPU-capable" in refused(
        config, ["vision"], {"profile": "py", "gpus": 1}
    )
    assert "unknown spawn options: cpu_limit, image" in refused(
        config, ["vision"], {"profile": "py", "image": "x", "cpu_limit": 64}
    )
    assert "alice is in no team" in refused(config, ["other"], {})
    assert "size 'big' is not offered to team nlp" in refused(config, ["nlp"], {"size": "big"})
    assert "team 'nlp' is not one of alice's teams offering 'torch'" in refused(
        config, ["vision"], {"profile": "torch", "team": "nlp"}
    )
    assert "custom images are not enabled for alice's teams" in refused(
        config, ["vision"], {"profile": "custom", "image--unlisted-choice": "reg.example/x:1"}
    )
    # the pattern is matched against the whole reference, not a prefix
    assert "does not match the allowed pattern" in refused(
        config,
        ["nlp"],
        {"profile": "custom", "image--unlisted-choice": "reg.example/x:1/../../evil.example/y:2"},
    )
    assert "takes no free-text image" in refused(
        config, ["vision"], {"profile": "py", "image--unlisted-choice": "reg.example/x:1"}
    )
    assert "gpus must be a whole number" in refused(
        config, ["vision"], {"profile": "torch", "gpus": True}
    )
    assert "spawn options must be a JSON object" in refused(config, ["vision"], ["torch"])


def test_ledger_quota_names_holders_and_frees_on_release(config):
    ledger = GpuLedger()
    plans = {
        u: plan_spawn(config, u, ["vision"], {"profile": "torch", "gpus": 2})
        for u in ("alice", "bob", "carol")
    }
    ledger.reserve(plans["alice"], "ns/jupyter-alice")
    usage = ledger.reserve(plans["bob"], "ns/jupyter-bob")
    assert (usage.gpus, usage.servers, usage.holders) == (4, 2, {"alice": 2, "bob": 2})
    with pytest.raises(SpawnRefused) as e:
        ledger.reserve(plans["carol"], "ns/jupyter-carol")
    assert e.value.reason == "quota"
    assert e.value.message.startswith(
        "team vision: 4 of 4 GPUs in use by alice (notebook, 2), bob (notebook, 2)"
    )
    # CPU servers still start while the GPUs are taken
    ledger.reserve(
        plan_spawn(config, "carol", ["vision"], {"profile": "torch", "gpus": 0}), "ns/jupyter-carol"
    )
    ledger.release("ns/jupyter-carol")
    ledger.release("ns/jupyter-alice")
    assert ledger.reserve(plans["carol"], "ns/jupyter-carol").holders == {"bob": 2, "carol": 2}
    # re-reserving the same server replaces its old reservation instead of counting twice
    assert ledger.reserve(plans["carol"], "ns/jupyter-carol").gpus == 4


def test_ledger_per_user_maximum_spans_servers_and_max_servers(config):
    ledger = GpuLedger()
    one = plan_spawn(config, "alice", ["vision"], {"profile": "torch", "gpus": 1})
    two = plan_spawn(config, "alice", ["vision"], {"profile": "torch", "gpus": 2})
    ledger.reserve(one, "ns/jupyter-alice")
    with pytest.raises(
        SpawnRefused, match="alice already uses 1 GPU on other servers; the per-user maximum is 2"
    ):
        ledger.reserve(two, "ns/jupyter-alice--second")
    cpu = {u: plan_spawn(config, u, ["vision"], {}) for u in "bcdefg"}
    for u in "bcdef":
        ledger.reserve(cpu[u], f"ns/jupyter-{u}")
    with pytest.raises(SpawnRefused, match="team vision: 6 of 6 servers running"):
        ledger.reserve(cpu["g"], "ns/jupyter-g")


def test_concurrent_reservations_never_over_allocate(config):
    """Many spawns racing in one event loop (as in the hub): exactly the quota is granted."""
    ledger = GpuLedger()
    plans = [
        plan_spawn(config, f"u{i}", ["vision"], {"profile": "torch", "gpus": 1}) for i in range(20)
    ]

    async def spawn(i: int) -> bool:
        await asyncio.sleep(0.001 * (i % 3))  # interleave like concurrent requests
        try:
            ledger.reserve(plans[i], f"ns/jupyter-u{i}")
        except SpawnRefused:
            return False
        await asyncio.sleep(0)
        return True

    async def main() -> list[bool]:
        return await asyncio.gather(*(spawn(i) for i in range(20)))

    granted = asyncio.run(main())
    assert sum(granted) == 4 and ledger.usage("vision").gpus == 4


def _pod(name: str, team: str, gpus: int, user: str, **meta) -> dict:
    return {
        "metadata": {
            "name": name,
            "annotations": {
                "mlops.jupyter.org/team": team,
                "mlops.jupyter.org/gpus": str(gpus),
                "mlops.jupyter.org/user": user,
            },
            **meta,
        },
        "status": {"phase": "Running"},
    }


def test_ledger_adopts_running_pods_after_a_hub_restart(config):
    ledger = GpuLedger()
    pods = {
        "ns/jupyter-alice": _pod("jupyter-alice", "vision", 2, "alice"),
        "ns/jupyter-bob": _pod("jupyter-bob", "vision", 1, "bob"),
        "ns/jupyter-old": _pod(
            "jupyter-old", "vision", 2, "old", deletionTimestamp="2026-01-01T00:00:00Z"
        ),
        "ns/other": {"metadata": {"name": "other"}, "status": {"phase": "Running"}},
    }
    ledger.adopt_pods(pods)
    assert ledger.usage("vision").holders == {"alice": 2, "bob": 1}
    with pytest.raises(
        SpawnRefused,
        match=r"team vision: 3 of 4 GPUs in use by alice \(notebook, 2\), bob \(notebook, 1\)",
    ):
        ledger.reserve(
            plan_spawn(config, "carol", ["vision"], {"profile": "torch", "gpus": 2}),
            "ns/jupyter-carol",
        )
    del pods["ns/jupyter-alice"]
    ledger.adopt_pods(pods)  # alice's pod is gone: her GPUs are free again
    assert ledger.usage("vision").holders == {"bob": 1}


# ---- the pod TeamSpawner builds ----------------------------------------------------------------------------


@pytest.fixture
def teams_file(tmp_path):
    path = tmp_path / "teams.yaml"
    path.write_text(TEAMS)
    return str(path)


def test_spawner_pod_for_gpu_then_cpu_on_the_same_instance(teams_file):
    """The sticky-override pitfall: one Spawner object, GPU spawn first, then CPU; nothing of the GPU remains."""
    from jupyter_mlops.hub.policy import GpuLedger
    from jupyter_mlops.hub.render import offline_spawner, render_pod

    async def main():
        spawner = offline_spawner(
            teams_file,
            "alice",
            ["vision"],
            namespace="jhub",
            node_selector={"pool": "users"},
            extra_resource_limits={"example.com/fpga": "0"},
        )
        try:
            ledger = GpuLedger()
            _, gpu_pod = await render_pod(
                spawner, {"profile": "torch", "gpus": 2, "size": "big"}, ledger
            )
            ledger.release("jhub/jupyter-alice")
            _, cpu_pod = await render_pod(spawner, {"profile": "torch", "gpus": "0"}, ledger)
        finally:
            await spawner.api.api_client.close()
        return gpu_pod, cpu_pod

    gpu_pod, cpu_pod = asyncio.run(main())
    c = gpu_pod["spec"]["containers"][0]
    assert c["resources"]["limits"] == {
        "cpu": 4.0,
        "memory": 16 * 1024**3,
        "nvidia.com/gpu": "2",
        "example.com/fpga": "0",
    }
    assert gpu_pod["spec"]["nodeSelector"] == {"pool": "users", "nvidia.com/gpu.present": "true"}
    assert gpu_pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    ann = gpu_pod["metadata"]["annotations"]
    assert (ann["mlops.jupyter.org/team"], ann["mlops.jupyter.org/gpus"]) == ("vision", "2")

    c = cpu_pod["spec"]["containers"][0]
    assert c["resources"]["limits"] == {"cpu": 1.0, "memory": 2 * 1024**3, "example.com/fpga": "0"}
    assert "nvidia.com/gpu" not in c["resources"]["requests"]
    assert cpu_pod["spec"]["nodeSelector"] == {"pool": "users"}  # the admin's own selector stays
    assert not cpu_pod["spec"].get("tolerations")
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"} in c["env"]
    assert cpu_pod["metadata"]["annotations"]["mlops.jupyter.org/gpus"] == "0"
    assert (
        c["securityContext"]["runAsNonRoot"] is True
        and c["securityContext"]["allowPrivilegeEscalation"] is False
    )


def test_spawner_refuses_to_run_as_root(teams_file):
    from jupyter_mlops.hub.render import offline_spawner, render_pod

    async def main():
        spawner = offline_spawner(teams_file, "alice", ["vision"], uid=0)
        try:
            await render_pod(spawner, {})
        finally:
            await spawner.api.api_client.close()

    with pytest.raises(Exception, match="refusing to run notebook pods as root"):
        asyncio.run(main())


def test_profile_list_for_the_form(teams_file):
    from jupyter_mlops.hub.spawner import build_profile_list
    from jupyter_mlops.hub.teams import load_teams

    config = load_teams(teams_file)
    profiles = build_profile_list(config, ["nlp", "vision"])
    assert [p["slug"] for p in profiles] == ["py", "torch", "tf", "custom"]
    by_slug = {p["slug"]: p for p in profiles}
    assert list(by_slug["py"]["profile_options"]["team"]["choices"]) == ["vision", "nlp"]
    assert list(by_slug["torch"]["profile_options"]["gpus"]["choices"]) == ["0", "1", "2"]
    assert list(by_slug["tf"]["profile_options"]["gpus"]["choices"]) == ["0", "1"]
    assert "gpus" not in by_slug["py"]["profile_options"]
    custom = by_slug["custom"]["profile_options"]["image"]["unlisted_choice"]
    assert custom["enabled"] and custom["validation_regex"] == r"^reg\.example/[a-z]+:[0-9]+$"
    assert build_profile_list(config, ["nobody"]) == []
