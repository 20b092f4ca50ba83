"""The JupyterHub side of jupyter-mlops: team notebook servers on Kubernetes.

Imports only JupyterHub, KubeSpawner and PyYAML (the hub image has no JupyterLab). Nothing is imported until
used, so ``import jupyter_mlops.hub`` is cheap:

- :mod:`.teams`: the admin's teams.yaml model and its validation (file, line, field in every error);
- :mod:`.policy`: what a user may spawn, and the team GPU ledger;
- :mod:`.spawner`: ``TeamSpawner``, the KubeSpawner subclass (``c.JupyterHub.spawner_class``);
- :mod:`.render`, :mod:`.cli`: ``jupyter mlops hub check|render``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TeamSpawner", "load_teams", "plan_spawn"]


def __getattr__(name: str) -> Any:
    if name == "TeamSpawner":
        from .spawner import TeamSpawner

        return TeamSpawner
    if name == "load_teams":
        from .teams import load_teams

        return load_teams
    if name == "plan_spawn":
        from .policy import plan_spawn

        return plan_spawn
    raise AttributeError(name)
