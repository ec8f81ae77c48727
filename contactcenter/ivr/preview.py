"""A pure walk through a menu: the keys a caller presses in, what they hear and where they end
up out. The admin editor's preview uses it; it follows `engine.IvrEngine._walk` step for step
(language menu, announcement, retries and the invalid prompt, after_retries, submenu/back/repeat,
the exits) without a channel, a clock or the store.

Inputs are the caller's entries in order: a digit string, or "" for a timeout (no key).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .menu import Action, Menu, Node, Prompt


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

    @property
    def node(self) -> str | None:
        return self.waiting if self.waiting not in (None, "language") else None


def walk(
    menu: Menu,
    inputs: Sequence[str],
    *,
    announcement: Prompt | None = None,
    queue_open: Callable[[str], bool] = lambda queue: True,
) -> Walk:
    w = Walk()
    feed = list(inputs)

    def take() -> str | None:
        if w.used >= len(feed):
            return None
        w.used += 1
        return feed[w.used - 1]

    def play(prompt: Prompt | None, what: str) -> None:
        assert w.language is not None
        file = menu.prompt(prompt, w.language)
        if file:
            w.heard.append(Heard(file, what))

    lang = menu.default_language
    if len(menu.languages) > 1 and menu.language_menu is not None:
        lm = menu.language_menu
        w.heard.append(Heard(lm.prompt, "language menu"))
        digit = take()
        if digit is None:
            w.waiting = "language"
            return w
        lang = lm.options.get(digit, lang)
        w.path.append(f"language:{digit or '-'}:language:{lang}")
    w.language = lang
    if announcement:
        play(announcement, "announcement of the day")

    node: Node = menu.node(menu.start)
    stack: list[Node] = []
    failures = 0
    while True:
        play(node.prompt, f"menu {node.id}")
        digits = take()
        if digits is None:
            w.waiting = node.id
            return w
        option = node.option(digits) if digits else None
        if option is None:
            failures += 1
            w.path.append(f"{node.id}:{digits or '-'}:{'invalid' if digits else 'timeout'}")
            if failures < node.retries:
                if digits:
                    play(node.invalid_prompt or menu.prompts.get("invalid_prompt"),
                         "invalid input")
                continue
            action: Action = node.after_retries
            w.path.append(f"{node.id}:-:after_retries:{action.describe()}")
        else:
            action = option.action
            w.path.append(f"{node.id}:{digits}:{action.describe()}")
        failures = 0
        if action.kind == "submenu" and action.node:
            stack.append(node)
            node = menu.node(action.node)
        elif action.kind == "repeat":
            continue
        elif action.kind == "back":
            node = stack.pop() if stack else node
        elif action.kind == "queue" and action.queue:
            if not queue_open(action.queue):
                play(menu.prompts.get("closed_prompt"), "office closed")
                w.outcome = Outcome("closed", action.queue, action.service,
                                    text=f"closed: {action.queue} is outside office hours")
                return w
            w.outcome = Outcome("queued", action.queue, action.service,
                                text=f"waits in queue {action.queue}"
                                + (f" for {action.service}" if action.service else ""))
            return w
        elif action.kind == "case_status":
            play(action.prompt, "enter your case number")
            operator = action.operator.queue if action.operator else None
            w.outcome = Outcome("case_status", operator, text="keys a case number and hears "
                                "its status" + (f"; 0 goes to {operator}" if operator else ""))
            return w
        elif action.kind == "message_hangup":
            play(action.prompt, "message")
            play(menu.prompts.get("goodbye_prompt"), "goodbye")
            w.outcome = Outcome("self_served", text="hears the message, then the call ends")
            return w
        elif action.kind == "transfer_external":
            play(action.prompt, "message")
            if action.number:
                w.outcome = Outcome("transfer", number=action.number,
                                    text=f"is transferred to {action.number}")
            else:
                play(menu.prompts.get("goodbye_prompt"), "goodbye")
                w.outcome = Outcome("self_served", text="hears the message, then the call ends")
            return w
        else:  # validate() rejects these menus; say so rather than loop
            w.outcome = Outcome("error", text=f"node {node.id}: cannot run {action.describe()}")
            return w
