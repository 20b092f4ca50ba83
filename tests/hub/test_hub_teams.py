"""teams.yaml validation: every error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jupyter_mlops.hub.teams import TeamsConfigError, check_text, load_teams

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
images:
  py: {image: reg.example/py:1}
  torch: {image: reg.example/torch:1, gpu: true, display_name: Torch}
sizes:
  small: {cpu: 1, memory: 2G}
  big: {cpu: 4, memory: 16Gi}
gpu:
  node_selector: {gpu: "yes"}
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
teams:
  vision:
    groups: [vision]
    images: [py, torch]
    max_gpus_per_user: 2
    gpu_quota: 4
    max_servers: 5
defaults: {image: py, size: small}
"""


def errors(text: str) -> list[str]:
    config, problems = check_text(text, "teams.yaml")
    errs = [str(p) for p in problems if p.severity == "error"]
    assert (config is None) == bool(errs)
    return errs


def test_the_example_file_and_a_good_file_load():
    config = load_teams(REPO / "spawner" / "teams.example.yaml")
    assert {"vision", "nlp", "analysts"} <= set(config.teams)
    config, problems = check_text(GOOD, "teams.yaml")
    assert problems == [] and config is not None
    vision = config.teams["vision"]
    assert (vision.groups, vision.images, vision.sizes) == (
        ("vision",),
        ("py", "torch"),
        ("small", "big"),
    )
    assert (vision.max_gpus_per_user, vision.gpu_quota, vision.max_servers) == (2, 4, 5)
    assert config.images["torch"].gpu and not config.images["py"].gpu
    assert config.sizes["big"].memory_bytes_spec == "16G"
    assert config.gpu.node_selector == {"gpu": "yes"} and config.gpu.resource == "nvidia.com/gpu"


@pytest.mark.parametrize(
    "old,new,expected",
    [
        (
            "images: [py, torch]",
            "images: [py, torhc]",
            "teams.yaml:13: teams.vision.images[1]: unknown image 'torhc' (known: py, torch)",
        ),
        (
            "gpu_quota: 4",
            "gpu_quota: -4",
            "teams.yaml:15: teams.vision.gpu_quota: must be at least 0, got -4",
        ),
        (
            "gpu_quota: 4",
            "gpu_quota: 1",
            "teams.yaml:15: teams.vision.gpu_quota: team quota 1 is below its per-user maximum 2",
        ),
        (
            "max_servers: 5",
            "max_servers: 0",
            "teams.yaml:16: teams.vision.max_servers: must be at least 1, got 0",
        ),
        (
            "max_gpus_per_user: 2",
            "max_gpus_per_user: two",
            "teams.yaml:14: teams.vision.max_gpus_per_user: must be a whole number, got string 'two'",
        ),
        (
            "groups: [vision]",
            "groups: []",
            "teams.yaml:12: teams.vision.groups: must list at least one JupyterHub group",
        ),
        (
            "small: {cpu: 1, memory: 2G}",
            "small: {cpu: 0, memory: 2 gigs}",
            "teams.yaml:5: sizes.small.cpu: must be a positive number of CPUs",
        ),
        (
            "small: {cpu: 1, memory: 2G}",
            "small: {cpu: 1, memory: 2 gigs}",
            "teams.yaml:5: sizes.small.memory: must be a memory quantity",
        ),
        (
            "defaults: {image: py, size: small}",
            "defaults: {image: tf, size: small}",
            "teams.yaml:17: defaults.image: unknown image 'tf' (known: py, torch)",
        ),
        (
            "    max_servers: 5",
            "    max_servers: 5\n    colour: red",
            "teams.yaml:17: teams.vision.colour: unknown field",
        ),
        (
            "torch: {image: reg.example/torch:1, gpu: true, display_name: Torch}",
            "torch: {image: reg.example/torch:1, gpu: yes please}",
            "teams.yaml:3: images.torch.gpu: must be true or false",
        ),
        (
            "  py: {image: reg.example/py:1}",
            "  py: {image: reg.example/py:1}\n  py: {image: reg.example/py:2}",
            "teams.yaml:3: images.py: duplicate key",
        ),
        (
            "effect: NoSchedule}",
            "effect: Sometimes}",
            "teams.yaml:9: gpu.tolerations[0].effect: must be NoSchedule",
        ),
        (
            'node_selector: {gpu: "yes"}',
            "node_selector: {gpu: 1}",
            "teams.yaml:8: gpu.node_selector.gpu: label values must be strings",
        ),
        (
            "  vision:",
            "  Vision Team:",
            "teams.yaml:11: teams.Vision Team: team id 'Vision Team' must be lowercase",
        ),
    ],
)
def test_errors_name_file_line_and_field(old, new, expected):
    text = GOOD.replace(old, new)
    assert text != GOOD
    errs = errors(text)
    assert any(e.startswith(expected) for e in errs), errs


def test_yaml_syntax_errors_have_a_line():
    errs = errors(GOOD.replace("  big: {cpu: 4, memory: 16Gi}", "  big: {cpu: 4, memory: 16Gi"))
    assert len(errs) == 1 and errs[0].startswith("teams.yaml:7: <yaml>:"), errs


def test_custom_image_pattern_must_be_anchored_and_valid():
    base = GOOD + "custom_images:\n  enabled: true\n  pattern: 'PATTERN'\n"
    assert errors(base.replace("PATTERN", r"^reg\.example/.*$")) == []
    assert any(
        "custom_images.pattern: must be anchored" in e
        for e in errors(base.replace("PATTERN", r"reg\.example/.*"))
    )
    assert any(
        "teams.yaml:20: custom_images.pattern: is not a valid regular expression" in e
        for e in errors(base.replace("PATTERN", r"^reg\.example/(.*$"))
    )
    assert any(
        "custom_images.pattern: is required" in e
        for e in errors(GOOD + "custom_images:\n  enabled: true\n")
    )


def test_missing_sections_and_empty_file():
    assert errors("") == ["teams.yaml:1: <top>: the file is empty"]
    errs = errors("images:\n  py: {image: a/b:1}\n")
    assert "teams.yaml:1: sizes: is required" in errs and "teams.yaml:1: teams: is required" in errs


def test_warnings_do_not_block_loading():
    text = GOOD.replace("images: [py, torch]", "images: [py]")
    config, problems = check_text(text, "teams.yaml")
    assert config is not None
    assert [str(p) for p in problems] == [
        (
            "teams.yaml:14: warning: teams.vision.max_gpus_per_user: the team has no "
            "GPU-capable image, so its GPUs cannot be used"
        )
    ]


def test_load_teams_raises_with_every_error(tmp_path):
    path = tmp_path / "teams.yaml"
    path.write_text(
        GOOD.replace("gpu_quota: 4", "gpu_quota: -1").replace("[py, torch]", "[py, nope]")
    )
    with pytest.raises(TeamsConfigError) as e:
        load_teams(path)
    assert len([p for p in e.value.problems if p.severity == "error"]) == 2
    assert f"{path}:13: teams.vision.images[1]" in str(
        e.value
    ) and f"{path}:15: teams.vision.gpu_quota" in str(e.value)
    with pytest.raises(TeamsConfigError, match="cannot read"):
        load_teams(tmp_path / "missing.yaml")


def test_the_shipped_z2jh_values_carry_a_valid_teams_file():
    values = yaml.safe_load((REPO / "spawner" / "z2jh-values.yaml").read_text())
    text = values["hub"]["extraFiles"]["teams"]["stringData"]
    config, problems = check_text(text, "z2jh-values.yaml#teams")
    assert config is not None and problems == []
    assert (
        values["hub"]["extraEnv"]["JUPYTER_MLOPS_TEAMS"]
        == values["hub"]["extraFiles"]["teams"]["mountPath"]
    )
    assert (
        "jupyter_mlops.hub.spawner.TeamSpawner" in values["hub"]["extraConfig"]["10-jupyter-mlops"]
    )


def test_a_running_hub_keeps_the_last_good_teams_file(tmp_path):
    """Admins edit teams.yaml live: a change is picked up, a broken edit is logged and ignored."""
    import logging
    import os

    from jupyter_mlops.hub.state import TeamsCache as _TeamsCache

    path = tmp_path / "teams.yaml"
    path.write_text(GOOD)
    cache, log = _TeamsCache(), logging.getLogger("test")
    assert cache.get(str(path), log).teams["vision"].gpu_quota == 4
    path.write_text(GOOD.replace("gpu_quota: 4", "gpu_quota: 6"))
    os.utime(path, (1, 1_000_000_001))
    assert cache.get(str(path), log).teams["vision"].gpu_quota == 6
    path.write_text(GOOD.replace("gpu_quota: 4", "gpu_quota: lots"))
    os.utime(path, (1, 1_000_000_002))
    assert cache.get(str(path), log).teams["vision"].gpu_quota == 6
    with pytest.raises(TeamsConfigError):
        _TeamsCache().get(str(path), log)  # but a hub never starts on a broken file
