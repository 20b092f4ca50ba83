"""Fixtures for tests/kube: the fake Kubernetes API server of the hub tests (tests/hub/fakek8s.py),
over real HTTP, one per module."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# the fake API server lives with the hub tests (one copy for every user of it)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hub"))

from fakek8s import FakeKubernetes


@pytest.fixture(scope="module")
def k8s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeKubernetes]:
    k = FakeKubernetes(Path(tmp_path_factory.mktemp("k8s")))
    k.start()
    try:
        yield k
    finally:
        k.stop()
