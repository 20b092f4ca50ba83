"""Alembic environment of the tracking store.

Run only from :func:`jupyter_mlops.tracking.migrate.upgrade`, which passes an open
connection (already holding the migration lock) in ``config.attributes``; no
``alembic.ini`` is needed.
"""

from alembic import context

from jupyter_mlops.tracking.migrate import VERSION_TABLE
from jupyter_mlops.tracking.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
