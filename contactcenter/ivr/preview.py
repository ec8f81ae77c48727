"""A pure walk through a menu: the keys a caller presses in, what they hear and where they end
up out. The admin editor's preview uses it. It drives the same walker as the engine
(`steps.steps`: language menu, announcement, retries and the invalid prompt, after_retries,
submenu/back/repeat), so only what follows the tree (office hours, case status) is sketched here
without a channel, a clock or the store.

Inputs are the caller's entries in order: a digit string, or "" for a timeout (no key).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .menu import Menu, Prompt
from .steps import Announce, Ask, Choice, End, Language, MenuRunError, Play, steps


@dataclass(frozen=True, slots=True)
class Heard:
    file: str  # the sound file played
    what: str  # which prompt it is, e.g. "node main", "invalid input"


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # queued, self_served, transfer, case_status, closed
    queue: str | None = None
    service: str | None = None
    number: str | None = None
    text: str = ""


@dataclass(slots=True)
class Walk:
    language: str | None = None
    heard: list[Heard] = field(default_factory=list)
    path: list[str] = field(default_factory=list)  # node:digits:action, as IvrChoice records
    waiting: str | None = None  # "language" or a node id: the next input goes there
    outcome: Outcome | None = None
    used: int = 0  # inputs consumed


def walk(
    menu: Menu,
    inputs: Sequence[str],
    *,
    announcement: Prompt | None = None,
    queue_open: Callable[[str], bool] = lambda queue: True,
) -> Walk:
    w = Walk()
    walker = steps(menu)
    keys: str | None = None
    try:
        while True:
            step = walker.send(keys)
            keys = None
            if isinstance(step, Ask):
                if step.file:
                    w.heard.append(Heard(step.file, step.what))
                if w.used >= len(inputs):
                    w.waiting = step.at
                    return w
                keys = inputs[w.used]
                w.used += 1
            elif isinstance(step, Play):
                w.heard.append(Heard(step.file, step.what))
            elif isinstance(step, Choice):
                w.path.append(step.path)
            elif isinstance(step, Language):
                w.language = step.language
            elif isinstance(step, Announce) and announcement:
                if file := menu.prompt(announcement, _language(w)):
                    w.heard.append(Heard(file, "announcement of the day"))
    except StopIteration as stop:
        w.outcome = _outcome(menu, w, stop.value, queue_open)
    except MenuRunError as exc:  # validate() rejects these menus; say so rather than loop
        w.outcome = Outcome("error", text=str(exc))
    return w


def _language(w: Walk) -> str:
    assert w.language is not None
    return w.language


def _outcome(menu: Menu, w: Walk, end: End, queue_open: Callable[[str], bool]) -> Outcome:
    """Where the caller goes after the tree; the engine does these with the store."""
    action = end.action

    def play(prompt: Prompt | None, what: str) -> None:
        if file := menu.prompt(prompt, _language(w)):
            w.heard.append(Heard(file, what))

    if action.kind == "queue":
        assert action.queue
        if not queue_open(action.queue):
            play(menu.prompts.get("closed_prompt"), "office closed")
            return Outcome("closed", action.queue, action.service,
                           text=f"closed: {action.queue} is outside office hours")
        return Outcome("queued", action.queue, action.service,
                       text=f"waits in queue {action.queue}"
                       + (f" for {action.service}" if action.service else ""))
    if action.kind == "case_status":
        play(action.prompt, "enter your case number")
        operator = action.operator.queue if action.operator else None
        return Outcome("case_status", operator, text="keys a case number and hears "
                       "its status" + (f"; 0 goes to {operator}" if operator else ""))
    if action.kind == "transfer_external" and action.number:
        return Outcome("transfer", number=action.number,
                       text=f"is transferred to {action.number}")
    play(menu.prompts.get("goodbye_prompt"), "goodbye")
    return Outcome("self_served", text="hears the message, then the call ends")
