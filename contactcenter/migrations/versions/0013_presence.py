"""presence: operators' logins and pauses kept across restarts, and their intervals (issue 19)

Revision ID: 0013_presence
Revises: 0012_interval_summary
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import contactcenter.schema

revision: str = "0013_presence"
down_revision: str | None = "0012_interval_summary"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


DEFAULT_PAUSE_CODES = (("break", "Break"), ("lunch", "Lunch"), ("training", "Training"),
                       ("case-work", "Case work"), ("meeting", "Meeting"),
                       ("supervisor", "With a supervisor"))


def upgrade() -> None:
    codes = op.create_table(
        "pause_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pause_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_pause_codes_code")),
    )
    op.bulk_insert(codes, [{"code": c, "label": label, "active": True}
                           for c, label in DEFAULT_PAUSE_CODES])
    op.create_table(
        "operator_presence",
        sa.Column("interface", sa.String(length=80), nullable=False),
        sa.Column("username", sa.String(length=80), nullable=False),
        sa.Column("member_name", sa.String(length=120), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("penalty", sa.Integer(), nullable=False),
        sa.Column("logged_in", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("pause_reason", sa.String(length=40), nullable=True),
        sa.Column("updated_at", contactcenter.schema.UTCDateTime(timezone=True),
                  nullable=False),
        sa.PrimaryKeyConstraint("interface", name=op.f("pk_operator_presence")),
    )
    op.create_table(
        "presence_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interface", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("started_at", contactcenter.schema.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column("ended_at", contactcenter.schema.UTCDateTime(timezone=True),
                  nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence_intervals")),
    )
    op.create_index("ix_presence_intervals_iface_started", "presence_intervals",
                    ["interface", "started_at"], unique=False)
    op.create_index(op.f("ix_presence_intervals_started_at"), "presence_intervals",
                    ["started_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_presence_intervals_started_at"), table_name="presence_intervals")
    op.drop_index("ix_presence_intervals_iface_started", table_name="presence_intervals")
    op.drop_table("presence_intervals")
    op.drop_table("operator_presence")
    op.drop_table("pause_codes")
