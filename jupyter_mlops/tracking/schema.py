"""The tracking store's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

Metric storage is split three ways so each read touches little:

* ``latest_metrics``: one row per (run, key) *series*: the latest point (search and
  sort read it), the point count, and whether points arrived in order (which lets the
  history and the roll-ups be read by arrival sequence).
* ``metric_chunks``: every point, packed by arrival order (``seq``, the index of the
  point within its series) in chunks of 1024 (see :mod:`.chunks`): an append touches
  one or two rows per series, a 100k-point history reads ~100 rows.
* ``metric_blocks``: a roll-up pyramid maintained at write time: level ``L`` holds one
  row per ``BLOCK_BASE ** L`` consecutive points with their min/max value and x-range,
  so a million-point series down-samples from about a thousand rows.

In ``latest_metrics`` and ``metric_blocks`` a NaN value is NULL (SQLite cannot store
NaN); infinities are stored as they are. Chunks keep every value bit for bit.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

#: Points per block at level 1; level L blocks hold BLOCK_BASE ** L points.
BLOCK_BASE = 32
#: Levels of the roll-up pyramid (32 .. 32**4 = 1M points per block).
BLOCK_LEVELS = (1, 2, 3, 4)

metadata = MetaData()

store_info = Table(
    "store_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False),
    Column("artifact_location", Text, nullable=True),
    Column("lifecycle_stage", String(20), nullable=False, server_default="active"),
    Column("creation_time", BigInteger, nullable=True),
    Column("last_update_time", BigInteger, nullable=True),
    Column("deleted_time", BigInteger, nullable=True),
    UniqueConstraint("name", name="uq_experiments_name"),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=True),
    PrimaryKeyConstraint("experiment_id", "key", name="pk_experiment_tags"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_uuid", String(64), primary_key=True),
    Column("name", String(250), nullable=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", String(256), nullable=True),
    Column("status", String(20), nullable=False),
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(20), nullable=False, server_default="active"),
    Column("artifact_uri", Text, nullable=True),
    Column("deleted_time", BigInteger, nullable=True),
    Column("last_heartbeat", BigInteger, nullable=True),
    # When anything of the run last changed (epoch ms): the runs table's live updates.
    Column("last_update_time", BigInteger, nullable=True),
    Index("ix_runs_heartbeat", "status", "last_heartbeat"),
    Index("ix_runs_experiment_update", "experiment_id", "last_update_time"),
)
# Search's default order (start_time DESC, run_uuid), so a page is read in index order.
# PostgreSQL's index says DESC NULLS LAST, which is SQLite's DESC.
Index(
    "ix_runs_search_order",
    runs.c.experiment_id,
    runs.c.lifecycle_stage,
    runs.c.start_time.desc(),
    runs.c.run_uuid,
)


def _run_key_values(name: str, value_nullable: bool) -> Table:
    """One row per (run, key): a run's params or tags."""
    return Table(
        name,
        metadata,
        Column(
            "run_uuid", String(64), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False
        ),
        Column("key", String(250), nullable=False),
        Column("value", String(8000), nullable=value_nullable),
        PrimaryKeyConstraint("run_uuid", "key", name=f"pk_{name}"),
    )


params = _run_key_values("params", value_nullable=False)  # write-once values
tags = _run_key_values("tags", value_nullable=True)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("series_id", Integer, primary_key=True, autoincrement=True),
    Column("run_uuid", String(64), ForeignKey("runs.run_uuid", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    # the latest point: max step, then max timestamp, then max value (NaN counts as 0)
    Column("value", Float, nullable=True),  # NULL = NaN
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    # the series as a whole
    Column("n", BigInteger, nullable=False),  # number of points (next seq)
    Column("last_step", BigInteger, nullable=False),  # step of the last point to arrive
    Column("last_ts", BigInteger, nullable=False),  # timestamp of the last point to arrive
    Column("ord_step", Boolean, nullable=False),  # steps arrived non-decreasing
    Column("ord_ts", Boolean, nullable=False),  # timestamps arrived non-decreasing
    Column("ord_step_ts", Boolean, nullable=False),  # (step, timestamp) arrived sorted
    UniqueConstraint("run_uuid", "key", name="uq_latest_metrics_run_key"),
    Index("ix_latest_metrics_key_value", "key", "value", "run_uuid"),
)

metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("series_id", Integer, nullable=False),
    Column("chunk_no", BigInteger, nullable=False),  # seqs [chunk_no*CHUNK, (chunk_no+1)*CHUNK)
    Column("n", Integer, nullable=False),
    Column("steps", LargeBinary, nullable=False),  # int64 little-endian
    Column("timestamps", LargeBinary, nullable=False),  # int64 little-endian
    Column("vals", LargeBinary, nullable=False),  # float64 little-endian (NaN kept)
    PrimaryKeyConstraint("series_id", "chunk_no", name="pk_metric_chunks"),
    sqlite_with_rowid=False,
)

metric_blocks = Table(
    "metric_blocks",
    metadata,
    Column("series_id", Integer, nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("block_no", BigInteger, nullable=False),
    Column("n", Integer, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("first_ts", BigInteger, nullable=False),
    Column("min_step", BigInteger, nullable=False),
    Column("max_step", BigInteger, nullable=False),
    Column("min_ts", BigInteger, nullable=False),
    Column("max_ts", BigInteger, nullable=False),
    Column("min_value", Float, nullable=True),  # NULL when every point is NaN
    Column("max_value", Float, nullable=True),
    Column("last_value", Float, nullable=True),
    PrimaryKeyConstraint("series_id", "level", "block_no", name="pk_metric_blocks"),
    sqlite_with_rowid=False,
)

#: Characters of a param/tag value that PostgreSQL's search index holds (migration 0006).
VALUE_PREFIX_CHARS = 200

# Value indexes for search, created per dialect by the migrations. PostgreSQL's b-tree
# rejects entries over ~2.7 kB and param/tag values may be 6000/8000 characters, so
# there the index holds a prefix of the value (search compares it, see search.py).
SQLITE_ONLY_INDEXES = (
    ("ix_params_key_value", "params", ("key", "value", "run_uuid")),
    ("ix_tags_key_value", "tags", ("key", "value", "run_uuid")),
)
# Values of at most VALUE_PREFIX_CHARS characters are also indexed whole (partial
# indexes, migration 0017): unlike the prefix's, those scans can be index-only.
POSTGRES_ONLY_INDEXES = (
    ("ix_params_key_prefix", "params", ("key", f"left(value, {VALUE_PREFIX_CHARS})", "run_uuid")),
    ("ix_tags_key_prefix", "tags", ("key", f"left(value, {VALUE_PREFIX_CHARS})", "run_uuid")),
    ("ix_params_key_short_value", "params", ("key", "value", "run_uuid")),
    ("ix_tags_key_short_value", "tags", ("key", "value", "run_uuid")),
)
