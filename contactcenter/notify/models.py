"""Messages to citizens waiting to be sent (or sent), and the citizens who opted out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..schema import Base


class NotifyOutbox(Base):
    """A message to a citizen (or an agency's digest) waiting to be sent, or sent. Written in
    the same process as the case change it tells of; the sender retries with back-off, so a
    relay that is down delays a message but never loses it. `key` makes each message once."""

    __tablename__ = "notify_outbox"
    __table_args__ = (Index("ix_notify_outbox_due", "sent_at", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(10))  # email, sms
    recipient: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(400), default="")
    body: Mapped[str] = mapped_column(Text)
    case_number: Mapped[str | None] = mapped_column(String(40), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]  # gave up after the last attempt
    last_error: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime]


class NotifyOptOut(Base):
    """A citizen who asked for no more messages (the signed link in every message)."""

    __tablename__ = "notify_optouts"
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    created_at: Mapped[datetime]
