"""``%mlops pipeline validate|run FILE [--target NAME] [name=value ...]`` (registered in
``magics.py``).

In a kernel started by a Jupyter server with jupyter-mlops the run is submitted
to that server (``JUPYTER_MLOPS_SERVER_URL``/``_TOKEN``): it keeps running if the
kernel dies or the browser closes, and shows in the Pipelines panel; the magic
prints progress until it ends (interrupting the cell cancels it). ``--target``
names where the server runs it (``local`` or one of its Kubeflow targets). Without
a server the pipeline runs inside the kernel's process, in a thread; Kubeflow
targets are the server's configuration, so they need the server (or the CLI).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from IPython.core.error import UsageError

USAGE = "%mlops pipeline validate FILE | %mlops pipeline run FILE [--target NAME] [name=value ...]"


def _take_target(args: list[str]) -> tuple[str, list[str]]:
    """``--target NAME`` / ``--target=NAME`` anywhere among ``args`` → (target, the rest)."""
    target, rest = "local", []
    it = iter(args)
    for arg in it:
        if arg == "--target":
            value = next(it, None)
            if not value or value.startswith("-"):
                raise UsageError("%mlops pipeline run: --target needs a NAME")
            target = value
        elif arg.startswith("--target="):
            target = arg.split("=", 1)[1]
            if not target:
                raise UsageError("%mlops pipeline run: --target needs a NAME")
        elif arg.startswith("--"):
            raise UsageError(f"%mlops pipeline: unknown option {arg!r}; usage: {USAGE}")
        else:
            rest.append(arg)
    return target, rest


def pipeline_magic(argv: list[str]) -> Any:
    if len(argv) < 2 or argv[0] not in ("validate", "run"):
        raise UsageError(f"usage: {USAGE}")
    action, path, rest = argv[0], argv[1], argv[2:]
    target, rest = _take_target(rest) if action == "run" else ("local", rest)
    if not os.path.isfile(path):
        raise UsageError(f"%mlops pipeline: no file {path!r}")
    from .params import ParameterError, parse_assignments

    try:
        params = parse_assignments(rest)
    except ParameterError as e:
        raise UsageError(f"%mlops pipeline {action}: {e}") from None
    if action == "validate":
        if rest:
            raise UsageError("%mlops pipeline validate takes only FILE")
        return _validate(path)
    server = os.environ.get("JUPYTER_MLOPS_SERVER_URL")
    if server:
        return _run_on_server(
            server, os.environ.get("JUPYTER_MLOPS_SERVER_TOKEN", ""), path, params, target
        )
    if target != "local":
        raise UsageError(
            f"%mlops pipeline run: target {target!r} needs the Jupyter server: Kubeflow "
            "targets are its configuration, and this kernel was not started by a server with "
            "jupyter-mlops. Run the magic in a notebook of that server, or use the CLI: "
            f"jupyter mlops pipeline run {path} --target {target}"
        )
    return _run_here(path, params)


def _validate(path: str) -> None:
    from .spec import PipelineInvalid, load_pipeline

    try:
        p = load_pipeline(path, root=_root(path))
    except PipelineInvalid as e:
        raise UsageError("invalid pipeline:\n" + "\n".join(str(i) for i in e.issues)) from None
    print(f"{path}: valid pipeline {p.name!r} with {len(p.steps)} step(s)")


def _root(path: str) -> str:
    cwd = os.getcwd()
    full = os.path.abspath(path)
    return cwd if full.startswith(cwd.rstrip(os.sep) + os.sep) else os.path.dirname(full)


class _Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base.rstrip("/") + "/mlops/api/v1/pipelines/"
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = (
            json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        )
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())
            except ValueError:
                raise UsageError(f"%mlops pipeline: the server answered {e.code}") from None
            issues = err.get("issues")
            if issues:
                raise UsageError(
                    "invalid pipeline:\n"
                    + "\n".join(
                        f"{i.get('file')}:{i.get('line')}: {i.get('field')}: {i.get('message')}"
                        for i in issues
                    )
                ) from None
            raise UsageError(f"%mlops pipeline: {err.get('message', e.code)}") from None


def _run_on_server(
    server: str, token: str, path: str, params: dict[str, str], target: str = "local"
) -> str:
    from .progress import ProgressPrinter

    api = _Api(server, token)
    run = api.call(
        "POST", "runs", {"path": os.path.abspath(path), "parameters": params, "target": target}
    )["run"]
    run_id = run["run_id"]
    where = "" if run.get("target", "local") == "local" else f", on {run['target']}"
    print(
        f"pipeline {run['name']}: run {run_id} submitted to the Jupyter server{where} "
        f"({run['progress']['total']} steps)",
        flush=True,
    )
    if run.get("external_url"):
        print(f"  {run['external_url']}", flush=True)
    printer = ProgressPrinter()
    try:
        while run["status"] not in ("SUCCEEDED", "FAILED", "CANCELED"):
            printer.update(run)
            time.sleep(0.3)
            run = api.call("GET", f"runs/{run_id}")["run"]
    except KeyboardInterrupt:
        run = api.call("POST", f"runs/{run_id}/cancel")["run"]
    printer.update(run)
    return _finish(printer, run)


def _finish(printer: Any, run: dict[str, Any]) -> str:
    print(printer.summary(run), flush=True)
    if run["status"] != "SUCCEEDED":
        raise UsageError(printer.summary(run))
    return run["run_id"]


def _run_here(path: str, params: dict[str, str]) -> str:
    """No server: run in this process, on a private event loop in a thread (the
    kernel's own loop is busy running this cell)."""
    from ..client.uris import get_tracking_uri
    from ..tracking import TrackingError, open_store
    from .progress import ProgressPrinter
    from .service import PipelineError, PipelineService

    uri = get_tracking_uri()
    if not uri.startswith(("sqlite:", "postgresql", "postgres:")):
        raise UsageError(
            "%mlops pipeline run: without a Jupyter server the tracking URI must "
            f"be a database (it is {uri!r})"
        )
    printer = ProgressPrinter()
    result: dict[str, Any] = {}

    async def main() -> None:
        store = open_store(uri)
        svc = PipelineService(store, _root(path), env=dict(os.environ))
        await svc.start(schedules=False)
        try:
            run = await svc.submit(os.path.abspath(path), parameters=params)  # noqa: ASYNC240 - abspath of the magic's argument, once
            print(f"pipeline {run['name']}: run {run['run_id']} started", flush=True)
            ex = svc.active.get(run["run_id"])
            while ex is not None and not ex.done.is_set():
                printer.update(await svc.get_run(run["run_id"]))
                await asyncio.sleep(0.25)
            result["run"] = await svc.get_run(run["run_id"])
        except PipelineError as e:
            result["error"] = "invalid pipeline:\n" + "\n".join(str(i) for i in e.issues)
        except TrackingError as e:  # refused input (a bad value, an unknown target)
            result["error"] = e.message
        except Exception as e:  # noqa: BLE001 - reported in the cell, not lost in the thread
            result["error"] = f"{type(e).__name__}: {e}"
        finally:
            await svc.stop()
            store.close()

    t = threading.Thread(target=lambda: asyncio.run(main()), name="mlops-pipeline")
    t.start()
    t.join()
    if "error" in result:
        raise UsageError(f"%mlops pipeline run: {result['error']}")
    run = result["run"]
    printer.update(run)
    return _finish(printer, run)
