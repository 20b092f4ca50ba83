"""``jupyter mlops run URI [-e ENTRY] [-P k=v ...] [--env-manager M] [--experiment-name N]
[--run-name R] [--target NAME]``: ``mlflow run``'s flags, the run recorded as it records
it. The entry point's output goes to the terminal; the exit status is the run's (0 when
it FINISHED)."""

from __future__ import annotations

import argparse
import sys

from ..cli_common import CLIError

EPILOG = """examples:
  jupyter mlops run ./churn -P alpha=0.3
  jupyter mlops run ./churn -e evaluate --env-manager local --experiment-name churn
  jupyter mlops run file:///srv/repos/models.git#churn --version v2 -P epochs=5
"""


def add_subparsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "run",
        help="run an MLflow project (MLproject) entry point as a tracked run",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=cmd_run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("uri", help="a project directory, git repository (URL#subdir) or archive")
    p.add_argument("-e", "--entry-point", default="main", help="entry point (default: main)")
    p.add_argument("-v", "--version", help="git commit or branch (git URIs only)")
    p.add_argument(
        "-P",
        "--param-list",
        action="append",
        metavar="NAME=VALUE",
        default=[],
        help="a parameter (repeatable); undeclared ones are passed as --NAME VALUE",
    )
    p.add_argument(
        "--env-manager",
        choices=["local", "virtualenv", "uv", "conda"],
        help="where the entry point runs (default: from the project: python_env → uv if "
        "installed, else virtualenv; no environment file → local)",
    )
    p.add_argument("--experiment-name", help="experiment (created when missing)")
    p.add_argument("--experiment-id", help="experiment id")
    p.add_argument("--run-name", help="the run's name")
    p.add_argument("--run-id", help="log into this existing run instead of a new one")
    p.add_argument(
        "--target",
        help="where to run: local (default: this machine) or a training target's name "
        "(c.TrainingService.targets: the run is a training job there)",
    )
    p.add_argument("--storage-dir", help="where fetched projects and downloads are kept")
    p.add_argument(
        "--tracking-uri",
        help="store to record the run in (default: $JUPYTER_MLOPS_TRACKING_URI, "
        "$MLFLOW_TRACKING_URI, the default local store)",
    )


def cmd_run(args: argparse.Namespace) -> int:
    from .client import run
    from .params import parse_pairs
    from .spec import ProjectError

    try:
        params = parse_pairs(args.param_list)
        submitted = run(
            args.uri,
            entry_point=args.entry_point,
            version=args.version,
            parameters=params,
            experiment_name=args.experiment_name,
            experiment_id=args.experiment_id,
            env_manager=args.env_manager,
            storage_dir=args.storage_dir,
            synchronous=False,
            run_id=args.run_id,
            run_name=args.run_name,
            target=args.target,
            tracking_uri=args.tracking_uri,
        )
    except ProjectError as e:
        raise CLIError(e.message) from None
    follow = getattr(submitted, "follow", None)  # a training job: its output is printed here
    try:
        ok = follow() if follow is not None else submitted.wait()
    except KeyboardInterrupt:
        submitted.cancel()
        raise
    if not ok:
        print(
            f"jupyter mlops: run {submitted.run_id} {submitted.status}"
            + (f": {submitted.error}" if submitted.error else ""),
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str]) -> int:
    """``jupyter mlops run ...`` without building every other subcommand's parser (the
    run's start-up time is the overhead the user waits for)."""
    from ..cli_common import PROG

    p = argparse.ArgumentParser(
        prog=f"{PROG} run",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.add_argument("--traceback", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        return cmd_run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except CLIError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
