"""KATO 3.10.1 storage: finalized nodes, symbol affinity, learned vectors, raw pattern emotives

Revision ID: 0002_kato310
Revises: 0002_ops
Create Date: 2026-12-03 20:00:00

kato-3.10.md decisions 15–17:
* nodes.finalized (finalize-training, cleared by clear-all);
* symbol_affinity: per node, symbol and emotive, the running sum of learn-time emotive means;
* vectors: the vectors learned on a node, searched for neighbours at observe time; the node's
  vector dimension lock (nodes.vector_dim) goes, since vectors of any dimension now coexist;
* patterns.emotives becomes a window of raw per-observation dicts. A stored window held one
  averaged snapshot per learn; each snapshot becomes one entry of the new list (the value a
  prediction averages is unchanged). The pass also normalises odd values: a bare dict becomes
  a one-element list, NULL or a non-list becomes [], and empty entries are dropped.

Affinity cannot be rebuilt from stored patterns (a window does not say which learn brought
which emotives), so existing nodes start with none, as KATO's own rehydration does.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_kato310'
down_revision = '0002_ops'
branch_labels = None
depends_on = None


def _normalise_emotives() -> None:
    """Rewrite every pattern's emotives as a list of non-empty dicts (see the module docstring)."""
    conn = op.get_bind()
    patterns = sa.table('patterns', sa.column('kb_id', sa.String), sa.column('name', sa.String),
                        sa.column('emotives', sa.JSON))
    rows = conn.execute(sa.select(patterns.c.kb_id, patterns.c.name, patterns.c.emotives)).all()
    for kb_id, name, emotives in rows:
        if isinstance(emotives, dict):
            window = [emotives]
        elif isinstance(emotives, list):
            window = emotives
        else:
            window = []
        window = [dict(entry) for entry in window if isinstance(entry, dict) and entry]
        if window != emotives:
            conn.execute(sa.update(patterns).where(patterns.c.kb_id == kb_id, patterns.c.name == name)
                         .values(emotives=window))


def upgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('finalized', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_column('vector_dim')

    op.create_table('symbol_affinity',
    sa.Column('kb_id', sa.String(length=64), nullable=False),
    sa.Column('symbol', sa.Text(), nullable=False),
    sa.Column('emotive', sa.Text(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('updated_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kb_id', 'symbol', 'emotive')
    )
    with op.batch_alter_table('symbol_affinity', schema=None) as batch_op:
        batch_op.create_index('ix_symbol_affinity_kb_updated_seq', ['kb_id', 'updated_seq'], unique=False)

    op.create_table('vectors',
    sa.Column('kb_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('components', sa.LargeBinary(), nullable=False),
    sa.Column('created_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('kb_id', 'name')
    )
    with op.batch_alter_table('vectors', schema=None) as batch_op:
        batch_op.create_index('ix_vectors_kb_created_seq', ['kb_id', 'created_seq'], unique=False)

    _normalise_emotives()


def downgrade() -> None:
    # The raw dicts stay as they are: the older code averages a window of dicts the same way.
    _normalise_emotives()
    with op.batch_alter_table('vectors', schema=None) as batch_op:
        batch_op.drop_index('ix_vectors_kb_created_seq')
    op.drop_table('vectors')
    with op.batch_alter_table('symbol_affinity', schema=None) as batch_op:
        batch_op.drop_index('ix_symbol_affinity_kb_updated_seq')
    op.drop_table('symbol_affinity')
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vector_dim', sa.Integer(), nullable=True))
        batch_op.drop_column('finalized')
