"""``jupyter mlops serve``: wired into :mod:`jupyter_mlops.cli` as a subcommand."""

from __future__ import annotations

import argparse
import signal
from typing import Any


def add_subparsers(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP (MLflow's scoring protocol)",
        description="Serve a model with MLflow's scoring protocol: GET /ping, GET /version, "
        "POST /invocations (JSON dataframe_split, dataframe_records, instances, "
        "inputs; or CSV).",
    )
    p.add_argument(
        "model_uri",
        metavar="MODEL_URI",
        help="runs:/<run>/<path>, models:/<name>/<version|stage>, "
        "models:/<name>@<alias>, or a local model directory",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    p.add_argument("-p", "--port", type=int, default=5000, help="port (5000)")
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="where models:/ and runs:/ URIs are resolved (default: the "
        "resolved tracking URI, as for the client)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .serve import serve

    # A SIGTERM (docker stop, kill) ends the server like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    serve(args.model_uri, args.host, args.port, args.tracking_uri)
    return 0


def _interrupt(*_args: Any) -> None:
    raise KeyboardInterrupt
