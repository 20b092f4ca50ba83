"""Schemathesis over every operation of the server's own OpenAPI document, against a real
``jupyter server`` subprocess on loopback: no answer is a 5xx, and every answer's status,
content type and body match what the document declares for that operation.

Few examples per operation, derandomized (the same requests on every run), so the module
stays within seconds; what it finds is a mismatch between the document and a handler, or
a request that makes the server fail."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverproc import JupyterServerProcess

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup  # hypothesis's dependency before 3.11

#: Examples per operation: enough for the generator to try each field's edge values.
EXAMPLES = 4
#: Examples of an MLflow UI alias (``/ajax-api/...`` of an ``/api/...`` route): served by
#: the same handler and function table (``handlers.with_ajax_aliases``) and declared alike
#: (checked below), it answers as its route does, which gets EXAMPLES; one request
#: shows the alias is routed and answers as declared.
ALIAS_EXAMPLES = 1
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServerProcess]:
    # MLflow's trace page waits for trace ids it does not find (5 s by default): the
    # generated ids are never stored, so no wait is needed
    srv = JupyterServerProcess(
        Path(tmp_path_factory.mktemp("fuzz")), extra_args=["--MLOpsApp.trace_page_wait=0.01"]
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api_schema(server: JupyterServerProcess):
    auth = {"Authorization": f"token {server.token}"}
    return schemathesis.openapi.from_url(server.url + "mlops/api/v1/openapi.json", headers=auth)


def test_every_operation_conforms(api_schema, server):
    from hypothesis import given

    auth = {"Authorization": f"token {server.token}"}
    aliases = _aliases(api_schema.raw_schema["paths"])
    assert len(aliases) >= 80
    failures, operations = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=ALIAS_EXAMPLES if operation.path in aliases else EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        def conforms(case) -> None:
            case.call_and_validate(headers=auth, checks=CHECKS, timeout=60)

        try:
            conforms()
        except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - report every operation
            failures.append(f"{operation.label}: {str(e)[:1500]}")
    assert operations >= 80
    assert failures == [], "\n\n".join(failures)


def _aliases(paths: dict) -> set[str]:
    """The ``/ajax-api/...`` paths declared as their ``/api/...`` path is (but for the
    summary, which names the alias); an alias declared otherwise fails the test."""

    def declared(item: dict) -> dict:
        return {
            method: {k: v for k, v in op.items() if k != "summary"} if isinstance(op, dict) else op
            for method, op in item.items()
        }

    aliases = set()
    for path, item in paths.items():
        original = paths.get("/api/" + path[len("/ajax-api/") :])
        if path.startswith("/ajax-api/") and original is not None:
            assert declared(item) == declared(original), path
            aliases.add(path)
    return aliases
