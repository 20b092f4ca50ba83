"""``jupyter mlops hub check|render|usage|culler``.

Wired into the main CLI with ``add_subparsers(subparsers)`` and dispatched with ``run(args)``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TextIO


def add_subparsers(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``hub`` command (with ``check`` and ``render``) to the main CLI's subparsers."""
    hub = subparsers.add_parser(
        "hub",
        help="JupyterHub team servers: check teams.yaml, preview pod manifests, GPU usage, the culler",
    )
    hub.set_defaults(func=run)  # the main CLI dispatches with args.func(args)
    sub = hub.add_subparsers(dest="hub_command", metavar="{check,render,usage,culler}")
    sub.required = True

    check = sub.add_parser(
        "check", help="validate teams.yaml; errors name the file, line and field"
    )
    check.add_argument("teams_file", help="path to teams.yaml")

    render = sub.add_parser(
        "render", help="print the pod manifest a spawn would create, or the refusal"
    )
    render.add_argument("teams_file", help="path to teams.yaml")
    render.add_argument("--user", required=True, help="JupyterHub user name")
    render.add_argument(
        "--groups", default="", help="the user's JupyterHub groups, comma separated"
    )
    render.add_argument("--profile", default=None, help="image id from teams.yaml (or 'custom')")
    render.add_argument("--gpus", default=None, help="number of GPUs")
    render.add_argument("--size", default=None, help="size preset id")
    render.add_argument(
        "--team", default=None, help="team whose quota is charged (when several offer the image)"
    )
    render.add_argument(
        "--image", default=None, help="free-text image reference, with --profile custom"
    )
    render.add_argument(
        "--namespace", default="jhub", help="Kubernetes namespace of user pods (default: jhub)"
    )
    render.add_argument("--format", choices=("yaml", "json"), default="yaml", help="output format")

    usage = sub.add_parser(
        "usage",
        help="GPU-hours per user and team (admins: everybody; users: their own and their teams')",
    )
    usage.add_argument("--since", default="30d", help="window start, back from now (30d, 12h, 90m)")
    usage.add_argument("--until", default=None, help="window end, back from now (default: now)")
    usage.add_argument("--team", default=None, help="only this team")
    usage.add_argument("--user", default=None, help="only this user")
    usage.add_argument("--csv", action="store_true", help="CSV instead of a table")
    usage.add_argument(
        "--hub-url",
        default=os.environ.get("JUPYTERHUB_API_URL", ""),
        help="the hub's API URL, e.g. https://hub.example/hub/api (default: $JUPYTERHUB_API_URL); "
        "the token is $JUPYTERHUB_API_TOKEN",
    )
    usage.add_argument(
        "--database-url",
        default=None,
        help="read the usage history database directly instead (c.TeamOps.usage_database_url)",
    )

    culler = sub.add_parser(
        "culler", help="the idle culler: run by JupyterHub as a service, asks the hub for a pass"
    )
    culler.add_argument(
        "--every", type=float, default=60.0, help="seconds between cull passes (default 60)"
    )
    return hub


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``hub check`` or ``hub render``; returns the exit code (0 ok, 1 errors or refusal)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if args.hub_command == "check":
        return _check(args.teams_file, out, err)
    if args.hub_command == "render":
        return _render(args, out, err)
    if args.hub_command == "usage":
        return _usage(args, out, err)
    if args.hub_command == "culler":
        return _culler(args, err)
    print(f"unknown hub command {args.hub_command!r}", file=err)
    return 2


def _check(path: str, out: TextIO, err: TextIO) -> int:
    from .teams import check_text

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        print(f"{path}: cannot read: {e.strerror or e}", file=err)
        return 1
    config, problems = check_text(text, path)
    for p in problems:
        print(p, file=err if p.severity == "error" else out)
    if config is None:
        n = sum(1 for p in problems if p.severity == "error")
        print(f"{path}: {n} error{'s' if n != 1 else ''}", file=err)
        return 1
    gpus = sum(t.gpu_quota for t in config.teams.values())
    print(
        f"{path}: ok: {len(config.images)} images, {len(config.sizes)} sizes, {len(config.teams)} teams, "
        f"{gpus} GPUs of team quota",
        file=out,
    )
    return 0


def _render(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .policy import SpawnRefused
    from .teams import TeamsConfigError, load_teams

    try:
        load_teams(args.teams_file)
    except TeamsConfigError as e:
        print(str(e), file=err)
        return 1
    options: dict[str, Any] = {}
    for key, value in (
        ("profile", args.profile),
        ("gpus", args.gpus),
        ("size", args.size),
        ("team", args.team),
        ("image--unlisted-choice", args.image),
    ):
        if value is not None:
            options[key] = value
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]

    async def build() -> dict[str, Any]:
        from .render import offline_spawner, render_pod

        spawner = offline_spawner(args.teams_file, args.user, groups, namespace=args.namespace)
        try:
            _, pod = await render_pod(spawner, options)
        finally:
            await spawner.api.api_client.close()
        return pod

    try:
        pod = asyncio.run(build())
    except SpawnRefused as e:
        print(f"refused: {e.message}", file=err)
        return 1
    if args.format == "json":
        json.dump(pod, out, indent=2, sort_keys=False)
        out.write("\n")
    else:
        import yaml

        yaml.safe_dump(pod, out, sort_keys=False, default_flow_style=False)
    return 0


def _hub_request(url: str, method: str = "GET") -> bytes:
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    req = urllib.request.Request(
        url,
        method=method,
        headers={"Authorization": f"token {token}"},
        data=b"" if method == "POST" else None,
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return bytes(r.read())


def _usage(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .teams import parse_duration

    try:
        since_s = parse_duration(args.since)
        until_s = parse_duration(args.until) if args.until else 0.0
    except ValueError as e:
        print(f"--since/--until: {e}", file=err)
        return 2
    if args.database_url:
        from .usage import UsageHistory

        now = time.time()
        report = UsageHistory(args.database_url).report(now - since_s, now - until_s)
        if args.team:
            report.users = {k: v for k, v in report.users.items() if k[0] == args.team}
            report.teams = {k: v for k, v in report.teams.items() if k == args.team}
        if args.user:
            report.users = {k: v for k, v in report.users.items() if k[1] == args.user}
        data: dict[str, Any] = report.to_json()
        csv_text = report.to_csv()
    else:
        if not args.hub_url:
            print("give --hub-url (or set JUPYTERHUB_API_URL) or --database-url", file=err)
            return 2
        query = {"since": args.since}
        for key in ("until", "team", "user"):
            if getattr(args, key):
                query[key] = getattr(args, key)
        base = args.hub_url.rstrip("/") + "/mlops/usage?"
        try:
            data = json.loads(_hub_request(base + urllib.parse.urlencode(query)))
            csv_text = (
                _hub_request(base + urllib.parse.urlencode({**query, "format": "csv"})).decode()
                if args.csv
                else ""
            )
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("message") or e.reason
            except ValueError:
                message = e.reason
            print(f"hub refused ({e.code}): {message}", file=err)
            return 1
        except OSError as e:
            print(f"cannot reach the hub at {args.hub_url}: {e}", file=err)
            return 1
    if args.csv:
        out.write(csv_text)
        return 0
    rows = [(u["team"], u["user"], u) for u in data["users"]]
    rows += [(t["team"], "(team)", t) for t in data["teams"]]
    print(
        f"{'team':<16} {'user':<20} {'GPU-hours':>10} {'notebooks':>10} {'jobs':>10} {'culls':>6}",
        file=out,
    )
    for team, user, v in rows:
        print(
            f"{team:<16} {user:<20} {v['gpu_hours']:>10.2f} {v['notebook_gpu_hours']:>10.2f} "
            f"{v['job_gpu_hours']:>10.2f} {v['culls']:>6}",
            file=out,
        )
    return 0


def _culler(args: argparse.Namespace, err: TextIO) -> int:
    """Ask the hub for a cull pass every ``--every`` seconds (the decisions and stops happen in the hub, next
    to the ledger; this process only holds the token and the rhythm)."""
    import logging

    logging.basicConfig(
        level=logging.INFO, format="[%(levelname)1.1s %(asctime)s culler] %(message)s"
    )
    log = logging.getLogger("jupyter_mlops.culler")
    url = os.environ.get("JUPYTERHUB_API_URL", "").rstrip("/")
    if not url or not os.environ.get("JUPYTERHUB_API_TOKEN"):
        print(
            "JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN must be set: run it as a hub service",
            file=err,
        )
        return 2
    while True:
        try:
            answer = json.loads(_hub_request(url + "/mlops/cull", "POST"))
            for a in answer.get("actions", []):
                log.info(
                    "%s%s %s/%s: %s",
                    "(dry run) " if a["dry_run"] else "",
                    a["action"],
                    a["user"],
                    a["server"] or "(default)",
                    a["message"],
                )
        except (OSError, ValueError) as e:
            log.warning("cull pass failed: %s", e)
        time.sleep(max(0.2, args.every))


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m jupyter_mlops.hub.cli check teams.yaml``)."""
    parser = argparse.ArgumentParser(prog="jupyter mlops")
    add_subparsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["hub", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
