"""The cases' schema: cases and their history, the citizens who raise them and the calls
the case writer records (cases/writer.py). Every change here is an Alembic migration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..clock import row_written_at
from ..queues.models import ServiceType
from ..schema import Base

# waiting_citizen: the agency needs something from the citizen; the SLA clock is paused
CASE_STATUSES = ("open", "acknowledged", "in_progress", "waiting_citizen", "closed")
CHANNELS = ("phone", "web", "email")


class Citizen(Base):
    __tablename__ = "citizens"
    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(40), index=True)  # digits only
    email: Mapped[str | None] = mapped_column(String(200), index=True)  # lower case
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    # retention looks for citizens created before its cutoff
    created_at: Mapped[datetime] = mapped_column(default=row_written_at, index=True)


# The predicates of retention's partial indexes (cases/retention.py filters with the same ones).
CALL_PERSONAL = ("caller_number IS NOT NULL OR caller_name IS NOT NULL"
                 " OR citizen_id IS NOT NULL")
CASE_PERSONAL = "citizen_id IS NOT NULL"
CASE_OPEN = "status <> 'closed'"


class Call(Base):
    """One call. Its queue visits are `CallLeg` rows; here: `queue` is the first queue joined
    (= first_queue) and `agent`/`agent_interface`/`ring_seconds` the first operator who
    answered; `wait_seconds` and `talk_seconds` are the sums over the legs; `outcome` is how
    the call ended (its last leg's outcome). first_queue, final_queue and final_agent name the
    first and last queue and the last operator who answered."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("server", "linkedid", name="uq_calls_server_linkedid"),
        Index("ix_calls_caller_started", "caller_number", "started_at"),
        Index("ix_calls_started", "started_at"),
        Index("ix_calls_queue_started", "queue", "started_at"),
        # the abandoned callers' list (supervisor/callback_list.py) reads only abandoned calls
        Index("ix_calls_outcome_started", "outcome", "started_at"),
        # the case page lists a case's calls: linked by the console, or keyed in the IVR
        Index("ix_calls_case_id", "case_id"),
        Index("ix_calls_case_number", "case_number"),
        # retention walks, by end time, only the calls that still carry personal data: purged
        # rows leave this partial index, so a daily run never re-reads years of purged calls
        Index("ix_calls_ended_personal", "ended_at",
              postgresql_where=text(CALL_PERSONAL), sqlite_where=text(CALL_PERSONAL)),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    server: Mapped[str] = mapped_column(String(80), default="default")
    linkedid: Mapped[str] = mapped_column(String(64))
    caller_number: Mapped[str | None] = mapped_column(String(40))
    caller_name: Mapped[str | None] = mapped_column(String(200))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    queue: Mapped[str | None] = mapped_column(String(80))
    first_queue: Mapped[str | None] = mapped_column(String(80))
    final_queue: Mapped[str | None] = mapped_column(String(80))
    service: Mapped[str | None] = mapped_column(String(80))
    language: Mapped[str | None] = mapped_column(String(8))
    agent: Mapped[str | None] = mapped_column(String(200))
    agent_interface: Mapped[str | None] = mapped_column(String(120))
    final_agent: Mapped[str | None] = mapped_column(String(200))
    ivr_seconds: Mapped[float | None] = mapped_column(Float)
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    hold_seconds: Mapped[float | None] = mapped_column(Float)
    wrap_seconds: Mapped[float | None] = mapped_column(Float)
    handle_seconds: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(20))
    abandon_position: Mapped[int | None] = mapped_column(Integer)
    ivr_path: Mapped[list[Any]] = mapped_column(default=list)
    case_number: Mapped[str | None] = mapped_column(String(40))  # keyed in the IVR
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    disposition: Mapped[str | None] = mapped_column(String(80))
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    # rebuilt from Asterisk's own queue_log/CDR after a gap (telephony/reconcile.py)
    reconciled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    recorded_at: Mapped[datetime] = mapped_column(default=row_written_at)


class CallLeg(Base):
    """One queue visit of a call (kind ``queue``), or the transfer to a line outside the queues
    that ended it (kind ``transfer``, queue NULL), in order (`seq` from 0). Each queue's
    figures count its own legs. Outcomes: events.LEG_OUTCOMES."""

    __tablename__ = "call_legs"
    __table_args__ = (
        UniqueConstraint("call_id", "seq", name="uq_call_legs_call_id_seq"),
        Index("ix_call_legs_queue_joined", "queue", "joined_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10), default="queue")
    queue: Mapped[str | None] = mapped_column(String(80))
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(20))
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    ring_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    agent: Mapped[str | None] = mapped_column(String(200))
    agent_interface: Mapped[str | None] = mapped_column(String(120))
    target: Mapped[str | None] = mapped_column(String(200))  # where a transfer went


SLA_REPORT_COLUMNS = ["agency_id", "status", "sla_due_at", "closed_at", "service_type_id"]


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_citizen_status", "citizen_id", "status"),
        # on PostgreSQL it covers the SLA report's pass over a date range (an index-only scan
        # once vacuumed, instead of a heap page per few cases)
        Index("ix_cases_created", "created_at", postgresql_include=SLA_REPORT_COLUMNS),
        # sla_watch / the digest walk open cases in due order and stop after the first N
        Index("ix_cases_sla_due", "sla_due_at"),
        # the agency work queue: keyset paging by SLA due (issue 21), counts per status
        Index("ix_cases_agency_due", "agency_id", "sla_due_at", "id"),
        Index("ix_cases_agency_status", "agency_id", "status"),
        # the SLA report's overdue cases (supervisor/sla_views.py): open ones in due order,
        # without walking the closed past
        Index("ix_cases_open_due", "sla_due_at", "id",
              postgresql_where=text(CASE_OPEN), sqlite_where=text(CASE_OPEN)),
        # the operator's duplicate suggestion: open cases of a service in the last 30 days
        Index("ix_cases_service_created", "service_type_id", "created_at"),
        # the case search's words (ILIKE '%word%'): trigram indexes on PostgreSQL (pg_trgm),
        # plain ones on SQLite
        Index("ix_cases_address_trgm", "address", postgresql_using="gin",
              postgresql_ops={"address": "gin_trgm_ops"}),
        Index("ix_cases_description_trgm", "description", postgresql_using="gin",
              postgresql_ops={"description": "gin_trgm_ops"}),
        # retention walks the cases still linked to a citizen by closing time
        Index("ix_cases_closed_citizen", "closed_at",
              postgresql_where=text(CASE_PERSONAL), sqlite_where=text(CASE_PERSONAL)),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)  # 311-2026-000123
    token: Mapped[str] = mapped_column(String(64), unique=True)  # Open311 token
    service_type_id: Mapped[int] = mapped_column(ForeignKey("service_types.id"))
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    status: Mapped[str] = mapped_column(String(20), default="open")
    close_reason: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10), default="phone")
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(400))
    address_id: Mapped[str | None] = mapped_column(String(80))
    lat: Mapped[float | None] = mapped_column(Float)
    long: Mapped[float | None] = mapped_column(Float)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    media_url: Mapped[str | None] = mapped_column(String(1000))
    sla_due_at: Mapped[datetime | None]
    language: Mapped[str] = mapped_column(String(8), default="en")  # the citizen's: en, es
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=row_written_at)
    updated_at: Mapped[datetime] = mapped_column(default=row_written_at)
    closed_at: Mapped[datetime | None]
    assignee: Mapped[str | None] = mapped_column(String(80))  # a username in the agency
    resolution_code: Mapped[str | None] = mapped_column(String(40))  # set when closed

    service_type: Mapped[ServiceType] = relationship(lazy="raise")
    notes: Mapped[list[CaseNote]] = relationship(
        lazy="raise", order_by="CaseNote.created_at", cascade="all, delete-orphan"
    )


class CaseSequence(Base):
    """Per-year counter behind the public case number (portable: no DB sequences)."""

    __tablename__ = "case_sequences"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


class CaseNote(Base):
    __tablename__ = "case_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=row_written_at)


class CaseEvent(Base):
    """The case's history (issue 21): every status change, assignment, reassignment and note,
    written by the store in the transaction of the change. `public` rows are what the citizen
    sees (the status page's timeline, Open311 servicerequestupdates)."""

    __tablename__ = "case_events"
    __table_args__ = (
        Index("ix_case_events_case", "case_id", "id"),
        Index("ix_case_events_public_at", "public", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(80))
    change: Mapped[str] = mapped_column(String(20))  # CaseChanged.change
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    from_agency: Mapped[str | None] = mapped_column(String(40))  # agency codes
    to_agency: Mapped[str | None] = mapped_column(String(40))
    assignee: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, default=False)


class ResolutionCode(Base):
    """How a case was closed: one global list, managed by admins (/admin/resolutions)."""

    __tablename__ = "resolution_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CaseMedia(Base):
    """A photo sent with a request, as served back through its media_url: re-encoded, without
    metadata (no EXIF GPS). One not claimed by a case within a day is deleted."""

    __tablename__ = "case_media"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)  # unguessable, in the URL
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    content_type: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(index=True)


class CaseSlaPause(Base):
    """A time the case waited on the citizen (status waiting_citizen): its SLA clock stood
    still. ended_at is NULL while it waits; resume moves sla_due_at out by the paused time."""

    __tablename__ = "case_sla_pauses"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    resume_status: Mapped[str] = mapped_column(String(20))  # the status it returns to
    actor: Mapped[str] = mapped_column(String(80))
