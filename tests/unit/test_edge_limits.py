"""The listener's helpers: fitting the caps to the file limit, throttled logging."""

from __future__ import annotations

import logging
import resource

import pytest

from contactcenter.config import load_settings
from contactcenter.security import SummaryLog
from contactcenter.web import edge


def test_caps_shrink_to_a_file_limit_that_cannot_be_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 1024))
    monkeypatch.setattr(resource, "setrlimit", lambda which, limits: None)
    settings = load_settings(env={})
    fitted = edge.fit_file_limit(settings, agi=True)
    used = fitted.http_max_connections + fitted.agi_max_sessions + edge.FD_RESERVE
    assert used <= 1024
    assert fitted.http_max_connections_per_address <= fitted.http_max_connections
    assert "ulimit -n" in caplog.text and "1024" in caplog.text


def test_the_file_limit_is_raised_when_it_can_be(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = [(1024, 65536)]
    monkeypatch.setattr(resource, "getrlimit", lambda which: limits[-1])
    monkeypatch.setattr(resource, "setrlimit", lambda which, new: limits.append(new))
    settings = load_settings(env={})
    assert edge.fit_file_limit(settings, agi=False) == settings
    assert limits[-1][0] >= settings.http_max_connections + edge.FD_RESERVE


def test_summary_log_says_how_many_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    notes = SummaryLog(logging.getLogger("t"), interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, "t"):
        for _ in range(1000):
            notes.event("refused", "10.0.0.9")
        now[0] = 11
        notes.event("refused", "10.0.0.9")
    assert [r.getMessage() for r in caplog.records] == [
        "refused: 10.0.0.9", "refused: 10.0.0.9 (and 999 more in the last 10 s)"]
