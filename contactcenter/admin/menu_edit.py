"""Pure edits of a draft menu's JSON (the shape of `ivr/menu.py`): one function per editor
action, each returning a new dict and raising `EditError(field, message)` for malformed input.

Only the shape of what was typed is checked here (a key, a node id, a prompt's words); whether
the menu as a whole can be published is `ivr.menu.validate`'s job, shown next to each node.
Keys this editor does not know are kept as they are.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..ivr.menu import ACTIONS, DIGIT_RE, LANG_RE, LIMITS, NODE_ID_RE, NUMBER_RE, words_problem

ACTION_LABELS = {
    "submenu": "go to a submenu",
    "queue": "route to a queue",
    "case_status": "case status (self-service)",
    "message_hangup": "play a message and hang up",
    "transfer_external": "play a message / transfer to an outside number",
    "repeat": "repeat this menu",
    "back": "back to the previous menu",
}
# keys an option form owns; anything else on the option (case_status prompts...) is kept
OPTION_KEYS = ("digit", "action", "node", "queue", "service", "prompt", "number")


class EditError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def languages(data: Mapping[str, Any]) -> list[str]:
    langs = data.get("languages")
    if isinstance(langs, list) and all(isinstance(x, str) for x in langs) and langs:
        return list(langs)
    return ["en"]


def nodes(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("nodes")
    return [n for n in raw if isinstance(n, dict)] if isinstance(raw, list) else []


def find_node(data: Mapping[str, Any], node_id: str) -> dict[str, Any]:
    for node in nodes(data):
        if node.get("id") == node_id:
            return node
    raise EditError("node", f"there is no node {node_id!r} in this draft")


def _options(node: dict[str, Any]) -> list[Any]:
    opts = node.get("options")
    if not isinstance(opts, list):
        opts = node["options"] = []
    return opts


def _option_at(node: dict[str, Any], index: int) -> dict[str, Any]:
    opts = _options(node)
    opt = opts[index] if 0 <= index < len(opts) else None
    if not isinstance(opt, dict):
        raise EditError("option", f"node {node.get('id')!r} has no option number {index + 1}")
    return opt


def parse_prompt(form: Mapping[str, Any], prefix: str, langs: list[str]) -> dict[str, str]:
    """Fields `<prefix>_<lang>` -> {lang: words}; empty ones are left out (validate() then says
    which language is missing)."""
    out: dict[str, str] = {}
    for lang in langs:
        value = " ".join(str(form.get(f"{prefix}_{lang}", "") or "").split())
        if not value:
            continue
        problem = words_problem(value)
        if problem:
            raise EditError(f"{prefix}_{lang}", problem)
        out[lang] = value
    return out


def _int(form: Mapping[str, Any], name: str, limit: str, *, optional: bool) -> int | None:
    raw = str(form.get(name, "") or "").strip()
    if not raw and optional:
        return None
    lo, hi = LIMITS[limit]
    try:
        value = int(raw)
    except ValueError:
        raise EditError(name, f"{name} must be a whole number") from None
    if not lo <= value <= hi:
        raise EditError(name, f"{name} must be between {lo} and {hi}")
    return value


def _node_id(value: Any, field: str = "id") -> str:
    node_id = str(value or "").strip()
    if not NODE_ID_RE.fullmatch(node_id):
        raise EditError(field, "a node id is 1-60 letters, digits, _ . - (e.g. sanitation)")
    return node_id


# --- menu settings -------------------------------------------------------------------------------


def update_settings(data: Mapping[str, Any], form: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(data))
    name = str(form.get("name", "") or "").strip()
    if not name or len(name) > 200:
        raise EditError("name", "the menu needs a name (at most 200 characters)")
    out["name"] = name
    langs = [x.strip() for x in str(form.get("languages", "") or "").split(",") if x.strip()]
    if not langs or not all(LANG_RE.fullmatch(x) for x in langs):
        raise EditError("languages", "languages are codes separated by commas, e.g. en, es")
    out["languages"] = langs
    default = str(form.get("default_language", "") or "").strip() or langs[0]
    if default not in langs:
        raise EditError("default_language", f"{default!r} is not one of {', '.join(langs)}")
    out["default_language"] = default
    for key in ("timeout_ms", "retries"):
        value = _int(form, key, key, optional=False)
        out[key] = value
    out["invalid_prompt"] = parse_prompt(form, "invalid_prompt", langs)
    queue = str(form.get("after_retries_queue", "") or "").strip()
    if not queue:
        raise EditError("after_retries_queue", "choose where callers go after the last retry")
    out["after_retries"] = {"action": "queue", "queue": queue}
    lm_prompt = parse_prompt(form, "language_prompt", langs)
    if lm_prompt:
        options: dict[str, str] = {}
        for pair in str(form.get("language_keys", "") or "").split(","):
            digit, sep, lang = (p.strip() for p in pair.partition("="))
            if not pair.strip():
                continue
            if not sep or len(digit) != 1 or not DIGIT_RE.fullmatch(digit) or lang not in langs:
                raise EditError("language_keys", "write key=language pairs for the languages "
                                f"above, e.g. 1=en, 2=es (got {pair.strip()!r})")
            options[digit] = lang
        lm = dict(out.get("language_menu") or {})
        lm.update({"prompt": lm_prompt, "options": options})
        out["language_menu"] = lm
    else:
        out.pop("language_menu", None)
    return out


# --- nodes ---------------------------------------------------------------------------------------


def add_node(data: Mapping[str, Any], form: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    out = copy.deepcopy(dict(data))
    node_id = _node_id(form.get("id"))
    if any(n.get("id") == node_id for n in nodes(out)):
        raise EditError("id", f"a node {node_id!r} already exists")
    node: dict[str, Any] = {"id": node_id,
                            "prompt": parse_prompt(form, "prompt", languages(out)),
                            "options": []}
    if not isinstance(out.get("nodes"), list):
        out["nodes"] = []
    out["nodes"].append(node)
    return out, node_id


def update_node(data: Mapping[str, Any], node_id: str,
                form: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    out = copy.deepcopy(dict(data))
    node = find_node(out, node_id)
    langs = languages(out)
    new_id = _node_id(form.get("id"))
    if new_id != node_id:
        if any(n.get("id") == new_id for n in nodes(out)):
            raise EditError("id", f"a node {new_id!r} already exists")
        rename_node(out, node_id, new_id)
    node["prompt"] = parse_prompt(form, "prompt", langs)
    invalid = parse_prompt(form, "invalid_prompt", langs)
    if invalid:
        node["invalid_prompt"] = invalid
    else:
        node.pop("invalid_prompt", None)
    for key in ("timeout_ms", "retries"):
        value = _int(form, key, key, optional=True)
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
    return out, new_id


def rename_node(data: dict[str, Any], old: str, new: str) -> None:
    """Rename in place, following every submenu reference and the start."""
    for node in nodes(data):
        if node.get("id") == old:
            node["id"] = new
        for opt in _options(node):
            if isinstance(opt, dict) and opt.get("action") == "submenu" and opt.get("node") == old:
                opt["node"] = new
    if data.get("start") == old:
        data["start"] = new


def referrers(data: Mapping[str, Any], node_id: str) -> list[str]:
    """'node option N' for every option that leads to `node_id`."""
    out = []
    for node in nodes(data):
        for opt in _options(node):
            if isinstance(opt, dict) and opt.get("action") == "submenu" \
                    and opt.get("node") == node_id:
                out.append(f"{node.get('id')} key {opt.get('digit')}")
    return out


def delete_node(data: Mapping[str, Any], node_id: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(data))
    find_node(out, node_id)
    start = out.get("start") or (nodes(out)[0].get("id") if nodes(out) else None)
    if node_id == start:
        raise EditError("node", "the start menu cannot be deleted")
    used = referrers(out, node_id)
    if used:
        raise EditError("node", f"node {node_id!r} is still used by: {', '.join(used)}; "
                        "change or delete those options first")
    out["nodes"] = [n for n in out["nodes"] if not (isinstance(n, dict)
                                                   and n.get("id") == node_id)]
    return out


# --- options -------------------------------------------------------------------------------------


def save_option(data: Mapping[str, Any], node_id: str, index: int | None,
                form: Mapping[str, Any]) -> dict[str, Any]:
    """Add (index None) or replace an option from the option form."""
    out = copy.deepcopy(dict(data))
    node = find_node(out, node_id)
    langs = languages(out)
    digit = str(form.get("digit", "") or "").strip()
    if not DIGIT_RE.fullmatch(digit):
        raise EditError("digit", "the key must be 0-9, * or # (up to 4 keys)")
    kind = str(form.get("action", "") or "").strip()
    if kind not in ACTIONS:
        raise EditError("action", "choose what the key does")
    previous = _option_at(node, index) if index is not None else {}
    option: dict[str, Any] = {k: v for k, v in previous.items() if k not in OPTION_KEYS}
    if kind != previous.get("action"):
        option = {}  # another action: its old extras no longer apply
    option.update({"digit": digit, "action": kind})
    if kind == "submenu":
        target = str(form.get("node", "") or "").strip()
        new_node = str(form.get("new_node", "") or "").strip()
        if new_node:
            target = _node_id(new_node, "new_node")
            if not any(n.get("id") == target for n in nodes(out)):
                out["nodes"].append({"id": target, "prompt": {}, "options": []})
        if not target:
            raise EditError("node", "choose the submenu, or name a new one")
        option["node"] = target
    elif kind == "queue":
        queue = str(form.get("queue", "") or "").strip()
        if not queue:
            raise EditError("queue", "choose the queue")
        option["queue"] = queue
        service = str(form.get("service", "") or "").strip()
        if service:
            option["service"] = service
    elif kind in ("message_hangup", "transfer_external", "case_status"):
        option["prompt"] = parse_prompt(form, "prompt", langs)
        number = str(form.get("number", "") or "").strip()
        if kind == "transfer_external" and number:
            if not NUMBER_RE.fullmatch(number):
                raise EditError("number", "a number to dial: digits, * # + only")
            option["number"] = number
        if kind == "case_status" and "operator" not in option:
            general = (out.get("after_retries") or {}).get("queue") or "general-311"
            option.update({"max_digits": 6, "readback": True,
                           "operator": {"action": "queue", "queue": general}})
    opts = _options(node)
    if index is None:
        opts.append(option)
    else:
        opts[index] = option
    return out


def delete_option(data: Mapping[str, Any], node_id: str, index: int) -> dict[str, Any]:
    out = copy.deepcopy(dict(data))
    node = find_node(out, node_id)
    _option_at(node, index)
    del node["options"][index]
    return out


def move_option(data: Mapping[str, Any], node_id: str, index: int,
                direction: str) -> dict[str, Any]:
    """Up or down within its node (the order callers hear them listed in the editor)."""
    out = copy.deepcopy(dict(data))
    node = find_node(out, node_id)
    _option_at(node, index)
    other = index - 1 if direction == "up" else index + 1
    opts = node["options"]
    if 0 <= other < len(opts):
        opts[index], opts[other] = opts[other], opts[index]
    return out


def move_option_to(data: Mapping[str, Any], node_id: str, index: int,
                   target: str) -> dict[str, Any]:
    """Move an option (and the submenu it leads to) under another node."""
    out = copy.deepcopy(dict(data))
    node = find_node(out, node_id)
    option = _option_at(node, index)
    dest = find_node(out, target)
    if dest is node:
        return out
    if option.get("action") == "submenu" and option.get("node") == target:
        raise EditError("target", "an option cannot move into the submenu it leads to")
    del node["options"][index]
    _options(dest).append(option)
    return out


def outline(data: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Trees for display, the start node's first: {"id", "node", "options": [{"index", "option",
    "child": tree | None, "seen": bool}]}. Each node appears once (a later reference is marked
    "seen"); nodes the start never reaches get trees of their own, listed as unreachable."""
    by_id = {n["id"]: n for n in nodes(data) if isinstance(n.get("id"), str)}
    start = data.get("start") if data.get("start") in by_id else next(iter(by_id), None)
    shown: set[str] = set()

    def visit(node_id: str) -> dict[str, Any]:
        shown.add(node_id)
        node = by_id[node_id]
        tree: dict[str, Any] = {"id": node_id, "node": node, "options": []}
        for i, opt in enumerate(_options(node)):
            if not isinstance(opt, dict):
                continue
            entry: dict[str, Any] = {"index": i, "option": opt, "child": None, "seen": False}
            tree["options"].append(entry)
            target = opt.get("node") if opt.get("action") == "submenu" else None
            if isinstance(target, str) and target in by_id:
                if target in shown:
                    entry["seen"] = True
                else:
                    entry["child"] = visit(target)
        return tree

    trees = [visit(start)] if start is not None else []
    unreachable = [i for i in by_id if i not in shown]
    for node_id in unreachable:
        if node_id not in shown:
            trees.append(visit(node_id))
    return trees, unreachable


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What an edit changed, for the audit log: menu keys [old, new] and nodes before/after
    (None when added or deleted); unchanged parts are left out."""
    out: dict[str, Any] = {}
    keys = (set(before) | set(after)) - {"nodes"}
    settings = {k: [before.get(k), after.get(k)] for k in sorted(keys)
                if before.get(k) != after.get(k)}
    if settings:
        out["settings"] = settings
    old = {n.get("id"): n for n in nodes(before)}
    new = {n.get("id"): n for n in nodes(after)}
    changed = {str(i): {"before": old.get(i), "after": new.get(i)}
               for i in list(old) + [i for i in new if i not in old]
               if old.get(i) != new.get(i)}
    if changed:
        out["nodes"] = changed
    return out
