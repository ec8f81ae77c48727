"""Asterisk's own records (issue 19) and the bridge's checkpoints: tables only telephony/ reads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import row_written_at
from ..schema import Base

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
    updated_at: Mapped[datetime] = mapped_column(default=row_written_at)
