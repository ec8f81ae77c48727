"""interval summary: the report figures' sums per 15 minutes, queue and service
(supervisor/intervals.py); filled by `contactcenter reports rebuild`, then kept by the writer

Revision ID: 0012_interval_summary
Revises: 0011_reconcile
Create Date: 2026-11-24 16:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from contactcenter.schema import UTCDateTime

revision: str = '0012_interval_summary'
down_revision: str | None = '0011_reconcile'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("calls", "offered", "answered", "answered_in_sl", "abandoned", "short_abandoned",
          "timed_out", "other")


def upgrade() -> None:
    op.create_table(
        'call_intervals',
        sa.Column('bucket', UTCDateTime(timezone=True), nullable=False),
        sa.Column('queue', sa.String(length=80), nullable=False),
        sa.Column('service', sa.String(length=80), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column('wait_sum', sa.Float(), nullable=False),
        sa.Column('wait_n', sa.Integer(), nullable=False),
        sa.Column('handle_sum', sa.Float(), nullable=False),
        sa.Column('handle_n', sa.Integer(), nullable=False),
        sa.Column('longest_wait', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('bucket', 'queue', 'service'),
    )


def downgrade() -> None:
    op.drop_table('call_intervals')
