"""Fixtures of the pipeline tests."""

from pipehelpers import ws  # noqa: F401 - the fixture
