"""The bootstrap that runs one pipeline step in its Kubeflow pod.

``python3 -m jupyter_mlops.pipelines.kubeflow.step --archive B64 --executor_input JSON
--config JSON [--workdir DIR]`` (what :mod:`.compiler` puts in each executor):

1. unpacks the embedded notebook/script and ``inputs`` files (base64 of a gzip tar);
2. reads KFP's executor input: parameter values, and the local paths of the input
   and output artifacts (the launcher mounts ``gs://``, ``s3://``, ``minio://`` URIs
   under ``/gcs/``, ``/s3/``, ``/minio/``; other URIs are paths);
3. places upstream outputs where the step expects them (direct dependencies' in its
   working directory, as locally; every received step's under ``{{ steps.S.outputs }}``);
4. runs the notebook (papermill-style parameters, nbclient, as the local executor:
   :func:`..runner.run_notebook`) or the script (:func:`..runner.run_script`), logging
   into the pre-created run named by ``JUPYTER_MLOPS_RUN_ID``, with the step's timeout;
5. copies the declared outputs to the output artifacts' paths, uploads the executed
   notebook and the log to the run, ends it, and exits 0; on failure the reason goes
   to stderr (KFP shows it as the pod's log) and the exit status is 1 (2: bad call).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Mapping
from typing import IO, Any, cast

#: KFP's launcher mounts object storage here (kfp.dsl.types.artifact_types).
MOUNT_PREFIXES = (("gs://", "/gcs/"), ("minio://", "/minio/"), ("s3://", "/s3/"))
EXIT_FAILED = 1
EXIT_USAGE = 2


class StepError(Exception):
    """The step failed; the message is what the user reads in the pod's log."""


def local_path(uri: str) -> str:
    """Where KFP's launcher makes an artifact URI available in the container."""
    for remote, mount in MOUNT_PREFIXES:
        if uri.startswith(remote):
            return mount + uri[len(remote) :]
    return uri


# -- the step's files ------------------------------------------------------------------------
def unpack(archive_b64: str, dest: str) -> None:
    """Extract the embedded files; members that are not plain files at relative paths
    inside ``dest`` are refused (the archive is ours, but it came through the cluster)."""
    from ...embed import EmbedError
    from ...embed import unpack as unpack_files

    os.makedirs(dest, exist_ok=True)
    try:
        unpack_files(archive_b64, dest)
    except EmbedError as e:
        raise StepError(f"embedded archive: {e}") from None


def _inside(root: str, path: str) -> bool:
    root = os.path.abspath(root)
    return os.path.abspath(path).startswith(root.rstrip(os.sep) + os.sep)


def _copy(src: str, dst: str) -> None:
    """A file or a directory, replacing what is at ``dst``."""
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    if os.path.isdir(dst) and not os.path.islink(dst):
        shutil.rmtree(dst)
    elif os.path.lexists(dst):
        os.remove(dst)
    if os.path.isdir(src):
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)


def _artifact_path(section: Mapping[str, Any], name: str, what: str) -> str:
    try:
        uri = section[name]["artifacts"][0]["uri"]
    except (KeyError, IndexError, TypeError):
        raise StepError(f"the executor input has no {what} artifact {name!r}") from None
    return local_path(str(uri))


# -- parameters --------------------------------------------------------------------------------
def _kfp_value(ptype: str, value: Any, name: str) -> Any:
    """A KFP parameter value as the declared type (JSON numbers lose int-ness on the way)."""
    from ..params import ParameterError, coerce

    if ptype == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return coerce(ptype, value, name)
    except ParameterError as e:
        raise StepError(str(e)) from None


def _legacy_value(v: Mapping[str, Any]) -> Any:
    """KFP v1-style ``{"intValue": ..}`` / ``{"stringValue": ..}`` parameter values."""
    for key in ("intValue", "doubleValue", "stringValue"):
        if key in v:
            return int(v[key]) if key == "intValue" else v[key]
    return v


def step_parameters(
    config: Mapping[str, Any], executor_input: Mapping[str, Any], ctx: Mapping[str, Any]
) -> dict[str, Any]:
    """The step's parameters in declaration order: KFP's values for the ones KFP carries,
    templates filled here for the others (exactly as :func:`..params.fill` does locally)."""
    from ..params import fill

    inputs = executor_input.get("inputs") or {}
    given = dict(inputs.get("parameterValues") or {})
    for k, v in (inputs.get("parameters") or {}).items():
        given.setdefault(k, _legacy_value(v) if isinstance(v, Mapping) else v)
    out: dict[str, Any] = {}
    for name in config["parameters"]:
        if name in config["kfp_types"]:
            if name not in given:
                raise StepError(f"parameter {name!r} is missing from the executor input")
            out[name] = _kfp_value(config["kfp_types"][name], given[name], name)
        else:
            out[name] = fill(config["in_pod"].get(name), ctx)
    return out


# -- logging -------------------------------------------------------------------------------
class Tee:
    """The step's log: what is written (by us, nbclient, or a subprocess through
    :meth:`fileno`) goes to ``step.log`` and to our stdout, the pod's log, as it comes."""

    def __init__(self, path: str, echo: IO[bytes]) -> None:
        self._file = open(path, "ab")  # noqa: SIM115 - closed in close()
        self._echo = echo
        self._read, self._write = os.pipe()
        self._thread = threading.Thread(target=self._pump, name="mlops-step-log", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            chunk = os.read(self._read, 65536)
            if not chunk:
                break
            for out in (self._file, self._echo):
                with contextlib.suppress(Exception):
                    out.write(chunk)
                    out.flush()
        os.close(self._read)

    def fileno(self) -> int:
        return self._write

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "replace")
        view = memoryview(data)
        while view:
            view = view[os.write(self._write, view) :]
        return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        os.close(self._write)
        self._thread.join(30)
        self._file.close()


# -- running ------------------------------------------------------------------------------------
def _kernel_for(notebook: str, wanted: str | None) -> str:
    """The step's ``kernel``, else the notebook's kernelspec when this image has it,
    else python3 (the image is not the lab the notebook was last saved in)."""
    if wanted:
        return wanted
    try:
        with open(notebook, encoding="utf-8") as f:
            name = ((json.load(f).get("metadata") or {}).get("kernelspec") or {}).get("name")
        from jupyter_client.kernelspec import find_kernel_specs

        installed = find_kernel_specs()
    except Exception:  # noqa: BLE001 - unreadable metadata: the default kernel
        return "python3"
    return str(name) if name and name in installed else "python3"


async def _execute(
    config: Mapping[str, Any],
    source: str,
    params: dict[str, Any],
    args: list[str],
    env: dict[str, str],
    root: str,
    work: str,
    log: Tee,
) -> None:
    from ..runner import KernelPool, run_notebook, run_script

    out = cast(IO[str], log)  # the runner writes, flushes and hands fileno() to scripts
    if config["kind"] == "notebook":
        kernel = _kernel_for(source, config.get("kernel"))
        pool = KernelPool(0, env, root, kernel_name=kernel)  # one kernel, started on demand
        try:
            await asyncio.wait_for(
                run_notebook(
                    pool, source, os.path.join(root, "output.ipynb"), params, env, work, out, kernel
                ),
                config.get("timeout"),
            )
        finally:
            await pool.close()
    elif config["kind"] == "project":
        from ...projects.fetch import is_local, split_subdirectory
        from ..runner import run_project

        uri = source if is_local(split_subdirectory(config["path"])[0]) else config["path"]
        await asyncio.wait_for(
            run_project(
                uri,
                config.get("entry_point"),
                config.get("version"),
                config.get("env_manager") or "local",
                params,
                env,
                work,
                out,
            ),
            config.get("timeout"),
        )
    else:
        await asyncio.wait_for(
            run_script(source, params, args, env, work, out), config.get("timeout")
        )


def run_step(
    config: Mapping[str, Any], executor_input: Mapping[str, Any], archive: str, root: str
) -> None:
    """Run the step and record it in its tracked run, whatever happens; raises
    :class:`StepError` when it failed."""
    run_id = os.environ.get("JUPYTER_MLOPS_RUN_ID", "")
    uri = os.environ.get("JUPYTER_MLOPS_TRACKING_URI", "")
    log = Tee(os.path.join(root, "step.log"), sys.stdout.buffer)
    error: str | None = "interrupted"  # what stays when KeyboardInterrupt/SystemExit go through
    try:
        error = _run(config, executor_input, archive, root, log)
    except StepError as e:
        error = str(e)
    except Exception as e:  # noqa: BLE001 - our fault or the pod's: still a clear failure
        import traceback

        traceback.print_exc()
        error = f"{type(e).__name__}: {e}"
    finally:
        if error:
            log.write(f"\n[jupyter-mlops] step {config.get('step')!r} failed: {error}\n")
        log.close()
        _record(run_id, uri, root, error)
    if error:
        raise StepError(error)


def _run(
    config: Mapping[str, Any], executor_input: Mapping[str, Any], archive: str, root: str, log: Tee
) -> str | None:
    """Prepare, execute, hand the outputs on; the failure of the step's code, or None."""
    from ..params import fill
    from ..runner import StepFailed

    name = config["step"]
    tree = os.path.join(root, "files")
    work = os.path.join(root, "work")
    pdir = os.path.normpath(os.path.join(tree, config.get("pipeline_dir") or "."))
    unpack(archive, tree)
    os.makedirs(work, exist_ok=True)

    # declared inputs: at their relative paths in the working directory (as locally)
    for inp in config.get("inputs") or []:
        src = os.path.join(pdir, inp)
        dst = os.path.join(work, os.path.normpath(inp))
        if os.path.exists(src) and not os.path.lexists(dst) and _inside(work, dst):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.symlink(src, dst)
    # upstream outputs
    in_artifacts = (executor_input.get("inputs") or {}).get("artifacts") or {}
    for iname, spec in (config.get("received") or {}).items():
        src = _artifact_path(in_artifacts, iname, "input")
        if not os.path.exists(src):
            raise StepError(
                f"output {spec['path']!r} of step {spec['step']!r} was not received "
                f"(looked for {src})"
            )
        _copy(src, os.path.join(root, "steps", spec["step"], spec["path"]))
        if spec.get("direct"):
            _copy(src, os.path.join(work, spec["path"]))

    ctx: dict[str, Any] = dict(config.get("context") or {})
    ctx.update(
        {
            "run.id": os.environ.get("JUPYTER_MLOPS_PIPELINE_RUN_ID", ""),
            "run.dir": root,
            "pipeline.dir": pdir,
            "pipeline.name": config.get("pipeline", ""),
        }
    )
    for step in {spec["step"] for spec in (config.get("received") or {}).values()} | {
        r.split(".")[1] for r in _template_refs(config) if r.startswith("steps.")
    }:
        ctx[f"steps.{step}.outputs"] = os.path.join(root, "steps", step)
        os.makedirs(ctx[f"steps.{step}.outputs"], exist_ok=True)
    params = step_parameters(config, executor_input, ctx)
    args = [str(a) for a in fill(list(config.get("args") or []), ctx)]
    env = _step_env(config, ctx, params, pdir)

    log.write(f"[jupyter-mlops] step {name!r}: {config['kind']} {config['path']}\n")
    try:
        asyncio.run(
            _execute(config, os.path.join(pdir, config["path"]), params, args, env, root, work, log)
        )
    except StepFailed as e:
        return str(e)
    except asyncio.TimeoutError:
        return f"timed out after {config['timeout']:g} s"
    missing = [o for o in config.get("outputs") or {} if not os.path.exists(os.path.join(work, o))]
    if missing:
        return "declared output(s) not written: " + ", ".join(missing)
    out_artifacts = (executor_input.get("outputs") or {}).get("artifacts") or {}
    for out, key in (config.get("outputs") or {}).items():
        _copy(os.path.join(work, out), _artifact_path(out_artifacts, key, "output"))
    return None


def _step_env(
    config: Mapping[str, Any], ctx: Mapping[str, Any], params: Mapping[str, Any], pdir: str
) -> dict[str, str]:
    """The pod's env (the compiled one: tracking URI, run ids, the step's env), the env
    values only the pod can fill, and what the local executor adds."""
    from ..params import fill

    env = dict(os.environ)
    env.update({k: str(v) for k, v in fill(dict(config.get("env") or {}), ctx).items()})
    env.update(
        {
            "JUPYTER_MLOPS_PIPELINE_STEP": str(config["step"]),
            "JUPYTER_MLOPS_PIPELINE_DIR": pdir,
            "JUPYTER_MLOPS_PARAMS": json.dumps(params, default=str),
        }
    )
    if env.get("JUPYTER_MLOPS_RUN_ID"):
        env["MLFLOW_RUN_ID"] = env["JUPYTER_MLOPS_RUN_ID"]
    uri = env.get("JUPYTER_MLOPS_TRACKING_URI", "")
    if uri.startswith(("http://", "https://")):  # unmodified mlflow code logs there too
        env.setdefault("MLFLOW_TRACKING_URI", uri)
        if env.get("JUPYTER_MLOPS_TRACKING_TOKEN"):
            env.setdefault("MLFLOW_TRACKING_TOKEN", env["JUPYTER_MLOPS_TRACKING_TOKEN"])
    return env


def _template_refs(config: Mapping[str, Any]) -> list[str]:
    from ..spec import TEMPLATE

    text = json.dumps([config.get("in_pod"), config.get("env"), config.get("args")])
    return [m.group(1) for m in TEMPLATE.finditer(text)]


def _record(run_id: str, uri: str, root: str, error: str | None) -> None:
    """The executed notebook and the log become the run's artifacts; the run ends
    FINISHED or FAILED (a KFP retry resumes it; the server's watcher has the last word)."""
    if not run_id:
        print("jupyter-mlops: JUPYTER_MLOPS_RUN_ID is not set: nothing is tracked", file=sys.stderr)
        return
    try:
        from ...client.mlops_client import MlopsClient

        client = MlopsClient(uri or None)
        for fname in ("output.ipynb", "step.log"):
            path = os.path.join(root, fname)
            if os.path.exists(path) and os.path.getsize(path):
                client.log_artifact(run_id, path)
        if error:
            client.set_tag(run_id, "mlops.pipeline.error", error[:8000])
        client.set_terminated(run_id, "FAILED" if error else "FINISHED")
        client.flush()
    except Exception as e:  # noqa: BLE001 - the step's own outcome stands; say why
        print(
            f"jupyter-mlops: recording the step in run {run_id} failed: {type(e).__name__}: {e}",
            file=sys.stderr,
        )


def _mark_running(run_id: str, uri: str) -> None:
    """A retried pod's run was ended FAILED by the previous attempt."""
    if not run_id:
        return
    with contextlib.suppress(Exception):
        from ...client.mlops_client import MlopsClient

        client = MlopsClient(uri or None)
        client.update_run(run_id, status="RUNNING")
        client.flush()


# -- entry point ------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python3 -m jupyter_mlops.pipelines.kubeflow.step",
        description="Run one jupyter-mlops pipeline step in a Kubeflow Pipelines pod.",
    )
    ap.add_argument("--archive", required=True, help="base64 of the gzip tar of the step's files")
    ap.add_argument("--executor_input", required=True, help="KFP's executor input ({{$}})")
    ap.add_argument("--config", required=True, help="the step as the compiler described it (JSON)")
    ap.add_argument("--workdir", help="where the step runs (default: a new temporary directory)")
    return ap


def main(argv: list[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    try:
        executor_input = json.loads(opts.executor_input)
        config = json.loads(opts.config)
        if not isinstance(executor_input, dict) or not isinstance(config, dict):
            raise TypeError("expected JSON objects")
    except (ValueError, TypeError) as e:
        print(f"jupyter-mlops: bad --executor_input or --config: {e}", file=sys.stderr)
        return EXIT_USAGE
    root = opts.workdir or tempfile.mkdtemp(prefix="mlops-step-")
    os.makedirs(root, exist_ok=True)
    _mark_running(
        os.environ.get("JUPYTER_MLOPS_RUN_ID", ""), os.environ.get("JUPYTER_MLOPS_TRACKING_URI", "")
    )
    try:
        run_step(config, executor_input, opts.archive, root)
    except StepError as e:
        print(f"jupyter-mlops: step {config.get('step')!r} failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
