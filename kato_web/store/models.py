"""Typed SQLAlchemy 2.0 models: the shape of everything kato-web stores.

Alembic migrations create exactly these tables (a test compares them). Times are
stored as float Unix epochs so SQLite and PostgreSQL behave the same.
"""
from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, Float, Index, Integer, LargeBinary, String, Text,
                        false)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Node(Base):
    """A knowledge base (KATO's kb_id) with its global counters (engine.md §4.5)."""

    __tablename__ = "nodes"

    kb_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    # Bumped by every learn and clear-all: workers refresh their caches from it.
    change_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # Bumped by clear-all only: a cache built for an older generation is discarded.
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # finalize-training was called since the last clear-all (kato-3.10.md decision 15): the
    # entropy metrics then use whole patterns, computed live.
    finalized: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    total_unique_patterns: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    total_pattern_frequencies: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    total_symbols_in_patterns_frequencies: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    symbol_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class Pattern(Base):
    """A learned pattern of one node (engine.md §4)."""

    __tablename__ = "patterns"

    kb_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), primary_key=True)  # bare SHA-1 hex
    events: Mapped[list] = mapped_column(JSON, nullable=False)
    length: Mapped[int] = mapped_column(Integer, nullable=False)
    frequency: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    # The raw emotive dicts of the observations learned into it, oldest first, at most the
    # learning session's persistence of them (kato-3.10.md decision 16).
    emotives: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    pattern_metadata: Mapped[dict] = mapped_column("metadata", JSON, nullable=False, default=dict)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    created_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_patterns_kb_updated_seq", "kb_id", "updated_seq"),)


class Symbol(Base):
    """Per-node symbol statistics: freq and pattern-member frequency (engine.md §4.5)."""

    __tablename__ = "symbols"

    kb_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(Text, primary_key=True)
    frequency: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    pattern_member_frequency: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    updated_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)

    __table_args__ = (Index("ix_symbols_kb_updated_seq", "kb_id", "updated_seq"),)


class SymbolAffinity(Base):
    """Per-node running sum of one emotive over the learns containing a symbol (kato-3.10.md §1.4c).

    One row per (symbol, emotive), so a learn adds with an atomic upsert (total = total + x).
    """

    __tablename__ = "symbol_affinity"

    kb_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(Text, primary_key=True)
    emotive: Mapped[str] = mapped_column(Text, primary_key=True)
    total: Mapped[float] = mapped_column(Float, nullable=False)
    updated_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_symbol_affinity_kb_updated_seq", "kb_id", "updated_seq"),)


class Vector(Base):
    """A learned vector of one node, by its VCTR| name (kato-3.10.md decision 17).

    `components` are the float64 values in native byte order (little-endian on every platform
    kato-web supports): loading a hundred thousand of them is one frombuffer per row.
    """

    __tablename__ = "vectors"

    kb_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # VCTR|<sha1>
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    components: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_vectors_kb_created_seq", "kb_id", "created_seq"),)


class Session(Base):
    """A client session: STM, accumulators, time, overrides and expiry (api.md §4)."""

    __tablename__ = "sessions"

    session_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    node_id: Mapped[str] = mapped_column(Text, nullable=False)  # raw, as the client sent it
    kb_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    ttl_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    session_metadata: Mapped[dict] = mapped_column("metadata", JSON, nullable=False, default=dict)
    config: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)  # overrides only
    state: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)  # stm, accumulators, time, percept
    # Observe-time predictions (spec/README.md decision 9): the inputs are kept and the
    # result is computed on first read, then stored here.
    prediction_input: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    predictions: Mapped[list | None] = mapped_column(JSON, nullable=True)
    access_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class Setting(Base):
    """A server-wide default set from the admin page; overrides the environment."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[object] = mapped_column(JSON, nullable=False)
    updated_at: Mapped[float] = mapped_column(Float, nullable=False)


class Maintenance(Base):
    """One row per periodic maintenance job: who holds it until when, and what it last did.

    The lease makes a job run in one worker at a time across every worker and instance that
    share the database (taken with one atomic upsert, see repositories.take_lease).
    """

    __tablename__ = "maintenance"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128), nullable=False)
    lease_until: Mapped[float] = mapped_column(Float, nullable=False)
    last_run_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    total_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class Evaluation(Base):
    """An accuracy evaluation started from the admin page, run by a separate process.

    Its whole state lives here so that any worker can show its progress, cancel it or apply
    its suggestion (services/evaluation_jobs.py).
    """

    __tablename__ = "evaluations"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kb_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # queued → running → done | cancelled | timeout | failed
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    params: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    sequences: Mapped[list | None] = mapped_column(JSON, nullable=True)  # an uploaded sample
    progress_done: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    progress_total: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
