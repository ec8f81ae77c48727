"""call_days, call_day_hours: the interval summary rolled up per day of CC_TIMEZONE
(supervisor/daily.py); filled by `contactcenter reports rebuild`, then kept by the case writer.
ix_cases_created covers the SLA report's columns on PostgreSQL (an index-only scan).

Revision ID: rollups_0017_daily
Revises: ivr_containment_0015
Create Date: 2026-11-24 20:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'rollups_0017_daily'
down_revision: str | None = 'ivr_containment_0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SLA_REPORT_COLUMNS = ['agency_id', 'status', 'sla_due_at', 'closed_at', 'service_type_id']
_SUMS = ('calls', 'offered', 'answered', 'answered_in_sl', 'abandoned', 'short_abandoned',
         'timed_out', 'other')


def _sums() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _SUMS),
        sa.Column('wait_sum', sa.Float(), nullable=False),
        sa.Column('wait_n', sa.Integer(), nullable=False),
        sa.Column('handle_sum', sa.Float(), nullable=False),
        sa.Column('handle_n', sa.Integer(), nullable=False),
        sa.Column('longest_wait', sa.Float(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        'call_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('queue', sa.String(length=80), nullable=False),
        sa.Column('service', sa.String(length=80), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint('day', 'queue', 'service', name=op.f('pk_call_days')),
    )
    op.create_table(
        'call_day_hours',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('hour', sa.Integer(), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint('day', 'hour', name=op.f('pk_call_day_hours')),
    )


    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_cases_created', table_name='cases')
        op.create_index('ix_cases_created', 'cases', ['created_at'],
                        postgresql_include=_SLA_REPORT_COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_cases_created', table_name='cases')
        op.create_index('ix_cases_created', 'cases', ['created_at'])
    op.drop_table('call_day_hours')
    op.drop_table('call_days')
