"""Output piped into a reader that stops early (``| head``) ends the command quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clihelpers import REPO, cli_env


def test_a_closed_output_pipe_is_not_reported_as_an_error(tmp_path: Path) -> None:
    pytest.importorskip("kubespawner")  # `hub render` needs it
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: the first write fails with EPIPE, every time
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyter_mlops.cli",
                "hub",
                "render",
                str(REPO / "spawner" / "teams.example.yaml"),
                "--user",
                "alice",
                "--groups",
                "vision",
                "--profile",
                "torch",
                "--gpus",
                "1",
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(tmp_path),
            cwd=tmp_path,
            timeout=240,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == ""  # no "error: [Errno 32] Broken pipe", no "Exception ignored"
    assert proc.returncode == 1
