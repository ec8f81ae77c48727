"""FiguresService computes where it is told (the plugin: the report worker process), once per
cache period, with the server's clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from contactcenter.figures.service import Figures, FiguresService

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


async def _no_days(first: date, last: date) -> list[Any]:
    raise AssertionError("computed here instead of by `compute`")


async def test_the_figures_are_computed_by_the_given_function_then_cached() -> None:
    asked: list[datetime] = []

    async def compute(now: datetime) -> Figures:
        asked.append(now)
        return Figures(now, "UTC", [], [], [])

    svc = FiguresService(None, lambda: NOW, UTC, "UTC", _no_days,  # type: ignore[arg-type]
                         compute=compute)
    first = await svc.figures()
    assert first.generated_at == NOW and await svc.figures() is first
    svc.forget()
    assert await svc.figures() is not first and asked == [NOW, NOW]
