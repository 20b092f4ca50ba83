"""Fixtures of the CLI tests."""

from clihelpers import run_cli  # noqa: F401 - the fixture
