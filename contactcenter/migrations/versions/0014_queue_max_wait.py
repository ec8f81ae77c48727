"""queues.max_wait_seconds: the most a caller waits in a queue (issue 18)

Revision ID: 0014_queue_max_wait
Revises: 0013_presence
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_queue_max_wait"
down_revision: str | None = "0013_presence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_wait_seconds", sa.Integer(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.drop_column("max_wait_seconds")
