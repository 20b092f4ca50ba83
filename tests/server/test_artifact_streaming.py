"""The artifact proxy streams (issue 18): uploads go straight into a temporary file beside
their destination and are renamed into place, downloads are sent in pieces, one byte range
on request. Small sizes, but larger than the server's buffers and its body budget, so a
body that were held whole in memory, or admitted by its size, would fail these."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from jupyter_mlops.server.handlers.artifacts import UPLOAD_BUFFERS, WRITE_SIZE

M = "api/2.0/mlflow/"
ART = "api/2.0/mlflow-artifacts/artifacts"


def body_of(size: int) -> bytes:
    return os.urandom(size)


def leftovers(root: Path) -> list[str]:
    """Temporary upload files anywhere under the artifact root."""
    return [str(p) for p in root.rglob(".tmp-*")]


def test_upload_and_download_are_byte_exact(api, mlops_app, new_run):
    exp_id, run_id = new_run
    data = body_of(2 * WRITE_SIZE + 12345)  # several writes, the last one partial
    path = f"{ART}/{exp_id}/{run_id}/artifacts/big/model.bin"
    assert api("PUT", path, data).status == 200
    on_disk = Path(mlops_app.store.artifact_root, exp_id, run_id, "artifacts", "big", "model.bin")
    assert hashlib.sha256(on_disk.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert leftovers(Path(mlops_app.store.artifact_root)) == []

    r = api("GET", path)
    assert r.status == 200
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Accept-Ranges"] == "bytes"
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(data).digest()

    # the MLflow UI's download route sends the same bytes
    r = api("GET", "get-artifact", params={"run_id": run_id, "path": "big/model.bin"})
    assert r.status == 200 and r.body == data

    # a second upload replaces the file whole
    assert api("PUT", path, b"small").status == 200
    assert api("GET", path).body == b"small"


def test_empty_upload(api, new_run):
    exp_id, run_id = new_run
    path = f"{ART}/{exp_id}/{run_id}/artifacts/empty.txt"
    assert api("PUT", path, b"").status == 200
    r = api("GET", path)
    assert r.status == 200 and r.body == b"" and r.headers["Content-Length"] == "0"


def test_an_upload_larger_than_the_body_budget_is_streamed(
    api, mlops_app, new_run, jp_asyncio_loop
):
    """The budget bounds the bodies held in memory; an upload holds only its buffers, so
    one larger than the budget's free room (and than the whole budget) is admitted while
    other requests hold the rest, and the budget is whole again after."""
    exp_id, run_id = new_run
    budget = mlops_app.body_budget
    old = budget.limit
    budget.limit = 3 * UPLOAD_BUFFERS
    mlops_app.inflight_wait = 0.2
    others = 2 * UPLOAD_BUFFERS
    assert jp_asyncio_loop.run_until_complete(budget.acquire(others, 0))
    try:
        data = body_of(4 * UPLOAD_BUFFERS + 1)
        r = api("PUT", f"{ART}/{exp_id}/{run_id}/artifacts/huge.bin", data)
        assert r.status == 200, r.body
        assert budget.used == others
    finally:
        budget.release(others)
        budget.limit = old
        mlops_app.inflight_wait = 60.0
    assert budget.used == 0
    got = api("GET", f"{ART}/{exp_id}/{run_id}/artifacts/huge.bin").body
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_an_upload_waits_for_the_budget_then_is_refused_unwritten(
    api, mlops_app, new_run, jp_asyncio_loop
):
    """Admission comes before the body: with the budget taken, an upload is answered 503
    (clients retry) and nothing of it is written."""
    exp_id, run_id = new_run
    mlops_app.inflight_wait = 0.2
    budget = mlops_app.body_budget
    assert jp_asyncio_loop.run_until_complete(budget.acquire(budget.limit, 0))
    try:
        r = api("PUT", f"{ART}/{exp_id}/{run_id}/artifacts/later.bin", body_of(1000))
        assert r.status == 503, r.body
        assert r.json["error_code"] == "TEMPORARILY_UNAVAILABLE"
    finally:
        budget.release(budget.limit)
        mlops_app.inflight_wait = 60.0
    assert api("GET", f"{ART}/{exp_id}/{run_id}/artifacts/later.bin").status == 404
    assert leftovers(Path(mlops_app.store.artifact_root)) == []


def test_a_declared_size_over_the_limit_is_refused_unread(api, mlops_app, new_run):
    exp_id, run_id = new_run
    old = mlops_app.max_artifact_upload
    mlops_app.max_artifact_upload = 1000
    try:
        r = api("PUT", f"{ART}/{exp_id}/{run_id}/artifacts/too-big.bin", body_of(1001))
        assert r.status == 400
        assert r.json["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "MLOpsApp.max_artifact_upload" in r.json["message"]
        r = api("PUT", f"{ART}/{exp_id}/{run_id}/artifacts/fits.bin", body_of(1000))
        assert r.status == 200
    finally:
        mlops_app.max_artifact_upload = old
    assert api("GET", f"{ART}/{exp_id}/{run_id}/artifacts/too-big.bin").status == 404


@pytest.mark.parametrize(
    "path",
    [
        "%2E%2E/%2E%2E/escaped.txt",
        "x/%2E%2E/%2E%2E/%2E%2E/escaped.txt",
        "x%5C..%5C..%5Cescaped.txt",
        "%2Fetc%2Fescaped.txt",
    ],
)
def test_uploads_outside_the_root_are_refused(api, mlops_app, path):
    r = api("PUT", f"{ART}/{path}", b"nope")
    assert r.status == 400, (r.status, r.body)
    assert r.json["error_code"] == "INVALID_PARAMETER_VALUE"
    root = Path(mlops_app.store.artifact_root)
    assert not list(root.parent.rglob("escaped.txt"))
    assert leftovers(root) == []


def test_a_path_through_a_file_is_a_400(api, new_run):
    exp_id, run_id = new_run
    base = f"{ART}/{exp_id}/{run_id}/artifacts"
    assert api("PUT", f"{base}/f.txt", b"x").status == 200
    r = api("PUT", f"{base}/f.txt/under.txt", b"y")
    assert r.status == 400 and r.json["error_code"] == "INVALID_PARAMETER_VALUE"
    r = api("PUT", f"{base}", b"y")  # the run's artifact directory itself
    assert r.status == 400 and r.json["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_cut_off_upload_leaves_nothing(
    api, mlops_app, new_run, jp_base_url, http_server_port, jp_asyncio_loop
):
    """A client that goes away mid-body: no file at the path, no temporary file left."""
    exp_id, run_id = new_run
    rel = f"{exp_id}/{run_id}/artifacts/cut.bin"
    token = mlops_app.serverapp.identity_provider.token
    root = Path(mlops_app.store.artifact_root)

    async def send_half() -> None:
        _reader, writer = await asyncio.open_connection("127.0.0.1", http_server_port[-1])
        head = (
            f"PUT {jp_base_url}mlops/{ART}/{rel} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: token {token}\r\nContent-Length: {4 * WRITE_SIZE}\r\n\r\n"
        )
        writer.write(head.encode())
        writer.write(body_of(WRITE_SIZE + WRITE_SIZE // 2))
        await writer.drain()
        # the server has started writing (its temporary file exists) before we go away
        for _ in range(600):
            if leftovers(root):
                break
            await asyncio.sleep(0.05)
        assert leftovers(root), "the upload was being written"
        writer.close()
        for _ in range(600):
            if not leftovers(root):
                break
            await asyncio.sleep(0.05)

    jp_asyncio_loop.run_until_complete(send_half())
    assert leftovers(root) == []
    assert not (root / rel).exists()
    assert api("GET", f"{ART}/{rel}").status == 404


def test_byte_ranges(api, new_run):
    exp_id, run_id = new_run
    data = bytes(range(256)) * 100
    path = f"{ART}/{exp_id}/{run_id}/artifacts/ranged.bin"
    assert api("PUT", path, data).status == 200

    def get(rng: str, **extra: str):
        return api("GET", path, headers={"Range": rng, **extra})

    r = get("bytes=10-19")
    assert r.status == 206 and r.body == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    r = get("bytes=25000-")
    assert r.status == 206 and r.body == data[25000:]
    r = get("bytes=-7")
    assert r.status == 206 and r.body == data[-7:]
    r = get("bytes=25590-99999")  # past the end: up to the end
    assert r.status == 206 and r.body == data[25590:]
    r = get(f"bytes={len(data)}-")
    assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    r = get("bytes=0-1,5-6")  # several ranges: the whole file
    assert r.status == 200 and r.body == data
    modified = api("GET", path).headers["Last-Modified"]
    assert get("bytes=0-0", **{"If-Range": modified}).body == data[:1]
    r = get("bytes=0-0", **{"If-Range": "Thu, 01 Jan 1970 00:00:00 GMT"})  # changed since
    assert r.status == 200 and r.body == data


def largest_leftover(root: Path) -> int:
    return max((p.stat().st_size for p in root.rglob(".tmp-*")), default=0)


def overwrite(path: Path, offset: int, data: bytes) -> None:
    """In place: the same file (inode) a reader has open."""
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_an_upload_is_on_disk_before_its_body_ends(
    api, mlops_app, new_run, jp_base_url, http_server_port, jp_asyncio_loop
):
    """Memory stays flat: what the client has sent is in the file while the rest of the body
    is still to come (a server holding the body would write nothing before its end)."""
    exp_id, run_id = new_run
    rel = f"{exp_id}/{run_id}/artifacts/streamed.bin"
    token = mlops_app.serverapp.identity_provider.token
    root = Path(mlops_app.store.artifact_root)
    data = body_of(8 * WRITE_SIZE)
    sent = 6 * WRITE_SIZE

    async def send() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", http_server_port[-1])
        head = (
            f"PUT {jp_base_url}mlops/{ART}/{rel} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: token {token}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        writer.write(head.encode() + data[:sent])
        await writer.drain()
        written = 0
        for _ in range(1200):
            written = largest_leftover(root)
            if written >= sent - UPLOAD_BUFFERS:
                break
            await asyncio.sleep(0.05)
        assert written >= sent - UPLOAD_BUFFERS, f"{written} bytes of {sent} sent in the file"
        assert not (root / rel).exists()
        writer.write(data[sent:])
        await writer.drain()
        status = await reader.readline()
        writer.close()
        return status

    assert b" 200 " in jp_asyncio_loop.run_until_complete(send())
    assert (root / rel).read_bytes() == data


def test_a_download_is_read_as_it_is_sent(
    api, mlops_app, new_run, jp_base_url, http_server_port, jp_asyncio_loop
):
    """Memory stays flat: a client that stops reading after the first MiB holds the server
    back, so bytes changed on disk meanwhile past what the socket buffers take are the ones
    it receives (a server that read the file whole at first would send the old ones).
    Larger than the pieces the server reads and sends at once, so several are sent."""
    import socket

    exp_id, run_id = new_run
    rel = f"{exp_id}/{run_id}/artifacts/download.bin"
    size, changed = 48 << 20, 16 << 20
    full = Path(mlops_app.store.artifact_root, rel)
    full.parent.mkdir(parents=True, exist_ok=True)
    old = body_of(size)
    full.write_bytes(old)
    new_tail = body_of(changed)
    token = mlops_app.serverapp.identity_provider.token

    async def fetch() -> bytes:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # no large window
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", http_server_port[-1]))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        writer.write(
            f"GET {jp_base_url}mlops/{ART}/{rel} HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: token {token}\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n")[0], head
        first = await reader.readexactly(1 << 20)
        overwrite(full, size - changed, new_tail)
        rest = await reader.readexactly(size - len(first))
        writer.close()
        return first + rest

    got = jp_asyncio_loop.run_until_complete(fetch())
    assert got[: size - changed] == old[: size - changed]
    assert got[size - changed :] == new_tail
