"""MLflow project tests: this folder is on sys.path for ``projhelpers``; the fake Kubeflow
Pipelines API server lives with the pipeline tests (one copy for every user of it)."""

from __future__ import annotations

import os
import sys

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pipelines")
)
