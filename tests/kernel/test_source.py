"""Source capture for scripts: type/name tags, git tags, the snapshot.

Each case runs a real script in a subprocess (``sys.argv[0]`` and the
environment are what a user's script would have) inside a real git repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlops.client.source import capture_source, strip_credentials

MAIN = str(Path(__file__).resolve().parents[2])

PROBE = """
import json, sys
from jupyter_mlops.client.source import capture_source
kwargs = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
tags, files = capture_source(**kwargs)
print(json.dumps({"tags": tags, "files": {n: c.decode("latin-1") for n, c in files}}))
"""

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.org",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def run_probe(
    script: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> dict:
    full_env = {**os.environ, "PYTHONPATH": MAIN, **(env or {})}
    for var in ("JPY_SESSION_NAME",):
        if env is None or var not in env:
            full_env.pop(var, None)
    out = subprocess.run(
        [sys.executable, str(script), *args],
        env=full_env,
        cwd=cwd or script.parent,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return json.loads(out)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "train.py").write_text(PROBE)
    git(root, "init", "-q")
    git(root, "remote", "add", "origin", "https://alice:s3cret@git.example.org/team/project.git")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    return root


@needs_git
def test_script_in_a_clean_repo(repo: Path) -> None:
    script = repo / "src" / "train.py"
    got = run_probe(script)
    tags = got["tags"]
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"] == str(script)
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "HEAD")
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.repoURL"] == "https://git.example.org/team/project.git"
    assert tags["mlflow.source.git.dirty"] == "false"
    assert "s3cret" not in json.dumps(tags)
    assert got["files"] == {"train.py": PROBE}
    assert "mlops.source.notebook_path" not in tags


@needs_git
def test_dirty_detached_and_no_remote(repo: Path) -> None:
    script = repo / "src" / "train.py"
    git(repo, "remote", "remove", "origin")
    (repo / "notes.txt").write_text(
        "not committed\n"
    )  # untracked counts: the code is not all in the commit
    git(repo, "checkout", "-q", "--detach")
    tags = run_probe(script)["tags"]
    assert tags["mlflow.source.git.dirty"] == "true"
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "HEAD")
    assert "mlflow.source.git.branch" not in tags  # detached HEAD has none
    assert "mlflow.source.git.repoURL" not in tags


def test_outside_a_repo_and_without_git(tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text(PROBE)
    # No git executable on PATH: source tags still come, git tags do not.
    env = {"PATH": str(tmp_path / "empty-bin"), "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)}
    tags = run_probe(script, env=env)["tags"]
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"] == str(script)
    assert not any(k.startswith("mlflow.source.git") for k in tags)
    if shutil.which("git"):
        tags = run_probe(script, env={"GIT_CEILING_DIRECTORIES": str(tmp_path.parent)})["tags"]
        assert not any(k.startswith("mlflow.source.git") for k in tags)


def test_repo_without_commits_gives_no_git_tags(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    git(tmp_path, "init", "-q")
    script = tmp_path / "s.py"
    script.write_text(PROBE)
    tags = run_probe(script)["tags"]
    assert not any(k.startswith("mlflow.source.git") for k in tags)


def test_snapshot_size_cap(tmp_path: Path) -> None:
    script = tmp_path / "big.py"
    script.write_text(PROBE + "#" * 500 + "\n")
    got = run_probe(script, json.dumps({"max_snapshot_bytes": 100}))
    assert got["files"] == {}
    assert "big.py" in got["tags"]["mlops.source.snapshot_skipped"]
    assert got["tags"]["mlflow.source.name"] == str(script)


def test_script_launched_from_a_notebook_is_local(tmp_path: Path) -> None:
    """``!python train.py`` in a notebook inherits JPY_SESSION_NAME; it is still
    a script, not the notebook."""
    nb = tmp_path / "analysis.ipynb"
    nb.write_text("{}")
    script = tmp_path / "train.py"
    script.write_text(PROBE)
    got = run_probe(script, env={"JPY_SESSION_NAME": str(nb)})
    assert got["tags"]["mlflow.source.type"] == "LOCAL"
    assert got["tags"]["mlflow.source.name"] == str(script)
    assert list(got["files"]) == ["train.py"]


def test_never_raises_in_odd_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A working directory that no longer exists and a bogus argv[0].
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    monkeypatch.setattr(sys, "argv", ["/no/such/file.py"])
    tags, files = capture_source()
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"] == "/no/such/file.py"
    assert files == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:p@github.com/a/b.git", "https://github.com/a/b.git"),
        ("https://ghp_token@github.com/a/b", "https://github.com/a/b"),
        ("http://u:p@host:8080/r", "http://host:8080/r"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("ssh://git@host/r.git", "ssh://git@host/r.git"),
        ("ssh://u:p@host/r.git", "ssh://host/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


@needs_git
def test_slow_git_status_still_names_the_commit(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When ``git status`` outlives the timeout (a huge work tree), the commit
    and branch are still tagged; only the dirty flag is left out."""
    from jupyter_mlops.client.source import git_tags

    real_git = shutil.which("git")
    bin_dir = tmp_path / "slow-bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = status ] && exec sleep 300; done\n'
        f'exec {real_git} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    # the bound is per git command: the quick ones must fit in it on a loaded machine too
    tags = git_tags(str(repo / "src"), timeout=4.0)
    assert tags["mlflow.source.git.commit"] == git(repo, "rev-parse", "HEAD")
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.repoURL"] == "https://git.example.org/team/project.git"
    assert "mlflow.source.git.dirty" not in tags
