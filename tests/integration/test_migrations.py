"""Migrations: empty database → head → base → head, and no drift from the models."""
from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from kato_web.store.migrate import downgrade, upgrade
from kato_web.store.models import Base
from tests.support import throwaway_database

EXPECTED_TABLES = {"nodes", "patterns", "symbols", "sessions", "settings", "maintenance", "symbol_affinity",
                   "vectors", "evaluations", "alembic_version"}


def test_upgrade_from_empty_and_no_drift(tmp_path):
    with throwaway_database(tmp_path) as url:
        upgrade(url)
        engine = create_engine(url)
        try:
            assert set(inspect(engine).get_table_names()) == EXPECTED_TABLES
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == [], diff
            downgrade(url, "base")
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
            upgrade(url)
            assert set(inspect(engine).get_table_names()) == EXPECTED_TABLES
        finally:
            engine.dispose()


def test_kato310_migration_converts_stored_data_both_ways(tmp_path):
    # kato-3.10.md decisions 15–17: 0002_kato310 on a database holding data of the older schema
    from sqlalchemy import text

    with throwaway_database(tmp_path) as url:
        upgrade(url, "0001")
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO nodes (kb_id, created_at, change_seq, generation, vector_dim, total_unique_patterns,"
                    " total_pattern_frequencies, total_symbols_in_patterns_frequencies, symbol_count)"
                    " VALUES ('old_kato', 1.0, 3, 0, 2, 3, 3, 6, 2)"))
                for name, emotives in (("a" * 40, '[{"joy": 0.75}, {"joy": 0.25, "calm": 1.0}]'),
                                       ("b" * 40, '{"joy": 0.5}'), ("c" * 40, "null")):
                    conn.execute(text(
                        "INSERT INTO patterns (kb_id, name, events, length, frequency, emotives, metadata,"
                        " created_at, created_seq, updated_seq) VALUES ('old_kato', :n, '[[\"x\"], [\"y\"]]',"
                        " 2, 1, :e, '{}', 1.0, 1, 1)"), {"n": name, "e": emotives})
            upgrade(url)
            with engine.connect() as conn:
                rows = dict(conn.execute(text("SELECT name, emotives FROM patterns ORDER BY name")).all())
                node = conn.execute(text("SELECT * FROM nodes")).mappings().one()
            decode = lambda v: json.loads(v) if isinstance(v, str) else v  # noqa: E731
            # each averaged snapshot is one entry of the new list; odd values become lists
            assert {k[0]: decode(v) for k, v in rows.items()} == {
                "a": [{"joy": 0.75}, {"joy": 0.25, "calm": 1.0}], "b": [{"joy": 0.5}], "c": []}
            assert not node["finalized"] and "vector_dim" not in node
            downgrade(url, "0001")
            with engine.connect() as conn:
                columns = {c["name"] for c in inspect(conn).get_columns("nodes")}
                rows = dict(conn.execute(text("SELECT name, emotives FROM patterns ORDER BY name")).all())
            assert "vector_dim" in columns and "finalized" not in columns
            assert set(inspect(engine).get_table_names()) == {"nodes", "patterns", "symbols", "sessions",
                                                               "settings", "alembic_version"}
            assert decode(rows["a" * 40]) == [{"joy": 0.75}, {"joy": 0.25, "calm": 1.0}]
        finally:
            engine.dispose()
