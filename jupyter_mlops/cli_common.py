"""What every ``jupyter mlops`` subcommand shares: the one-line error and where the store is.

The main CLI (:mod:`jupyter_mlops.cli`) wires in subcommands from other packages
(``hub``, ``pipelines``, ``registry``, ``client``); they take these from here, so no
subcommand module imports the main CLI back. Imports nothing heavy.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tracking.store import TrackingStore

PROG = "jupyter mlops"


class CLIError(Exception):
    """A failure to report in one line, without a traceback."""


def default_store() -> tuple[str, str]:
    """The default store's URI and artifact root: ``<jupyter data dir>/mlops/``,
    the one the server and the client use when nothing is configured."""
    from jupyter_core.paths import jupyter_data_dir

    base = os.path.join(jupyter_data_dir(), "mlops")
    return "sqlite:///" + os.path.join(base, "mlops.db"), os.path.join(base, "artifacts")


def resolve_store(database_url: str | None, artifact_root: str | None) -> tuple[str, str | None]:
    """``--database-url``, else ``$JUPYTER_MLOPS_TRACKING_URI`` when it names a
    database (it does in a terminal of a Jupyter server using a database), else
    the default store. A bare path to a ``.db`` file is taken as SQLite."""
    url = database_url or ""
    if not url:
        env = os.environ.get("JUPYTER_MLOPS_TRACKING_URI", "").strip()
        if env.startswith(("sqlite:", "postgresql:", "postgresql+", "postgres:")):
            url = env
    if not url:
        uri, root = default_store()
        return uri, artifact_root or root
    if "://" not in url:
        url = "sqlite:///" + os.path.abspath(url)
    if url.startswith(("http://", "https://")):
        raise CLIError(
            f"{url}: a database URL is needed here (sqlite:///... or postgresql://...), "
            "not a server address"
        )
    return url, artifact_root


def open_store(database_url: str | None, artifact_root: str | None) -> TrackingStore:
    from .tracking import open_store as _open

    uri, root = resolve_store(database_url, artifact_root)
    return _open(uri, root)


def display_url(uri: str) -> str:
    """The URI with any password hidden."""
    return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", uri)


def workspace_root(file: str, root: str | None) -> str:
    """The root a spec file's paths may not leave: ``--root``, else the current directory,
    or the file's own directory when it lies outside it."""
    if root:
        return os.path.abspath(root)
    cwd = os.getcwd()
    full = os.path.abspath(file)
    return cwd if full.startswith(cwd.rstrip(os.sep) + os.sep) else os.path.dirname(full)


def report_issues(file: str, issues: Sequence[object]) -> int:
    """Print a spec's issues (``file:line: field: message``) and their count to stderr; 1."""
    for issue in issues:
        print(str(issue), file=sys.stderr)
    print(f"{file}: {len(issues)} problem(s)", file=sys.stderr)
    return 1


def describe_params(params: Mapping[str, Any]) -> str:
    """``lr: float = 0.01, epochs: integer`` of declared parameters (``ParamSpec`` s)."""
    return ", ".join(
        f"{n}: {s.type}" + (f" = {s.default!r}" if s.has_default else "") for n, s in params.items()
    )


def server_config() -> Any:
    """The Jupyter server's configuration (``jupyter_server_config.json`` and ``.py`` in
    Jupyter's config path, merged as the server merges them): a command run without a server
    configures its services as the server would (its targets, above all)."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config.loader import Config, JSONFileConfigLoader, PyFileConfigLoader

    merged = Config()
    for d in reversed(jupyter_config_path()):  # the lowest priority first
        for name, loader in (
            ("jupyter_server_config.json", JSONFileConfigLoader),
            ("jupyter_server_config.py", PyFileConfigLoader),
        ):
            if os.path.isfile(os.path.join(d, name)):
                merged.merge(loader(name, path=d).load_config())
    return merged
