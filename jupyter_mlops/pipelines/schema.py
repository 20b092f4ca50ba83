"""Tables of pipeline runs, their steps and schedules (SQLAlchemy Core).

They live in the tracking database, created by the Alembic migration
``tracking/migrations/versions/0003_pipelines.py`` (which spells them out itself:
``tracking`` never imports ``pipelines``). No foreign keys to tracking tables:
purging tracked runs must not be blocked by pipeline history.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),  # = the parent tracked run's id
    Column("name", String(128), nullable=False),
    Column("experiment_id", String(32), nullable=True),
    Column("source_path", Text, nullable=True),
    Column("spec", Text, nullable=False),  # JSON: Pipeline.to_dict() + base_dir
    Column("parameters", Text, nullable=False),  # JSON: resolved values
    Column("status", String(20), nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_time", BigInteger, nullable=False),
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=True),
    Column("run_dir", Text, nullable=False),
    Column("target", String(32), nullable=False, server_default="local"),
    Column("executor", String(128), nullable=True),  # "host:pid" of the process running it
    Column("schedule_id", String(32), nullable=True),
    Column("retry_of", String(32), nullable=True),
    Index("ix_pipeline_runs_created", "created_time"),
    Index("ix_pipeline_runs_status", "status"),
)

pipeline_steps = Table(
    "pipeline_steps",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("step", String(64), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=True),
    Column("tracking_run_id", String(32), nullable=True),
    Column("cache_key", String(64), nullable=True),
    Column("cached_from", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_pipeline_steps_cache", "cache_key", "status"),
)

pipeline_schedules = Table(
    "pipeline_schedules",
    metadata,
    Column("schedule_id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("pipeline_path", Text, nullable=False),  # relative to the server's root
    Column("parameters", Text, nullable=False),
    Column("cron", String(128), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("paused", Boolean, nullable=False, server_default="0"),
    Column("next_fire_time", BigInteger, nullable=True),
    Column("last_fire_time", BigInteger, nullable=True),
    Column("last_run_id", String(32), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("owner", Text, nullable=True),  # "host:root_dir" of the server that fires it
    Column("target", String(32), nullable=False, server_default="local"),  # where its runs go
    Column("created_time", BigInteger, nullable=False),
    Index("ix_pipeline_schedules_next", "paused", "next_fire_time"),
)
