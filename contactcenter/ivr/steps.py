"""The menu rules, once: a pure walker that both the engine and the editor's preview drive.

`steps(menu)` is a generator. It yields what a caller meets, in order (a prompt to hear, keys to
collect, a choice to record, the language being settled, the slot for the announcement of the
day) and returns the `End` the caller reached in the menu tree. Keys go in with `send()` after an
`Ask`; every other step is resumed with `next()`. The walker has no channel, clock or store:
`engine.IvrEngine` turns the steps into AGI commands and events, `preview.walk` into a script
for the editor. A rule changed here changes both.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from .menu import Action, Menu, Node, Prompt


@dataclass(frozen=True, slots=True)
class Play:
    file: str  # a sound file, never empty
    what: str  # which prompt, for people: "menu main", "invalid input"


@dataclass(frozen=True, slots=True)
class Ask:
    """Play `file` (may be "") and collect up to `max_digits`; send back the digits ("" = none)."""

    file: str
    timeout_ms: int
    max_digits: int
    at: str  # "language" or the node id the keys go to
    what: str


@dataclass(frozen=True, slots=True)
class Choice:
    """A decision to record (as an `IvrChoice` event / a line of the preview's path)."""

    node: str
    digit: str
    action: str
    queue: str | None = None
    service: str | None = None

    @property
    def path(self) -> str:
        return f"{self.node}:{self.digit or '-'}:{self.action}"


@dataclass(frozen=True, slots=True)
class Language:
    """The caller's language is settled (before its `Choice` is recorded)."""

    language: str


@dataclass(frozen=True, slots=True)
class Announce:
    """Here the announcement of the day, if any, is played."""


@dataclass(frozen=True, slots=True)
class End:
    """The caller left the tree through `action` (queue, case_status, message_hangup or
    transfer_external) at `node`. For
    message_hangup and transfer_external the message has already been yielded as a `Play`."""

    action: Action
    node: Node


Step = Play | Ask | Choice | Language | Announce
Walker = Generator[Step, str | None, End]


class MenuRunError(ValueError):
    """The menu asks for something the walker cannot do (`validate()` rejects such menus)."""


def steps(menu: Menu) -> Walker:
    lang = menu.default_language
    if len(menu.languages) > 1 and menu.language_menu is not None:
        lm = menu.language_menu
        digit = (yield Ask(menu.prompt(lm.prompt, menu.default_language) or "", lm.timeout_ms, 1,
                           "language", "language menu")) or ""
        lang = lm.options.get(digit, lang)
        yield Language(lang)
        yield Choice("language", digit, f"language:{lang}")
    else:
        yield Language(lang)
    yield Announce()

    def play(prompt: Prompt | None, what: str) -> Play | None:
        file = menu.prompt(prompt, lang)
        return Play(file, what) if file else None

    node = menu.node(menu.start)
    stack: list[Node] = []
    failures = 0
    while True:
        file = menu.prompt(node.prompt, lang) or ""
        digits = (yield Ask(file, node.timeout_ms, node.max_digits, node.id,
                            f"menu {node.id}")) or ""
        option = node.option(digits) if digits else None
        if option is None:
            failures += 1
            yield Choice(node.id, digits, "invalid" if digits else "timeout")
            if failures < node.retries:
                if digits and (p := play(node.invalid_prompt
                                         or menu.prompts.get("invalid_prompt"), "invalid input")):
                    yield p
                continue
            action = node.after_retries
            yield Choice(node.id, "", f"after_retries:{action.describe()}",
                         queue=action.queue, service=action.service)
        else:
            action = option.action
            yield Choice(node.id, digits, action.describe(), queue=action.queue,
                         service=action.service)
        failures = 0
        kind = action.kind
        if kind == "submenu" and action.node:
            stack.append(node)
            node = menu.node(action.node)
        elif kind == "repeat":
            continue
        elif kind == "back":
            node = stack.pop() if stack else node
        elif (kind == "queue" and action.queue) or kind == "case_status":
            return End(action, node)
        elif kind in ("message_hangup", "transfer_external"):
            if p := play(action.prompt, "message"):
                yield p
            return End(action, node)
        else:
            raise MenuRunError(f"node {node.id}: cannot run action {action.describe()}")
