"""The call backs to citizens whose phone case was closed (callbacks/service.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..schema import Base


class Callback(Base):
    """A call back to a citizen whose phone case was closed, to read the resolution and ask
    whether it is fixed (callbacks/). state: pending (waits for next_at), calling (placed,
    waiting for the citizen's answer), confirmed (keyed 1), reopened (keyed 2), no_choice
    (answered, keyed nothing), given_up (never answered), skipped (no longer applies)."""

    __tablename__ = "callbacks"
    __table_args__ = (
        Index("ix_callbacks_state_next", "state", "next_at"),
        # has this caller a call-back? (supervisor/callback_list.py)
        Index("ix_callbacks_phone", "phone", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(8), default="en")
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None]
    called_at: Mapped[datetime | None]
    result: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
