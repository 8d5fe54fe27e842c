"""Run Alembic migrations programmatically (used by `make run`, tests and CI)."""
from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig

from kato_web.config import project_file


def alembic_config(url: str) -> AlembicConfig:
    # The repository's alembic/ or the installed package's copy (config.project_file).
    cfg = AlembicConfig(str(project_file("alembic.ini")))
    cfg.set_main_option("script_location", str(project_file("alembic")))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revisions() -> tuple[str, ...]:
    """The revisions the migration scripts end in (one, unless two branches were merged badly)."""
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()))


def current_revisions(conn) -> tuple[str, ...]:
    """The revisions the database behind `conn` is at (empty before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
