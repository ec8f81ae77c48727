"""call legs: each queue visit of a call as a row of call_legs; first/final queue, final agent

Revision ID: 0004_call_legs
Revises: 0006_sla_notify
Create Date: 2026-11-24 15:25:00

Existing calls get one leg each from their own columns (a call written before legs visited one
queue as far as we know): joined at started_at + ivr_seconds, left at ended_at, the call's
outcome, wait, ring, talk and agent. Calls that never queued get none. first_queue and
final_queue are the old `queue`, final_agent the old `agent`. The same mapping as
`CallRecord.queue_legs` for a record without legs.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

import contactcenter.schema

revision: str = '0004_call_legs'
down_revision: str | None = '0006_sla_notify'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# call outcome -> the outcome of its one leg; other outcomes (IVR only) have no leg
LEG_OF_OUTCOME = {
    "answered": "answered",
    "abandoned": "abandoned",
    "short_abandoned": "short_abandoned",
    "timed_out": "timed_out",
    "transferred": "transferred",
}
BATCH = 5000


def _calls() -> sa.TableClause:
    utc = contactcenter.schema.UTCDateTime(timezone=True)
    return sa.table(
        'calls', sa.column('id', sa.Integer()), sa.column('started_at', utc),
        sa.column('ended_at', utc), sa.column('queue', sa.String()),
        sa.column('outcome', sa.String()), sa.column('agent', sa.String()),
        sa.column('agent_interface', sa.String()), sa.column('ivr_seconds', sa.Float()),
        sa.column('wait_seconds', sa.Float()), sa.column('ring_seconds', sa.Float()),
        sa.column('talk_seconds', sa.Float()),
    )


def _leg(row: Any) -> dict[str, Any]:
    joined = row.started_at
    if row.ivr_seconds is not None and row.ivr_seconds >= 0:
        joined = min(row.started_at + timedelta(seconds=row.ivr_seconds), row.ended_at)
    return {
        'call_id': row.id, 'seq': 0, 'kind': 'queue', 'queue': row.queue, 'joined_at': joined,
        'left_at': row.ended_at, 'outcome': LEG_OF_OUTCOME[row.outcome],
        'wait_seconds': row.wait_seconds, 'ring_seconds': row.ring_seconds,
        'talk_seconds': row.talk_seconds, 'agent': row.agent,
        'agent_interface': row.agent_interface, 'target': None,
    }


def upgrade() -> None:
    legs = op.create_table('call_legs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('queue', sa.String(length=80), nullable=True),
    sa.Column('joined_at', contactcenter.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('left_at', contactcenter.schema.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('wait_seconds', sa.Float(), nullable=True),
    sa.Column('ring_seconds', sa.Float(), nullable=True),
    sa.Column('talk_seconds', sa.Float(), nullable=True),
    sa.Column('agent', sa.String(length=200), nullable=True),
    sa.Column('agent_interface', sa.String(length=120), nullable=True),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_call_legs_call_id_calls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_legs')),
    sa.UniqueConstraint('call_id', 'seq', name='uq_call_legs_call_id_seq')
    )
    with op.batch_alter_table('call_legs', schema=None) as batch_op:
        batch_op.create_index('ix_call_legs_queue_joined', ['queue', 'joined_at'], unique=False)

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_queue', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('final_queue', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('final_agent', sa.String(length=200), nullable=True))

    # existing rows: the old columns say it all (one queue visit at most)
    op.execute("UPDATE calls SET first_queue = queue, final_queue = queue, final_agent = agent")
    calls = _calls()
    bind = op.get_bind()
    last = 0
    while True:  # in batches by id, so a big table is not read into memory at once
        rows = bind.execute(
            sa.select(calls).where(
                calls.c.id > last, calls.c.queue.is_not(None),
                calls.c.outcome.in_(list(LEG_OF_OUTCOME)),
            ).order_by(calls.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        bind.execute(sa.insert(legs), [_leg(r) for r in rows])
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('final_agent')
        batch_op.drop_column('final_queue')
        batch_op.drop_column('first_queue')

    with op.batch_alter_table('call_legs', schema=None) as batch_op:
        batch_op.drop_index('ix_call_legs_queue_joined')

    op.drop_table('call_legs')
