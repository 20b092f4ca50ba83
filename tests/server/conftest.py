"""``api``: raw HTTP calls to the in-process server (repeated query keys, raw
paths, any body), answering a :class:`Reply` without raising.

Calls are synchronous: each runs the server's event loop (pytest-jupyter's
``jp_asyncio_loop``) until the answer is in, so tests are plain functions and
do not depend on which loop pytest-asyncio would pick for an ``async def`` test."""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pytest
from pgschema import fresh_schema
from tornado.httpclient import HTTPClientError


@pytest.fixture
def pg_db_url():
    """A PostgreSQL URL whose ``search_path`` is a fresh schema, dropped afterwards."""
    with fresh_schema("srv") as url:
        yield url


@dataclass
class Reply:
    status: int
    body: bytes
    headers: Any

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture
def api(jp_serverapp, http_server_client, jp_auth_header, jp_base_url, jp_asyncio_loop):
    async def fetch(
        method: str,
        path: str,
        body: Any = None,
        params: list[tuple[str, str]] | dict | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        raw_path: bool = False,
    ) -> Reply:
        url = f"{jp_base_url}mlops/{path}" if not raw_path else path
        if params:
            items = params.items() if isinstance(params, dict) else params
            url += "?" + urllib.parse.urlencode(list(items), doseq=True)
        hdrs = dict(jp_auth_header) if auth else {}
        hdrs.update(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if body is None and method in ("POST", "PUT"):
            body = b""
        try:
            r = await http_server_client.fetch(
                url,
                method=method,
                body=body,
                headers=hdrs,
                request_timeout=60,
                allow_nonstandard_methods=True,
                follow_redirects=False,
            )
        except HTTPClientError as e:
            r = e.response
            if r is None:
                raise
        return Reply(r.code, r.body, r.headers)

    def call(*args: Any, **kwargs: Any) -> Reply:
        return jp_asyncio_loop.run_until_complete(fetch(*args, **kwargs))

    return call


@pytest.fixture
def mlops_app(jp_serverapp):
    """The in-process server's MLOpsApp (its store, budgets and limits)."""
    return next(iter(jp_serverapp.extension_manager.extension_apps["jupyter_mlops"]))


@pytest.fixture
def new_run(api) -> tuple[str, str]:
    """``(experiment_id, run_id)`` of a new run in a new experiment."""
    name = f"run-{time.monotonic_ns()}"
    m = "api/2.0/mlflow/"
    exp_id = api("POST", m + "experiments/create", {"name": name}).json["experiment_id"]
    r = api("POST", m + "runs/create", {"experiment_id": exp_id, "start_time": 0})
    return exp_id, r.json["run"]["info"]["run_id"]
