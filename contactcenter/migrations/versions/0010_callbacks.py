"""callbacks: closing the loop by voice (issue 22)

Revision ID: 0010_callbacks
Revises: 0005_agency
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import contactcenter.schema

revision: str = "0010_callbacks"
down_revision: str | None = "0005_agency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", contactcenter.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column("called_at", contactcenter.schema.UTCDateTime(timezone=True),
                  nullable=True),
        sa.Column("result", sa.String(length=300), nullable=False),
        sa.Column("created_at", contactcenter.schema.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column("updated_at", contactcenter.schema.UTCDateTime(timezone=True),
                  nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_callbacks_case_id_cases"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callbacks")),
    )
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_callbacks_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_callbacks_state_next", ["state", "next_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("callbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_callbacks_state_next")
        batch_op.drop_index(batch_op.f("ix_callbacks_case_id"))
    op.drop_table("callbacks")
