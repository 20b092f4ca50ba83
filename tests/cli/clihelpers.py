"""Helpers of the CLI tests (imported as ``clihelpers``: tests/cli is on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CliRunner = Callable[..., subprocess.CompletedProcess]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_MLOPS_", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "jupyter-data")
    env.update(extra)
    return env


@pytest.fixture
def run_cli(tmp_path: Path) -> CliRunner:
    """``run_cli("db", "upgrade", env={...})``: the CLI as the console script runs
    it, in its own process; returns the CompletedProcess (text output)."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 240):
        return subprocess.run(
            [sys.executable, "-m", "jupyter_mlops.cli", *args],
            env=env or cli_env(tmp_path),
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
        )

    return run


def assert_failed_cleanly(proc: subprocess.CompletedProcess, code: int = 1) -> str:
    """Failure with ``code`` and exactly one error line, no traceback; returns it."""
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("jupyter mlops"), proc.stderr
    if code == 1:
        assert len(lines) == 1, proc.stderr
    return lines[-1]
