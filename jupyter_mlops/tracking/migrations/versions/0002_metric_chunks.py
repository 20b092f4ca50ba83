"""Store metric points packed in chunks of 1024 instead of one row per point.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

One row per point cost ~1.7 µs per point to insert and ~1.5 µs to read back; packed
chunks (see ``jupyter_mlops.tracking.chunks``) cost a few row operations per
thousand points. Existing points are carried over in their arrival order.
"""

import sqlalchemy as sa
from alembic import op

from jupyter_mlops.tracking.chunks import CHUNK, encode_floats, encode_ints

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_chunks",
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("chunk_no", sa.BigInteger, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("steps", sa.LargeBinary, nullable=False),
        sa.Column("timestamps", sa.LargeBinary, nullable=False),
        sa.Column("vals", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "chunk_no", name="pk_metric_chunks"),
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    chunks = sa.table(
        "metric_chunks",
        sa.column("series_id"),
        sa.column("chunk_no"),
        sa.column("n"),
        sa.column("steps"),
        sa.column("timestamps"),
        sa.column("vals"),
    )
    rows = bind.exec_driver_sql(
        "SELECT series_id, seq, step, timestamp, value FROM metrics ORDER BY series_id, seq"
    )
    cur: tuple[int, int] | None = None
    buf: tuple[list, list, list] = ([], [], [])

    def flush() -> None:
        if cur is not None and buf[0]:
            bind.execute(
                chunks.insert().values(
                    series_id=cur[0],
                    chunk_no=cur[1],
                    n=len(buf[0]),
                    steps=encode_ints(buf[0]),
                    timestamps=encode_ints(buf[1]),
                    vals=encode_floats(buf[2]),
                )
            )

    for sid, seq, step, ts, value in rows:
        key = (sid, seq // CHUNK)
        if key != cur:
            flush()
            cur, buf = key, ([], [], [])
        buf[0].append(step)
        buf[1].append(ts)
        buf[2].append(float("nan") if value is None else value)
    flush()
    op.drop_table("metrics")


def downgrade() -> None:
    raise NotImplementedError("metric chunks cannot be turned back into rows")
