"""The Python DSL: a decorated function builds the same model as a YAML file.

::

    from jupyter_mlops.pipelines import notebook, param, pipeline, script

    @pipeline(parameters={"lr": param(float, 0.01)})
    def train_and_evaluate(lr):
        prep = notebook("prepare.ipynb", parameters={"rows": 1000})
        train = notebook("train.ipynb", parameters={"lr": lr, "data": prep.outputs},
                         outputs=["model.pkl"])
        script("evaluate.py", after=[train])

Inside the function a parameter is a placeholder that renders as
``{{ params.lr }}``; ``step.outputs`` renders as ``{{ steps.<name>.outputs }}``
and makes the consumer depend on that step. Paths are relative to the file
defining the function. ``train_and_evaluate.build()`` returns the validated
:class:`~.model.Pipeline`; ``.to_yaml()`` the equivalent ``*.pipeline.yaml``.
"""

from __future__ import annotations

import inspect
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .model import ParamSpec, Pipeline, Step

_TYPES = {
    str: "string",
    int: "integer",
    float: "float",
    bool: "boolean",
    list: "list",
    dict: "dict",
}
_current = threading.local()


class _Ref(str):
    """A template placeholder that is also a plain string (f-strings work)."""

    deps: tuple[str, ...] = ()


def param(
    type: type | str = str,
    default: Any = inspect.Parameter.empty,
    description: str = "",
    enum: list[Any] | None = None,
) -> ParamSpec:
    """A pipeline parameter; no ``default`` means callers must give a value."""
    tname = type if isinstance(type, str) else _TYPES.get(type)
    if tname is None:
        raise TypeError(
            f"unsupported parameter type {type!r} (use {', '.join(t.__name__ for t in _TYPES)})"
        )
    has = default is not inspect.Parameter.empty
    if tname == "float" and has and isinstance(default, int) and not isinstance(default, bool):
        default = float(default)
    return ParamSpec("", tname, default if has else None, has, description, enum)


class StepRef:
    """What :func:`notebook` and :func:`script` return inside a pipeline function."""

    def __init__(self, step: Step) -> None:
        self.step = step

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def outputs(self) -> str:
        ref = _Ref(f"{{{{ steps.{self.step.name}.outputs }}}}")
        ref.deps = (self.step.name,)
        return ref


def _builder() -> dict[str, Step]:
    steps = getattr(_current, "steps", None)
    if steps is None:
        raise RuntimeError("notebook()/script() are called inside a @pipeline function")
    return steps


_STEP_REF = re.compile(r"\{\{\s*steps\.([A-Za-z0-9][A-Za-z0-9_-]*)\.outputs\s*\}\}")


def _deps_in(value: Any) -> set[str]:
    """Steps whose outputs a value refers to (also inside f-strings)."""
    if isinstance(value, str):
        return set(_STEP_REF.findall(value))
    if isinstance(value, dict):
        return set().union(*(_deps_in(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_deps_in(v) for v in value)) if value else set()
    return set()


def _plain(value: Any) -> Any:
    if isinstance(value, _Ref):
        return str.__str__(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _add(
    kind: str,
    path: str,
    name: str | None,
    after: Iterable[StepRef | str],
    parameters: dict[str, Any] | None,
    **options: Any,
) -> StepRef:
    steps = _builder()
    base = name or os.path.splitext(os.path.basename(path))[0].replace(".", "-")
    unique, i = base, 2
    while unique in steps:
        unique, i = f"{base}-{i}", i + 1
    deps = [a.name if isinstance(a, StepRef) else str(a) for a in after]
    params = parameters or {}
    for d in sorted(
        _deps_in(params) | _deps_in(options.get("env") or {}) | _deps_in(options.get("args") or [])
    ):
        if d not in deps:
            deps.append(d)
    step = Step(
        name=unique,
        kind=kind,
        path=path,
        parameters=_plain(params),
        depends_on=deps,
        **{k: _plain(v) for k, v in options.items() if v is not None},
    )
    steps[unique] = step
    return StepRef(step)


def notebook(
    path: str,
    *,
    name: str | None = None,
    parameters: dict[str, Any] | None = None,
    after: Iterable[StepRef | str] = (),
    **options: Any,
) -> StepRef:
    """Add a notebook step (options: outputs, inputs, env, retries, retry_delay,
    timeout, cache, kernel, image, resources)."""
    return _add("notebook", path, name, after, parameters, **options)


def script(
    path: str,
    *,
    name: str | None = None,
    parameters: dict[str, Any] | None = None,
    after: Iterable[StepRef | str] = (),
    **options: Any,
) -> StepRef:
    """Add a script step (``.py`` runs with this Python, ``.sh`` with ``sh``)."""
    return _add("script", path, name, after, parameters, **options)


class PipelineFunction:
    """A decorated pipeline function; call :meth:`build` for the model."""

    def __init__(
        self,
        func: Callable[..., Any],
        name: str | None,
        parameters: dict[str, ParamSpec],
        description: str | None,
        experiment: str | None,
    ) -> None:
        self.func = func
        self.name = name or func.__name__.replace("_", "-")
        self.parameters = parameters
        self.description = (
            description if description is not None else (inspect.getdoc(func) or "").split("\n")[0]
        )
        self.experiment = experiment
        try:
            self.base_dir = os.path.dirname(os.path.abspath(inspect.getfile(func)))
        except (TypeError, OSError):
            self.base_dir = os.getcwd()

    def build(self, root: str | None = None, validate: bool = True) -> Pipeline:
        """The model; raises :class:`~.spec.PipelineInvalid` when ``validate``."""
        params: dict[str, ParamSpec] = {}
        sig = inspect.signature(self.func)
        for pname, p in sig.parameters.items():
            spec = self.parameters.get(pname)
            if spec is None:
                default = p.default
                spec = param(
                    _TYPES.get(type(default), str) if default is not p.empty else str, default
                )
            spec.name = pname
            params[pname] = spec
        for pname in self.parameters:
            if pname not in params:
                raise TypeError(f"parameter {pname!r} is not an argument of {self.func.__name__}()")
        _current.steps = {}
        try:
            self.func(**{n: _Ref(f"{{{{ params.{n} }}}}") for n in params})
            steps = _current.steps
        finally:
            _current.steps = None
        pipeline = Pipeline(
            name=self.name,
            steps=steps,
            parameters=params,
            description=self.description,
            experiment=self.experiment,
            base_dir=self.base_dir,
        )
        if validate:
            from .spec import PipelineInvalid, validate_pipeline

            issues = validate_pipeline(pipeline, root)
            if issues:
                raise PipelineInvalid(issues)
        return pipeline

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.build(validate=False).to_dict(), sort_keys=False)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


def pipeline(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    parameters: dict[str, ParamSpec] | None = None,
    description: str | None = None,
    experiment: str | None = None,
) -> Any:
    """Decorate a function that adds steps; its arguments are pipeline parameters."""

    def wrap(f: Callable[..., Any]) -> PipelineFunction:
        return PipelineFunction(f, name, dict(parameters or {}), description, experiment)

    return wrap(func) if func is not None else wrap
