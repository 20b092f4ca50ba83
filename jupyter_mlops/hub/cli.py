"""``jupyter mlops hub check`` and ``jupyter mlops hub render``.

Wired into the main CLI with ``add_subparsers(subparsers)`` and dispatched with ``run(args)``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO


def add_subparsers(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``hub`` command (with ``check`` and ``render``) to the main CLI's subparsers."""
    hub = subparsers.add_parser(
        "hub", help="JupyterHub team servers: check teams.yaml, preview pod manifests"
    )
    hub.set_defaults(func=run)  # the main CLI dispatches with args.func(args)
    sub = hub.add_subparsers(dest="hub_command", metavar="{check,render}")
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
    return hub


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``hub check`` or ``hub render``; returns the exit code (0 ok, 1 errors or refusal)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if args.hub_command == "check":
        return _check(args.teams_file, out, err)
    if args.hub_command == "render":
        return _render(args, out, err)
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


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m jupyter_mlops.hub.cli check teams.yaml``)."""
    parser = argparse.ArgumentParser(prog="jupyter mlops")
    add_subparsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["hub", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
