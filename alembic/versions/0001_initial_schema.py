"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 06:03:11.490407
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('nodes',
    sa.Column('kb_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('change_seq', sa.BigInteger(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('vector_dim', sa.Integer(), nullable=True),
    sa.Column('total_unique_patterns', sa.BigInteger(), nullable=False),
    sa.Column('total_pattern_frequencies', sa.BigInteger(), nullable=False),
    sa.Column('total_symbols_in_patterns_frequencies', sa.BigInteger(), nullable=False),
    sa.Column('symbol_count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kb_id')
    )
    op.create_table('patterns',
    sa.Column('kb_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('length', sa.Integer(), nullable=False),
    sa.Column('frequency', sa.BigInteger(), nullable=False),
    sa.Column('emotives', sa.JSON(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('created_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kb_id', 'name')
    )
    with op.batch_alter_table('patterns', schema=None) as batch_op:
        batch_op.create_index('ix_patterns_kb_updated_seq', ['kb_id', 'updated_seq'], unique=False)

    op.create_table('sessions',
    sa.Column('session_id', sa.String(length=80), nullable=False),
    sa.Column('node_id', sa.Text(), nullable=False),
    sa.Column('kb_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('ttl_seconds', sa.Integer(), nullable=False),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('prediction_input', sa.JSON(), nullable=True),
    sa.Column('predictions', sa.JSON(), nullable=True),
    sa.Column('access_count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('session_id')
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sessions_kb_id'), ['kb_id'], unique=False)

    op.create_table('settings',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('symbols',
    sa.Column('kb_id', sa.String(length=64), nullable=False),
    sa.Column('symbol', sa.Text(), nullable=False),
    sa.Column('frequency', sa.BigInteger(), nullable=False),
    sa.Column('pattern_member_frequency', sa.BigInteger(), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kb_id', 'symbol')
    )
    with op.batch_alter_table('symbols', schema=None) as batch_op:
        batch_op.create_index('ix_symbols_kb_updated_seq', ['kb_id', 'updated_seq'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('symbols', schema=None) as batch_op:
        batch_op.drop_index('ix_symbols_kb_updated_seq')

    op.drop_table('symbols')
    op.drop_table('settings')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_kb_id'))
        batch_op.drop_index(batch_op.f('ix_sessions_expires_at'))

    op.drop_table('sessions')
    with op.batch_alter_table('patterns', schema=None) as batch_op:
        batch_op.drop_index('ix_patterns_kb_updated_seq')

    op.drop_table('patterns')
    op.drop_table('nodes')
