"""Fixtures of the pipeline tests."""

from pipehelpers import db_url, ws  # noqa: F401 - the fixtures
