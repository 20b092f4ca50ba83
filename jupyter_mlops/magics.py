"""IPython magics over the fluent API: ``%load_ext jupyter_mlops``.

Line magic ``%mlops <subcommand> ...`` and cell magic ``%%mlops run ...``.
Subcommands live in a registry (:func:`subcommand`), so new ones (such as
``pipeline``) are one decorated function each. Handlers get the parsed-out
rest of the line and, for cell subcommands, the cell; they raise
:class:`~IPython.core.error.UsageError` for anything the user typed wrong,
which IPython shows as one line instead of a traceback.

Only the fluent API is used (``import jupyter_mlops as mlops`` inside the
handlers), so loading the extension costs nothing until a magic runs.
"""

from __future__ import annotations

import argparse
import ast
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

#: Where ``%%mlops run`` stores the cell's code in the run's artifacts.
CELL_ARTIFACT = "source/cell.py"

RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")


@dataclass
class Subcommand:
    name: str
    func: Callable[..., Any]  # (magics, argv) or (magics, argv, cell) for cell ones
    usage: str  # one line: "start [name] [--experiment E] [--nested]"
    help: str  # one line
    cell: bool = False  # a cell subcommand (%%mlops <name>)


_SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(
    name: str, usage: str, help: str, cell: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a ``%mlops`` (or, with ``cell=True``, ``%%mlops``) subcommand.

    The handler gets ``(magics, argv)`` — argv split like a shell line — and
    for cell subcommands ``(magics, argv, cell)``; what it returns is the
    magic's value (displayed as the cell's output).
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        _SUBCOMMANDS[name] = Subcommand(name, func, usage, help, cell)
        return func

    return register


def usage_text() -> str:
    lines = ["Usage:"]
    for sc in _SUBCOMMANDS.values():
        prefix = "%%mlops" if sc.cell else "%mlops"
        lines.append(f"  {prefix} {sc.usage}")
        lines.append(f"      {sc.help}")
    lines.append(
        "Values may use {expr} or $name to insert Python values, e.g. %mlops metric loss={loss}."
    )
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as a one-line UsageError, never exits."""

    def __init__(self, name: str, cell: bool = False) -> None:
        super().__init__(prog=f"{'%%' if cell else '%'}mlops {name}", add_help=False)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def parse(self, argv: list[str]) -> argparse.Namespace:
        return self.parse_args(argv)


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as e:  # an unclosed quote
        raise UsageError(f"%mlops: cannot parse the line: {e}") from None


def _key_values(prog: str, items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` to a dict; malformed items are a UsageError."""
    if not items:
        raise UsageError(f"{prog}: expected key=value arguments")
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{prog}: expected key=value, got {item!r}")
        out[key] = value
    return out


def _api_call(prog: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the fluent API. What it refuses (bad names or values, a store
    that says no or cannot be reached) becomes a one-line usage error; other
    exceptions are bugs and keep their traceback."""
    __tracebackhide__ = True
    import jupyter_mlops as mlops

    try:
        return func(*args, **kwargs)
    except (mlops.TrackingError, ValueError, OSError) as e:
        raise UsageError(f"{prog}: {e}") from e


def _run_label(run: Any) -> str:
    info = run.info
    name = getattr(info, "run_name", "") or ""
    return f"{name!r} ({info.run_id})" if name else info.run_id


# -- the magics class ---------------------------------------------------------
@magics_class
class MLOpsMagics(Magics):
    """``%mlops`` / ``%%mlops``: experiment tracking from notebook cells."""

    @line_cell_magic
    def mlops(self, line: str = "", cell: str | None = None) -> Any:
        """Experiment tracking: %mlops help lists the subcommands."""
        __tracebackhide__ = True
        argv = _split(line)
        if not argv or argv[0] in ("help", "-h", "--help"):
            print(usage_text())
            return None
        name, rest = argv[0], argv[1:]
        sc = _SUBCOMMANDS.get(name)
        if sc is None:
            raise UsageError(f"%mlops: unknown subcommand {name!r} (%mlops help lists them)")
        if cell is None and sc.cell:
            raise UsageError(
                f"%mlops {name} is a cell magic: put %%mlops {sc.usage} on a cell's first line"
            )
        if cell is not None and not sc.cell:
            cells = ", ".join(s.name for s in _SUBCOMMANDS.values() if s.cell)
            raise UsageError(f"%%mlops {name} is a line magic; cell subcommands: {cells}")
        if "-h" in rest or "--help" in rest:
            print(f"usage: {'%%' if sc.cell else '%'}mlops {sc.usage}\n  {sc.help}")
            return None
        if sc.cell:
            return sc.func(self, rest, cell)
        return sc.func(self, rest)

    # -- running a cell as code (used by %%mlops run) --------------------------
    def run_cell_code(self, cell: str) -> Any:
        """Run ``cell`` in the user namespace as a normal cell would (IPython
        syntax, AST transformers, the last expression's value returned), letting
        any exception propagate."""
        __tracebackhide__ = True
        shell = self.shell
        assert shell is not None
        source = shell.transform_cell(cell)
        tree = shell.compile.ast_parse(source)
        tree = shell.transform_ast(tree)
        last: ast.expr | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = tree.body.pop().value
        filename = "<%%mlops run>"
        try:  # register the source so tracebacks show the cell's lines
            filename = shell.compile.cache(source, shell.execution_count)
        except Exception:  # noqa: BLE001, S110 - cosmetic: tracebacks show the cell's lines or not
            pass
        ns = shell.user_ns
        exec(shell.compile(tree, filename, "exec"), ns)  # noqa: S102 (the user's own cell)
        if last is not None:
            return eval(shell.compile(ast.Expression(last), filename, "eval"), ns)
        return None


# -- subcommands ----------------------------------------------------------------
@subcommand(
    "start",
    "start [name] [--experiment E] [--nested]",
    "start a run (the experiment becomes the active one, as with set_experiment)",
)
def _start(magics: MLOpsMagics, argv: list[str]) -> None:
    import jupyter_mlops as mlops

    p = _Parser("start")
    p.add_argument("name", nargs="?")
    p.add_argument("--experiment", "-e")
    p.add_argument("--nested", action="store_true")
    args = p.parse(argv)
    active = mlops.active_run()
    if active is not None and not args.nested:
        raise UsageError(
            f"%mlops start: run {_run_label(active)} is already active; "
            "end it with %mlops end, or use --nested"
        )
    if args.experiment is not None:
        _api_call("%mlops start", mlops.set_experiment, args.experiment)
    run = _api_call("%mlops start", mlops.start_run, run_name=args.name, nested=args.nested)
    print(
        f"Started run {_run_label(run)} in experiment {_experiment_label(run.info.experiment_id)}"
    )


@subcommand("end", "end [--status FINISHED|FAILED|KILLED]", "end the active run")
def _end(magics: MLOpsMagics, argv: list[str]) -> None:
    import jupyter_mlops as mlops

    p = _Parser("end")
    p.add_argument("--status", "-s", default="FINISHED", type=str.upper, choices=RUN_STATUSES)
    args = p.parse(argv)
    run = mlops.active_run()
    if run is None:
        raise UsageError("%mlops end: no active run")
    try:
        mlops.end_run(status=args.status)
    except (mlops.TrackingError, ValueError, OSError) as e:
        # end_run ends the run first, then reports what the store refused.
        raise UsageError(
            f"%mlops end: run {_run_label(run)} ended {args.status}, but {_refused_what(e)}: {e}"
        ) from e
    print(f"Ended run {_run_label(run)}: {args.status}")


def _refused_what(error: BaseException) -> str:
    """What ending a run ran into: a refused token keeps the data (in the spool)."""
    if getattr(error, "error_code", None) == "UNAUTHENTICATED":
        return "the server refused the token"
    return "the store refused some of its data"


def _autostart_note(before: Any) -> None:
    """Say so when logging started a run (the fluent API does, as MLflow's)."""
    if before is None:
        import jupyter_mlops as mlops

        run = mlops.active_run()
        if run is not None:
            print(f"Started run {_run_label(run)} (no run was active)")


@subcommand("param", "param key=value ...", "log parameters (values are strings)")
def _param(magics: MLOpsMagics, argv: list[str]) -> None:
    import jupyter_mlops as mlops

    params = _key_values("%mlops param", argv)
    before = mlops.active_run()
    _api_call("%mlops param", mlops.log_params, params)
    _autostart_note(before)


@subcommand("metric", "metric key=value ... [--step N]", "log metrics (numbers)")
def _metric(magics: MLOpsMagics, argv: list[str]) -> None:
    import jupyter_mlops as mlops

    p = _Parser("metric")
    p.add_argument("items", nargs="*")
    p.add_argument("--step", type=int)
    args = p.parse(argv)
    metrics: dict[str, float] = {}
    for key, value in _key_values("%mlops metric", args.items).items():
        try:
            metrics[key] = float(value)
        except ValueError:
            raise UsageError(f"%mlops metric: {key}={value!r} is not a number") from None
    before = mlops.active_run()
    _api_call("%mlops metric", mlops.log_metrics, metrics, step=args.step)
    _autostart_note(before)


@subcommand("tag", "tag key=value ...", "set tags on the active run")
def _tag(magics: MLOpsMagics, argv: list[str]) -> None:
    import jupyter_mlops as mlops

    tags = _key_values("%mlops tag", argv)
    before = mlops.active_run()
    _api_call("%mlops tag", mlops.set_tags, tags)
    _autostart_note(before)


@subcommand("status", "status", "show the active run, its experiment and where to see it")
def _status(magics: MLOpsMagics, argv: list[str]) -> None:
    import jupyter_mlops as mlops

    _Parser("status").parse(argv)
    run = mlops.active_run()
    print(f"Tracking URI: {_api_call('%mlops status', mlops.get_tracking_uri)}")
    if run is None:
        print("Active run:   none (%mlops start begins one)")
        return
    print(f"Active run:   {_run_label(run)}")
    print(f"Experiment:   {_experiment_label(run.info.experiment_id)}")
    print(
        "See it in JupyterLab: the MLOps panel in the left sidebar (command palette:"
        " 'MLOps: Open runs panel'), under this experiment."
    )


def _experiment_label(experiment_id: str) -> str:
    """``'name' (id)`` when the fluent API can name it, else the id."""
    import jupyter_mlops as mlops

    get = getattr(mlops, "get_experiment", None)
    if get is not None:
        try:
            exp = get(experiment_id)
            if exp is not None and getattr(exp, "name", None):
                return f"{exp.name!r} ({experiment_id})"
        except Exception:  # noqa: BLE001, S110 - naming is cosmetic
            pass
    return str(experiment_id)


@subcommand(
    "run",
    "run [name] [--experiment E]",
    "run the cell inside a new run (FAILED if it raises), logging its code",
    cell=True,
)
def _run(magics: MLOpsMagics, argv: list[str], cell: str) -> Any:
    __tracebackhide__ = True
    import jupyter_mlops as mlops

    p = _Parser("run", cell=True)
    p.add_argument("name", nargs="?")
    p.add_argument("--experiment", "-e")
    args = p.parse(argv)
    if args.experiment is not None:
        _api_call("%%mlops run", mlops.set_experiment, args.experiment)
    # Inside an active run the cell's run is its child rather than an error.
    nested = mlops.active_run() is not None
    run = _api_call("%%mlops run", mlops.start_run, run_name=args.name, nested=nested)
    run_id = run.info.run_id
    status = "FAILED"
    try:
        try:
            mlops.log_text(cell, CELL_ARTIFACT)
        except Exception as e:  # noqa: BLE001 - losing the copy must not stop the user's cell
            print(f"%%mlops run: could not save the cell's code: {e}")
        result = magics.run_cell_code(cell)
        status = "FINISHED"
        return result
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        _end_through(run_id, status)


def _end_through(run_id: str, status: str) -> None:
    """End ``run_id``, first ending runs the cell left open inside it. Never
    raises: it runs while the cell's own exception may be propagating."""
    import jupyter_mlops as mlops

    for _ in range(100):  # bounded: each end_run pops one run
        active = mlops.active_run()
        if active is None:
            return
        try:
            mlops.end_run(status=status)
        except Exception as e:  # noqa: BLE001 - end_run ends the run, then reports refusals
            print(
                f"%%mlops run: run {_run_label(active)} ended {status}, but {_refused_what(e)}: {e}"
            )
            current = mlops.active_run()
            if current is not None and current.info.run_id == active.info.run_id:
                return  # it could not even be ended: do not loop on it
        if active.info.run_id == run_id:
            return


@subcommand(
    "pipeline",
    "pipeline validate|run FILE [--target NAME] [name=value ...]",
    "validate or run a pipeline (on the Jupyter server when there is one, on its "
    "Kubeflow target NAME with --target), with progress",
)
def _pipeline(magics: MLOpsMagics, argv: list[str]) -> Any:
    from .pipelines.magic import pipeline_magic

    return pipeline_magic(argv)


@subcommand(
    "train",
    "train [--nodes N] [--procs-per-node P] [--framework F] [-p name=value]"
    " [--env NAME=VALUE] [--gpu N] [--name NAME] [--no-wait]",
    "run the cell as a distributed training job (every rank runs it) and show its progress",
    cell=True,
)
def _train(magics: MLOpsMagics, argv: list[str], cell: str) -> Any:
    from .jobs.magic import train_magic

    return train_magic(argv, cell)


# -- extension entry points -------------------------------------------------------
#: The names ``%load_ext`` takes for this extension.
_EXTENSION_NAMES = frozenset({"jupyter_mlops", "jupyter_mlops.magics"})


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_mlops``: register ``%mlops`` and ``%%mlops`` and say so."""
    ipython.register_magics(MLOpsMagics)
    _answer_load_ext_again(ipython)
    from .client.notebook_display import adopt_mlflow_display

    adopt_mlflow_display()  # @mlflow.trace's traces under the cell, with our renderer
    print("jupyter-mlops: %mlops and %%mlops are ready (%mlops help lists what they do).")


def _answer_load_ext_again(ipython: Any) -> None:
    """A second ``%load_ext jupyter_mlops`` says all is in place (IPython's own
    "already loaded. To reload it, use:" reads like an error); other extensions'
    ``%load_ext`` is IPython's, untouched. ``unload_ipython_extension`` undoes it."""
    line = ipython.magics_manager.magics["line"]
    original = line.get("load_ext")
    if original is None or hasattr(original, "mlops_original"):
        return

    def load_ext(arg: str) -> Any:
        name = arg.strip()
        if name in _EXTENSION_NAMES and name in ipython.extension_manager.loaded:
            print(
                "jupyter-mlops is already loaded: %mlops and %%mlops are ready, nothing "
                "to do (%reload_ext jupyter_mlops loads it afresh)."
            )
            return None
        return original(arg)

    load_ext.mlops_original = original  # type: ignore[attr-defined]
    load_ext.__doc__ = original.__doc__
    line["load_ext"] = load_ext


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext jupyter_mlops``: remove the magics again."""
    magics = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        magics[kind].pop("mlops", None)
    wrapped = magics["line"].get("load_ext")
    if hasattr(wrapped, "mlops_original"):
        magics["line"]["load_ext"] = wrapped.mlops_original
