"""The shared menu walker (`ivr.steps`): the rules the engine and the preview both follow."""

from __future__ import annotations

import pytest

from contactcenter.ivr.menu import Action, load_menu
from contactcenter.ivr.steps import Announce, Ask, Choice, End, Language, MenuRunError, steps
from tests.ivr_support import file_menu


def drive(menu_data: dict, keys: list[str]) -> tuple[list[object], End]:
    walker, seen, feed = steps(load_menu(menu_data)), [], iter(keys)
    send: str | None = None
    while True:
        try:
            step = walker.send(send)
        except StopIteration as stop:
            return seen, stop.value
        seen.append(step)
        send = next(feed) if isinstance(step, Ask) else None


def test_language_then_announcement_then_the_tree() -> None:
    seen, end = drive(file_menu(), ["2", "1"])
    assert isinstance(seen[0], Ask) and seen[0].at == "language"
    assert seen[1] == Language("es")
    assert seen[2] == Choice("language", "2", "language:es")
    assert seen[3] == Announce()
    assert isinstance(seen[4], Ask) and seen[4].file.startswith("311/es/")
    assert end.action.kind in ("queue", "case_status", "message_hangup", "transfer_external")


def test_retries_run_out_into_after_retries() -> None:
    data = file_menu()
    retries = data["nodes"][0].get("retries", 3)
    seen, end = drive(data, ["1"] + [""] * retries)
    timeouts = [s for s in seen if isinstance(s, Choice) and s.action == "timeout"]
    assert len(timeouts) == retries
    assert [s for s in seen if isinstance(s, Choice)][-1].action.startswith("after_retries:")
    assert end.action == load_menu(data).node(load_menu(data).start).after_retries


def test_an_action_the_walker_cannot_run_is_an_error_not_a_loop() -> None:
    menu = load_menu(file_menu())
    node = menu.node(menu.start)
    object.__setattr__(node.options[0], "action", Action(kind="submenu"))  # no target node
    walker = steps(menu)

    def answer(step: object) -> str | None:
        if not isinstance(step, Ask):
            return None
        return "1" if step.at == "language" else node.options[0].digit

    with pytest.raises(MenuRunError):
        step = next(walker)
        while True:
            step = walker.send(answer(step))
