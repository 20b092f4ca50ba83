"""Tables of training jobs and their ranks (SQLAlchemy Core).

They live in the tracking database, created by the Alembic migration
``tracking/migrations/versions/0009_training_jobs.py`` (which spells them out itself:
``tracking`` never imports ``jobs``). No foreign keys to tracking tables: purging tracked
runs must not be blocked by job history.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

training_jobs = Table(
    "training_jobs",
    metadata,
    Column("job_id", String(32), primary_key=True),  # = the job's tracked run id
    Column("name", String(128), nullable=False),
    Column("experiment_id", String(32), nullable=True),
    Column("source_path", Text, nullable=True),  # the job file, or the entry's file
    Column("spec", Text, nullable=False),  # JSON: JobSpec.to_dict() + base_dir
    Column("parameters", Text, nullable=False),  # JSON: resolved values
    Column("status", String(20), nullable=False),
    Column("reason", Text, nullable=True),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("created_time", BigInteger, nullable=False),
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=True),
    Column("job_dir", Text, nullable=False),
    Column("target", String(64), nullable=False, server_default="local"),
    Column("executor", String(128), nullable=True),  # "host:pid" of the process running it
    Index("ix_training_jobs_created", "created_time"),
    Index("ix_training_jobs_status", "status"),
)

training_ranks = Table(
    "training_ranks",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("rank", Integer, primary_key=True, autoincrement=False),
    Column("node", Integer, nullable=False),
    Column("local_rank", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("pid", Integer, nullable=True),
    Column("pgid", Integer, nullable=True),
    Column("pid_start", BigInteger, nullable=True),  # /proc start time: tells pid reuse
    Column("exit_code", Integer, nullable=True),
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
)
