"""What the IVR plays: menu versions and the announcement of the day."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import row_written_at
from ..schema import Base


class MenuVersion(Base):
    """An IVR menu as data. status: draft, active (exactly one), archived."""

    __tablename__ = "menu_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(10), default="draft", index=True)
    data: Mapped[dict[str, Any]] = mapped_column()
    comment: Mapped[str] = mapped_column(String(400), default="")
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=row_written_at)
    published_at: Mapped[datetime | None]
    # what the IVR plays, set on publish: {slot: {lang: {"file", "sha256"}}} (ivr/prompts.py)
    sounds: Mapped[dict[str, Any] | None]


class Announcement(Base):
    """The announcement of the day: played before the menu between starts_at and ends_at."""

    __tablename__ = "announcements"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    prompts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"en": words, "es": words}
    # the sound files of the words, made on save: {lang: {"file", "sha256"}}
    sounds: Mapped[dict[str, Any] | None]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=row_written_at)
