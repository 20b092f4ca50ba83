"""The spool file: order, resume after a failed replay, torn writes, and
adoption of spools left by gone processes."""

from __future__ import annotations

import glob
import math
import os

import pytest

from jupyter_mlops.client.spool import Spool, spool_dir_for
from jupyter_mlops.client.transient import StoreUnavailable


def _records(n: int) -> list[dict]:
    return [{"op": "log", "run_id": "r", "metrics": {"m": [[i], [0], [i * 0.5]]}} for i in range(n)]


def test_replay_in_order_and_resume_after_a_failure(tmp_path):
    spool = Spool(str(tmp_path / "s"))
    for r in _records(5):
        spool.append(r)
    spool.sync()
    assert spool.pending
    seen: list[int] = []

    def flaky(rec: dict) -> None:
        step = rec["metrics"]["m"][0][0]
        if step == 3 and 3 not in seen and len(seen) == 3:
            seen.append(-1)  # remember we failed once
            raise StoreUnavailable("down")
        seen.append(step)

    with pytest.raises(StoreUnavailable):
        spool.replay(flaky)
    assert spool.pending
    spool.replay(flaky)
    assert [s for s in seen if s >= 0] == [0, 1, 2, 3, 4]  # nothing twice, nothing lost
    assert not spool.pending
    spool.close()
    assert glob.glob(str(tmp_path / "s" / "*")) == []  # an empty spool leaves no files


def test_non_finite_values_survive_the_spool(tmp_path):
    spool = Spool(str(tmp_path / "s"))
    spool.append(
        {"op": "log", "run_id": "r", "metrics": {"m": [[0, 1], [0, 0], [math.nan, -math.inf]]}}
    )
    got: list[dict] = []
    spool.replay(got.append)
    values = got[0]["metrics"]["m"][2]
    assert math.isnan(values[0]) and values[1] == -math.inf


def test_left_over_spool_is_adopted_and_a_torn_tail_skipped(tmp_path):
    directory = spool_dir_for("sqlite:///x.db", str(tmp_path))
    first = Spool(directory)
    for r in _records(3):
        first.append(r)
    first.close()  # unreachable store at exit: the file stays for a later process
    (path,) = glob.glob(os.path.join(directory, "spool-*.jsonl"))
    with open(path, "ab") as f:
        f.write(b'{"op": "log", "run_id": "r", "metr')  # a crash mid-write

    later = Spool(directory)
    assert later.adopt_orphans() == 1
    seen: list[int] = []
    later.replay(lambda rec: seen.append(rec["metrics"]["m"][0][0]))
    assert seen == [0, 1, 2]
    assert not later.pending
    assert glob.glob(os.path.join(directory, "spool-*")) == []
    later.close()


def test_a_live_owner_keeps_its_spool(tmp_path):
    directory = str(tmp_path / "s")
    owner = Spool(directory)
    owner.append(_records(1)[0])
    other = Spool(directory)
    assert other.adopt_orphans() == 0  # locked by its (live) owner
    owner.close()
    assert other.adopt_orphans() == 1
    other.close()
