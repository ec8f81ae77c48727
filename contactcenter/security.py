"""Password hashing (argon2id) and API-key hashing.

An argon2 verification takes ~100 ms of CPU and 64 MiB on purpose. On the event loop that also
runs AMI and the IVR it would be dead air for every caller, so the web verifies in a small
`PasswordPool` of its own threads (argon2 releases the GIL while it hashes).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_dummy: str | None = None


def set_hash_parameters(*, time_cost: int, memory_cost: int, parallelism: int) -> None:
    """Tests only: cheap hashes for a suite that signs in thousands of times. A hash keeps its
    own parameters, so hashes made before still verify."""
    global _hasher, _dummy
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost,
                             parallelism=parallelism)
    _dummy = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def dummy_hash() -> str:
    """A hash of nothing anyone knows, made like real ones: an unknown user name costs the same
    verification as a known one, so timing does not tell which names exist."""
    global _dummy
    if _dummy is None:
        _dummy = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy


def _verify(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        verify_password(dummy_hash(), password)
        return False
    return verify_password(password_hash, password)


def _lower_priority(nice: int) -> None:
    # Linux: niceness is per thread and argon2's own lane threads inherit it, so a burst of
    # log-ins yields the CPU to the event loop instead of competing with it.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class PasswordPool:
    """argon2 verifications off the event loop, in `threads` low-priority threads of their own."""

    def __init__(self, threads: int = 2, nice: int = 10) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2",
                                        initializer=_lower_priority, initargs=(nice,))
        self.verifications = 0  # started since the process began (tests, /health)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """`password_hash` None (an unknown or disabled user): the dummy's run, always False."""
        self.verifications += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _verify, password_hash, password)

    async def warm_up(self) -> None:
        """Make the dummy hash now, in the pool: made on first use it would be on the loop."""
        await asyncio.get_running_loop().run_in_executor(self._pool, dummy_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class SummaryLog:
    """At most one line per `interval` per kind of event, saying how many there were: events an
    anonymous client can cause at will must not fill the disk."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.interval, self.clock = logger, interval, clock
        self._last: dict[str, float] = {}
        self._since: Counter[str] = Counter()
        self.lines = 0

    def event(self, kind: str, detail: str, level: int = logging.WARNING) -> None:
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._since[kind] += 1
            return
        more = self._since.pop(kind, 0)
        self._last[kind] = now
        self.lines += 1
        self.logger.log(level, "%s: %s%s", kind, detail[:200],
                        f" (and {more} more in the last {self.interval:g} s)" if more else "")


def new_api_key() -> str:
    return "cc_" + secrets.token_urlsafe(30)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
