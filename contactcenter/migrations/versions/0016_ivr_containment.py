"""ivr_containment: calls per day (CC_TIMEZONE), IVR menu path and class (supervisor/containment.py);
filled by `contactcenter reports rebuild`, then kept by the case writer

Revision ID: ivr_containment_0015
Revises: reports_views_0015_indexes
Create Date: 2026-11-24 19:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'ivr_containment_0015'
down_revision: str | None = 'reports_views_0015_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'ivr_containment',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('path', sa.String(length=200), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'path', 'outcome'),
    )


def downgrade() -> None:
    op.drop_table('ivr_containment')
