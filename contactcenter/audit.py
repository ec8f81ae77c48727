"""The audit log's table and its one writer: who did what to which thing, in the caller's
transaction.

Every change people make (cases, API keys, admin reference data, menus, resolution codes,
retention purges) adds its row here, so the row commits or rolls back with the change itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .clock import row_written_at
from .schema import Base


class AuditLog(Base):
    """One change someone made; kernel-level, as every feature writes it (`audit` below)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=row_written_at, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(80))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


NAME_LIMIT = 80  # audit_log.actor / action / entity_id are String(80)


def audit(
    session: AsyncSession, actor: str, action: str, entity: str, entity_id: Any = None,
    detail: dict[str, Any] | None = None, *, at: datetime | None = None,
) -> None:
    """Add one audit row. `at` is business time from the caller's clock; without it the row
    gets the time it is written (`clock.row_written_at`)."""
    fields: dict[str, Any] = {}
    if at is not None:
        fields["at"] = at
    session.add(AuditLog(
        actor=actor[:NAME_LIMIT], action=action, entity=entity,
        entity_id=None if entity_id is None else str(entity_id)[:NAME_LIMIT],
        detail=detail or {}, **fields,
    ))
