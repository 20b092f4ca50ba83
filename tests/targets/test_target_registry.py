"""The registry of target kinds: configuration → target instances, mistakes named at start-up."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_mlops.targets import (
    TARGET_KINDS,
    ConfigReader,
    Target,
    build_targets,
    register_target_kind,
    unknown_target,
)


class EchoTarget(Target[Any, Any]):
    """A backend as small as one can be: its settings, and nothing to run."""

    kind = "echo"

    def __init__(self, name: str, greeting: str, display_name: str | None) -> None:
        super().__init__(name, display_name)
        self.greeting = greeting

    @classmethod
    def from_config(cls, name: str, settings: ConfigReader) -> EchoTarget:
        settings.check_unknown({"greeting", "display_name"})
        return cls(
            name, settings.text("greeting", required=True) or "", settings.text("display_name")
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "greeting": self.greeting}

    async def submit(self, item: Any, ctx: Any) -> None:
        raise NotImplementedError

    attach = cancel = submit

    async def logs(self, item: Any, *, part: str | None = None) -> bytes | None:
        return None


@pytest.fixture(autouse=True)
def echo_kind():
    register_target_kind("tests", "echo", EchoTarget)
    yield
    TARGET_KINDS.pop(("tests", "echo"), None)


def test_configured_targets_are_built_by_kind():
    targets, errors = build_targets(
        "tests",
        {
            "hello": {"kind": "echo", "greeting": "hi", "display_name": "Hello"},
            "plain": {"greeting": "yo"},
        },
        "echo_targets",
        default_kind="echo",
    )
    assert errors == {}
    assert targets["hello"].describe() == {
        "name": "hello",
        "display_name": "Hello",
        "kind": "echo",
        "default": False,
        "greeting": "hi",
    }
    assert isinstance(targets["plain"], EchoTarget) and targets["plain"].display_name == "plain"


def test_mistakes_leave_the_target_out_and_name_target_and_field():
    targets, errors = build_targets(
        "tests",
        {
            "ok": {"kind": "echo", "greeting": "hi"},
            "Bad Name": {"kind": "echo", "greeting": "hi"},
            "local": {"kind": "echo", "greeting": "hi"},
            "nokind": {"greeting": "hi"},
            "what": {"kind": "teleport"},
            "empty": {"kind": "echo"},
            "extra": {"kind": "echo", "greeting": "hi", "colour": "red"},
            "notadict": ["echo"],
        },
        "echo_targets",
    )
    assert list(targets) == ["ok"]
    assert errors == {
        "Bad Name": "echo_targets['Bad Name']: a target name is 1-32 lower-case letters, "
        "digits, '-' or '_' (and not 'local')",
        "local": "echo_targets['local']: a target name is 1-32 lower-case letters, digits, "
        "'-' or '_' (and not 'local')",
        "nokind": "echo_targets['nokind'].kind: required; one of: echo",
        "what": "echo_targets['what'].kind: unknown kind 'teleport'; known: echo",
        "empty": "echo_targets['empty'].greeting: required",
        "extra": "echo_targets['extra']: unknown setting(s) 'colour'; known: display_name, "
        "greeting",
        "notadict": "echo_targets['notadict']: must be a dict of settings",
    }
    refused = unknown_target("empty", ["local", "ok"], errors)
    assert refused.error_code == "INVALID_PARAMETER_VALUE"
    assert refused.message == f"Target 'empty' is misconfigured: {errors['empty']}"
    assert unknown_target("mars", ["local", "ok"], errors).message == (
        "Unknown target 'mars'; configured targets: 'local', 'ok'."
    )
