"""The command table: every command is reachable from ``jupyter mlops``."""

from __future__ import annotations

from clihelpers import REPO


def test_help_lists_every_command(run_cli) -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("db", "gc", "import-mlflow", "hub"):
        assert f"    {command}" in proc.stdout, command


def test_hub_commands_are_wired_in(run_cli) -> None:
    ok = run_cli("hub", "check", str(REPO / "spawner" / "teams.example.yaml"))
    assert ok.returncode == 0, ok.stderr
    assert "ok:" in ok.stdout
    missing = run_cli("hub", "check", str(REPO / "no-such-teams.yaml"))
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert run_cli("hub").returncode == 2
