"""Every route needs credentials; the OpenAPI document and the handlers actually
registered in the running server describe the same routes and verbs."""

from __future__ import annotations

import re

import pytest

from jupyter_mlops.server.handlers import NotFoundHandler
from jupyter_mlops.server.handlers.base import MLOpsHandler, RpcHandler

VERBS = ("get", "post", "put", "patch", "delete")
SAMPLE_PATH_PARAM = "1/abc/artifacts/sub/file.txt"


def _rules(router):
    for rule in getattr(router, "rules", []):
        target = rule.target
        if hasattr(target, "rules"):
            yield from _rules(target)
        else:
            yield rule


def registered_mlops_routes(serverapp) -> list[tuple[re.Pattern, type, set[str]]]:
    """``(regex, handler class, verbs)`` of every handler under ``{base_url}mlops/``."""
    prefix = serverapp.base_url + "mlops/"
    refusal = MLOpsHandler._refuse_unsupported
    out = []
    for rule in _rules(serverapp.web_app.default_router):
        regex = getattr(rule.matcher, "regex", None)
        if regex is None or not regex.pattern.startswith(prefix):
            continue
        cls, kwargs = rule.target, rule.target_kwargs or {}
        if issubclass(cls, RpcHandler) and "rpcs" in kwargs:
            verbs = {m.lower() for m in kwargs["rpcs"]}
        else:
            # a handler's own verb methods; an RpcHandler without a route table (OTLP's
            # body-budgeted POST) counts only those its subclasses define. A verb the route
            # lacks is MLOpsHandler's refusal (403, then 405)
            mro = cls.__mro__
            own = mro[: mro.index(RpcHandler)] if RpcHandler in mro else mro
            verbs = {
                v
                for v in VERBS
                if getattr(cls, v) is not refusal
                and any(v in vars(k) for k in own if k.__module__.startswith("jupyter_mlops"))
            }
        out.append((regex, cls, verbs))
    return out


def documented(api) -> dict:
    r = api("GET", "api/v1/openapi.json")
    assert r.status == 200
    return r.json


def sample_url(base_url: str, path: str) -> str:
    return base_url + "mlops" + path.replace("{artifact_path}", SAMPLE_PATH_PARAM)


def test_openapi_document_is_valid_and_names_this_server(api, jp_base_url):
    doc = documented(api)
    assert doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": jp_base_url + "mlops"}]
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)


def test_openapi_matches_registered_handlers(api, jp_serverapp):
    doc = documented(api)
    routes = registered_mlops_routes(jp_serverapp)
    fallback = [r for r in routes if r[1] is NotFoundHandler]
    assert len(fallback) == 1, "one catch-all answers unknown mlops/ paths with JSON"
    served = [r for r in routes if r[1] is not NotFoundHandler]

    # document -> handlers: each documented verb reaches a handler that has it
    for path, item in doc["paths"].items():
        url = sample_url(jp_serverapp.base_url, path)
        match = next((r for r in routes if r[0].match(url)), None)
        assert match is not None and match[1] is not NotFoundHandler, f"{path} is not served"
        verbs = {v for v in item if v in VERBS}
        assert verbs == match[2], f"{path}: documented {verbs}, served {match[2]}"

    # handlers -> document: each served route and verb is documented
    for regex, cls, verbs in served:
        paths = [p for p in doc["paths"] if regex.match(sample_url(jp_serverapp.base_url, p))]
        assert paths, f"{regex.pattern} ({cls.__name__}) is not in the OpenAPI document"
        for verb in verbs:
            assert any(verb in doc["paths"][p] for p in paths), f"{verb} {regex.pattern}"


@pytest.mark.parametrize(
    "header", [None, {"Authorization": "token wrong"}, {"Authorization": "Bearer wrong"}]
)
def test_every_route_refuses_requests_without_credentials(api, jp_serverapp, header):
    doc = documented(api)
    checked = 0
    for path, item in doc["paths"].items():
        url = sample_url(jp_serverapp.base_url, path)
        for verb in (v for v in item if v in VERBS):
            body = b"{}" if verb in ("post", "put", "patch") else None
            r = api(verb.upper(), url, body=body, auth=False, raw_path=True, headers=header)
            assert r.status in (401, 403), f"{verb.upper()} {path} answered {r.status}"
            assert r.json["error_code"] in ("UNAUTHENTICATED", "PERMISSION_DENIED")
            assert (
                "Not authenticated: send a valid token as 'Authorization: token <token>'"
                in r.json["message"]
            ), r.json  # what to do, not a bare "Forbidden"
            checked += 1
    assert checked >= 35
    # unknown paths under mlops/ do not reveal anything either
    r = api("GET", "api/2.0/mlflow/nope", auth=False)
    assert r.status in (401, 403)


def test_bearer_token_works_and_skips_xsrf(api, jp_serverapp):
    token = jp_serverapp.identity_provider.token
    for scheme in ("Bearer", "token", "bearer"):
        r = api(
            "POST",
            "api/2.0/mlflow/experiments/create",
            {"name": f"via-{scheme}"},
            auth=False,
            headers={"Authorization": f"{scheme} {token}"},
        )
        assert r.status == 200, r.body
    r = api(
        "GET",
        "api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "via-Bearer"},
        auth=False,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.json["experiment"]["name"] == "via-Bearer"


def test_cookie_authenticated_post_needs_xsrf(api, jp_serverapp):
    """A browser session (cookie, no token header) cannot POST without the XSRF token."""
    token = jp_serverapp.identity_provider.token
    login = api(
        "GET", f"{jp_serverapp.base_url}api/status?token={token}", auth=False, raw_path=True
    )
    assert login.status == 200
    cookies = "; ".join(c.split(";", 1)[0] for c in login.headers.get_list("Set-Cookie"))
    assert cookies
    r = api(
        "GET",
        "api/2.0/mlflow/experiments/get",
        params={"experiment_id": "0"},
        auth=False,
        headers={"Cookie": cookies},
    )
    assert r.status == 200
    r = api(
        "POST",
        "api/2.0/mlflow/experiments/create",
        {"name": "csrf"},
        auth=False,
        headers={"Cookie": cookies},
    )
    assert r.status == 403 and r.json["error_code"] == "PERMISSION_DENIED"
    xsrf = "0123456789abcdef"  # the double-submit pair a page of the server would carry
    r = api(
        "POST",
        "api/2.0/mlflow/experiments/create",
        {"name": "csrf"},
        auth=False,
        headers={"Cookie": f"{cookies}; _xsrf={xsrf}", "X-XSRFToken": xsrf},
    )
    assert r.status == 200, r.body
