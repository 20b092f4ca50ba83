"""Multipart uploads into a local root (``LocalMultipart``) while a part is still being
written: ``complete`` publishes exactly the parts it lists, ``abort`` removes everything,
and the part in flight gets MLflow's ``RESOURCE_DOES_NOT_EXIST`` (S3's ``NoSuchUpload``)
on its next write or its commit, never a write into the published file. Real files, and
real threads where the writer runs beside ``complete``."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from jupyter_mlops.tracking.artifacts import LocalArtifactRepository
from jupyter_mlops.tracking.errors import TrackingError
from jupyter_mlops.tracking.multipart import LocalMultipart, PlacedPart, SeparatePart

SIZE = 64 << 10
DEST = "exp/run/artifacts/model.bin"


@pytest.fixture
def repo(tmp_path: Path) -> LocalArtifactRepository:
    return LocalArtifactRepository(str(tmp_path / "root"))


def gone(call) -> str:
    """``call()`` raises MLflow's 404 (a TrackingError, never an OSError); its message."""
    with pytest.raises(TrackingError) as e:
        call()
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST", e.value
    return e.value.message


def put(mpu: LocalMultipart, uid: str, number: int, data: bytes, declared: bool = True) -> str:
    w = mpu.part_writer(DEST, uid, number, len(data) if declared else None)
    w.write((data,))
    w.commit()
    return mpu.part_etag(DEST, uid, number)


def three_parts(mpu: LocalMultipart, num_parts: int = 3) -> tuple[str, list[bytes], list]:
    """An upload with parts 1-3 sent (two full, a short third); returns it and its list."""
    uid = mpu.create(DEST, num_parts)
    pieces = [os.urandom(SIZE), os.urandom(SIZE), os.urandom(SIZE // 3)]
    listed = [(n, put(mpu, uid, n, p)) for n, p in enumerate(pieces, 1)]
    return uid, pieces, listed


def published(repo: LocalArtifactRepository) -> bytes:
    return Path(repo._full(DEST)).read_bytes()


def leftovers(repo: LocalArtifactRepository) -> list[str]:
    return [p.name for p in Path(repo.root).rglob(".tmp-*")]


def test_a_part_in_place_after_complete_does_not_touch_the_file(repo):
    """Part 4 (placed: the part size is known) is half written when the upload is completed
    with parts 1-3: the file is parts 1-3, and the rest of part 4 is refused."""
    mpu = LocalMultipart(repo)
    uid, pieces, listed = three_parts(mpu, num_parts=4)
    late = os.urandom(SIZE)
    w = mpu.part_writer(DEST, uid, 4, len(late))
    assert isinstance(w, PlacedPart)
    w.write((late[: SIZE // 2],))
    mpu.complete(DEST, uid, listed)
    assert published(repo) == b"".join(pieces)
    gone(lambda: w.write((late[SIZE // 2 :],)))
    gone(w.commit)
    w.discard()
    assert published(repo) == b"".join(pieces)
    assert leftovers(repo) == []
    gone(lambda: mpu.part_writer(DEST, uid, 4, len(late)))
    gone(lambda: mpu.part_etag(DEST, uid, 4))


def test_a_part_in_place_after_complete_in_place(repo):
    """Parts all of one size (completing is a rename of the file they are in): a fourth,
    open before ``complete``, writes nothing into the renamed file."""
    mpu = LocalMultipart(repo)
    uid = mpu.create(DEST, 4)
    pieces = [os.urandom(SIZE) for _ in range(3)]
    listed = [(n, put(mpu, uid, n, p)) for n, p in enumerate(pieces, 1)]
    w = mpu.part_writer(DEST, uid, 4, SIZE)
    w.write((b"x" * 100,))
    mpu.complete(DEST, uid, listed)
    gone(lambda: w.write((b"y" * 100,)))
    gone(w.commit)
    assert published(repo) == b"".join(pieces)


def test_a_part_sent_again_while_completing(repo):
    """A late retry of a listed part with other bytes: while it overwrites the part in
    place, that part is not uploaded (completing names it); once it is committed it is the
    new one (its new ETag), and the old ETag no longer matches."""
    mpu = LocalMultipart(repo)
    uid, pieces, listed = three_parts(mpu)
    again = os.urandom(SIZE)
    w = mpu.part_writer(DEST, uid, 2, SIZE)
    w.write((again[: SIZE // 2],))
    with pytest.raises(TrackingError) as e:
        mpu.complete(DEST, uid, listed)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE" and "Part 2" in e.value.message
    w.write((again[SIZE // 2 :],))
    w.commit()
    with pytest.raises(TrackingError) as e:  # the ETag of the part replaced
        mpu.complete(DEST, uid, listed)
    assert "Part 2" in e.value.message
    listed[1] = (2, mpu.part_etag(DEST, uid, 2))
    mpu.complete(DEST, uid, listed)
    assert published(repo) == pieces[0] + again + pieces[2]


def test_a_part_kept_apart_after_complete(repo):
    """A part of undeclared length (a file of its own) open during ``complete``: its commit
    is refused with a 404, and it leaves no staging directory behind."""
    mpu = LocalMultipart(repo)
    uid, pieces, listed = three_parts(mpu, num_parts=4)
    w = mpu.part_writer(DEST, uid, 4, None)
    assert isinstance(w, SeparatePart)
    w.write((b"late",))
    mpu.complete(DEST, uid, listed)
    w.write((b" bytes",))  # its own temporary file: nothing published
    gone(w.commit)
    w.discard()
    assert published(repo) == b"".join(pieces)
    assert leftovers(repo) == []


@pytest.mark.parametrize("declared", [True, False])
def test_abort_with_a_part_in_flight(repo, declared):
    mpu = LocalMultipart(repo)
    uid, _pieces, _listed = three_parts(mpu, num_parts=4)
    w = mpu.part_writer(DEST, uid, 4, SIZE if declared else None)
    w.write((b"a" * 1000,))
    mpu.abort(DEST, uid)
    assert leftovers(repo) == []
    if declared:
        gone(lambda: w.write((b"b" * 1000,)))
    gone(w.commit)
    w.discard()
    assert leftovers(repo) == [] and not os.path.exists(repo._full(DEST))
    gone(lambda: mpu.part_writer(DEST, uid, 4, SIZE))
    gone(lambda: mpu.abort(DEST, uid))
    gone(lambda: mpu.complete(DEST, uid, [(1, "")]))


def test_complete_and_abort_end_the_upload_once(repo):
    mpu = LocalMultipart(repo)
    uid, pieces, listed = three_parts(mpu)
    mpu.complete(DEST, uid, listed)
    gone(lambda: mpu.complete(DEST, uid, listed))
    gone(lambda: mpu.abort(DEST, uid))
    assert published(repo) == b"".join(pieces)


def test_a_failed_complete_leaves_the_upload_open(repo):
    """``complete`` that cannot put the file in place (the destination became a directory)
    changes nothing: the parts can still be completed or aborted."""
    mpu = LocalMultipart(repo)
    uid, pieces, listed = three_parts(mpu)
    os.makedirs(repo._full(DEST))
    with pytest.raises(TrackingError):
        mpu.complete(DEST, uid, listed)
    os.rmdir(repo._full(DEST))
    w = mpu.part_writer(DEST, uid, 3, len(pieces[2]))
    w.write((pieces[2],))
    w.commit()
    listed[2] = (3, mpu.part_etag(DEST, uid, 3))
    mpu.complete(DEST, uid, listed)
    assert published(repo) == b"".join(pieces)


@pytest.mark.parametrize("end", ["complete", "abort"])
def test_writer_threads_beside_complete(repo, end):
    """Two threads write parts 4 and 5 in small pieces while the main thread completes the
    upload with parts 1-3 (or aborts it): whatever each had written by then, it ends on a
    404 (at a write or at its commit), and the file is exactly the listed parts."""
    mpu = LocalMultipart(repo)
    uid = mpu.create(DEST, 5)
    pieces = [os.urandom(SIZE) for _ in range(3)]
    listed = [(n, put(mpu, uid, n, p)) for n, p in enumerate(pieces, 1)]
    opened = {n: threading.Event() for n in (4, 5)}
    ended = threading.Event()
    outcome: dict[int, BaseException | None] = {}

    def writer(number: int) -> None:
        w = None
        try:
            w = mpu.part_writer(DEST, uid, number, SIZE)
            opened[number].set()
            for _ in range(SIZE // 16):
                w.write((bytes([number]) * 16,))
            assert ended.wait(120), "the main thread never ended the upload"
            w.commit()
            outcome[number] = None
        except BaseException as exc:  # noqa: BLE001 - the outcome is asserted below
            outcome[number] = exc
        finally:
            opened[number].set()
            if w is not None:
                w.discard()

    threads = [threading.Thread(target=writer, args=(n,)) for n in opened]
    for t in threads:
        t.start()
    for e in opened.values():
        assert e.wait(120)
    if end == "complete":
        mpu.complete(DEST, uid, listed)
    else:
        mpu.abort(DEST, uid)
    ended.set()
    for t in threads:
        t.join(120)
    for exc in outcome.values():
        assert isinstance(exc, TrackingError), exc
        assert exc.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert sorted(outcome) == [4, 5]
    if end == "complete":
        assert published(repo) == b"".join(pieces)
    else:
        assert not os.path.exists(repo._full(DEST))
    assert leftovers(repo) == []
