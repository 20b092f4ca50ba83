"""The hub process's shared state: one GPU ledger and one teams.yaml cache, used by every ``TeamSpawner`` and by
the hub API handlers (:mod:`.api`). JupyterHub runs one event loop in one process, so plain module globals do."""

from __future__ import annotations

import os
from typing import Any

from .policy import GpuLedger
from .teams import TeamsConfig, TeamsConfigError, load_teams


class TeamsCache:
    """teams.yaml loaded once per change of the file: admins edit it (a ConfigMap) without restarting the hub."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, TeamsConfig]] = {}

    def get(self, path: str, log: Any) -> TeamsConfig:
        try:
            mtime = os.stat(path).st_mtime
        except OSError as e:
            if path in self._entries:
                log.error("Cannot read %s (%s); keeping the last good teams configuration", path, e)
                return self._entries[path][1]
            raise
        cached = self._entries.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            config = load_teams(path)
        except TeamsConfigError as e:
            if cached:
                log.error("teams configuration has errors; keeping the last good one:\n%s", e)
                return cached[1]
            raise
        for warning in config.warnings:
            log.warning("%s", warning)
        self._entries[path] = (mtime, config)
        return config


#: the ledger of the hub process
LEDGER = GpuLedger()
#: teams.yaml as last loaded, per path
TEAMS = TeamsCache()
#: teams.yaml's path when the configuration does not say (c.TeamSpawner.teams_file)
DEFAULT_TEAMS_FILE = os.environ.get("JUPYTER_MLOPS_TEAMS", "/etc/jupyterhub/teams.yaml")

__all__ = ["DEFAULT_TEAMS_FILE", "LEDGER", "TEAMS", "TeamsCache", "TeamsConfig"]
