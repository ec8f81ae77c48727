"""Operators' presence kept across restarts, its history for reports, and the pause codes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..schema import Base


class OperatorPresence(Base):
    """What each operator asked for, kept across restarts (agents/presence_store.py): logged in
    to which queues with which penalty, paused with which reason. Asterisk's own members are
    the truth of the moment; this is what is put back when Asterisk or the product lost it."""

    __tablename__ = "operator_presence"
    interface: Mapped[str] = mapped_column(String(80), primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    member_name: Mapped[str] = mapped_column(String(120))
    queues: Mapped[list[Any]] = mapped_column(default=list)
    penalty: Mapped[int] = mapped_column(Integer, default=0)
    logged_in: Mapped[bool] = mapped_column(default=False)
    paused: Mapped[bool] = mapped_column(default=False)
    pause_reason: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime]


class PresenceInterval(Base):
    """One stretch of an operator's state (available, paused with its reason, on_call, wrapup,
    ringing, unavailable), for agent reports. `ended_at` is NULL while it lasts."""

    __tablename__ = "presence_intervals"
    __table_args__ = (Index("ix_presence_intervals_iface_started", "interface", "started_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    interface: Mapped[str] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]


class PauseCode(Base):
    """Why an operator pauses: one list, managed by admins (/admin/pause-codes); the console
    and the wallboard offer the codes in use. A code is never deleted (the presence history
    refers to it), only retired."""

    __tablename__ = "pause_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
