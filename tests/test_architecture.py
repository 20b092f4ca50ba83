"""The house rules, read from the source: no import cycles inside ``jupyter_mlops`` and
the dependency direction of ARCHITECTURE/CONTRIBUTING (``tracking`` at the bottom, the hub
side without Jupyter server or JupyterLab, ``import jupyter_mlops`` cheap).

Imports are read with :mod:`ast` from every module of the package, module-level and
function-level (lazy) alike: a lazy import that closes a cycle still ties the two modules
together. Imports under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "jupyter_mlops"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


@dataclass(frozen=True)
class Edge:
    target: str  # a module of the package, or the top-level name of an outside one
    path: Path
    line: int
    lazy: bool  # inside a function

    def where(self) -> str:
        kind = "lazy" if self.lazy else "module-level"
        return f"{self.path.relative_to(ROOT.parent)}:{self.line} ({kind})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it sits inside a function; not those under
    ``if TYPE_CHECKING:``."""
    out: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, lazy)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append((node, lazy))
            return
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return out


def _resolve(name: str) -> str:
    """The package module that ``import name`` runs last (the longest known prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return name.split(".")[0]


def _edges(module: str, path: Path) -> list[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[Edge] = []
    for node, lazy in _imports(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [_resolve(a.name) for a in node.names]
        else:
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # ``from pkg import submodule`` runs the submodule; a name imports ``pkg``
                targets.append(sub if sub in MODULES else _resolve(base))
        for t in targets:
            if t != module:
                out.append(Edge(t, path, node.lineno, lazy))
    return out


GRAPH: dict[str, list[Edge]] = {m: _edges(m, p) for m, p in MODULES.items()}


def _internal(module: str) -> list[Edge]:
    return [e for e in GRAPH[module] if e.target in MODULES]


def _sccs() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in MODULES:
        if start in index:
            continue
        work = [(start, iter(_internal(start)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for edge in it:
                nxt = edge.target
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(_internal(nxt))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _cycle_in(component: list[str]) -> list[Edge]:
    """A shortest cycle through the component's first module, as its edges."""
    members = set(component)
    start = component[0]
    prev: dict[str, Edge | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for edge in _internal(node):
            if edge.target == start:
                path = [edge]
                cur = node
                while prev[cur] is not None:
                    e = prev[cur]
                    assert e is not None
                    path.append(e)
                    cur = _source_of(e)
                return path[::-1]
            if edge.target in members and edge.target not in prev:
                prev[edge.target] = edge
                queue.append(edge.target)
    raise AssertionError(f"no cycle found in {component}")


def _source_of(edge: Edge) -> str:
    return _module_name(edge.path)


def _describe(cycle: list[Edge]) -> str:
    lines = [f"  {_source_of(e)} -> {e.target}   [{e.where()}]" for e in cycle]
    return "\n".join(lines)


def test_the_graph_is_read() -> None:
    """The reader finds the package and known edges (else the tests below pass vacuously)."""
    assert len(MODULES) > 50
    assert "jupyter_mlops.tracking.store" in {
        e.target for e in GRAPH["jupyter_mlops.tracking.sqlstore"]
    }


def test_no_import_cycles() -> None:
    components = _sccs()
    report = "\n\n".join(
        f"{', '.join(c)}; for example:\n{_describe(_cycle_in(c))}" for c in components
    )
    assert not components, (
        f"{len(components)} group(s) of modules import each other inside {PACKAGE} "
        "(module-level and lazy imports count; break each cycle by moving what both sides "
        f"need into a module below them):\n{report}"
    )


#: What ``tracking`` (the domain layer at the bottom) must not import.
ABOVE_TRACKING = (
    "server",
    "client",
    "hub",
    "pipelines",
    "registry",
    "jobs",
    "deployments",
    "projects",
    "kube",
    "importers",
    "magics",
    "cli",
    "targets",
)


def _under(module: str, names: tuple[str, ...]) -> bool:
    return any(module == f"{PACKAGE}.{n}" or module.startswith(f"{PACKAGE}.{n}.") for n in names)


def test_tracking_imports_nothing_above_it() -> None:
    bad = [
        f"{m} -> {e.target}   [{e.where()}]"
        for m in MODULES
        if _under(m, ("tracking",))
        for e in _internal(m)
        if _under(e.target, ABOVE_TRACKING)
    ]
    assert not bad, "tracking/ must not import these layers:\n" + "\n".join(bad)


#: Modules that run inside the hub process (the hub image has JupyterHub and
#: KubeSpawner, no Jupyter server or JupyterLab). ``hub.service`` and ``hub.identity``
#: are the hub-wide tracking service: a Jupyter server of its own.
HUB_SIDE = ("hub",)
HUB_SERVICE_SIDE = ("jupyter_mlops.hub.service", "jupyter_mlops.hub.identity")
NOT_IN_HUB_IMAGE = ("jupyterlab", "jupyter_server", "notebook", "ipykernel", "jupyter_client")


def _closure(starts: list[str]) -> dict[str, list[Edge]]:
    """Every package module reachable from ``starts`` (all imports), with the path to it."""
    seen: dict[str, list[Edge]] = {s: [] for s in starts}
    queue = deque(starts)
    while queue:
        node = queue.popleft()
        for edge in _internal(node):
            if edge.target not in seen:
                seen[edge.target] = [*seen[node], edge]
                queue.append(edge.target)
    return seen


def test_hub_side_imports_no_jupyter_server_or_lab() -> None:
    starts = [m for m in MODULES if _under(m, HUB_SIDE) and m not in HUB_SERVICE_SIDE]
    bad = []
    for module, via in _closure(starts).items():
        for edge in GRAPH[module]:
            if (
                edge.target.split(".")[0] in NOT_IN_HUB_IMAGE
                or edge.target in HUB_SERVICE_SIDE
                or (edge.target in MODULES and _under(edge.target, ("server",)))
            ):
                chain = " -> ".join([_source_of(e) for e in via] + [module, edge.target])
                bad.append(f"{chain}   [{edge.where()}]")
    assert not bad, (
        "the hub side (spawner, teams, policy, render, hub CLI) must import without a Jupyter "
        "server or JupyterLab installed:\n" + "\n".join(bad)
    )


@pytest.mark.parametrize("module", [PACKAGE, f"{PACKAGE}.hub", f"{PACKAGE}.tracking"])
def test_import_is_cheap(module: str) -> None:
    """In a fresh interpreter: importing the package loads none of the heavy libraries."""
    heavy = ("sqlalchemy", "requests", "pandas", "numpy", "alembic")
    code = f"import sys, {module}\nprint(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout.strip()
    assert out == "", f"import {module} loaded {out}"
