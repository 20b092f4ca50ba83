"""Fixtures of the pipeline tests."""

from pipehelpers import db_url, store, ws  # noqa: F401 - the fixtures
