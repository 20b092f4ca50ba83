"""``jupyter mlops pipeline validate|run``.

Wire into ``jupyter_mlops/cli.py``'s ``build_parser`` with
``pipelines_cli.add_subparsers(sub)``; each parser sets ``func=run``.

* ``validate FILE``: every issue as ``file:line: field: message``; exit 0 when valid, 1 if not.
* ``run FILE [-p name=value ...]``: runs here (steps in this process's kernels and
  subprocesses), prints progress and the run id, waits; exit 0 on success, 1 on failure,
  130 when interrupted (the run is cancelled: its process trees are killed).
* ``run FILE --target NAME``: submits to a Kubeflow Pipelines target configured for the
  Jupyter server (``c.PipelineService.kubeflow_targets`` in the Jupyter config files)
  and watches it the same way; interrupting terminates the KFP run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from typing import Any

from ..cli_common import describe_params, report_issues, workspace_root


def add_subparsers(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "pipeline",
        help="validate or run a pipeline (*.pipeline.yaml)",
        description="Validate or run a pipeline file locally, tracked in the store.",
    )
    sub = p.add_subparsers(dest="pipeline_command", metavar="COMMAND")
    sub.required = True
    v = sub.add_parser("validate", help="check a pipeline file (issues name file, line, field)")
    v.add_argument("file", metavar="FILE")
    v.add_argument(
        "--root",
        metavar="DIR",
        help="workspace root paths may not leave "
        "(default: the current directory, or the file's own if it is outside)",
    )
    v.set_defaults(func=run)
    r = sub.add_parser("run", help="run a pipeline here and wait for it")
    r.add_argument("file", metavar="FILE")
    r.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a pipeline parameter (repeat for several)",
    )
    r.add_argument("--root", metavar="DIR", help="workspace root (see validate)")
    r.add_argument(
        "--parallelism",
        type=int,
        default=0,
        metavar="N",
        help="steps at once (default: CPUs, at least 2)",
    )
    r.add_argument(
        "--database-url",
        metavar="URL",
        help="the store (default: $JUPYTER_MLOPS_TRACKING_URI when it is a database, "
        "else the default store)",
    )
    r.add_argument("--runs-dir", metavar="DIR", help="where step logs, notebooks and outputs go")
    r.add_argument(
        "--target",
        metavar="NAME",
        default="local",
        help="where to run: 'local' (default) or a Kubeflow Pipelines target "
        "configured for the Jupyter server (c.PipelineService.kubeflow_targets)",
    )
    r.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.pipeline_command == "validate":
        return _validate(args)
    return _run(args)


def _validate(args: argparse.Namespace) -> int:
    from .executor import topological_order
    from .spec import PipelineInvalid, load_pipeline

    try:
        p = load_pipeline(args.file, root=workspace_root(args.file, args.root))
    except PipelineInvalid as e:
        return report_issues(args.file, e.issues)
    params = describe_params(p.parameters)
    print(
        f"{args.file}: valid pipeline {p.name!r}, {len(p.steps)} step(s): "
        f"{' -> '.join(topological_order(p))}" + (f"; parameters: {params}" if params else "")
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..cli_common import resolve_store
    from ..tracking import open_store
    from .params import ParameterError, parse_assignments
    from .progress import ProgressPrinter
    from .service import PipelineError, PipelineService

    try:
        given = parse_assignments(args.param)
    except ParameterError as e:
        print(f"jupyter mlops pipeline run: {e}", file=sys.stderr)
        return 2
    url, artifact_root = resolve_store(args.database_url, None)
    store = open_store(url, artifact_root=artifact_root)
    root = workspace_root(args.file, args.root)
    env = dict(os.environ, JUPYTER_MLOPS_TRACKING_URI=url)
    cfg: dict[str, Any] = {"parallelism": args.parallelism}
    if args.runs_dir:
        cfg["runs_dir"] = os.path.abspath(args.runs_dir)
    target = args.target or "local"
    if target != "local":
        cfg["kubeflow_targets"] = server_kubeflow_targets()
    path = os.path.abspath(args.file)

    async def main() -> int:
        svc = PipelineService(store, root, env=env, **cfg)
        await svc.start(schedules=False)
        printer = ProgressPrinter()
        run_id = None
        try:
            try:
                run = await svc.submit(path, parameters=given, target=target)
            except PipelineError as e:
                for issue in e.issues:
                    print(str(issue), file=sys.stderr)
                return 1
            run_id = run["run_id"]
            printer.t0 = time.monotonic()
            where = "" if target == "local" else f" on {target}"
            print(
                f"pipeline {run['name']}: run {run_id} started{where} "
                f"({run['progress']['total']} steps)",
                flush=True,
            )
            if run.get("external_url"):
                print(f"  {run['external_url']}", flush=True)
            ex = svc.active.get(run_id)
            if ex is not None:  # `kill` (SIGTERM) must not leave step processes behind
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    asyncio.get_running_loop().add_signal_handler(
                        signal.SIGTERM, ex.cancel, "interrupted: the CLI was terminated"
                    )
            while ex is not None and not ex.done.is_set():
                printer.update(await svc.get_run(run_id))
                try:
                    await asyncio.wait_for(ex.done.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
            kf = svc.targets.get(target)
            if kf is not None:  # (a killed CLI leaves it to the cluster; a server re-attaches)
                while (watcher := kf.watchers.get(run_id)) is not None:
                    printer.update(await svc.get_run(run_id))
                    await asyncio.wait([watcher], timeout=0.5)
            run = await svc.get_run(run_id)
            printer.update(run)
            print(printer.summary(run), flush=True)
            return 0 if run["status"] == "SUCCEEDED" else 1
        except asyncio.CancelledError:
            if run_id and run_id in svc.active:
                svc.active[run_id].cancel()
                await svc.active[run_id].done.wait()
            elif run_id and target != "local":  # terminate it in the cluster too
                with contextlib.suppress(Exception):
                    await svc.cancel(run_id)
            raise
        finally:
            await svc.stop()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        print("jupyter mlops pipeline run: interrupted; the run was cancelled", file=sys.stderr)
        return 130
    finally:
        store.close()


def server_kubeflow_targets() -> dict[str, Any]:
    """``c.PipelineService.kubeflow_targets`` from the Jupyter server's config files (JSON
    and Python, in Jupyter's config path): the CLI submits where the server would."""
    from ..cli_common import server_config

    merged = server_config()
    targets = (
        merged.PipelineService.get("kubeflow_targets") if "PipelineService" in merged else None
    )
    return dict(targets or {})


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m jupyter_mlops.pipelines.cli``) until wired into ``jupyter mlops``."""
    parser = argparse.ArgumentParser(prog="jupyter mlops")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_subparsers(sub)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except Exception as e:
        from ..tracking.errors import TrackingError

        if not isinstance(e, (TrackingError, OSError)):
            raise
        print(f"jupyter mlops: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
