"""``Migrator``: a store's database moved between Alembic revisions, for the down and up
tests of migrations (the ``migrator`` fixture of ``tests/tracking/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from jupyter_mlops.tracking import migrate


class Migrator:
    """A store's database moved between Alembic revisions, as the store's own migrations
    run them (one write transaction): for a migration's down and up tests."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"

    def up(self, target: str = "head") -> None:
        self._run(command.upgrade, target)

    def down(self, target: str) -> None:
        self._run(command.downgrade, target)

    def _run(self, step: Callable[[Config, str], None], target: str) -> None:
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
            step(migrate.alembic_config(conn), target)
