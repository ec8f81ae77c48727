"""prompts: the sound files a published menu version and an announcement play

Revision ID: 0008_prompts
Revises: 0004_call_legs
Create Date: 2026-11-24 15:50:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_prompts'
down_revision: str | None = '0004_call_legs'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('menu_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sounds', sa.JSON(), nullable=True))
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sounds', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.drop_column('sounds')
    with op.batch_alter_table('menu_versions', schema=None) as batch_op:
        batch_op.drop_column('sounds')
