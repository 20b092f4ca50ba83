"""``jupyter mlops models build-context``: the Dockerfile has what an image needs, and the
image's environment, built the way the Dockerfile builds it (its requirements.txt into a fresh
virtualenv), runs the image's entry point from the context directory and serves the model.

The fresh virtualenv sees this test environment's site-packages through a path entry (so
``pip install --no-index -r requirements.txt`` resolves the requirements offline, in seconds,
and fails if one is not satisfiable), but not its ``.pth`` files: the editable install of
jupyter-mlops is invisible there, so the server runs from the context's ``serving/`` copy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pandas as pd
import pytest
import requests
from serverproc import child_env, start_server, stop_process
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops

X = pd.DataFrame({"a": [0.0, 1.0, 0.2, 0.9], "b": [1.0, 0.0, 0.9, 0.1]})
Y = [0, 1, 0, 1]


def cli(*args: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(root),
    )


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    root = tmp_path_factory.mktemp("image")
    db = f"sqlite:///{root / 'mlops.db'}"
    name = f"churn-{uuid.uuid4().hex[:6]}"
    mlops.set_tracking_uri(db)
    try:
        mlops.set_experiment("images")
        with mlops.start_run(tags={"mlflow.source.git.commit": "0123abcd"}) as run:
            mlops.log_model(
                LogisticRegression().fit(X, Y),
                "model",
                input_example=X[:2],
                registered_model_name=name,
            )
    finally:
        mlops.set_tracking_uri(None)
    out = root / "ctx"
    p = cli(
        "models", "build-context", f"models:/{name}/1", str(out), "--tracking-uri", db, root=root
    )
    assert p.returncode == 0, p.stderr
    return {"dir": out, "name": name, "run_id": run.info.run_id, "db": db, "root": root}


def test_dockerfile_has_what_an_image_needs(context):
    text = (context["dir"] / "Dockerfile").read_text()
    v = sys.version_info
    assert f"ARG PYTHON_IMAGE=python:{v.major}.{v.minor}-slim\nFROM ${{PYTHON_IMAGE}}" in text
    assert "RUN python -m pip install --no-cache-dir -r /opt/mlops/requirements.txt" in text
    assert "COPY model/ /opt/ml/model/" in text and "COPY serving/ /opt/mlops/serving/" in text
    assert re.search(r"^USER 10001$", text, re.M) and "useradd --system --uid 10001" in text
    assert re.search(r"^EXPOSE 8080$", text, re.M)
    assert "HEALTHCHECK" in text and "/v2/health/ready" in text
    for label, value in [
        ("org.opencontainers.image.title", context["name"]),
        ("org.opencontainers.image.version", "1"),
        ("org.opencontainers.image.revision", "0123abcd"),
        ("io.jupyter-mlops.model.name", context["name"]),
        ("io.jupyter-mlops.model.version", "1"),
        ("io.jupyter-mlops.model.run-id", context["run_id"]),
        ("io.jupyter-mlops.git-commit", "0123abcd"),
    ]:
        assert f'{label}="{value}"' in text, label
    entry = json.loads(re.search(r"^ENTRYPOINT (.*)$", text, re.M).group(1))
    assert entry[:4] == ["python", "-m", "jupyter_mlops.registry.serve", "/opt/ml/model"]
    assert entry[entry.index("--port") + 1] == "8080"
    reqs = (context["dir"] / "requirements.txt").read_text().splitlines()
    assert any(r.startswith("scikit-learn==") for r in reqs)
    assert any(r.startswith("tornado==") for r in reqs)
    assert not any("jupyter-mlops" in r or "jupyter_mlops" in r for r in reqs)
    assert (context["dir"] / "model" / "MLmodel").is_file()
    assert (context["dir"] / "serving" / "jupyter_mlops" / "registry" / "serve.py").is_file()
    assert not (context["dir"] / "serving" / "jupyter_mlops" / "labextension").exists()


def test_the_image_environment_runs_the_entry_point(context, tmp_path):
    ctx = context["dir"]
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(site.strip(), "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # RUN python -m pip install -r requirements.txt, offline against what is installed here
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-index",
            "--disable-pip-version-check",
            "-r",
            str(ctx / "requirements.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    text = (ctx / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (.*)$", text, re.M).group(1))
    env = {k: v for k, v in child_env(tmp_path).items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = "serving"  # ENV PYTHONPATH=/opt/mlops/serving
    where = subprocess.run(
        [str(py), "-c", "import jupyter_mlops; print(jupyter_mlops.__file__)"],
        cwd=ctx,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where.strip()).resolve().is_relative_to(ctx.resolve() / "serving")
    log_path = tmp_path / "image.log"

    def launch(port: int) -> subprocess.Popen:
        cmd = [str(py) if a == "python" else "model" if a == "/opt/ml/model" else a for a in entry]
        cmd[cmd.index("--port") + 1] = str(port)
        cmd[cmd.index("--host") + 1] = "127.0.0.1"
        with open(log_path, "ab") as log:
            return subprocess.Popen(cmd, cwd=ctx, env=env, stdout=log, stderr=subprocess.STDOUT)

    def ready(port: int) -> bool:  # what the HEALTHCHECK asks
        return requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=10).ok

    proc, port = start_server(launch, ready, log_path, "the image's entry point")
    try:
        url = f"http://127.0.0.1:{port}"
        r = requests.post(
            url + "/invocations", json={"dataframe_records": X.to_dict("records")}, timeout=30
        )
        assert r.json() == {"predictions": Y}
        body = {
            "inputs": [
                {"name": "x", "shape": [4, 2], "datatype": "FP64", "data": X.values.tolist()}
            ]
        }
        r = requests.post(f"{url}/v2/models/{context['name']}/infer", json=body, timeout=30)
        assert r.json()["model_version"] == "1" and r.json()["outputs"][0]["data"] == Y
    finally:
        stop_process(proc)


def test_build_image_names_the_builders_it_looked_for(context):
    from jupyter_mlops.deployments.image import NoBuilder, find_builder

    try:
        find_builder()
    except NoBuilder:
        pass
    else:
        pytest.skip("a container builder is usable here: see test_real_image")
    p = cli(
        "models",
        "build-image",
        f"models:/{context['name']}/1",
        "--tag",
        "x:1",
        "--tracking-uri",
        context["db"],
        root=context["root"],
    )
    assert p.returncode == 1
    assert "No usable container builder: looked for docker, podman, buildah" in p.stderr
    assert "docker:" in p.stderr  # and why each one was not usable


def test_real_image(context, tmp_path):
    """With docker, podman or buildah usable here: build the image, run it, score."""
    from jupyter_mlops.deployments.image import NoBuilder, find_builder

    try:
        exe = find_builder()
    except NoBuilder as e:
        pytest.skip(str(e))
    if os.path.basename(exe) == "buildah":
        pytest.skip("buildah builds but does not run images; podman or docker is needed")
    tag = f"mlops-test-{uuid.uuid4().hex[:8]}:1"
    p = cli(
        "models",
        "build-image",
        f"models:/{context['name']}/1",
        "--tag",
        tag,
        "--tracking-uri",
        context["db"],
        root=context["root"],
    )
    assert p.returncode == 0, p.stdout + p.stderr
    reg = mlops.RegistryClient(context["db"])
    assert reg.get_model_version(context["name"], 1).tags["mlops.image"] == tag
    run = subprocess.run(
        [exe, "run", "-d", "-P", tag], capture_output=True, text=True, check=True, timeout=120
    )
    cid = run.stdout.strip()
    try:
        port = (
            subprocess.run([exe, "port", cid, "8080"], capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[0]
            .rsplit(":", 1)[1]
        )
        url = f"http://127.0.0.1:{port}"
        import time

        end = time.monotonic() + 120
        while time.monotonic() < end:
            try:
                if requests.get(url + "/ping", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        r = requests.post(
            url + "/invocations", json={"dataframe_records": X.to_dict("records")}, timeout=30
        )
        assert r.json() == {"predictions": Y}
    finally:
        subprocess.run([exe, "rm", "-f", cid], capture_output=True, timeout=120)
        subprocess.run([exe, "rmi", "-f", tag], capture_output=True, timeout=120)
