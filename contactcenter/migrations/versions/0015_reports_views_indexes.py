"""Indexes of the abandoned-callers list (issue 24): abandoned calls by start time, and
call-backs by phone number

Revision ID: reports_views_0015_indexes
Revises: 0014_queue_max_wait
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "reports_views_0015_indexes"
down_revision: str | None = "0014_queue_max_wait"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_calls_outcome_started", "calls", ["outcome", "started_at"])
    op.create_index("ix_callbacks_phone", "callbacks", ["phone", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_phone", table_name="callbacks")
    op.drop_index("ix_calls_outcome_started", table_name="calls")
