"""Migrations: empty database → head → base → head, and no drift from the models."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from kato_web.store.migrate import downgrade, upgrade
from kato_web.store.models import Base
from tests.support import throwaway_database

EXPECTED_TABLES = {"nodes", "patterns", "symbols", "sessions", "settings", "maintenance", "alembic_version"}


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
