"""The store's schema: SQLAlchemy 2 typed models. Every change here is an Alembic migration."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..clock import row_written_at

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite hands back naive ones otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# rows' created_at/recorded_at: when the machine wrote the row (bookkeeping, not business time)
_now = row_written_at


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


ROLES = ("operator", "supervisor", "admin", "agency")
# waiting_citizen: the agency needs something from the citizen; the SLA clock is paused
CASE_STATUSES = ("open", "acknowledged", "in_progress", "waiting_citizen", "closed")
SLA_MODES = ("calendar", "business")  # cases/sla.py
CHANNELS = ("phone", "web", "email")


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


class Queue(Base):
    __tablename__ = "queues"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)  # Asterisk's queue name
    display_name: Mapped[str] = mapped_column(String(200), default="")
    strategy: Mapped[str] = mapped_column(String(20), default="ringall")
    service_level_seconds: Mapped[int] = mapped_column(Integer, default=15)
    service_level_target: Mapped[float] = mapped_column(Float, default=0.8)  # fraction
    short_abandon_seconds: Mapped[int] = mapped_column(Integer, default=5)
    max_wait_target_seconds: Mapped[int] = mapped_column(Integer, default=60)
    wrapup_seconds: Mapped[int] = mapped_column(Integer, default=30)
    ring_timeout_seconds: Mapped[int] = mapped_column(Integer, default=15)
    # {"mon": ["08:00", "17:00"], ...}; empty: always open
    office_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    holidays: Mapped[list[Any]] = mapped_column(default=list)  # ["2026-12-25", ...]
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    group_name: Mapped[str] = mapped_column(String(80), default="main")  # wallboard group
    # app_queue settings written to Asterisk (telephony/queues_conf.py renders them)
    retry_seconds: Mapped[int] = mapped_column(Integer, default=5)
    joinempty: Mapped[str] = mapped_column(String(40), default="yes")
    leavewhenempty: Mapped[str] = mapped_column(String(40), default="no")
    announce_frequency: Mapped[int] = mapped_column(Integer, default=60)  # 0: never
    announce_position: Mapped[bool] = mapped_column(Boolean, default=True)
    announce_holdtime: Mapped[str] = mapped_column(String(10), default="once")
    periodic_announce: Mapped[str] = mapped_column(String(200), default="")  # a sound file
    periodic_announce_frequency: Mapped[int] = mapped_column(Integer, default=0)
    musicclass: Mapped[str] = mapped_column(String(80), default="default")
    weight: Mapped[int] = mapped_column(Integer, default=0)
    # a caller of another language than the site's waits this long for a speaker of it
    language_wait_seconds: Mapped[int] = mapped_column(Integer, default=30)
    # the most a caller waits in this queue before the general queue (Queue()'s timeout, which
    # the IVR hands the dialplan as QUEUE_TIMEOUT); 0: the dialplan's QUEUE_MAX_WAIT
    max_wait_seconds: Mapped[int] = mapped_column(Integer, default=0)


class ServiceType(Base):
    __tablename__ = "service_types"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)  # Open311 service_code
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    group_name: Mapped[str] = mapped_column(String(80), default="")
    keywords: Mapped[str] = mapped_column(String(400), default="")
    agency_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    sla_hours: Mapped[int] = mapped_column(Integer, default=72)
    sla_mode: Mapped[str] = mapped_column(String(10), default="calendar")  # or "business"
    # Open311 attribute definitions: [{"code", "datatype", "required", "description", ...}]
    attributes: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    agency: Mapped[Agency | None] = relationship(lazy="raise")
    queue: Mapped[Queue | None] = relationship(lazy="raise")


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
    created_at: Mapped[datetime] = mapped_column(default=_now)


class WebSession(Base):
    """A signed-in browser (issue 20). The cookie carries a random token; its SHA-256 is the key
    here, so signing out, a password or role change and an admin's "end all sessions" end it at
    once in every web process, and a stolen database copy holds no usable cookie."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Citizen(Base):
    __tablename__ = "citizens"
    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(40), index=True)  # digits only
    email: Mapped[str | None] = mapped_column(String(200), index=True)  # lower case
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    # retention looks for citizens created before its cutoff
    created_at: Mapped[datetime] = mapped_column(default=_now, index=True)


# The predicates of retention's partial indexes (cases/retention.py filters with the same ones).
CALL_PERSONAL = ("caller_number IS NOT NULL OR caller_name IS NOT NULL"
                 " OR citizen_id IS NOT NULL")
CASE_PERSONAL = "citizen_id IS NOT NULL"


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
    recorded_at: Mapped[datetime] = mapped_column(default=_now)


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


# --- Asterisk's own records (issue 19): tables Asterisk writes into, the product reads ------
# Their columns are the ones Asterisk's modules write (realtime queue_log with data1..data5,
# cdr_pgsql), named so Asterisk fills them as they are; times are naive UTC, as Asterisk writes
# them with queue_log_realtime_use_gmt = yes / cdr_pgsql timezone = UTC. README "Asterisk's own
# records" has the config lines.
_AstId = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only


class AsteriskQueueLog(Base):
    __tablename__ = "asterisk_queue_log"
    __table_args__ = (
        Index("ix_asterisk_queue_log_time", "time"),
        Index("ix_asterisk_queue_log_callid", "callid"),
    )
    id: Mapped[int] = mapped_column(_AstId, primary_key=True)
    time: Mapped[datetime | None] = mapped_column(DateTime())
    callid: Mapped[str | None] = mapped_column(String(80))
    queuename: Mapped[str | None] = mapped_column(String(256))
    agent: Mapped[str | None] = mapped_column(String(80))
    event: Mapped[str | None] = mapped_column(String(32))
    data1: Mapped[str | None] = mapped_column(String(100))
    data2: Mapped[str | None] = mapped_column(String(100))
    data3: Mapped[str | None] = mapped_column(String(100))
    data4: Mapped[str | None] = mapped_column(String(100))
    data5: Mapped[str | None] = mapped_column(String(100))


class AsteriskCdr(Base):
    __tablename__ = "asterisk_cdr"
    __table_args__ = (
        Index("ix_asterisk_cdr_end", "end"),
        Index("ix_asterisk_cdr_linkedid", "linkedid"),
    )
    id: Mapped[int] = mapped_column(_AstId, primary_key=True)
    accountcode: Mapped[str | None] = mapped_column(String(80))
    src: Mapped[str | None] = mapped_column(String(80))
    dst: Mapped[str | None] = mapped_column(String(80))
    dcontext: Mapped[str | None] = mapped_column(String(80))
    clid: Mapped[str | None] = mapped_column(String(80))
    channel: Mapped[str | None] = mapped_column(String(80))
    dstchannel: Mapped[str | None] = mapped_column(String(80))
    lastapp: Mapped[str | None] = mapped_column(String(80))
    lastdata: Mapped[str | None] = mapped_column(String(80))
    start: Mapped[datetime | None] = mapped_column(DateTime())
    answer: Mapped[datetime | None] = mapped_column(DateTime())
    end: Mapped[datetime | None] = mapped_column(DateTime())
    duration: Mapped[int | None] = mapped_column(Integer)
    billsec: Mapped[int | None] = mapped_column(Integer)
    disposition: Mapped[str | None] = mapped_column(String(45))
    amaflags: Mapped[str | None] = mapped_column(String(45))
    userfield: Mapped[str | None] = mapped_column(String(256))
    uniqueid: Mapped[str | None] = mapped_column(String(150))
    linkedid: Mapped[str | None] = mapped_column(String(150))
    peeraccount: Mapped[str | None] = mapped_column(String(80))
    sequence: Mapped[int | None] = mapped_column(Integer)


class BridgeCheckpoint(Base):
    """Per Asterisk server: the last AMI event time the bridge saw (written every few
    seconds), and the last gap reconciled. A restarted or standby bridge starts from here."""

    __tablename__ = "bridge_checkpoints"
    server: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_event_at: Mapped[datetime | None]
    gap_start: Mapped[datetime | None]
    gap_end: Mapped[datetime | None]
    gap_calls: Mapped[int] = mapped_column(Integer, default=0)
    reconciled_total: Mapped[int] = mapped_column(Integer, default=0)
    holder: Mapped[str | None] = mapped_column(String(120))  # which bridge process wrote it
    updated_at: Mapped[datetime] = mapped_column(default=_now)
class CallInterval(Base):
    """The interval summary (supervisor/intervals.py): additive sums of the report figures per
    15 minutes (UTC start), queue and service, kept by the case writer in the transaction that
    writes the calls, and rebuilt from `calls`/`call_legs` by `contactcenter reports rebuild`.
    `queue` "" holds the calls that reached no queue (IVR-only); `service` "" none."""

    __tablename__ = "call_intervals"
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(80), primary_key=True)
    service: Mapped[str] = mapped_column(String(80), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)  # calls whose first queue is this
    offered: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    answered_in_sl: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    short_abandoned: Mapped[int] = mapped_column(Integer, default=0)
    timed_out: Mapped[int] = mapped_column(Integer, default=0)
    other: Mapped[int] = mapped_column(Integer, default=0)
    wait_sum: Mapped[float] = mapped_column(Float, default=0.0)
    wait_n: Mapped[int] = mapped_column(Integer, default=0)
    handle_sum: Mapped[float] = mapped_column(Float, default=0.0)
    handle_n: Mapped[int] = mapped_column(Integer, default=0)
    longest_wait: Mapped[float] = mapped_column(Float, default=0.0)


class IvrContainment(Base):
    """The IVR containment summary (supervisor/containment.py): calls per day (in the center's
    time zone), menu path and class (contained, abandoned, closed, transferred, queued), kept by
    the case writer with the calls and rebuilt by `contactcenter reports rebuild`."""

    __tablename__ = "ivr_containment"
    day: Mapped[date] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(200), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_citizen_status", "citizen_id", "status"),
        Index("ix_cases_created", "created_at"),
        # sla_watch / the digest walk open cases in due order and stop after the first N
        Index("ix_cases_sla_due", "sla_due_at"),
        # the agency work queue: keyset paging by SLA due (issue 21), counts per status
        Index("ix_cases_agency_due", "agency_id", "sla_due_at", "id"),
        Index("ix_cases_agency_status", "agency_id", "status"),
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
    created_at: Mapped[datetime] = mapped_column(default=_now)
    updated_at: Mapped[datetime] = mapped_column(default=_now)
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
    created_at: Mapped[datetime] = mapped_column(default=_now)


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


class MenuVersion(Base):
    """An IVR menu as data. status: draft, active (exactly one), archived."""

    __tablename__ = "menu_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(10), default="draft", index=True)
    data: Mapped[dict[str, Any]] = mapped_column()
    comment: Mapped[str] = mapped_column(String(400), default="")
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=_now)
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
    created_at: Mapped[datetime] = mapped_column(default=_now)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)  # sha256 hex
    created_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=_now)
    revoked_at: Mapped[datetime | None]


class PbxConfigStatus(Base):
    """The last time the queue configuration was written for one Asterisk and reloaded there:
    `fingerprint` is the store's queue settings it was made from (queues.directory), so a page
    can tell "applied" from "not yet" and from "Asterisk refused it"."""

    __tablename__ = "pbx_config_status"
    server: Mapped[str] = mapped_column(String(80), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[str] = mapped_column(String(400), default="")
    attempted_at: Mapped[datetime] = mapped_column(default=_now)
    applied_at: Mapped[datetime | None]  # the last success


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=_now, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(80))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


def parse_holidays(values: list[Any]) -> set[date]:
    return {date.fromisoformat(v) for v in values}


class Callback(Base):
    """A call back to a citizen whose phone case was closed, to read the resolution and ask
    whether it is fixed (callbacks/). state: pending (waits for next_at), calling (placed,
    waiting for the citizen's answer), confirmed (keyed 1), reopened (keyed 2), no_choice
    (answered, keyed nothing), given_up (never answered), skipped (no longer applies)."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_state_next", "state", "next_at"),)
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
