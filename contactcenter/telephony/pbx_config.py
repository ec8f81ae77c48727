"""PbxConfig: the store's queues written where Asterisk reads them, then `QueueReload` on each.

Why generated files plus `QueueReload`, and not Asterisk Realtime (README, "Queues: from the
store to Asterisk"): the AMI action needs no write class at all (app_queue registers it with
authority 0), Asterisk never holds database credentials and keeps its queues when our store is
down, the files are plain queues.conf that `asterisklint` checks and a PBX engineer can read
with `queue show`, and app_queue's reload adds, changes and removes static queues itself
(Realtime queues are loaded lazily and a deleted row lingers until the next lookup).

One apply: render both files from the QueueDirectory, write each atomically (a temporary file
in the same directory, fsync, rename: Asterisk never reads half a file), then send
`QueueReload` to every configured Asterisk and keep the outcome per server in
`pbx_config_status` (what the admin page shows). A write that fails or a server that refuses is
tried again every `RETRY_SECONDS` until it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..clock import SYSTEM, Clock
from ..events import PbxError
from ..queues.directory import QueueDirectory, QueueInfo, fingerprint
from ..queues.models import PbxConfigStatus
from .ami import AmiClient
from .queues_conf import QUEUES_FILE, RULES_FILE, render_queues, render_rules

log = logging.getLogger(__name__)

RETRY_SECONDS = 10.0


@dataclass(frozen=True)
class Outcome:
    server: str
    ok: bool
    message: str


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # Asterisk runs as its own user: it must read it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_files(conf_dir: Path, queues: Sequence[QueueInfo]) -> list[Path]:
    out = []
    for name, text in ((QUEUES_FILE, render_queues(queues)), (RULES_FILE, render_rules(queues))):
        path = conf_dir / name
        write_atomically(path, text)
        out.append(path)
    return out


async def reload_all(clients: Mapping[str, AmiClient], timeout: float | None = None
                     ) -> list[Outcome]:
    """`QueueReload` (no headers: parameters, rules and static members; dynamic members and
    statistics stay) on every server at once; Asterisk's own message either way."""

    async def one(name: str, client: AmiClient) -> Outcome:
        try:
            resp = await client.action("QueueReload", {}, timeout=timeout)
        except PbxError as exc:
            return Outcome(name, False, str(exc)[:400])
        return Outcome(name, True, resp.message or "Queue reloaded successfully")

    return list(await asyncio.gather(*(one(n, c) for n, c in clients.items())))


async def apply(conf_dir: Path, queues: Sequence[QueueInfo], clients: Mapping[str, AmiClient],
                *, timeout: float | None = None) -> list[Outcome]:
    """Write the files, then reload every server. A write that fails is every server's
    failure: Asterisk would reload the old files and report success."""
    try:
        await asyncio.to_thread(write_files, conf_dir, queues)
    except OSError as exc:
        why = f"cannot write {conf_dir}: {exc.strerror or exc}"
        return [Outcome(name, False, why) for name in clients]
    except ValueError as exc:  # a value the store should never have held: nothing written
        return [Outcome(name, False, f"not written: {exc}") for name in clients]
    return await reload_all(clients, timeout)


async def record(sessions: async_sessionmaker[AsyncSession], outcomes: Sequence[Outcome],
                 print_: str, at: datetime) -> None:
    """One `pbx_config_status` row per server: what was tried last, and the last success."""
    async with sessions() as db, db.begin():
        for o in outcomes:
            row = await db.get(PbxConfigStatus, o.server)
            if row is None:
                row = PbxConfigStatus(server=o.server)
                db.add(row)
            row.fingerprint, row.ok, row.message, row.attempted_at = (
                print_, o.ok, o.message[:400], at)
            if o.ok:
                row.applied_at = at


class PbxConfig:
    """Follows the QueueDirectory: every (re)load of the store's queues is applied."""

    def __init__(self, conf_dir: str, clients: Mapping[str, AmiClient],
                 sessions: async_sessionmaker[AsyncSession], *, clock: Clock = SYSTEM) -> None:
        self.conf_dir = Path(conf_dir)
        self.clients = dict(clients)
        self.sessions = sessions
        self.clock = clock
        self._queues: list[QueueInfo] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.applies = 0
        self.last: list[Outcome] = []
        self.applied_print = ""  # the fingerprint every server took last

    def follow(self, directory: QueueDirectory) -> None:
        def changed(d: QueueDirectory) -> None:
            self.submit(d.all())

        directory.on_change(changed)
        if directory.loaded_at is not None:
            self.submit(directory.all())

    def submit(self, queues: Sequence[QueueInfo]) -> None:
        """Apply these queues soon; a newer submit replaces one not yet started."""
        self._queues = list(queues)
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pbx:config")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            failed = bool(self.last) and not all(o.ok for o in self.last)
            if failed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), RETRY_SECONDS)
            else:
                await self._wake.wait()
            self._wake.clear()
            queues = self._queues
            if queues is None:
                continue
            print_ = fingerprint(queues)
            if print_ == self.applied_print and not failed:
                continue  # the safety reload of an unchanged store: Asterisk has it already
            try:
                outcomes = await apply(self.conf_dir, queues, self.clients)
                before = {o.server: o.message for o in self.last if not o.ok}
                self.last = outcomes
                self.applies += 1
                if all(o.ok for o in outcomes):
                    self.applied_print = print_
                    log.info("queue configuration (%d queues) applied to %s", len(queues),
                             ", ".join(o.server for o in outcomes))
                for o in outcomes:
                    if not o.ok and before.get(o.server) != o.message:  # once per new failure
                        log.warning("queue configuration not applied to %s: %s (retrying every "
                                    "%gs)", o.server, o.message, RETRY_SECONDS)
                await record(self.sessions, outcomes, print_, self.clock.now())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store down while recording: try again later
                log.warning("queue configuration: %s: %s", type(exc).__name__, exc)
                self.last = [Outcome("store", False, str(exc)[:200])]

    def health(self) -> dict[str, Any]:
        return {
            "ok": all(o.ok for o in self.last),
            "dir": str(self.conf_dir),
            "applies": self.applies,
            "servers": {o.server: ("applied" if o.ok else o.message) for o in self.last},
        }


@contextlib.asynccontextmanager
async def actions_clients(endpoints: Sequence[Any], username: str, secret: str,
                          timeout: float) -> AsyncIterator[dict[str, AmiClient]]:
    """Actions-only AMI sessions (the CLI's `pbx apply`)."""
    clients = {ep.name: AmiClient(ep.host, ep.port, username, secret, name=ep.name,
                                  action_timeout=timeout, events=False, backoff_max=1.0)
               for ep in endpoints}
    for c in clients.values():
        await c.start()
    try:
        yield clients
    finally:
        for c in clients.values():
            await c.close()


__all__ = ["Outcome", "PbxConfig", "actions_clients", "apply", "record", "reload_all",
           "write_atomically", "write_files"]
