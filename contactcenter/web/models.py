"""Who signs in: users, their browser sessions and the API keys of machines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import row_written_at
from ..schema import Base


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    interface: Mapped[str | None] = mapped_column(String(120), unique=True)  # PJSIP/1001
    queues: Mapped[list[Any]] = mapped_column(default=list)  # queue names they log in to
    languages: Mapped[list[Any]] = mapped_column(default=list)  # ["en", "es"]: they speak
    # role "agency": the codes of the agencies whose cases they see and work (fixed once created)
    agencies: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=row_written_at)


class WebSession(Base):
    """A signed-in browser (issue 20). The cookie carries a random token; its SHA-256 is the key
    here, so signing out, a password or role change and an admin's "end all sessions" end it at
    once in every web process, and a stolen database copy holds no usable cookie."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=row_written_at)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)  # sha256 hex
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=row_written_at)
    revoked_at: Mapped[datetime | None]
