"""Indexes of the reports by service and agency (issue 24): open cases by due time (the
overdue drill-down), abandoned calls by start time and call-backs by phone number (the
abandoned callers' list)

Revision ID: reports_views_0015_indexes
Revises: 0014_queue_max_wait
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "reports_views_0015_indexes"
down_revision: str | None = "0014_queue_max_wait"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OPEN = "status <> 'closed'"


def upgrade() -> None:
    op.create_index("ix_cases_open_due", "cases", ["sla_due_at", "id"],
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
    op.create_index("ix_calls_outcome_started", "calls", ["outcome", "started_at"])
    op.create_index("ix_callbacks_phone", "callbacks", ["phone", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_phone", table_name="callbacks")
    op.drop_index("ix_calls_outcome_started", table_name="calls")
    op.drop_index("ix_cases_open_due", table_name="cases")
