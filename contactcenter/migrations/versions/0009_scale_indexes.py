"""scale indexes: what retention filters on, so a purge walks an index in batches instead of
scanning every row (partial indexes: only rows that still carry personal data)

Revision ID: 0009_scale_indexes
Revises: 0010_callbacks
Create Date: 2026-11-24 15:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_scale_indexes'
down_revision: str | None = '0010_callbacks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CALL_PERSONAL = ("caller_number IS NOT NULL OR caller_name IS NOT NULL"
                 " OR citizen_id IS NOT NULL")
CASE_PERSONAL = "citizen_id IS NOT NULL"


def upgrade() -> None:
    op.create_index('ix_calls_ended_personal', 'calls', ['ended_at'], unique=False,
                    postgresql_where=sa.text(CALL_PERSONAL), sqlite_where=sa.text(CALL_PERSONAL))
    op.create_index('ix_cases_closed_citizen', 'cases', ['closed_at'], unique=False,
                    postgresql_where=sa.text(CASE_PERSONAL), sqlite_where=sa.text(CASE_PERSONAL))
    op.create_index('ix_citizens_created_at', 'citizens', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_citizens_created_at', table_name='citizens')
    op.drop_index('ix_cases_closed_citizen', table_name='cases')
    op.drop_index('ix_calls_ended_personal', table_name='calls')
