"""IVR menus as data: the JSON shape, a typed model, a loader that never crashes, and `validate`.

A menu (stored in `menu_versions.data`, exported and imported as JSON)::

    {
      "name": "3-1-1 main menu",
      "languages": ["en", "es"], "default_language": "en",
      "language_menu": {"prompt": {"en": "...", "es": "..."}, "options": {"1": "en", "2": "es"}},
      "start": "main",
      "timeout_ms": 5000, "retries": 3, "max_digits": 1,
      "invalid_prompt": {"en": "...", "es": "..."},
      "after_retries": {"action": "queue", "queue": "general-311"},
      "closed_prompt": {...}, "leave_request_prompt": {...}, "request_taken_prompt": {...},
      "goodbye_prompt": {...},
      "nodes": [
        {"id": "main", "prompt": {"en": "...", "es": "..."},
         "options": [{"digit": "1", "action": "queue", "queue": "sanitation",
                      "service": "missed-pickup"}, ...],
         "timeout_ms": 4000, "retries": 2, "invalid_prompt": {...}, "after_retries": {...}}
      ]
    }

A prompt is the words a caller hears, one text per language (`{"en": "For missed trash
pickup, press 1.", "es": "..."}`). A published version carries, beside its words, the sound file
each prompt plays in each language (`menu_versions.sounds`, see `ivr/prompts.py`); in a version
without them (published before prompts were words, or a menu made for tests) a text that is a
sound file name (`311/en/main-menu`) is played as such (`prompts.placeholder_sounds`). An
admin's recordings of prompts are kept in the menu under "recordings" (`ivr/prompts.py`).
Actions:
`submenu` (node), `queue` (queue, optional service), `case_status` (self-service, see
`CASE_STATUS_PROMPTS`), `message_hangup` (prompt), `transfer_external` (prompt, optional number),
`repeat`, `back`.

`validate()` is pure: the admin editor lists its problems next to the node they concern, and a
menu with problems can never become active.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ACTIONS = (
    "submenu",
    "queue",
    "case_status",
    "message_hangup",
    "transfer_external",
    "repeat",
    "back",
)
# actions that take the caller out of the menu tree
EXITS = ("queue", "case_status", "message_hangup", "transfer_external")
MENU_PROMPTS = (
    "invalid_prompt",
    "closed_prompt",
    "leave_request_prompt",
    "request_taken_prompt",
    "goodbye_prompt",
)
CASE_STATUS_PROMPTS = (
    "prompt",  # "please key your case number"
    "not_found_prompt",  # optional: "we could not find that case"
    "open_case_prompt",  # optional: "press 1 for the status of your request ending in"
    "other_case_prompt",  # optional: "or press 2 to key another case number"
    "expected_prompt",  # optional: "it is expected to be resolved by"
    "operator_prompt",  # optional: "press 0 to speak to an operator"
)
STATUSES = ("open", "acknowledged", "in_progress", "closed")

PROMPT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$")  # an Asterisk sound file name
WORDS_MAX = 600  # characters of one prompt in one language (about a minute of speech)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
DIGIT_RE = re.compile(r"^[0-9*#]{1,4}$")
LANG_RE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
NUMBER_RE = re.compile(r"^[0-9*#+]{1,20}$")
NODE_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,60}$")

LIMITS = {"timeout_ms": (500, 60_000), "retries": (1, 10), "max_digits": (1, 20)}

Prompt = dict[str, str]  # language -> words (or, once published, the sound file to play)


@dataclass(frozen=True, slots=True)
class Problem:
    node_id: str | None  # None: the menu as a whole
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "message": self.message}

    def __str__(self) -> str:
        return f"{self.node_id or 'menu'}: {self.message}"


class MenuError(ValueError):
    """A menu that cannot be played; `problems` says why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:5]))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Action:
    kind: str
    node: str | None = None  # submenu
    queue: str | None = None  # queue
    service: str | None = None  # queue
    prompt: Prompt | None = None  # message_hangup, transfer_external, case_status
    number: str | None = None  # transfer_external
    # case_status
    max_digits: int = 6
    timeout_ms: int | None = None
    readback: bool = True
    prompts: dict[str, Prompt] = field(default_factory=dict)
    status_prompts: dict[str, Prompt] = field(default_factory=dict)
    operator: Action | None = None

    def describe(self) -> str:
        if self.kind == "submenu":
            return f"submenu:{self.node}"
        if self.kind == "queue":
            return f"queue:{self.queue}" + (f"/{self.service}" if self.service else "")
        return self.kind


@dataclass(frozen=True, slots=True)
class Option:
    digit: str
    action: Action


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    prompt: Prompt
    options: tuple[Option, ...]
    timeout_ms: int
    retries: int
    max_digits: int
    invalid_prompt: Prompt | None
    after_retries: Action

    def option(self, digits: str) -> Option | None:
        for opt in self.options:
            if opt.digit == digits:
                return opt
        return None


@dataclass(frozen=True, slots=True)
class LanguageMenu:
    prompt: Prompt  # played before the language is known: the default language's entry
    options: dict[str, str]  # digit -> language
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class Menu:
    name: str
    languages: tuple[str, ...]
    default_language: str
    language_menu: LanguageMenu | None
    start: str
    nodes: dict[str, Node]
    prompts: dict[str, Prompt]  # the MENU_PROMPTS that are set
    after_retries: Action

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def prompt(self, prompt: Prompt | None, language: str) -> str | None:
        if not prompt:
            return None
        return prompt.get(language) or prompt.get(self.default_language)


# --- loading -----------------------------------------------------------------------------------


def load_menu_json(text: str | bytes) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Decode an uploaded or stored menu; problems instead of exceptions (the admin import)."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        data = json.loads(text, object_pairs_hook=pairs)
    except UnicodeDecodeError as exc:
        return None, [Problem(None, f"not UTF-8 text: {exc.reason} at byte {exc.start}")]
    except json.JSONDecodeError as exc:
        return None, [Problem(None, f"not valid JSON: {exc.msg} at line {exc.lineno} "
                                    f"column {exc.colno}")]
    except RecursionError:
        return None, [Problem(None, "not valid JSON: nested too deeply")]
    if not isinstance(data, dict):
        return None, [Problem(None, f"a menu is a JSON object, not {type(data).__name__}")]
    problems = [Problem(None, f"key {k!r} appears twice in one object") for k in duplicates]
    return data, problems


class _Parser:
    """Builds the typed model from untrusted data, collecting every schema problem."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def err(self, node: str | None, msg: str) -> None:
        self.problems.append(Problem(node, msg))

    def int_field(self, data: dict[str, Any], key: str, default: int, node: str | None) -> int:
        value = data.get(key, default)
        lo, hi = LIMITS[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(node, f"{key} must be a whole number, got {value!r}")
            return default
        if not lo <= value <= hi:
            self.err(node, f"{key} must be between {lo} and {hi}, got {value}")
            return default
        return value

    def prompt(self, value: Any, node: str | None, where: str) -> Prompt | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.err(node, f"{where}: a prompt is an object of language -> words")
            return None
        out: Prompt = {}
        for lang, words in value.items():
            problem = words_problem(words)
            if problem:
                self.err(node, f"{where}: {lang}: {problem}")
                continue
            if words.strip():
                out[str(lang)] = words.strip()
        return out

    def action(self, data: Any, node: str | None, where: str) -> Action | None:
        if not isinstance(data, dict):
            self.err(node, f"{where}: an action is an object with an \"action\" key")
            return None
        kind = data.get("action")
        if kind not in ACTIONS:
            self.err(node, f"{where}: unknown action {kind!r} (one of {', '.join(ACTIONS)})")
            return None
        strings: dict[str, str | None] = {}
        for key in ("node", "queue", "service", "number"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                self.err(node, f"{where}: {key} must be text, got {value!r}")
                value = None
            strings[key] = value or None
        if kind != "case_status":
            return Action(kind=kind, prompt=self.prompt(data.get("prompt"), node, where),
                          node=strings["node"], queue=strings["queue"],
                          service=strings["service"], number=strings["number"])
        prompts = {}
        for key in CASE_STATUS_PROMPTS:
            p = self.prompt(data.get(key), node, f"{where}: {key}")
            if p is not None:
                prompts[key] = p
        status_prompts: dict[str, Prompt] = {}
        raw_status = data.get("status_prompts", {})
        if not isinstance(raw_status, dict):
            self.err(node, f"{where}: status_prompts must be an object of status -> prompt")
            raw_status = {}
        for status, value in raw_status.items():
            if status not in STATUSES:
                self.err(node, f"{where}: status_prompts: unknown status {status!r}")
                continue
            p = self.prompt(value, node, f"{where}: status_prompts.{status}")
            if p is not None:
                status_prompts[status] = p
        operator = None
        if data.get("operator") is not None:
            operator = self.action(data["operator"], node, f"{where}: operator")
        max_digits = self.int_field(data, "max_digits", 6, node)
        timeout = data.get("timeout_ms")
        timeout_ms = self.int_field(data, "timeout_ms", 5000, node) if timeout is not None else None
        readback = data.get("readback", True)
        if not isinstance(readback, bool):
            self.err(node, f"{where}: readback must be true or false")
            readback = True
        return Action(kind=kind, prompt=prompts.get("prompt"), max_digits=max_digits,
                      timeout_ms=timeout_ms, readback=readback, prompts=prompts,
                      status_prompts=status_prompts, operator=operator, **strings)

    def parse(self, data: Any, general_queue: str) -> Menu | None:
        if not isinstance(data, dict):
            self.err(None, "a menu is a JSON object")
            return None
        name = data.get("name", "")
        if not isinstance(name, str):
            self.err(None, "name must be text")
            name = ""
        langs = data.get("languages")
        if (not isinstance(langs, list) or not langs
                or not all(isinstance(x, str) and LANG_RE.match(x) for x in langs)):
            self.err(None, "languages must be a non-empty list of language codes like \"en\"")
            langs = ["en"]
        if len(set(langs)) != len(langs):
            self.err(None, "languages lists a language twice")
        default = data.get("default_language", langs[0])
        if default not in langs:
            self.err(None, f"default_language {default!r} is not one of the languages")
            default = langs[0]
        language_menu = None
        lm = data.get("language_menu")
        if lm is not None:
            lm_prompt = lm.get("prompt") if isinstance(lm, dict) else None
            if isinstance(lm_prompt, str):  # one text for every language
                lm_prompt = {default: lm_prompt}
            lm_words = (self.prompt(lm_prompt, None, "language_menu")
                        if isinstance(lm_prompt, dict) else None)
            if (not isinstance(lm, dict) or not lm_words
                    or not isinstance(lm.get("options"), dict)):
                self.err(None, "language_menu needs a prompt (words) and options "
                               "(digit -> language)")
            else:
                opts = {}
                for digit, lang in lm["options"].items():
                    if not DIGIT_RE.match(str(digit)) or len(str(digit)) != 1:
                        self.err(None, f"language_menu: {digit!r} is not a single key")
                    elif lang not in langs:
                        self.err(None, f"language_menu: digit {digit} picks {lang!r}, "
                                       "which is not one of the languages")
                    else:
                        opts[str(digit)] = lang
                language_menu = LanguageMenu(lm_words, opts,
                                             self.int_field(lm, "timeout_ms", 4000, None))
        timeout = self.int_field(data, "timeout_ms", 5000, None)
        retries = self.int_field(data, "retries", 3, None)
        max_digits = self.int_field(data, "max_digits", 1, None)
        prompts: dict[str, Prompt] = {}
        for key in MENU_PROMPTS:
            p = self.prompt(data.get(key), None, key)
            if p is not None:
                prompts[key] = p
        after = (self.action(data["after_retries"], None, "after_retries")
                 if data.get("after_retries") is not None else None)
        after = after or Action(kind="queue", queue=general_queue)
        nodes: dict[str, Node] = {}
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, list) or not raw_nodes:
            self.err(None, "nodes must be a non-empty list")
            raw_nodes = []
        for index, raw in enumerate(raw_nodes):
            if not isinstance(raw, dict):
                self.err(None, f"nodes[{index}] is not an object")
                continue
            node_id = raw.get("id")
            if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
                self.err(None, f"nodes[{index}]: id {node_id!r} must be 1-60 letters, digits, "
                               "_ . -")
                continue
            if node_id in nodes:
                self.err(node_id, f"two nodes have the id {node_id!r}")
                continue
            prompt = self.prompt(raw.get("prompt"), node_id, "prompt")
            if prompt is None:
                self.err(node_id, "prompt is missing")
            node_max = self.int_field(raw, "max_digits", max_digits, node_id)
            options: list[Option] = []
            raw_opts = raw.get("options", [])
            if not isinstance(raw_opts, list):
                self.err(node_id, "options must be a list")
                raw_opts = []
            for o_index, opt in enumerate(raw_opts):
                digit = opt.get("digit") if isinstance(opt, dict) else None
                if not isinstance(digit, str) or not DIGIT_RE.match(digit):
                    self.err(node_id, f"option {o_index + 1}: digit {digit!r} must be keys "
                                      "0-9, * or #")
                    continue
                if len(digit) > node_max:
                    self.err(node_id, f"option {digit}: longer than max_digits ({node_max})")
                action = self.action(opt, node_id, f"option {digit}")
                if action is not None:
                    options.append(Option(digit, action))
            node_after = (self.action(raw["after_retries"], node_id, "after_retries")
                          if raw.get("after_retries") is not None else None)
            nodes[node_id] = Node(
                id=node_id,
                prompt=prompt or {},
                options=tuple(options),
                timeout_ms=self.int_field(raw, "timeout_ms", timeout, node_id),
                retries=self.int_field(raw, "retries", retries, node_id),
                max_digits=node_max,
                invalid_prompt=self.prompt(raw.get("invalid_prompt"), node_id, "invalid_prompt"),
                after_retries=node_after or after,
            )
        start = data.get("start", raw_nodes[0].get("id") if raw_nodes and isinstance(
            raw_nodes[0], dict) else None)
        if not isinstance(start, str) or start not in nodes:
            self.err(None, f"start {start!r} is not a node")
        if self.problems:
            return None
        return Menu(
            name=name,
            languages=tuple(langs),
            default_language=default,
            language_menu=language_menu,
            start=str(start),
            nodes=nodes,
            prompts=prompts,
            after_retries=after,
        )


def words_problem(words: Any) -> str | None:
    """Why `words` cannot be a prompt's text (None: fine; empty is fine here, validate() says
    which language lacks words)."""
    if not isinstance(words, str):
        return f"{words!r} is not text"
    if len(words) > WORDS_MAX:
        return f"the words are {len(words)} characters long; at most {WORDS_MAX}"
    if _CONTROL.search(words):
        return "the words contain control characters"
    return None


def parse_menu(data: Any, general_queue: str = "general-311") -> tuple[Menu | None, list[Problem]]:
    """The typed menu, or None with the schema problems."""
    parser = _Parser()
    menu = parser.parse(data, general_queue)
    return menu, parser.problems


def load_menu(data: Any, general_queue: str = "general-311") -> Menu:
    """For the engine: a playable menu or `MenuError` (schema problems only)."""
    menu, problems = parse_menu(data, general_queue)
    if menu is None:
        raise MenuError(problems)
    return menu


# --- validation --------------------------------------------------------------------------------


def _node_actions(node: Node) -> Iterable[tuple[str, Action]]:
    for opt in node.options:
        yield f"option {opt.digit}", opt.action
        if opt.action.operator is not None:
            yield f"option {opt.digit}: operator", opt.action.operator
    yield "after_retries", node.after_retries


def validate(
    data: Any,
    queues: set[str],
    services: set[str],
    languages: Iterable[str] | None = None,
    *,
    general_queue: str = "general-311",
) -> list[Problem]:
    """Every problem that keeps a menu from being published, each tied to its node (or None for
    the menu as a whole). An empty list means the menu may become active."""
    menu, problems = parse_menu(data, general_queue)
    if menu is None:
        return problems
    required = list(dict.fromkeys(languages)) if languages is not None else list(menu.languages)
    for lang in required:
        if lang not in menu.languages:
            problems.append(Problem(None, f"language {lang!r} is required but not in languages"))
    def check_prompt(node_id: str | None, where: str, prompt: Prompt | None) -> None:
        if prompt is None:
            return
        missing = [lang for lang in required if not prompt.get(lang)]
        if missing:
            problems.append(Problem(node_id, f"{where}: no words in {', '.join(missing)}"))

    if len(menu.languages) > 1:
        if menu.language_menu is None:
            problems.append(Problem(None, "several languages need a language_menu"))
        else:
            missing = set(menu.languages) - set(menu.language_menu.options.values())
            if missing:
                problems.append(Problem(None, "language_menu offers no digit for "
                                              + ", ".join(sorted(missing))))
            check_prompt(None, "language_menu", menu.language_menu.prompt)

    for key, prompt in menu.prompts.items():
        check_prompt(None, key, prompt)

    def check_action(node_id: str | None, where: str, action: Action) -> None:
        kind = action.kind
        if kind == "submenu":
            if not action.node:
                problems.append(Problem(node_id, f"{where}: submenu without a target node"))
            elif action.node not in menu.nodes:
                problems.append(Problem(node_id, f"{where}: submenu {action.node!r} does not "
                                                 "exist"))
        elif kind == "queue":
            if not action.queue:
                problems.append(Problem(node_id, f"{where}: routes to no queue"))
            elif action.queue not in queues:
                problems.append(Problem(node_id, f"{where}: queue {action.queue!r} does not "
                                                 "exist"))
            if action.service and action.service not in services:
                problems.append(Problem(node_id, f"{where}: service type {action.service!r} "
                                                 "does not exist"))
        elif kind in ("message_hangup", "transfer_external"):
            if not action.prompt:
                problems.append(Problem(node_id, f"{where}: {kind} needs a prompt"))
            if action.number is not None and not NUMBER_RE.match(action.number):
                problems.append(Problem(node_id, f"{where}: {action.number!r} is not a "
                                                 "number to dial"))
        elif kind == "case_status":
            if not action.prompt:
                problems.append(Problem(node_id, f"{where}: case_status needs a prompt"))
            for name, prompt in action.prompts.items():
                check_prompt(node_id, f"{where}: {name}", prompt)
            for status, prompt in action.status_prompts.items():
                check_prompt(node_id, f"{where}: status_prompts.{status}", prompt)
            if action.operator is None:
                problems.append(Problem(node_id, f"{where}: case_status needs an operator "
                                                 "action (where callers go for help)"))
            elif action.operator.kind != "queue":
                problems.append(Problem(node_id, f"{where}: operator must be a queue action"))
        if kind != "case_status":
            check_prompt(node_id, where, action.prompt)
        if where.endswith("after_retries") and kind in ("repeat", "back"):
            problems.append(Problem(node_id, f"{where}: {kind} would retry forever; route "
                                             "the caller somewhere"))

    check_action(None, "after_retries", menu.after_retries)
    for node in menu.nodes.values():
        check_prompt(node.id, "prompt", node.prompt)
        check_prompt(node.id, "invalid_prompt", node.invalid_prompt)
        if not node.options:
            problems.append(Problem(node.id, "has no options: a caller here can go nowhere"))
        seen: set[str] = set()
        for opt in node.options:
            if opt.digit in seen:
                problems.append(Problem(node.id, f"digit {opt.digit} is used twice"))
            seen.add(opt.digit)
            if node.id == menu.start and opt.action.kind == "back":
                problems.append(Problem(node.id, f"option {opt.digit}: back from the first "
                                                 "menu goes nowhere"))
        for where, action in _node_actions(node):
            if where == "after_retries" and action is menu.after_retries:
                continue  # the menu-wide one, checked once above
            check_action(node.id, where, action)

    # every node reachable from the start
    edges = {
        node.id: {a.node for _, a in _node_actions(node) if a.kind == "submenu" and a.node}
        for node in menu.nodes.values()
    }
    if menu.after_retries.kind == "submenu" and menu.after_retries.node:
        for targets in edges.values():
            targets.add(menu.after_retries.node)
    reached = {menu.start}
    todo = [menu.start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target in menu.nodes and target not in reached:
                reached.add(target)
                todo.append(target)
    for node_id in menu.nodes:
        if node_id not in reached:
            problems.append(Problem(node_id, "is not reachable from the start node "
                                             f"{menu.start!r}"))

    # no loop without an exit: from every node, some key press must eventually leave the menu
    can_exit: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in menu.nodes.values():
            if node.id in can_exit:
                continue
            for opt in node.options:
                a = opt.action
                if (a.kind in EXITS or (a.kind == "submenu" and a.node in can_exit)
                        or (a.kind == "back" and node.id != menu.start)):
                    can_exit.add(node.id)
                    changed = True
                    break
    for node in menu.nodes.values():
        if node.id not in can_exit and node.options and node.id in reached:
            loop = sorted(t for t in edges[node.id] if t not in can_exit and t in menu.nodes)
            detail = f" (it only leads to {', '.join(loop)})" if loop else ""
            problems.append(Problem(node.id, "loop without an exit: no key press here ever "
                                             f"reaches a queue, a message or self-service{detail}"))
    return problems


def references(data: Any) -> tuple[set[str], set[str]]:
    """The queues and service types a menu routes to (for the admin's "used by" lists)."""
    menu, _ = parse_menu(data)
    queues: set[str] = set()
    services: set[str] = set()
    if menu is None:
        return queues, services
    actions = [menu.after_retries]
    for node in menu.nodes.values():
        actions.extend(a for _, a in _node_actions(node))
    for a in actions:
        if a.queue:
            queues.add(a.queue)
        if a.service:
            services.add(a.service)
    return queues, services


# --- the default 3-1-1 menu ----------------------------------------------------------------------

# What a caller hears, in English and Spanish (README "The 3-1-1 IVR" lists them).
DEFAULT_WORDS: dict[str, Prompt] = {
    "language": {"en": "For English, press 1.", "es": "Para español, oprima 2."},
    "invalid": {"en": "Sorry, that is not a valid option.",
                "es": "Lo sentimos, esa opción no es válida."},
    "closed": {"en": "Our office is closed right now. We are open Monday to Friday, "
                     "from 8 in the morning to 5 in the afternoon.",
               "es": "Nuestra oficina está cerrada en este momento. Atendemos de lunes a "
                     "viernes, de 8 de la mañana a 5 de la tarde."},
    "leave_request": {"en": "To leave a request so that we call you back, press 1.",
                      "es": "Para dejar una solicitud y que le devolvamos la llamada, "
                            "oprima 1."},
    "request_taken": {"en": "Thank you. We have your request. Its number ends in",
                      "es": "Gracias. Tenemos su solicitud. Su número termina en"},
    "goodbye": {"en": "Thank you for calling 3-1-1. Goodbye.",
                "es": "Gracias por llamar al 3-1-1. Adiós."},
    "main": {"en": "Welcome to 3-1-1 city services. For a missed garbage pickup, press 1. "
                   "To report a pothole, press 2. For anything else, press 3. For the status "
                   "of a request, press 9. For an emergency, press 7. To speak to an operator, "
                   "press 0. To hear these options again, press star.",
             "es": "Bienvenido a los servicios municipales 3-1-1. Si no recogieron su basura, "
                   "oprima 1. Para reportar un bache, oprima 2. Para cualquier otro asunto, "
                   "oprima 3. Para el estado de una solicitud, oprima 9. Para una emergencia, "
                   "oprima 7. Para hablar con un operador, oprima 0. Para escuchar estas "
                   "opciones otra vez, oprima asterisco."},
    "case_number": {"en": "Please key your case number, then press pound.",
                    "es": "Por favor, marque su número de caso y luego la tecla numeral."},
    "case_not_found": {"en": "We could not find that case.",
                       "es": "No encontramos ese caso."},
    "open_case": {"en": "For the status of your request ending in",
                  "es": "Para el estado de su solicitud que termina en"},
    "other_case": {"en": "press 1. To key another case number, press 2.",
                   "es": "oprima 1. Para marcar otro número de caso, oprima 2."},
    "expected": {"en": "It is expected to be resolved by",
                 "es": "Esperamos resolverla para el"},
    "operator": {"en": "To speak to an operator, press 0.",
                 "es": "Para hablar con un operador, oprima 0."},
    "status_open": {"en": "Your request is open.", "es": "Su solicitud está abierta."},
    "status_acknowledged": {"en": "The agency has received your request.",
                            "es": "La agencia recibió su solicitud."},
    "status_in_progress": {"en": "Your request is being worked on.",
                           "es": "Su solicitud está en proceso."},
    "status_closed": {"en": "Your request is closed.", "es": "Su solicitud está cerrada."},
    "emergency": {"en": "If this is an emergency, hang up and dial 9 1 1.",
                  "es": "Si es una emergencia, cuelgue y marque 9 1 1."},
}


def _p(name: str) -> Prompt:
    return dict(DEFAULT_WORDS[name])


def default_menu(general_queue: str = "general-311") -> dict[str, Any]:
    """English and Spanish; 1 sanitation, 2 potholes, 3 general, 9 case status, 0 operator,
    7 emergencies message. The words are `DEFAULT_WORDS`; publishing (or `contactcenter prompts
    build`) turns them into sound files."""
    operator = {"action": "queue", "queue": general_queue, "service": "general-inquiry"}
    return {
        "name": "3-1-1 main menu",
        "languages": ["en", "es"],
        "default_language": "en",
        "language_menu": {"prompt": _p("language"), "options": {"1": "en", "2": "es"},
                          "timeout_ms": 4000},
        "start": "main",
        "timeout_ms": 5000,
        "retries": 3,
        "max_digits": 1,
        "invalid_prompt": _p("invalid"),
        "after_retries": {"action": "queue", "queue": general_queue},
        "closed_prompt": _p("closed"),
        "leave_request_prompt": _p("leave_request"),
        "request_taken_prompt": _p("request_taken"),
        "goodbye_prompt": _p("goodbye"),
        "nodes": [
            {
                "id": "main",
                "prompt": _p("main"),
                "options": [
                    {"digit": "1", "action": "queue", "queue": "sanitation",
                     "service": "missed-pickup"},
                    {"digit": "2", "action": "queue", "queue": "potholes", "service": "pothole"},
                    {"digit": "3", "action": "queue", "queue": general_queue,
                     "service": "general-inquiry"},
                    {"digit": "9", "action": "case_status",
                     "prompt": _p("case_number"),
                     "max_digits": 6,
                     "readback": True,
                     "not_found_prompt": _p("case_not_found"),
                     "open_case_prompt": _p("open_case"),
                     "other_case_prompt": _p("other_case"),
                     "expected_prompt": _p("expected"),
                     "operator_prompt": _p("operator"),
                     "status_prompts": {s: _p(f"status_{s}") for s in STATUSES},
                     "operator": operator},
                    {"digit": "7", "action": "transfer_external",
                     "prompt": _p("emergency")},
                    {"digit": "0", "action": "queue", "queue": general_queue},
                    {"digit": "*", "action": "repeat"},
                ],
            }
        ],
    }
