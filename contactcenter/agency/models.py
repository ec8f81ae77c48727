"""The agencies that work cases (admin's reference data; agency/ is their work queue)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..schema import Base


class Agency(Base):
    __tablename__ = "agencies"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    # the business-hours SLA calendar, read in CC_TIMEZONE (cases/sla.py):
    # {"mon": ["08:00", "17:00"], ...}; empty: Monday to Friday 08:00-17:00
    office_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    holidays: Mapped[list[Any]] = mapped_column(default=list)  # ["2026-12-25", ...]
