"""Honest expected dates: when requests like this one are actually done.

The rule (README, "Honest expected dates"): a case's expected time is its first contact plus the
`PERCENTILE`th percentile of the contact-to-resolution times of the cases of the same service
type *and* agency closed in the last `WINDOW_DAYS` days; with fewer than `min_closed` such
cases, of the same service type whatever the agency; with fewer than that too, the SLA due time.
The table is recomputed at most every `REFRESH_SECONDS` (one query over the window's closed
cases), so a status page or an Open311 list never waits on history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..agency.models import Agency
from ..queues.models import ServiceType
from .models import Call, Case
from .timeline import first_contact, percentile

log = logging.getLogger(__name__)

PERCENTILE = 80
WINDOW_DAYS = 90
REFRESH_SECONDS = 3600.0
MIN_CLOSED = 20


@dataclass(frozen=True, slots=True)
class Estimate:
    seconds: float  # contact → resolution at the percentile
    closed: int  # how many closed cases it rests on
    basis: str  # "service+agency" or "service"


def estimate_table(rows: Iterable[tuple[str, str | None, float]], *, min_closed: int,
                   pct: float = PERCENTILE) -> dict[tuple[str, str | None], Estimate]:
    """(service, agency, seconds) of closed cases → estimates per (service, agency) and per
    (service, None); only where at least `min_closed` cases back it."""
    by_pair: dict[tuple[str, str | None], list[float]] = {}
    by_service: dict[str, list[float]] = {}
    for service, agency, seconds in rows:
        by_pair.setdefault((service, agency), []).append(seconds)
        by_service.setdefault(service, []).append(seconds)
    out: dict[tuple[str, str | None], Estimate] = {}
    for (service, agency), values in by_pair.items():
        if len(values) >= min_closed:
            out[(service, agency)] = Estimate(percentile(values, pct) or 0.0, len(values),
                                              "service+agency")
    for service, values in by_service.items():
        if len(values) >= min_closed:
            out[(service, None)] = Estimate(percentile(values, pct) or 0.0, len(values),
                                            "service")
    return out


def expected_at(contact: datetime, sla_due_at: datetime | None, service: str,
                agency: str | None, table: dict[tuple[str, str | None], Estimate]
                ) -> tuple[datetime | None, str]:
    """(expected time, basis): the history's estimate, or the SLA due time ("sla")."""
    est = table.get((service, agency)) or table.get((service, None))
    if est is None:
        return sla_due_at, "sla"
    return contact + timedelta(seconds=est.seconds), est.basis


class Estimates:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime],
                 *, min_closed: int = MIN_CLOSED, refresh_seconds: float = REFRESH_SECONDS
                 ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.min_closed = min_closed
        self.refresh_seconds = refresh_seconds
        self._table: dict[tuple[str, str | None], Estimate] = {}
        self._loaded_at: float | None = None  # monotonic
        self._lock = asyncio.Lock()

    async def table(self) -> dict[tuple[str, str | None], Estimate]:
        async with self._lock:
            due = (self._loaded_at is None
                   or time.monotonic() - self._loaded_at >= self.refresh_seconds)
            if due:
                self._table = await self._load()
                self._loaded_at = time.monotonic()
            return self._table

    def forget(self) -> None:
        self._loaded_at = None

    def peek(self) -> dict[tuple[str, str | None], Estimate]:
        """The table as last loaded, without waiting (the IVR: a caller never waits on
        history; `refresh_forever` keeps it fresh)."""
        return self._table

    async def refresh_forever(self) -> None:
        while True:
            try:
                await self.table()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: the last table stands, try later
                log.warning("honest estimates not refreshed (%s: %s)", type(exc).__name__, exc)
            await asyncio.sleep(min(self.refresh_seconds, 600.0))

    async def expected(self, *, created_at: datetime, sla_due_at: datetime | None,
                       service: str, agency: str | None) -> tuple[datetime | None, str]:
        return expected_at(created_at, sla_due_at, service, agency, await self.table())

    async def _load(self) -> dict[tuple[str, str | None], Estimate]:
        since = self.clock() - timedelta(days=WINDOW_DAYS)
        first_call = (select(func.min(Call.started_at)).where(Call.case_id == Case.id)
                      .correlate(Case).scalar_subquery())
        async with self.sessions() as db:
            rows = await db.execute(
                select(ServiceType.code, Agency.code, Case.created_at, Case.closed_at, first_call)
                .select_from(Case).join(ServiceType, ServiceType.id == Case.service_type_id)
                .outerjoin(Agency, Agency.id == Case.agency_id)
                .where(Case.status == "closed", Case.closed_at >= since)
            )
            facts = [(service, agency,
                      max(0.0, (closed - first_contact(created, call)).total_seconds()))
                     for service, agency, created, closed, call in rows if closed is not None]
        return estimate_table(facts, min_closed=self.min_closed)
