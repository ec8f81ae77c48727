"""The log-in limiter's rules, on a fake clock (the HTTP side is test_security_login.py)."""

from __future__ import annotations

from contactcenter.web.login_limit import LoginLimiter, Refusal, Ticket


def make() -> tuple[LoginLimiter, list[float]]:
    now = [0.0]
    return LoginLimiter(clock=lambda: now[0]), now


def fail(limiter: LoginLimiter, account: str, address: str) -> None:
    ticket = limiter.admit(account, address)
    assert isinstance(ticket, Ticket), ticket
    limiter.done(ticket, ok=False)


def test_a_pair_slows_down_exponentially_and_never_locks() -> None:
    limiter, now = make()
    for _ in range(5):
        fail(limiter, "admin", "10.0.0.9")
    waits = []
    for _ in range(10):
        refused = limiter.admit("admin", "10.0.0.9")
        assert isinstance(refused, Refusal) and refused.status == 429
        waits.append(refused.retry_after)
        now[0] += refused.retry_after
        fail(limiter, "admin", "10.0.0.9")
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    # the owner at another address is never held back, and a success there resets nothing here
    ok = limiter.admit("admin", "10.0.0.1")
    assert isinstance(ok, Ticket)
    limiter.done(ok, ok=True)
    assert isinstance(limiter.admit("admin", "10.0.0.9"), Refusal)


def test_attempts_in_flight_count_before_their_verdict() -> None:
    limiter, _ = make()
    admitted = [limiter.admit(f"user{i}", "10.0.0.9") for i in range(40)]
    tickets = [t for t in admitted if isinstance(t, Ticket)]
    assert len(tickets) == limiter.max_in_flight == limiter.in_flight
    assert all(t.status == 503 for t in admitted if isinstance(t, Refusal))
    # one account: at most two at a time from anywhere
    for t in tickets:
        limiter.done(t, ok=False)
    same = [limiter.admit("ana", f"10.0.1.{i}") for i in range(5)]
    assert [isinstance(t, Ticket) for t in same] == [True, True, False, False, False]


def test_an_address_has_a_budget_over_all_accounts_within_the_window() -> None:
    limiter, now = make()
    for i in range(limiter.address_limit):
        fail(limiter, f"user{i}", "10.0.0.9")
    refused = limiter.admit("someone", "10.0.0.9")
    assert isinstance(refused, Refusal) and refused.retry_after == 900
    assert isinstance(limiter.admit("someone", "10.0.0.8"), Ticket)
    now[0] += 901
    assert isinstance(limiter.admit("someone", "10.0.0.9"), Ticket)


def test_memory_is_bounded_under_a_spray_of_names() -> None:
    limiter = LoginLimiter(max_keys=100, address_limit=10**9, window=10**9)
    for i in range(1000):
        fail(limiter, f"name{i}", f"10.{i // 250}.{i % 250}.1")
    assert len(limiter._pair_fails) <= 100 and len(limiter._addr_fails) <= 100
