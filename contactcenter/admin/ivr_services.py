"""Menu versions in the store: drafts, publish, roll back, import, announcements; every change
audited in the same transaction.

Statuses: `draft` (editable), `active` (exactly one: what the next call plays), `archived`
(once active), `discarded` (a draft given up; kept so numbers are never reused).
Publishing validates against the queues and service types in the store, so a menu that fails
`ivr.menu.validate` can never become active; the IVR picks the new version up on its next call
(ivr/services.py checks the active version per call, within 0.2 s).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..audit import audit
from ..ivr.menu import Problem, validate
from ..ivr.models import Announcement, MenuVersion
from ..ivr.prompts import recording_problems
from ..queues.models import Queue, ServiceType


class VersionError(Exception):
    """The action is not possible on this version (message for the page)."""


class InvalidMenu(Exception):
    """`problems`: all of them; `audio`: those about the prompts' audio (also in problems)."""

    def __init__(self, problems: list[Problem], audio: list[Problem] | None = None) -> None:
        super().__init__("; ".join(str(p) for p in problems[:5]))
        self.problems = problems
        self.audio = audio or []


async def known(session: AsyncSession) -> tuple[set[str], set[str]]:
    """Queue names and the codes of active service types: what a menu may route to."""
    queues = set((await session.execute(select(Queue.name))).scalars())
    services = set((await session.execute(
        select(ServiceType.code).where(ServiceType.active.is_(True)))).scalars())
    return queues, services


async def problems_of(session: AsyncSession, data: Any, general_queue: str) -> list[Problem]:
    """What keeps the menu from being published, audio aside: validate()'s problems and the
    recordings older than their words (the rest of the audio is known only when it is made)."""
    queues, services = await known(session)
    return validate(data, queues, services, general_queue=general_queue) \
        + recording_problems(data)


async def versions(session: AsyncSession) -> list[MenuVersion]:
    return list((await session.execute(
        select(MenuVersion).order_by(MenuVersion.version.desc()))).scalars())


async def get_version(session: AsyncSession, number: int) -> MenuVersion:
    row = (await session.execute(
        select(MenuVersion).where(MenuVersion.version == number))).scalar_one_or_none()
    if row is None:
        raise VersionError(f"there is no menu version {number}")
    return row


async def active_version(session: AsyncSession) -> MenuVersion | None:
    return (await session.execute(
        select(MenuVersion).where(MenuVersion.status == "active")
        .order_by(MenuVersion.version.desc()).limit(1))).scalar_one_or_none()


async def _next_number(session: AsyncSession) -> int:
    return int((await session.execute(select(func.max(MenuVersion.version)))).scalar() or 0) + 1


async def create_draft(session: AsyncSession, actor: str, data: dict[str, Any], *,
                       comment: str, action: str = "create_draft",
                       detail: dict[str, Any] | None = None) -> MenuVersion:
    row = MenuVersion(version=await _next_number(session), status="draft",
                      data=copy.deepcopy(data), comment=comment[:400], created_by=actor)
    session.add(row)
    await session.flush()
    audit(session, actor, action, "menu", row.version, {"comment": comment, **(detail or {})})
    return row


async def save_draft(session: AsyncSession, actor: str, row: MenuVersion,
                     data: dict[str, Any], what: str, detail: dict[str, Any]) -> None:
    if row.status != "draft":
        raise VersionError(f"version {row.version} is {row.status}: only drafts can be edited; "
                           "make a new draft from it")
    row.data = data
    audit(session, actor, "edit", "menu", row.version, {"edit": what, **detail})


async def _activate(session: AsyncSession, row: MenuVersion, at: datetime) -> int | None:
    previous = (await session.execute(
        select(MenuVersion).where(MenuVersion.status == "active").with_for_update()
    )).scalars().all()
    for old in previous:
        old.status = "archived"
    await session.flush()  # one active row at a time, even inside the transaction
    row.status = "active"
    row.published_at = at
    return previous[0].version if previous else None


async def publish(
    session: AsyncSession, actor: str, number: int, general_queue: str, at: datetime, *,
    sounds: dict[str, Any] | None, audio_problems: list[Problem] | None = None,
) -> None:
    """`sounds`: the files the version plays (prompts.PromptService.prepare), `audio_problems`
    what kept some prompt from having audio: any of them refuses the publish, like a menu
    problem. `sounds=None` publishes without audio (a menu whose prompts are file names)."""
    row = await get_version(session, number)
    if row.status != "draft":
        raise VersionError(f"version {number} is {row.status}: only a draft can be published")
    problems = await problems_of(session, row.data, general_queue)
    problems += [p for p in audio_problems or [] if p not in problems]
    if problems:
        raise InvalidMenu(problems, list(audio_problems or []))
    row.sounds = sounds
    replaced = await _activate(session, row, at)
    audit(session, actor, "publish", "menu", number, {"replaced": replaced})


async def rollback(session: AsyncSession, actor: str, number: int,
                   general_queue: str, at: datetime, *, sounds: dict[str, Any] | None,
                   audio_problems: list[Problem] | None = None) -> MenuVersion:
    """Make an earlier version live again as a new version (history stays linear)."""
    source = await get_version(session, number)
    if source.status == "active":
        raise VersionError(f"version {number} is already the active one")
    problems = await problems_of(session, source.data, general_queue)
    problems += [p for p in audio_problems or [] if p not in problems]
    if problems:
        # the store changed since (a queue or service type went away): it must not go live
        raise InvalidMenu(problems, list(audio_problems or []))
    row = await create_draft(session, actor, source.data,
                             comment=f"roll back to version {number}", action="rollback_copy",
                             detail={"from_version": number})
    row.sounds = sounds
    replaced = await _activate(session, row, at)
    audit(session, actor, "rollback", "menu", row.version,
          {"from_version": number, "replaced": replaced})
    return row


async def discard(session: AsyncSession, actor: str, number: int) -> None:
    row = await get_version(session, number)
    if row.status != "draft":
        raise VersionError(f"version {number} is {row.status}: only drafts can be discarded")
    # kept, not deleted: a version number is never reused, so the audit log stays unambiguous
    row.status = "discarded"
    audit(session, actor, "discard_draft", "menu", number, {})


# --- announcements -------------------------------------------------------------------------------


async def announcements(session: AsyncSession) -> list[Announcement]:
    return list((await session.execute(
        select(Announcement).order_by(Announcement.starts_at.desc()))).scalars())


async def save_announcement(session: AsyncSession, actor: str, ann_id: int | None,
                            values: dict[str, Any]) -> Announcement:
    ann: Announcement | None
    if ann_id is None:
        ann = Announcement(created_by=actor, **values)
        session.add(ann)
        await session.flush()
        audit(session, actor, "create", "announcement", ann.id, _jsonable(values))
        return ann
    ann = await session.get(Announcement, ann_id)
    if ann is None:
        raise VersionError("no such announcement")
    changes = {}
    for key, value in values.items():
        if getattr(ann, key) != value:
            changes[key] = [_jsonable(getattr(ann, key)), _jsonable(value)]
            setattr(ann, key, value)
    if changes:
        audit(session, actor, "update", "announcement", ann.id, {"changes": changes})
    return ann


async def delete_announcement(session: AsyncSession, actor: str, ann_id: int) -> None:
    ann = await session.get(Announcement, ann_id)
    if ann is None:
        raise VersionError("no such announcement")
    audit(session, actor, "delete", "announcement", ann.id, {"name": ann.name})
    await session.delete(ann)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
