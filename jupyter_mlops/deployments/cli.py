"""``jupyter mlops deploy ...`` and ``jupyter mlops models build-context|build-image``."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

SERVER_HELP = (
    "the Jupyter server that runs deployments (default: $JUPYTER_MLOPS_SERVER_URL, "
    "else the one running Jupyter server found in Jupyter's runtime directory)"
)


def add_subparsers(sub: Any) -> None:
    _add_models(sub)
    _add_deploy(sub)


# -- models build-context | build-image ----------------------------------------------------
def _add_models(sub: Any) -> None:
    models = sub.add_parser(
        "models",
        help="model images: a Docker build context, or the image itself",
        description="Package a model as a container image: our scoring server (MLflow's "
        "protocol and V2 on port 8080) with the model and its requirements baked in.",
    )
    msub = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "model_uri",
        metavar="MODEL_URI",
        help="models:/<name>/<version>, models:/<name>@<alias>, runs:/..., or a model directory",
    )
    common.add_argument(
        "--python-image",
        metavar="IMAGE",
        help="base image (the PYTHON_IMAGE build argument's default; default: "
        "python:<this Python's major.minor>-slim)",
    )
    common.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="where models:/ and runs:/ URIs are resolved (default: the "
        "resolved tracking URI, as for the client)",
    )
    ctx = msub.add_parser(
        "build-context",
        parents=[common],
        help="write a Docker build context for a model",
        description="Write DIR: Dockerfile (slim Python base as build argument PYTHON_IMAGE, "
        "the model's requirements installed at build time, the model in /opt/ml/model, our "
        "scoring server as entry point, non-root user, port 8080, HEALTHCHECK, OCI labels "
        "with model name, version, run id and git commit), requirements.txt, model/, "
        "serving/.",
    )
    ctx.add_argument("dir", metavar="DIR", help="a new or empty directory")
    ctx.set_defaults(func=cmd_build_context)
    img = msub.add_parser(
        "build-image",
        parents=[common],
        help="build a model's image with docker, podman or "
        "buildah and record it on the model version",
        description="Build the image of a model (the build context of build-context) with "
        "docker, podman or buildah, whichever is installed and answers its `info` first, and "
        "record the reference on the registered model version (tag mlops.image).",
    )
    img.add_argument(
        "--tag",
        "-t",
        required=True,
        metavar="IMAGE",
        help="the image reference, e.g. registry.example/churn:3",
    )
    img.add_argument(
        "--builder", choices=("docker", "podman", "buildah"), help="use this builder only"
    )
    img.set_defaults(func=cmd_build_image)


def cmd_build_context(args: argparse.Namespace) -> int:
    from .image import build_context

    ident = build_context(args.model_uri, args.dir, args.tracking_uri, args.python_image)
    shown = ident.name + (f" version {ident.version}" if ident.version else "")
    print(
        f"build context for {shown} in {os.path.abspath(args.dir)}\n"
        f"  docker build -t IMAGE {args.dir} && docker run -p 8080:8080 IMAGE"
    )
    return 0


def cmd_build_image(args: argparse.Namespace) -> int:
    from .image import build_image

    out = build_image(args.model_uri, args.tag, args.tracking_uri, args.python_image, args.builder)
    where = (
        f"; recorded on {out['model']} version {out['version']} (tag mlops.image)"
        if out["recorded"]
        else ""
    )
    print(f"built {out['image']} with {out['builder']}{where}")
    return 0


# -- deploy ---------------------------------------------------------------------------------
def _add_deploy(sub: Any) -> None:
    dep = sub.add_parser(
        "deploy",
        help="deployments: serve a registered model at a stable URL, roll it out, roll it back",
        description="Deployments run in a Jupyter server with jupyter-mlops (the local target: "
        "scoring processes it supervises). These commands talk to it over its REST API.",
    )
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--server-url", metavar="URL", help=SERVER_HELP)
    server.add_argument(
        "--token",
        metavar="TOKEN",
        help="the server's token (default: $JUPYTER_MLOPS_SERVER_TOKEN or the found server's)",
    )
    server.add_argument("--json", action="store_true", help="print the deployment as JSON")
    dsub = dep.add_subparsers(dest="deploy_command", metavar="COMMAND", required=True)
    wait = argparse.ArgumentParser(add_help=False)
    wait.add_argument(
        "--no-wait", action="store_true", help="return at once instead of waiting until it serves"
    )
    c = dsub.add_parser("create", parents=[server, wait], help="create a deployment")
    c.add_argument("name", metavar="NAME", help="a DNS label: a-z, 0-9 and '-'")
    c.add_argument(
        "model_uri",
        metavar="MODEL_URI",
        help="models:/<name>/<version>, models:/<name>@<alias>, runs:/..., or a model directory",
    )
    c.add_argument("--target", default="local", help="where it runs (local)")
    c.add_argument("--replicas", type=int, default=1, help="scoring processes (1)")
    c.add_argument(
        "--follow-alias",
        action="store_true",
        help="roll to the alias' new version whenever the alias moves",
    )
    c.set_defaults(func=cmd_create)
    ls = dsub.add_parser("list", parents=[server], help="list deployments")
    ls.set_defaults(func=cmd_list)
    st = dsub.add_parser(
        "status", parents=[server], help="a deployment's status, URL and history of versions"
    )
    st.add_argument("name", metavar="NAME")
    st.add_argument("--logs", action="store_true", help="also print the processes' log tail")
    st.set_defaults(func=cmd_status)
    up = dsub.add_parser(
        "update",
        parents=[server, wait],
        help="roll to another model version (no failed request), or change "
        "replicas or alias following",
    )
    up.add_argument("name", metavar="NAME")
    up.add_argument("model_uri", metavar="MODEL_URI", nargs="?")
    up.add_argument("--replicas", type=int)
    up.add_argument(
        "--canary",
        type=int,
        metavar="PERCENT",
        help="The new version gets PERCENT of the requests beside the "
        "old one (then `deploy promote` or `deploy rollback`)",
    )
    follow = up.add_mutually_exclusive_group()
    follow.add_argument("--follow-alias", dest="follow_alias", action="store_true", default=None)
    follow.add_argument("--no-follow-alias", dest="follow_alias", action="store_false")
    up.set_defaults(func=cmd_update)
    rb = dsub.add_parser(
        "rollback", parents=[server, wait], help="serve the previously served version again"
    )
    rb.add_argument("name", metavar="NAME")
    rb.set_defaults(func=cmd_rollback)
    pr = dsub.add_parser(
        "promote", parents=[server, wait], help="give the canary's version all the traffic"
    )
    pr.add_argument("name", metavar="NAME")
    pr.set_defaults(func=cmd_promote)
    rm = dsub.add_parser("delete", parents=[server], help="stop and delete a deployment")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=cmd_delete)


def _api(args: argparse.Namespace) -> Any:
    from ..tracking.errors import TrackingError
    from .client import DeploymentsAPI

    try:
        return DeploymentsAPI(args.server_url, args.token)
    except TrackingError:
        if args.server_url:
            raise
    from jupyter_server.serverapp import list_running_servers

    servers = list(list_running_servers())
    if len(servers) != 1:
        raise TrackingError(
            (
                "No running Jupyter server found"
                if not servers
                else f"{len(servers)} Jupyter servers run here"
            )
            + ": give --server-url (and --token), "
            "or set JUPYTER_MLOPS_SERVER_URL and JUPYTER_MLOPS_SERVER_TOKEN.",
            "INVALID_PARAMETER_VALUE",
        )
    s = servers[0]
    return DeploymentsAPI(s["url"], args.token or s.get("token") or "")


def _show(d: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(d, indent=2))
        return
    version = d.get("model_version")
    print(f"{d['name']}: {d['status']}  {d.get('url') or '-'}")
    print(
        f"  model    {d['model_uri']}"
        + (f"  (serving {d.get('model_name')} version {version})" if version else "")
    )
    print(
        f"  target   {d['target']}, {d['replicas']} replica(s)"
        + (", follows its alias" if d.get("follow_alias") else "")
    )
    if d.get("reason"):
        print(f"  reason   {d['reason']}")
    for t in d.get("traffic") or []:
        print(
            f"  traffic  {t.get('percent')}% to version {t.get('version')} ({t.get('model_uri')})"
        )
    for h in d.get("history") or []:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["start_time"] / 1000))
        print(f"  {h['seq']:>3}  {when}  {h['action']:<9} {h['model_uri']}")


def _settle(args: argparse.Namespace, api: Any, d: dict[str, Any]) -> int:
    from .client import Deployment

    dep = Deployment(api, d)
    if not getattr(args, "no_wait", False):
        dep.wait()
    _show(dep.refresh().to_dict(), args.json)
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    api = _api(args)
    d = api.call(
        "POST",
        body={
            "name": args.name,
            "model_uri": args.model_uri,
            "target": args.target,
            "replicas": args.replicas,
            "follow_alias": args.follow_alias,
        },
    )["deployment"]
    return _settle(args, api, d)


def cmd_list(args: argparse.Namespace) -> int:
    deps = _api(args).call("GET")["deployments"]
    if args.json:
        print(json.dumps(deps, indent=2))
        return 0
    if not deps:
        print("no deployments")
    for d in deps:
        version = d.get("model_version") or "-"
        print(
            f"{d['name']:<24} {d['status']:<11} v{version:<5} {d.get('url') or '-':<28} "
            f"{d['model_uri']}"
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    api = _api(args)
    _show(api.call("GET", args.name)["deployment"], args.json)
    if args.logs:
        print(api.call("GET", f"{args.name}/logs", text=True))
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    api = _api(args)
    body = {
        k: v
        for k, v in {
            "model_uri": args.model_uri,
            "replicas": args.replicas,
            "follow_alias": args.follow_alias,
            "canary_percent": args.canary,
        }.items()
        if v is not None
    }
    return _settle(args, api, api.call("PATCH", args.name, body)["deployment"])


def cmd_rollback(args: argparse.Namespace) -> int:
    api = _api(args)
    return _settle(args, api, api.call("POST", f"{args.name}/rollback", {})["deployment"])


def cmd_promote(args: argparse.Namespace) -> int:
    api = _api(args)
    return _settle(args, api, api.call("POST", f"{args.name}/promote", {})["deployment"])


def cmd_delete(args: argparse.Namespace) -> int:
    _api(args).call("DELETE", args.name)
    print(f"deleted {args.name}")
    return 0
