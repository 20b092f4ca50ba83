"""Artifacts through the fluent API and MlopsClient on real stores."""

from __future__ import annotations

import json

import pytest

from jupyter_mlops.tracking import TrackingError


def test_artifacts(mlops, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    f = tmp_path / "notes.txt"
    f.write_text("hello")
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("a")
    (d / "sub" / "b.txt").write_text("b")
    with mlops.start_run() as run:
        mlops.log_artifact(str(f))
        mlops.log_artifact(str(f), "docs")
        mlops.log_artifacts(str(d), "tree")
        mlops.log_text("plain", "texts/t.txt")
        mlops.log_dict({"a": [1, 2]}, "cfg/config.json")
        mlops.log_dict({"a": [1, 2]}, "cfg/config.yaml")
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        mlops.log_figure(fig, "plots/line.png")
        plt.close(fig)
        mlops.log_image(np.zeros((4, 5, 3), dtype=np.uint8), "img/black.png")

    client = mlops.MlopsClient()
    rid = run.info.run_id
    root = {(fi.path, fi.is_dir) for fi in client.list_artifacts(rid)}
    assert {
        ("notes.txt", False),
        ("docs", True),
        ("tree", True),
        ("texts", True),
        ("cfg", True),
    } <= root
    assert {fi.path for fi in client.list_artifacts(rid, "tree/sub")} == {"tree/sub/b.txt"}
    out = client.download_artifacts(rid, "", str(tmp_path / "dl"))
    dl = tmp_path / "dl"
    assert out == str(dl)
    assert (dl / "docs" / "notes.txt").read_text() == "hello"
    assert (dl / "tree" / "sub" / "b.txt").read_text() == "b"
    assert (dl / "texts" / "t.txt").read_text() == "plain"
    assert json.loads((dl / "cfg" / "config.json").read_text()) == {"a": [1, 2]}
    assert "a:" in (dl / "cfg" / "config.yaml").read_text()
    assert (dl / "plots" / "line.png").read_bytes()[:4] == b"\x89PNG"
    assert (dl / "img" / "black.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(TrackingError):
        mlops.log_text("x", "../escape.txt", run_id=rid)
