"""Log-in throttling that holds under concurrency and that a stranger cannot turn against a user.

Each rule counts an attempt when it is admitted, before the request awaits anything (the user
look-up, argon2), and holds it until the verdict, so 100 concurrent guesses are 100 attempts,
not 100 times "0 failures so far":

- one account from one address (the *pair*): `free_tries` tries in the window, then each further
  try waits 1, 2, 4 ... s (at most `max_delay`) after the previous failure, one at a time. There
  is no account lock: guesses from elsewhere never slow the owner down at their own desk.
- one address, any account: at most `address_limit` failures (those in flight included) in the
  window.
- one account, any address: at most `account_in_flight` verifications at a time.
- the process: at most `max_in_flight` verifications at a time (the argon2 threads are few).

Refusals come before the user is looked up and read the same for known and unknown names.
Time is monotonic: this is a rate, not business time.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", str, tuple[str, str])


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 429 (this client), 503 (the server is busy)
    message: str
    retry_after: int  # seconds, for the Retry-After header


@dataclass(frozen=True, slots=True)
class Ticket:
    account: str
    address: str


BUSY = "The sign-in service is busy. Try again in a moment."


class LoginLimiter:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        window: float = 900.0,
        free_tries: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        address_limit: int = 30,
        account_in_flight: int = 2,
        max_in_flight: int = 8,
        max_keys: int = 100_000,
    ) -> None:
        self.clock = clock
        self.window, self.free_tries = window, free_tries
        self.base_delay, self.max_delay = base_delay, max_delay
        self.address_limit = address_limit
        self.account_in_flight, self.max_in_flight = account_in_flight, max_in_flight
        self.max_keys = max_keys
        self._pair_fails: dict[tuple[str, str], deque[float]] = {}
        self._addr_fails: dict[str, deque[float]] = {}
        self._pair_pending: Counter[tuple[str, str]] = Counter()
        self._addr_pending: Counter[str] = Counter()
        self._acct_pending: Counter[str] = Counter()
        self.in_flight = 0
        self.refused = 0

    def delay(self, beyond: int) -> float:
        """The wait before try number `free_tries + beyond` of a pair."""
        return min(self.max_delay, self.base_delay * 2.0 ** min(beyond - 1, 30))

    def admit(self, account: str, address: str) -> Ticket | Refusal:
        """Count an attempt now, or say why not. No await may come between the checks and the
        counting: that gap is what let concurrent guesses through."""
        now = self.clock()
        if self.in_flight >= self.max_in_flight:
            return self._refuse(503, BUSY, 1)
        if self._acct_pending[account] >= self.account_in_flight:
            return self._refuse(429, BUSY, 1)
        fails = self._recent(self._addr_fails, address, now)
        if len(fails) + self._addr_pending[address] >= self.address_limit:
            wait = fails[0] + self.window - now if fails else 1
            return self._refuse(
                429, "Too many failed sign-ins from your address. Try again in "
                f"{math.ceil(wait / 60)} minutes.", wait)
        pair = (account, address)
        tries = self._recent(self._pair_fails, pair, now)
        pending = self._pair_pending[pair]
        if len(tries) + pending >= self.free_tries:
            wait = 1.0 if pending else tries[-1] + self.delay(
                len(tries) - self.free_tries + 1) - now
            if wait > 0:
                return self._refuse(
                    429, "Too many failed attempts. Try again in "
                    f"{math.ceil(wait)} seconds.", wait)
        self.in_flight += 1
        self._acct_pending[account] += 1
        self._addr_pending[address] += 1
        self._pair_pending[pair] += 1
        return Ticket(account, address)

    def done(self, ticket: Ticket, ok: bool, *, tried: bool = True) -> None:
        """The verdict of an admitted attempt. `tried=False`: the password was never checked
        (the store failed first), so it is neither a success nor a failure."""
        pair = (ticket.account, ticket.address)
        self.in_flight -= 1
        for counter, key in ((self._acct_pending, ticket.account),
                             (self._addr_pending, ticket.address)):
            _release(counter, key)
        _release(self._pair_pending, pair)
        if not tried:
            return
        if ok:
            self._pair_fails.pop(pair, None)
            return
        now = self.clock()
        self._add(self._pair_fails, pair, now, self.free_tries + 32)
        self._add(self._addr_fails, ticket.address, now, self.address_limit)

    def _refuse(self, status: int, message: str, wait: float) -> Refusal:
        self.refused += 1
        return Refusal(status, message, max(1, math.ceil(wait)))

    def _recent(self, table: dict[K, deque[float]], key: K, now: float) -> deque[float]:
        q = table.get(key)
        if q is None:
            return deque()
        cutoff = now - self.window
        while q and q[0] < cutoff:
            q.popleft()
        if not q:
            del table[key]
        return q

    def _add(self, table: dict[K, deque[float]], key: K, now: float, keep: int) -> None:
        q = table.get(key)
        if q is None:
            if len(table) >= self.max_keys:  # bound memory under a spray of names or addresses
                table.pop(next(iter(table)))
            q = table[key] = deque(maxlen=keep)
        q.append(now)


def _release(counter: Counter[K], key: K) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
