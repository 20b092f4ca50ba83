"""``jupyter mlops ...``: maintenance of the tracking store from a terminal.

Jupyter runs ``jupyter-mlops`` (this module's :func:`main`) for ``jupyter mlops``.
Subcommands:

* ``db upgrade``: create the store or migrate it to the newest schema;
* ``gc``: permanently remove deleted runs and their artifacts;
* ``import-mlflow``: copy an MLflow tracking store (``mlruns`` directory or
  database) into this one;
* ``hub check|render``: JupyterHub's teams.yaml (from :mod:`jupyter_mlops.hub.cli`).
* ``service``: the hub-wide tracking service (from :mod:`jupyter_mlops.hub.service`);
* ``pipeline validate|run``: pipeline files (from :mod:`jupyter_mlops.pipelines.cli`);
* ``serve <model uri>``: a scoring server (from :mod:`jupyter_mlops.registry.cli`);
* ``spool list|replay|discard``: what the client could not deliver (from
  :mod:`jupyter_mlops.client.spool_cli`);
* ``run URI``: an MLflow project's entry point as a tracked run (from
  :mod:`jupyter_mlops.projects.cli`);
* ``bench``: the scale figures measured against a running server (from
  :mod:`jupyter_mlops.benchmark.cli`).

Exit status: 0 on success, 2 for a usage error, 1 for a failure, reported in one
line on stderr (``--traceback`` shows the Python traceback as well).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .cli_common import (  # noqa: F401 - importable from here as before
    PROG,
    CLIError,
    default_store,
    display_url,
    open_store,
    resolve_store,
)
from .tracking.clock import now_ms

if TYPE_CHECKING:
    from .tracking.entities import RunInfo
    from .tracking.store import TrackingStore

# -- db upgrade -------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from .tracking import migrate

    uri, root = resolve_store(args.database_url, args.artifact_root)
    before = _revision(uri)
    head = migrate.head_revision()
    if before is not None and not _known_revision(before):
        raise CLIError(
            f"the store at {display_url(uri)} has schema revision {before}, newer than this "
            f"jupyter-mlops knows (its newest is {head}): upgrade jupyter-mlops instead"
        )
    store = open_store(uri, root)
    try:
        after = _revision(uri)
    finally:
        store.close()
    where = display_url(uri)
    if before is None:
        print(f"created the store at {where}: schema revision {after}")
    elif before != after:
        print(f"upgraded the store at {where}: schema revision {before} -> {after}")
    else:
        print(f"the store at {where} is up to date: schema revision {after}")
    if after != head:
        raise CLIError(f"schema revision {after} is not this version's head {head}")
    return 0


def _known_revision(revision: str) -> bool:
    """Whether this version's migrations include ``revision``."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", "jupyter_mlops.tracking:migrations")
    try:
        return ScriptDirectory.from_config(cfg).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic reports unknown ids by raising
        return False


def _revision(uri: str) -> str | None:
    """The schema revision of the store at ``uri``; None if there is no store."""
    from .tracking import migrate

    path = migrate.sqlite_path(uri)
    if path is not None and not os.path.exists(path):
        return None  # do not create the file just to look
    engine = migrate.make_engine(uri)
    try:
        with engine.connect() as conn:
            return migrate.current_revision(conn)
    finally:
        engine.dispose()


# -- gc -----------------------------------------------------------------------------

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNIT_MS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}


class Duration(int):
    """Milliseconds that remember how the user wrote them."""

    text: str


def parse_duration(text: str) -> Duration:
    """``30d``, ``12h``, ``1d12h``, ``90m``, ``45s``, ``2w`` or ``0`` → milliseconds."""
    s = text.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    if s == "0":
        pos = 1
    if not s or pos != len(s):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a number with a unit, e.g. 30d, 12h, 1d12h, 90m, 45s"
        )
    result = Duration(int(total))
    result.text = text.strip()
    return result


def cmd_gc(args: argparse.Namespace) -> int:
    from .tracking import migrate
    from .tracking.entities import ALL

    uri, _ = resolve_store(args.database_url, None)
    path = migrate.sqlite_path(uri)
    if path is not None and not os.path.exists(path):
        print(f"no store at {display_url(uri)}: nothing to remove")
        return 0
    store = open_store(uri, None)
    try:
        experiments = _all(lambda token: store.search_experiments(view_type=ALL, page_token=token))
        names = {e.experiment_id: e.name for e in experiments}
        deleted = {}
        ids = list(names)
        for i in range(0, len(ids), 100):
            for run in _deleted_runs(store, ids[i : i + 100]):
                deleted[run.info.run_id] = run.info
        older = int(args.older_than or 0)
        age = f" deleted more than {args.older_than.text} ago" if older else ""
        if args.dry_run:
            due = _purge_candidates(deleted.values(), older)
            colon = ":" if due else ""
            print(f"dry run: {len(deleted)} deleted runs, gc would purge {len(due)}{age}{colon}")
            for info in deleted.values():
                if info.run_id in due:
                    exp = names.get(info.experiment_id, info.experiment_id)
                    print(f"  run {info.run_id} {info.run_name!r} (experiment {exp!r})")
            return 0
        purged = store.purge_deleted_runs(older_than_ms=older)
        problems = 0
        for run_id in purged:
            info = deleted.get(run_id)
            files = 0
            if info is not None and info.artifact_uri:
                try:
                    files = _delete_artifacts(store, info.artifact_uri)
                except Exception as e:  # noqa: BLE001 - report, go on with the others
                    problems += 1
                    print(
                        f"WARNING: run {run_id}: could not delete artifacts at "
                        f"{info.artifact_uri}: {_one_line(e)}",
                        file=sys.stderr,
                    )
            if info is None:  # deleted after the listing above: its location is gone with it
                print(
                    f"purged run {run_id}; WARNING: deleted while gc ran, its artifacts "
                    "(if any) were left in place",
                    file=sys.stderr,
                )
                continue
            exp = names.get(info.experiment_id, info.experiment_id)
            what = f"{info.run_name!r} (experiment {exp!r}), {files} artifact files"
            print(f"purged run {run_id} {what}")
        kept = len(deleted) - len(purged)
        note = ""
        if kept > 0 and older:
            note = f"; {kept} deleted runs kept (deleted less than {args.older_than.text} ago)"
        print(f"purged {len(purged)} runs{note}")
        if problems:
            raise CLIError(f"the artifacts of {problems} purged runs could not be deleted")
        return 0
    finally:
        store.close()


def _purge_candidates(deleted: Iterable[RunInfo], older_than_ms: int) -> set[str]:
    """Ids of the deleted runs ``purge_deleted_runs(older_than_ms)`` would remove now:
    deleted at least that long ago, or at an unknown time."""
    cutoff = now_ms() - older_than_ms
    return {i.run_id for i in deleted if i.deleted_time is None or i.deleted_time <= cutoff}


def _delete_artifacts(store: TrackingStore, artifact_uri: str) -> int:
    """Delete a run's artifacts; returns how many files there were."""
    repo = store.artifact_repo(artifact_uri)
    count = 0
    stack = [""]
    while stack:
        for info in repo.list(stack.pop()):
            if info.is_dir:
                stack.append(info.path)
            else:
                count += 1
    repo.delete("")
    # A local run directory left empty (<exp>/<run>/artifacts) goes too.
    path = repo.root
    if "://" not in path and os.path.isabs(path):
        for _ in range(2):
            if os.path.isdir(path) and not os.listdir(path):
                os.rmdir(path)
            path = os.path.dirname(path)
    return count


def _deleted_runs(store: TrackingStore, experiment_ids: list[str]) -> list[Any]:
    from .tracking.entities import DELETED_ONLY

    return _all(
        lambda token: store.search_runs(
            experiment_ids, run_view_type=DELETED_ONLY, page_token=token
        )
    )


def _all(page: Callable[[str | None], tuple[list[Any], str | None]]) -> list[Any]:
    items: list[Any] = []
    token: str | None = None
    while True:
        batch, token = page(token)
        items.extend(batch)
        if not token:
            return items


# -- import-mlflow ------------------------------------------------------------------


def cmd_import_mlflow(args: argparse.Namespace) -> int:
    from .importers.mlflow_import import MlflowImporter, open_source

    started = time.monotonic()
    source = open_source(args.source)
    try:
        store = open_store(args.database_url, None)
        try:
            importer = MlflowImporter(source, store, artifacts_root=args.artifacts_root, echo=_echo)
            experiments = importer.select(args.experiment)
            _echo(
                f"importing {len(experiments)} experiments from {source.description} "
                f"into {display_url(store.uri)}"
            )
            stats = importer.run(experiments)
        finally:
            store.close()
    finally:
        source.close()
    _echo(f"done in {time.monotonic() - started:.1f}s: {stats.summary()}")
    if stats.problems:
        raise CLIError(
            f"{len(stats.problems)} problems (see the WARNING lines above); "
            "fix them and run the import again: what is there already is skipped"
        )
    return 0


def _echo(line: str) -> None:
    print(line, flush=True)


# -- the parser -----------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_Formatter,
        description="jupyter-mlops from a terminal: the tracking store, imports from MLflow, "
        "pipelines, model serving, JupyterHub team configuration.",
        epilog=(
            "db, gc, import-mlflow and pipeline run work on the store given by --database-url,\n"
            "else $JUPYTER_MLOPS_TRACKING_URI when it is a database URL, else the default store\n"
            "<jupyter data dir>/mlops/mlops.db (artifacts in <jupyter data dir>/mlops/artifacts),\n"
            "the one the Jupyter server uses by default.\n\n"
            "examples:\n"
            "  jupyter mlops db upgrade\n"
            "  jupyter mlops gc --older-than 30d --dry-run\n"
            "  jupyter mlops import-mlflow ./mlruns\n"
            "  jupyter mlops import-mlflow sqlite:///mlflow.db --experiment churn\n"
            "  jupyter mlops pipeline run train.pipeline.yaml -p C=0.5\n"
            "  jupyter mlops serve models:/churn@champion --port 5001\n"
            "  jupyter mlops hub check teams.yaml\n"
            "  jupyter mlops spool replay --uri http://127.0.0.1:8888/mlops\n\n"
            "Every command and option: docs/cli.md, or jupyter mlops COMMAND --help."
        ),
    )
    parser.add_argument(
        "--traceback", action="store_true", help="show Python tracebacks of failures"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def store_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--database-url",
            metavar="URL",
            help="the store: sqlite:///<path>, postgresql://user@host/db, or a path to a .db file",
        )

    db = sub.add_parser(
        "db", help="manage the store's database", description="Manage the store's database."
    )
    db_sub = db.add_subparsers(dest="db_command", metavar="COMMAND")
    db_sub.required = True
    up = db_sub.add_parser(
        "upgrade",
        help="create the store or migrate it to the newest schema",
        description="Create the store, or migrate it to this version's schema, and print the "
        "schema revision. Safe to run again, and while servers use the store.",
    )
    store_options(up)
    up.add_argument(
        "--artifact-root",
        metavar="DIR_OR_URL",
        help="artifact root to record in the store: a directory or an fsspec URL "
        "(default for the default store: <jupyter data dir>/mlops/artifacts)",
    )
    up.set_defaults(func=cmd_db_upgrade)

    gc = sub.add_parser(
        "gc",
        help="permanently remove deleted runs and their artifacts",
        description="Permanently remove runs in the 'deleted' lifecycle stage: their params, "
        "metrics, tags and artifacts. Cannot be undone.",
    )
    store_options(gc)
    gc.add_argument(
        "--older-than",
        metavar="DURATION",
        type=parse_duration,
        help="only runs deleted at least this long ago: 30d, 12h, 1d12h, 90m, 45s (default: all)",
    )
    gc.add_argument("--dry-run", action="store_true", help="list the deleted runs, remove nothing")
    gc.set_defaults(func=cmd_gc)

    imp = sub.add_parser(
        "import-mlflow",
        help="import experiments, runs and artifacts from an MLflow store",
        formatter_class=_Formatter,
        description=(
            "Copy an MLflow tracking store into this one: experiments (names, tags, lifecycle),\n"
            "runs (ids kept; names, status, times, user, lifecycle), params, full metric\n"
            "histories, tags and artifacts. An experiment whose name exists already is merged\n"
            "into. Running it again adds only what is missing."
        ),
        epilog=(
            "SOURCE is an mlruns directory (MLflow's file store) or an MLflow database URL\n"
            "(sqlite:///mlflow.db, postgresql://...). Artifacts are read from each run's local\n"
            "artifact location; runs logged through an MLflow server with proxied artifacts\n"
            "(mlflow-artifacts:/ URIs) need --artifacts-root set to the server's\n"
            "--artifacts-destination directory."
        ),
    )
    imp.add_argument("source", metavar="SOURCE", help="mlruns directory or MLflow database URL")
    store_options(imp)
    imp.add_argument(
        "--experiment",
        metavar="NAME",
        action="append",
        help="import only this experiment (name or MLflow id); repeat for several",
    )
    imp.add_argument(
        "--artifacts-root",
        metavar="DIR",
        help="where mlflow-artifacts:/ URIs point (an MLflow server's --artifacts-destination); "
        "also searched as <DIR>/<experiment id>/<run id>/artifacts for moved artifacts",
    )
    imp.set_defaults(func=cmd_import_mlflow)

    # `hub check|render` (teams.yaml, pod previews) is the hub module's own; if
    # it cannot load, the store commands above must still work.
    try:
        from .hub.cli import add_subparsers as add_hub_commands
    except Exception as e:  # noqa: BLE001
        reason = _one_line(e)
        hub = sub.add_parser("hub", help=f"(unavailable: {reason})")
        hub.set_defaults(func=lambda _args: _raise(CLIError(f"hub commands unavailable: {reason}")))
    else:
        add_hub_commands(sub)
    # `service`: the hub-wide tracking service (jupyter_mlops.hub.service).
    from .hub.service import add_subparsers as add_service_command

    add_service_command(sub)
    # `pipeline validate|run`: the pipelines module's own, loaded the same guarded way.
    try:
        from .pipelines.cli import add_subparsers as add_pipeline_commands
    except Exception as e:  # noqa: BLE001
        reason = _one_line(e)
        pipe = sub.add_parser("pipeline", help=f"(unavailable: {reason})")
        pipe.set_defaults(
            func=lambda _args: _raise(CLIError(f"pipeline commands unavailable: {reason}"))
        )
    else:
        add_pipeline_commands(sub)
    from .jobs.cli import add_subparsers as add_job_commands

    add_job_commands(sub)  # `job validate|run`: training jobs (jupyter_mlops.jobs)
    from .registry.cli import add_subparsers as add_serve_command

    add_serve_command(sub)  # `serve <model uri>`: the scoring server
    from .deployments.cli import add_subparsers as add_deployment_commands

    add_deployment_commands(sub)  # `models build-context|build-image`, `deploy ...`
    from .client.spool_cli import add_subparsers as add_spool_commands

    add_spool_commands(sub)  # `spool list|replay|discard`: the client's undelivered records
    from .projects.cli import add_subparsers as add_project_command

    add_project_command(sub)  # `run URI`: MLflow projects (jupyter_mlops.projects)
    from .benchmark.cli import add_subparsers as add_bench_command

    add_bench_command(sub)  # `bench`: the scale figures against a running server
    return parser


def _raise(err: Exception) -> int:
    raise err


def _one_line(err: BaseException) -> str:
    orig = getattr(err, "orig", None)  # SQLAlchemy wraps the driver's error
    text = str(orig if orig is not None else err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _user_error_types() -> tuple[type[BaseException], ...]:
    from .client.spool_cli import SpoolCommandError
    from .importers.source import SourceError
    from .tracking.errors import TrackingError

    types: list[type[BaseException]] = [
        CLIError,
        SourceError,
        SpoolCommandError,
        TrackingError,
        OSError,
    ]
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None:
        types += [sa_exc.SQLAlchemyError]  # type: ignore[attr-defined]
    alembic_exc = sys.modules.get("alembic.util.exc")
    if alembic_exc is not None:  # e.g. a store migrated by a newer jupyter-mlops
        types += [alembic_exc.CommandError]  # type: ignore[attr-defined]
    return tuple(types)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:  # start-up time is a project run's overhead: one parser only
        from .projects.cli import main as run_main

        return run_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, not in Python's exit
        return code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `jupyter mlops hub render ... | head`: the reader has what it wanted; no
        # "error: [Errno 32] Broken pipe", and nothing more for Python to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:  # noqa: BLE001 - the one place errors become exit codes
        if args.traceback or not isinstance(e, _user_error_types()):
            import traceback

            traceback.print_exc()
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
