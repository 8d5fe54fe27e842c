"""sessions: the state and observe-time prediction columns compressed with lz4 (PostgreSQL)

Every observe rewrites a session's state (the STM: several KB once it is long), and a batch
learn writes up to max_predictions observe-time predictions (~90 KB for 100) while the node's
lock is held. PostgreSQL compresses such values with pglz by default; lz4 does it in half the
CPU (measured on PostgreSQL 15: an UPDATE of 92 KB of predictions 0.93 -> 0.45 ms of server CPU,
the stored size the same within 1 %), and reads them as fast. Values written before keep
their compression until rewritten, which every observe does. PostgreSQL before 14, or built
without lz4, and SQLite keep what they had.

Revision ID: 0005_session_lz4
Revises: 0003_security
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_session_lz4'
down_revision = '0003_security'
branch_labels = None
depends_on = None

COLUMNS = ("state", "prediction_input", "predictions")


def _lz4_available(bind) -> bool:
    if bind.dialect.name != "postgresql":
        return False
    return bind.execute(sa.text(
        "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
    )).first() is not None


def _set(compression: str) -> None:
    bind = op.get_bind()
    if _lz4_available(bind):
        for column in COLUMNS:
            op.execute(f"ALTER TABLE sessions ALTER COLUMN {column} SET COMPRESSION {compression}")


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("default")
