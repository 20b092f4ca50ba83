"""``jupyter mlops serve``: wired into :mod:`jupyter_mlops.cli` as a subcommand."""

from __future__ import annotations

import argparse
from typing import Any


def add_subparsers(subparsers: Any) -> argparse.ArgumentParser:
    from .serve import add_arguments

    p = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP (MLflow's scoring protocol and the V2 inference protocol)",
        description="Serve a model with MLflow's scoring protocol (GET /ping, /health, "
        "/version; POST /invocations with JSON dataframe_split, dataframe_records, instances, "
        "inputs, or CSV) and the Open Inference Protocol V2 (GET /v2/health/live|ready, "
        "/v2/models/NAME[/ready]; POST /v2/models/NAME/infer), plus GET /metrics "
        "(Prometheus).",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .serve import run as serve_run

    return serve_run(args)
