"""``jupyter mlops hub check`` and ``hub render`` through the argparse pair other CLIs wire in, and as a process."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from jupyter_mlops.hub import cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = str(REPO / "spawner" / "teams.example.yaml")


def run(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="jupyter mlops")
    cli.add_subparsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    code = args.func(args, out, err)
    return code, out.getvalue(), err.getvalue()


def test_check_ok_and_errors_with_line_numbers(tmp_path):
    code, out, err = run("hub", "check", EXAMPLE)
    assert code == 0 and "ok: 3 images, 3 sizes, 3 teams" in out and err == ""

    bad = tmp_path / "teams.yaml"
    bad.write_text(
        Path(EXAMPLE)
        .read_text()
        .replace("images: [scipy, torch]\n", "images: [scipy, pytorch]\n", 1)
        .replace("gpu_quota: 2", "gpu_quota: -2")
    )
    text = bad.read_text().splitlines()
    image_line = text.index("    images: [scipy, pytorch]") + 1
    quota_line = text.index("    gpu_quota: -2") + 1
    code, out, err = run("hub", "check", str(bad))
    assert code == 1
    lines = err.splitlines()
    assert (
        f"{bad}:{image_line}: teams.vision.images[1]: unknown image 'pytorch' (known: scipy, torch, tensorflow)"
        in lines
    ), err
    assert f"{bad}:{quota_line}: teams.nlp.gpu_quota: must be at least 0, got -2" in lines, err
    assert lines[-1] == f"{bad}: 2 errors"

    code, _, err = run("hub", "check", str(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read" in err


def test_render_prints_the_manifest_or_the_refusal():
    code, out, err = run(
        "hub",
        "render",
        EXAMPLE,
        "--user",
        "alice",
        "--groups",
        "vision,staff",
        "--profile",
        "torch",
        "--gpus",
        "2",
        "--size",
        "medium",
    )
    assert code == 0, err
    pod = yaml.safe_load(out)
    c = pod["spec"]["containers"][0]
    assert pod["kind"] == "Pod" and pod["metadata"]["name"] == "jupyter-alice"
    assert c["image"] == "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20"
    assert (
        c["resources"]["limits"]["nvidia.com/gpu"] == "2" and c["resources"]["limits"]["cpu"] == 4.0
    )
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert c["securityContext"]["runAsNonRoot"] is True
    env = {e["name"] for e in c["env"]}
    # no tracking service configured: no tracking environment
    assert "JUPYTERHUB_API_TOKEN" in env and "JUPYTER_MLOPS_TRACKING_URI" not in env

    code, out, err = run(
        "hub",
        "render",
        EXAMPLE,
        "--user",
        "alice",
        "--groups",
        "vision",
        "--profile",
        "torch",
        "--gpus",
        "8",
    )
    assert code == 1 and out == ""
    assert err.strip() == "refused: team vision allows at most 2 GPUs per user; 8 requested"
    code, _, err = run(
        "hub", "render", EXAMPLE, "--user", "al", "--groups", "analysts", "--profile", "torch"
    )
    assert code == 1 and "image 'torch' is not offered to al's teams (analysts)" in err


def test_render_json_as_a_process():
    """The stand-alone entry point works without a kubeconfig (render never contacts a cluster)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": "/nonexistent"}
    env.pop("KUBECONFIG", None)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_mlops.hub.cli",
            "render",
            EXAMPLE,
            "--user",
            "bo",
            "--groups",
            "nlp",
            "--profile",
            "scipy",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    pod = json.loads(p.stdout)
    c = pod["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in c["resources"]["limits"] and "nodeSelector" not in pod["spec"]
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"} in c["env"]
