"""maintenance leases (the periodic session sweep)

Revision ID: 0002_ops
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_ops'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('maintenance',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('lease_until', sa.Float(), nullable=False),
    sa.Column('last_run_at', sa.Float(), nullable=True),
    sa.Column('last_count', sa.BigInteger(), nullable=False),
    sa.Column('total_count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('maintenance')
