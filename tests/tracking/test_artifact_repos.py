"""Artifact repositories: local (atomic writes, path-escape refusal) and fsspec
(``memory://``), and how artifact URIs resolve against the store's root."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import pytest

from jupyter_mlops.tracking.artifacts import (
    FsspecArtifactRepository,
    LocalArtifactRepository,
    artifact_repo_for,
    clean_path,
)
from jupyter_mlops.tracking.errors import TrackingError


@pytest.fixture(params=["local", "memory"])
def repo(request, tmp_path: Path):
    if request.param == "local":
        return LocalArtifactRepository(str(tmp_path / "root"))
    return FsspecArtifactRepository(f"memory://art-{uuid.uuid4().hex}/root")


def test_put_open_list_delete(repo):
    repo.put("a.txt", b"hello")
    repo.put("sub/dir/b.bin", io.BytesIO(b"\x00" * 3000))
    assert repo.open("a.txt").read() == b"hello"
    assert repo.exists("sub/dir/b.bin") and repo.is_dir("sub") and not repo.is_dir("a.txt")
    top = repo.list()
    assert [(f.path, f.is_dir, f.file_size) for f in top] == [
        ("a.txt", False, 5),
        ("sub", True, None),
    ]
    assert [(f.path, f.file_size) for f in repo.list("sub/dir")] == [("sub/dir/b.bin", 3000)]
    assert repo.list("a.txt") == [] and repo.list("missing") == []
    repo.put("a.txt", b"replaced")
    assert repo.open("a.txt").read() == b"replaced"
    repo.delete("sub")
    assert not repo.exists("sub/dir/b.bin")
    with pytest.raises(TrackingError) as e:
        repo.open("sub/dir/b.bin")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    repo.delete("")
    assert repo.list() == []


@pytest.mark.parametrize(
    "bad", ["../x", "a/../../x", "/etc/passwd", "a\\..\\b", "C:/x", "..", "a/.."]
)
def test_paths_never_escape_the_root(repo, bad):
    for op in (
        lambda: repo.put(bad, b"x"),
        lambda: repo.open(bad),
        lambda: repo.list(bad),
        lambda: repo.delete(bad),
        lambda: repo.exists(bad),
    ):
        with pytest.raises(TrackingError) as e:
            op()
        assert e.value.error_code == "INVALID_PARAMETER_VALUE"


def test_local_symlink_escape_refused(tmp_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "link")
    repo = LocalArtifactRepository(str(root))
    with pytest.raises(TrackingError):
        repo.put("link/evil.txt", b"x")
    assert not (tmp_path / "outside" / "evil.txt").exists()


def test_local_write_is_atomic(tmp_path: Path):
    repo = LocalArtifactRepository(str(tmp_path / "root"))
    repo.put("f.txt", b"old")

    class Boom(io.RawIOBase):
        def __init__(self) -> None:
            self.n = 0

        def read(self, size: int = -1) -> bytes:
            self.n += 1
            if self.n > 2:
                raise OSError("connection dropped")
            return b"partial" * 10

    with pytest.raises(OSError):
        repo.put("f.txt", Boom())
    assert repo.open("f.txt").read() == b"old"  # the old file is intact
    assert [f.path for f in repo.list()] == ["f.txt"]  # no temporary file left behind
    assert os.listdir(tmp_path / "root") == ["f.txt"]


def test_upload_file(repo, tmp_path: Path):
    local = tmp_path / "model.pkl"
    local.write_bytes(b"weights")
    assert repo.upload_file(str(local), "models") == "models/model.pkl"
    assert repo.open("models/model.pkl").read() == b"weights"


def test_clean_path():
    assert clean_path("a/./b//c/") == "a/b/c"
    assert clean_path("") == clean_path(None) == ""


def test_artifact_repo_for(tmp_path: Path):
    root = str(tmp_path / "artifacts")
    r = artifact_repo_for("mlflow-artifacts:/1/abc/artifacts", root)
    assert isinstance(r, LocalArtifactRepository) and r.root == os.path.join(
        root, "1", "abc", "artifacts"
    )
    r = artifact_repo_for("mlflow-artifacts://host:5000/2/x/artifacts", root)
    assert r.root == os.path.join(root, "2", "x", "artifacts")
    r = artifact_repo_for(f"file://{tmp_path}/direct", root)
    assert isinstance(r, LocalArtifactRepository) and r.root == f"{tmp_path}/direct"
    r = artifact_repo_for("mlflow-artifacts:/3/r/artifacts", "memory://bucket/base")
    assert (
        isinstance(r, FsspecArtifactRepository) and r.root == "memory://bucket/base/3/r/artifacts"
    )
    r = artifact_repo_for("memory://other/x", root)
    assert isinstance(r, FsspecArtifactRepository)
    with pytest.raises(TrackingError):
        artifact_repo_for("mlflow-artifacts:/../../etc", root)


def test_store_artifact_repo_for_a_run(store, tmp_path: Path):
    run = store.create_run("0")
    repo = store.artifact_repo(run.info.artifact_uri)
    repo.put("plots/loss.png", b"png")
    assert repo.root.startswith(store.artifact_root)
    assert (
        Path(store.artifact_root) / "0" / run.info.run_id / "artifacts" / "plots" / "loss.png"
    ).read_bytes() == b"png"
