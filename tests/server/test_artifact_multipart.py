"""MLflow's multipart upload through the artifact proxy (``mlflow-artifacts/mpu/*``):
the official client with ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true`` against a real
``jupyter server``, and the routes' answers to bad input in-process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

M = "api/2.0/mlflow/"
MPU = "api/2.0/mlflow-artifacts/mpu"
ART = "api/2.0/mlflow-artifacts/artifacts"


def error(r, status: int, code: str) -> str:
    assert r.status == status, (r.status, r.body[:300])
    assert r.json["error_code"] == code, r.json
    return r.json["message"]


def put_part(api, credential: dict, data: bytes):
    u = urlsplit(credential["url"])
    return api("PUT", f"{u.path}?{u.query}", data, headers=credential["headers"], raw_path=True)


def test_parts_are_put_together_in_order(api, mlops_app, new_run):
    exp_id, run_id = new_run
    directory = f"{exp_id}/{run_id}/artifacts/weights"
    r = api("POST", f"{MPU}/create/{directory}", {"path": "/home/me/model.bin", "num_parts": 3})
    assert r.status == 200, r.body
    uid = r.json["upload_id"]
    creds = r.json["credentials"]
    assert [c["part_number"] for c in creds] == [1, 2, 3]
    assert creds[0]["headers"]["Authorization"]  # the caller's own, for the part PUTs
    pieces = [os.urandom(300_000), os.urandom(300_000), os.urandom(1234)]
    parts = []
    for cred, piece in reversed(list(zip(creds, pieces))):  # any order
        r = put_part(api, cred, piece)
        assert r.status == 200, r.body
        parts.append({"part_number": cred["part_number"], "etag": r.headers["ETag"]})
    body = {"path": "/home/me/model.bin", "upload_id": uid, "parts": parts}
    assert api("POST", f"{MPU}/complete/{directory}", body).status == 200
    got = api("GET", f"{ART}/{directory}/model.bin")
    assert got.status == 200 and got.body == b"".join(pieces)
    root = Path(mlops_app.store.artifact_root)
    assert not list(root.rglob(".tmp-*")), "the parts are gone"
    # done: the upload no longer exists
    r = api("POST", f"{MPU}/complete/{directory}", body)
    error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def read_at(path: Path, offset: int, n: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


def staging_of(root: Path) -> Path:
    (staging,) = root.rglob(".tmp-mpu-*.part")
    return staging


def start(api, directory: str, num_parts: int, name: str = "model.bin"):
    r = api("POST", f"{MPU}/create/{directory}", {"path": name, "num_parts": num_parts})
    assert r.status == 200, r.body
    return r.json["upload_id"], r.json["credentials"]


def finish(api, directory: str, uid: str, parts: list[dict], name: str = "model.bin"):
    body = {"path": name, "upload_id": uid, "parts": parts}
    return api("POST", f"{MPU}/complete/{directory}", body)


def test_parts_are_written_in_place_once(api, mlops_app, new_run):
    """Parts of MLflow's client's shape (all one size but a shorter last) go straight to
    their offsets of one file, which completing renames into place: no part file, no copy.
    The last part, sent before any other fixed the part size, is kept apart and copied in."""
    exp_id, run_id = new_run
    directory = f"{exp_id}/{run_id}/artifacts"
    size = 200_000
    pieces = [os.urandom(size), os.urandom(size), os.urandom(size), os.urandom(777)]
    uid, creds = start(api, directory, 4)
    staging = staging_of(Path(mlops_app.store.artifact_root))
    etags = {}
    for n in (4, 2, 1, 3):  # the last first: its offset is not known yet
        r = put_part(api, creds[n - 1], pieces[n - 1])
        assert r.status == 200, r.body
        etags[n] = r.headers["ETag"]
    names = sorted(p.name for p in staging.iterdir())
    assert names == ["1.at", "2.at", "3.at", "4", "data", "lock", "num_parts", "size"], names
    data = staging / "data"
    assert data.read_bytes()[: 3 * size] == b"".join(pieces[:3])
    inode = data.stat().st_ino
    parts = [{"part_number": n, "etag": etags[n]} for n in (1, 2, 3, 4)]
    assert finish(api, directory, uid, parts).status == 200
    dest = Path(mlops_app.store.artifact_root, directory, "model.bin")
    assert dest.read_bytes() == b"".join(pieces)
    assert dest.stat().st_ino == inode, "the parts' file itself, renamed (not copied)"
    assert not staging.exists()


def test_a_missing_or_cut_off_part_is_sent_again(
    api, mlops_app, new_run, jp_base_url, http_server_port, jp_asyncio_loop
):
    """Resuming: completing names the part not uploaded; a part cut off midway does not
    count (its bytes in place are not a part), and a part sent again replaces the
    earlier one, whatever it held."""
    exp_id, run_id = new_run
    directory = f"{exp_id}/{run_id}/artifacts"
    size = 100_000
    pieces = [os.urandom(size), os.urandom(size), os.urandom(size // 3)]
    uid, creds = start(api, directory, 3)
    for n in (1, 3):
        assert put_part(api, creds[n - 1], pieces[n - 1]).status == 200
    all_parts = [{"part_number": n} for n in (1, 2, 3)]
    r = finish(api, directory, uid, all_parts)
    assert r.status == 400 and "Part 2" in r.json["message"], r.body

    # part 2 cut off after half its bytes: still not uploaded
    token = mlops_app.serverapp.identity_provider.token
    staging = staging_of(Path(mlops_app.store.artifact_root))
    u = urlsplit(creds[1]["url"])

    async def send_half() -> None:
        _reader, writer = await asyncio.open_connection("127.0.0.1", http_server_port[-1])
        head = (
            f"PUT {u.path}?{u.query} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: token {token}\r\nContent-Length: {size}\r\n\r\n"
        )
        writer.write(head.encode() + pieces[1][: size // 2])
        await writer.drain()
        data = staging / "data"
        for _ in range(600):  # the server has written some of it in place
            if read_at(data, size, 1000) == pieces[1][:1000]:
                break
            await asyncio.sleep(0.05)
        writer.close()

    jp_asyncio_loop.run_until_complete(send_half())
    r = finish(api, directory, uid, all_parts)
    assert r.status == 400 and "Part 2" in r.json["message"], r.body

    # sent with other bytes, then again with the right ones: the last one counts
    assert put_part(api, creds[1], os.urandom(size)).status == 200
    r = put_part(api, creds[1], pieces[1])
    assert r.status == 200
    stale = [{"part_number": 2, "etag": '"0-0"'}]
    assert finish(api, directory, uid, [all_parts[0], *stale, all_parts[2]]).status == 400
    parts = [all_parts[0], {"part_number": 2, "etag": r.headers["ETag"]}, all_parts[2]]
    assert finish(api, directory, uid, parts).status == 200
    got = api("GET", f"{ART}/{directory}/model.bin")
    assert got.status == 200 and got.body == b"".join(pieces)


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, dict]:
    """One HTTP/1.1 response with a Content-Length body: its status and JSON body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    length = int({k.lower(): v for k, v in fields.items()}["content-length"])
    body = await asyncio.wait_for(reader.readexactly(length), 120)
    return status, json.loads(body)


@pytest.mark.parametrize("end", ["complete", "abort"])
def test_a_part_in_flight_when_the_upload_ends(
    api, mlops_app, new_run, http_server_port, jp_asyncio_loop, end
):
    """Part 4 is half sent (and half written in place) when the client completes the
    upload with parts 1-3, or aborts it: the rest of part 4 lands nowhere, the file is
    exactly parts 1-3, and the part is answered MLflow's 404 (S3's NoSuchUpload)."""
    exp_id, run_id = new_run
    directory = f"{exp_id}/{run_id}/artifacts"
    size = 200_000
    pieces = [os.urandom(size) for _ in range(3)]
    late = os.urandom(size)
    uid, creds = start(api, directory, 4)
    parts = []
    for n in (1, 2, 3):
        r = put_part(api, creds[n - 1], pieces[n - 1])
        assert r.status == 200, r.body
        parts.append({"part_number": n, "etag": r.headers["ETag"]})
    token = mlops_app.serverapp.identity_provider.token
    staging = staging_of(Path(mlops_app.store.artifact_root))
    u = urlsplit(creds[3]["url"])

    async def send_half() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", http_server_port[-1])
        head = (
            f"PUT {u.path}?{u.query} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: token {token}\r\nContent-Length: {size}\r\n\r\n"
        )
        writer.write(head.encode() + late[: size // 2])
        await writer.drain()
        for _ in range(2400):  # the server has written some of it in place
            if read_at(staging / "data", 3 * size, 1000) == late[:1000]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("part 4 never reached its place")
        return reader, writer

    async def send_rest(reader, writer) -> tuple[int, dict]:
        writer.write(late[size // 2 :])
        await writer.drain()
        try:
            return await read_reply(reader)
        finally:
            writer.close()

    reader, writer = jp_asyncio_loop.run_until_complete(send_half())
    if end == "complete":
        assert finish(api, directory, uid, parts).status == 200
    else:
        r = api("POST", f"{MPU}/abort/{directory}", {"path": "model.bin", "upload_id": uid})
        assert r.status == 200, r.body
    status, body = jp_asyncio_loop.run_until_complete(send_rest(reader, writer))
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST"), body
    assert uid in body["message"]
    dest = Path(mlops_app.store.artifact_root, directory, "model.bin")
    if end == "complete":
        assert dest.read_bytes() == b"".join(pieces)
        got = api("GET", f"{ART}/{directory}/model.bin")
        assert got.status == 200 and got.body == b"".join(pieces)
    else:
        assert not dest.exists()
    assert not list(Path(mlops_app.store.artifact_root).rglob(".tmp-*"))
    # a part sent after the end: the same 404
    error(put_part(api, creds[3], late), 404, "RESOURCE_DOES_NOT_EXIST")


def test_parts_of_several_sizes_come_out_right(api, mlops_app, new_run):
    """A client of another shape (parts of several sizes, numbers with gaps): whatever
    went in place where it did not belong is laid out anew."""
    exp_id, run_id = new_run
    directory = f"{exp_id}/{run_id}/artifacts"
    pieces = {1: os.urandom(1000), 2: os.urandom(3000), 5: os.urandom(500), 7: os.urandom(1000)}
    uid, creds = start(api, directory, 7)
    for n, piece in pieces.items():
        assert put_part(api, creds[n - 1], piece).status == 200
    parts = [{"part_number": n} for n in pieces]
    assert finish(api, directory, uid, parts).status == 200
    got = api("GET", f"{ART}/{directory}/model.bin")
    assert got.body == b"".join(pieces.values())
    assert not list(Path(mlops_app.store.artifact_root).rglob(".tmp-*"))


def test_one_part_and_an_empty_file(api, mlops_app, new_run):
    exp_id, run_id = new_run
    directory = f"{exp_id}/{run_id}/artifacts"
    for name, body in (("one.bin", os.urandom(5000)), ("empty.bin", b"")):
        uid, creds = start(api, directory, 1, name)
        assert put_part(api, creds[0], body).status == 200
        assert finish(api, directory, uid, [{"part_number": 1}], name).status == 200
        assert api("GET", f"{ART}/{directory}/{name}").body == body


def test_abort_drops_the_parts(api, mlops_app, new_run):
    exp_id, run_id = new_run
    directory = f"{exp_id}/{run_id}/artifacts"
    r = api("POST", f"{MPU}/create/{directory}", {"path": "x.bin", "num_parts": 1})
    uid, cred = r.json["upload_id"], r.json["credentials"][0]
    assert put_part(api, cred, b"partial").status == 200
    assert list(Path(mlops_app.store.artifact_root).rglob(".tmp-mpu-*"))
    r = api("POST", f"{MPU}/abort/{directory}", {"path": "x.bin", "upload_id": uid})
    assert r.status == 200, r.body
    assert not list(Path(mlops_app.store.artifact_root).rglob(".tmp-*"))
    assert api("GET", f"{ART}/{directory}/x.bin").status == 404
    error(put_part(api, cred, b"late"), 404, "RESOURCE_DOES_NOT_EXIST")
    r = api("POST", f"{MPU}/abort/{directory}", {"path": "x.bin", "upload_id": uid})
    error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_bad_input_is_a_4xx(api, new_run):
    exp_id, run_id = new_run
    d = f"{exp_id}/{run_id}/artifacts"
    bad = "INVALID_PARAMETER_VALUE"
    # create
    error(api("POST", f"{MPU}/create/{d}", {"num_parts": 2}), 400, bad)
    error(api("POST", f"{MPU}/create/{d}", {"path": "f", "num_parts": 0}), 400, bad)
    error(api("POST", f"{MPU}/create/{d}", {"path": "f", "num_parts": 10001}), 400, bad)
    error(api("POST", f"{MPU}/create/{d}", {"path": "..", "num_parts": 1}), 400, bad)
    error(api("POST", f"{MPU}/create/%2E%2E/%2E%2E/x", {"path": "f", "num_parts": 1}), 400, bad)
    error(api("POST", f"{MPU}/create/{d}", "not json"), 400, bad)
    api("PUT", f"{ART}/{d}/adir/f.txt", b"x")
    error(api("POST", f"{MPU}/create/{d}", {"path": "adir", "num_parts": 1}), 400, bad)
    # complete and abort
    r = api("POST", f"{MPU}/create/{d}", {"path": "f.bin", "num_parts": 2})
    uid, creds = r.json["upload_id"], r.json["credentials"]
    assert put_part(api, creds[0], b"one").status == 200
    unknown = "0" * 32
    for op in ("complete", "abort"):
        body = {"path": "f.bin", "upload_id": unknown, "parts": [{"part_number": 1}]}
        error(api("POST", f"{MPU}/{op}/{d}", body), 404, "RESOURCE_DOES_NOT_EXIST")
        body["upload_id"] = "../../../etc"
        error(api("POST", f"{MPU}/{op}/{d}", body), 400, bad)
        error(api("POST", f"{MPU}/{op}/{d}", {"path": "f.bin"}), 400, bad)

    def complete(parts):
        body = {"path": "f.bin", "upload_id": uid, "parts": parts}
        return api("POST", f"{MPU}/complete/{d}", body)

    msg = error(complete([{"part_number": 1}, {"part_number": 2}]), 400, bad)
    assert "Part 2" in msg and "not uploaded" in msg
    error(complete([]), 400, bad)
    error(complete([{"part_number": 1}, {"part_number": 1}]), 400, bad)
    error(complete([{"part_number": 1, "etag": '"stale"'}]), 400, bad)
    error(complete([{"part_number": "x"}]), 400, bad)
    # parts
    u = urlsplit(creds[1]["url"])
    path = u.path
    for query in (f"upload_id={uid}", f"upload_id={uid}&part_number=0", "part_number=1"):
        error(api("PUT", f"{path}?{query}", b"x", raw_path=True), 400, bad)
    r = api("PUT", f"{path}?upload_id={unknown}&part_number=1", b"x", raw_path=True)
    error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    # the upload is still whole after all that
    assert put_part(api, creds[1], b"two").status == 200
    assert complete([{"part_number": 1}, {"part_number": 2}]).status == 200
    assert api("GET", f"{ART}/{d}/f.bin").body == b"onetwo"


def test_parts_and_mpu_routes_need_credentials(api, new_run):
    exp_id, run_id = new_run
    d = f"{exp_id}/{run_id}/artifacts"
    r = api("POST", f"{MPU}/create/{d}", {"path": "f.bin", "num_parts": 1})
    cred = r.json["credentials"][0]
    u = urlsplit(cred["url"])
    r = api("PUT", f"{u.path}?{u.query}", b"x", auth=False, raw_path=True)
    assert r.status in (401, 403)
    r = api("POST", f"{MPU}/create/{d}", {"path": "f.bin", "num_parts": 1}, auth=False)
    assert r.status in (401, 403)


DRIVER = textwrap.dedent(
    r"""
    import hashlib, json, os, sys, tempfile
    import mlflow
    from mlflow.artifacts import download_artifacts
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    out = {}
    work = tempfile.mkdtemp()
    local = os.path.join(work, "model.bin")
    with open(local, "wb") as f:
        f.write(os.urandom(int(sys.argv[1])))
    with open(local, "rb") as f:
        out["sha"] = hashlib.sha256(f.read()).hexdigest()
    with mlflow.start_run() as run:
        mlflow.log_artifact(local, "weights")
        repo = get_artifact_repository(run.info.artifact_uri)
        # the multipart path itself: raises if the server said "not supported"
        repo._try_multipart_upload(local, "direct")
    for sub in ("weights", "direct"):
        got = download_artifacts(run_id=run.info.run_id, artifact_path=f"{sub}/model.bin")
        with open(got, "rb") as f:
            out[sub] = hashlib.sha256(f.read()).hexdigest()
    out["experiment_id"], out["run_id"] = run.info.experiment_id, run.info.run_id
    print(json.dumps(out))
    """
)


@pytest.mark.slow
def test_official_client_uploads_in_parts(jupyter_server_process, tmp_path):
    pytest.importorskip("mlflow")
    server = jupyter_server_process()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "JUPYTER_MLOPS_"))}
    env.update(
        MLFLOW_TRACKING_URI=server.tracking_uri,
        MLFLOW_TRACKING_TOKEN=server.token,
        MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD="true",
        MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE="1",
        MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=str(1 << 20),
        HOME=str(tmp_path),
    )
    size = 3 * (1 << 20) + 4321  # four parts, the last one short
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(size)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["weights"] == out["sha"] and out["direct"] == out["sha"]
    root = server.data_dir / "mlops" / "artifacts" / out["experiment_id"] / out["run_id"]
    assert (
        hashlib.sha256((root / "artifacts/direct/model.bin").read_bytes()).hexdigest() == out["sha"]
    )
    assert not list(root.rglob(".tmp-*")), "no part or temporary file is left"
