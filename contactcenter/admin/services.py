"""Admin domain logic: create and update reference data, each change audited in the same
transaction (actor, action, entity, detail)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..agency.models import Agency
from ..audit import audit
from ..ivr.menu import references
from ..ivr.models import MenuVersion
from ..queues.models import Queue, ServiceType
from ..security import hash_password
from ..web.models import User
from ..web.sessions import end_user_sessions

_T = TypeVar("_T", Queue, ServiceType, Agency, User)


class FieldError(Exception):
    """A rule that needs the store failed; `field` is the form field it belongs next to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def apply(obj: Any, values: dict[str, Any], fields: Iterable[str]) -> dict[str, list[Any]]:
    """Set `fields` from `values`; returns {field: [old, new]} for what changed."""
    changes: dict[str, list[Any]] = {}
    for name in fields:
        if name not in values:
            continue
        old, new = getattr(obj, name), values[name]
        if old != new:
            changes[name] = [old, new]
            setattr(obj, name, new)
    return changes


async def _exists(session: AsyncSession, column: Any, value: Any, *, not_id: Any = None,
                  id_column: Any = None) -> bool:
    query = select(func.count()).where(column == value)
    if not_id is not None:
        query = query.where(id_column != not_id)
    return bool((await session.execute(query)).scalar_one())


async def _add(session: AsyncSession, actor: str, row: _T, entity: str, key: str,
               values: dict[str, Any], fields: Iterable[str]) -> _T:
    """Insert a new row with `fields` from `values`, audited as created under its `key`."""
    apply(row, values, fields)
    session.add(row)
    await session.flush()
    audit(session, actor, "create", entity, getattr(row, key),
          {k: values[k] for k in fields if k in values})
    return row


def _change(session: AsyncSession, actor: str, row: Any, entity: str, key: str,
            values: dict[str, Any], fields: Iterable[str]) -> dict[str, list[Any]]:
    """Apply `fields` from `values` to an existing row; audit only a real change."""
    changes = apply(row, values, fields)
    if changes:
        audit(session, actor, "update", entity, getattr(row, key), {"changes": changes})
    return changes


# --- queues -------------------------------------------------------------------------------------


async def create_queue(session: AsyncSession, actor: str, values: dict[str, Any],
                       fields: Iterable[str]) -> Queue:
    if await _exists(session, Queue.name, values["name"]):
        raise FieldError("name", f"A queue named {values['name']!r} already exists.")
    return await _add(session, actor, Queue(name=values["name"]), "queue", "name", values, fields)


async def delete_queue(session: AsyncSession, actor: str, queue: Queue,
                       general_queue: str) -> list[str]:
    """Delete a queue nothing routes to any more: not the general queue, not a service
    type's, not one of the active menu's. Operators lose it from their queue lists (the names
    of those changed are returned)."""
    if queue.name == general_queue:
        raise FieldError("name", f"{queue.name} is the general queue (CC_GENERAL_QUEUE): "
                         "callers fall back to it.")
    used = (await session.execute(select(ServiceType.code).where(
        ServiceType.queue_id == queue.id))).scalars().all()
    if used:
        raise FieldError("name", f"Service types {', '.join(sorted(used))} send their calls "
                         "here: give them another queue first.")
    data = (await session.execute(
        select(MenuVersion.data).where(MenuVersion.status == "active"))).scalars().first()
    if data is not None and queue.name in references(data)[0]:
        raise FieldError("name", f"The active phone menu routes callers to {queue.name}: take "
                         "it out of the menu (publish a new version) first.")
    changed = []
    for user in (await session.execute(select(User))).scalars():
        if queue.name in (user.queues or []):
            user.queues = [q for q in user.queues if q != queue.name]
            changed.append(user.username)
    audit(session, actor, "delete", "queue", queue.name, {"users": changed})
    await session.delete(queue)
    return changed


async def update_queue(session: AsyncSession, actor: str, queue: Queue, values: dict[str, Any],
                       fields: Iterable[str]) -> dict[str, list[Any]]:
    return _change(session, actor, queue, "queue", "name", values, fields)


# --- service types ------------------------------------------------------------------------------


async def create_service_type(session: AsyncSession, actor: str, values: dict[str, Any],
                              fields: Iterable[str]) -> ServiceType:
    if await _exists(session, ServiceType.code, values["code"]):
        raise FieldError("code", f"A service type with code {values['code']!r} already exists.")
    return await _add(session, actor, ServiceType(code=values["code"]), "service_type", "code",
                      values, fields)


async def update_service_type(session: AsyncSession, actor: str, st: ServiceType,
                              values: dict[str, Any],
                              fields: Iterable[str]) -> dict[str, list[Any]]:
    if st.active and values.get("active") is False:
        # the live menu must keep validating: callers could otherwise pick a dead service
        data = (await session.execute(
            select(MenuVersion.data).where(MenuVersion.status == "active"))).scalars().first()
        if data is not None and st.code in references(data)[1]:
            raise FieldError("active", f"The active phone menu routes callers to {st.code}: "
                             "take it out of the menu (publish a new version) first.")
    return _change(session, actor, st, "service_type", "code", values, fields)


# --- agencies -----------------------------------------------------------------------------------


async def create_agency(session: AsyncSession, actor: str, values: dict[str, Any],
                        fields: Iterable[str]) -> Agency:
    if await _exists(session, Agency.code, values["code"]):
        raise FieldError("code", f"An agency with code {values['code']!r} already exists.")
    return await _add(session, actor, Agency(code=values["code"]), "agency", "code", values,
                      fields)


async def update_agency(session: AsyncSession, actor: str, agency: Agency,
                        values: dict[str, Any], fields: Iterable[str]) -> dict[str, list[Any]]:
    return _change(session, actor, agency, "agency", "code", values, fields)


# --- users --------------------------------------------------------------------------------------


async def _other_active_admins(session: AsyncSession, user_id: int | None) -> int:
    # FOR UPDATE on PostgreSQL: two admins demoting each other at once cannot both pass.
    query = select(User.id).where(User.role == "admin", User.active.is_(True))
    if user_id is not None:
        query = query.where(User.id != user_id)
    rows = (await session.execute(query.with_for_update())).scalars().all()
    return len(rows)


async def _check_interface(session: AsyncSession, interface: str | None,
                           user_id: int | None) -> None:
    if interface and await _exists(session, User.interface, interface, not_id=user_id,
                                   id_column=User.id):
        raise FieldError("interface", f"Phone interface {interface} belongs to another user.")


async def create_user(session: AsyncSession, actor: str, values: dict[str, Any],
                      fields: Iterable[str]) -> User:
    if await _exists(session, User.username, values["username"]):
        raise FieldError("username", f"User name {values['username']!r} is taken.")
    await _check_interface(session, values.get("interface"), None)
    # argon2 off the event loop (it also serves the IVR when the role is `all`)
    user = User(username=values["username"],
                password_hash=await asyncio.to_thread(hash_password, values["password"]))
    return await _add(session, actor, user, "user", "username", values, fields)


async def update_user(session: AsyncSession, actor: str, user: User, values: dict[str, Any],
                      fields: Iterable[str]) -> dict[str, list[Any]]:
    losing_admin = user.role == "admin" and user.active and (
        values.get("role", "admin") != "admin" or not values.get("active", True)
    )
    if losing_admin and await _other_active_admins(session, user.id) == 0:
        field = "role" if values.get("role", "admin") != "admin" else "active"
        raise FieldError(field, f"{user.username} is the last active administrator: make "
                         "another user an administrator first.")
    await _check_interface(session, values.get("interface"), user.id)
    changes = apply(user, values, fields)
    detail: dict[str, Any] = {"changes": changes}
    if values.get("password"):
        user.password_hash = await asyncio.to_thread(hash_password, values["password"])
        detail["password"] = "changed"  # never the hash
    if values.get("password") or {"role", "active", "agencies"} & set(changes):
        # signed out at once everywhere, not at the next look at the cookie's version
        detail["sessions_ended"] = await end_user_sessions(session, user.id)
    if changes or values.get("password"):
        audit(session, actor, "update", "user", user.username, detail)
    return changes
