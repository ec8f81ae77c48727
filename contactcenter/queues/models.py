"""What the admin configured for calls and requests: the queues, the services routed to a queue
and an agency, and whether each Asterisk has the queue settings (queues/directory.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..agency.models import Agency
from ..clock import row_written_at
from ..schema import Base

SLA_MODES = ("calendar", "business")  # ServiceType.sla_mode; cases/sla.py


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


class PbxConfigStatus(Base):
    """The last time the queue configuration was written for one Asterisk and reloaded there:
    `fingerprint` is the store's queue settings it was made from (queues.directory), so a page
    can tell "applied" from "not yet" and from "Asterisk refused it"."""

    __tablename__ = "pbx_config_status"
    server: Mapped[str] = mapped_column(String(80), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[str] = mapped_column(String(400), default="")
    attempted_at: Mapped[datetime] = mapped_column(default=row_written_at)
    applied_at: Mapped[datetime | None]  # the last success
