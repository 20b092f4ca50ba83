"""``jupyter mlops bench``: run the scale workloads against a running server and print the
figures as a Markdown table (or JSON), with this machine's load average."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from ..cli_common import CLIError
from . import workloads
from .rest import Api, BenchError
from .stats import load

EPILOG = """\
Sizes are issue 18's targets times --scale: 100 writers x 100k points, 1M runs, a 10M-point
series at --scale 1 (hours, and the database grows by GBs); the default 0.001 runs in a
minute or two. Each workload creates its own experiment (mlops-bench-<what>-<time>) and deletes
it at the end unless --keep (run `jupyter mlops gc` on the server to free the space).
Example, against a hub user's server:

  jupyter mlops bench --url https://hub.example.org/user/ada/mlops \\
      --token "$JUPYTERHUB_API_TOKEN" --scale 0.01 --only write,search

Compare the figures with bench/RESULTS.md ("Scale") and note the load of the machines.
"""


def add_subparsers(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="measure a running server: concurrent writers, search, long series (issue 18)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--url",
        default=os.environ.get("JUPYTER_MLOPS_TRACKING_URI", ""),
        help="the server's tracking URI, e.g. http://localhost:8888/mlops "
        "(default: $JUPYTER_MLOPS_TRACKING_URI when it is an http(s) URL)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("JUPYTER_MLOPS_TRACKING_TOKEN", "")
        or os.environ.get("JUPYTERHUB_API_TOKEN", ""),
        help="API token (default: $JUPYTER_MLOPS_TRACKING_TOKEN, else $JUPYTERHUB_API_TOKEN)",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=0.001,
        help="fraction of the full sizes (1: 100 writers x 100k points, 1M runs, 10M points); "
        "default 0.001",
    )
    p.add_argument(
        "--only",
        default=",".join(workloads.WORKLOADS),
        help=f"comma-separated workloads among {', '.join(workloads.WORKLOADS)} (default: all)",
    )
    p.add_argument("--keep", action="store_true", help="keep the bench's experiments")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    if not args.url.startswith(("http://", "https://")):
        raise CLIError(
            "--url must be the server's http(s) tracking URI, e.g. http://localhost:8888/mlops"
        )
    if not 0 < args.scale <= 1:
        raise CLIError(f"--scale must be in (0, 1], got {args.scale}")
    chosen = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in chosen if w not in workloads.WORKLOADS]
    if unknown or not chosen:
        raise CLIError(
            f"--only: unknown workload(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(workloads.WORKLOADS)}"
        )
    api = Api(args.url, args.token)
    try:
        api.get("api/2.0/mlflow/experiments/search", max_results=1)
    except BenchError as e:
        raise CLIError(f"cannot use {args.url}: {e}") from e
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    reports, made, failed = [], [], False
    try:
        for name in chosen:
            print(
                f"running {name} at scale {args.scale} (load {load()})…",
                file=sys.stderr,
                flush=True,
            )
            try:
                report, exps = workloads.WORKLOADS[name](api, args.scale)
            except BenchError as e:
                raise CLIError(f"{name}: {e}") from e
            made += exps
            reports.append(report)
            failed = failed or bool(report.problems)
    finally:
        if not args.keep:
            workloads.cleanup(api, made)
    if args.json:
        out = {
            "url": args.url,
            "scale": args.scale,
            "started": started,
            "load": load(),
            "workloads": [
                {"title": r.title, "rows": r.rows, "figures": r.figures, "problems": r.problems}
                for r in reports
            ],
        }
        print(json.dumps(out, indent=2))
    else:
        print(
            f"jupyter mlops bench: {args.url}, scale {args.scale}, {started}, client load {load()}\n"
        )
        print("| workload | measure | figure |\n|---|---|---|")
        for r in reports:
            for measure, text in r.rows:
                print(f"| {r.title} | {measure} | {text} |")
        for r in reports:
            for problem in r.problems:
                print(f"PROBLEM ({r.title}): {problem}")
    return 1 if failed else 0
