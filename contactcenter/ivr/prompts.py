"""Every prompt of a menu as a *slot*: a stable id, a label for people, its words per language.
Pure functions over the menu JSON (no I/O): the prompts feature synthesizes, records and
publishes by slot; the engine plays a published version through `apply_sounds`.

Slot ids follow the menu's structure, so a recording stays with its prompt from one draft to the
next: `language` (the language menu), `menu.<key>` (the menu-wide prompts, e.g.
`menu.goodbye_prompt`), `<node>` (a node's menu prompt), `<node>.invalid`, `<node>.<digit>`
(an option's message, or a case-status option's "key your case number"),
`<node>.<digit>.<key>` (the other case-status prompts, `status.<status>` for the statuses),
`<node>.after_retries`, `menu.after_retries`.

A published version stores `sounds`: {slot: {lang: {"file": "311/<name>-<hash>", "sha256": ...}}}.
Recordings live in the menu itself, under "recordings": {"<slot>/<lang>": {"sha256": ...,
"words": the words it was recorded for, "filename": ..., "at": ISO time}}; a recording whose
words differ from the prompt's words now is *stale* (the words changed after it was recorded).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .menu import CASE_STATUS_PROMPTS, MENU_PROMPTS, PROMPT_RE, Problem

_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Slot:
    id: str
    label: str  # for people: "menu main", "option 9: not found prompt"
    node_id: str | None  # the node it belongs to (None: the menu as a whole)
    words: dict[str, str]  # language -> words (as stored: may lack a language)

    @property
    def slug(self) -> str:
        """The base of its sound file names: letters, digits and dashes."""
        return _SLUG.sub("-", self.id.lower()).strip("-")[:60] or "prompt"


def _words(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        return {"": value}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _refs(data: Any) -> Iterator[tuple[str, str, str | None, dict[str, Any], str]]:
    """(slot id, label, node id, the dict holding the prompt, its key) for every prompt."""
    if not isinstance(data, dict):
        return
    lm = data.get("language_menu")
    if isinstance(lm, dict) and lm.get("prompt") is not None:
        yield "language", "language menu", None, lm, "prompt"
    for key in MENU_PROMPTS:
        if data.get(key) is not None:
            yield f"menu.{key}", key.replace("_", " "), None, data, key
    after = data.get("after_retries")
    if isinstance(after, dict) and after.get("prompt") is not None:
        yield "menu.after_retries", "after the last retry", None, after, "prompt"
    nodes = data.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict) or not isinstance(node.get("id"), str):
            continue
        nid = node["id"]
        if node.get("prompt") is not None:
            yield nid, f"menu {nid}", nid, node, "prompt"
        if node.get("invalid_prompt") is not None:
            yield f"{nid}.invalid", f"menu {nid}: invalid input", nid, node, "invalid_prompt"
        n_after = node.get("after_retries")
        if isinstance(n_after, dict) and n_after.get("prompt") is not None:
            yield f"{nid}.after_retries", f"menu {nid}: after the last retry", nid, n_after, \
                "prompt"
        options = node.get("options")
        for opt in options if isinstance(options, list) else []:
            if not isinstance(opt, dict) or not isinstance(opt.get("digit"), str):
                continue
            base = f"{nid}.{opt['digit']}"
            where = f"menu {nid}, key {opt['digit']}"
            if opt.get("prompt") is not None:
                yield base, where, nid, opt, "prompt"
            if opt.get("action") == "case_status":
                for key in CASE_STATUS_PROMPTS[1:]:
                    if opt.get(key) is not None:
                        yield (f"{base}.{key.removesuffix('_prompt')}",
                               f"{where}: {key.removesuffix('_prompt').replace('_', ' ')}",
                               nid, opt, key)
                statuses = opt.get("status_prompts")
                if isinstance(statuses, dict):
                    for status in list(statuses):
                        if statuses.get(status) is not None:
                            yield (f"{base}.status.{status}", f"{where}: status {status}", nid,
                                   statuses, status)
            operator = opt.get("operator")
            if isinstance(operator, dict) and operator.get("prompt") is not None:
                yield f"{base}.operator", f"{where}: operator", nid, operator, "prompt"


def slots(data: Any) -> list[Slot]:
    """Every prompt of the menu, in the order a caller meets them (roughly)."""
    out: list[Slot] = []
    seen: set[str] = set()
    default = data.get("default_language", "en") if isinstance(data, dict) else "en"
    for slot_id, label, node_id, holder, key in _refs(data):
        if slot_id in seen:  # two options with one digit: validate() reports it
            continue
        seen.add(slot_id)
        words = _words(holder.get(key))
        if "" in words:  # one text for all languages (a legacy language menu)
            words = {str(default): words.pop("")}
        out.append(Slot(slot_id, label, node_id, words))
    return out


def find_slot(data: Any, slot_id: str) -> Slot | None:
    return next((s for s in slots(data) if s.id == slot_id), None)


def set_words(data: Any, slot_id: str, words: dict[str, str]) -> dict[str, Any]:
    """A copy of the menu with the slot's words replaced (empty texts are left out)."""
    out = copy.deepcopy(data)
    for sid, _, _, holder, key in _refs(out):
        if sid == slot_id:
            holder[key] = {lang: text for lang, text in words.items() if text}
            return dict(out)
    raise KeyError(slot_id)


def recordings(data: Any) -> dict[str, dict[str, Any]]:
    """"<slot>/<lang>" -> the recording's facts (sha256, words, filename, at)."""
    raw = data.get("recordings") if isinstance(data, dict) else None
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items()
            if isinstance(v, dict) and isinstance(v.get("sha256"), str)}


def recording_key(slot_id: str, lang: str) -> str:
    return f"{slot_id}/{lang}"


def stale_problem(slot: Slot, lang: str, recording: dict[str, Any]) -> Problem | None:
    """The problem of a recording made for other words than the prompt has now (None: current)."""
    if recording.get("words") == slot.words.get(lang, ""):
        return None
    return Problem(slot.node_id, (
        f"{slot.label}: the {lang} recording is older than its words (recorded for "
        f"“{str(recording.get('words', ''))[:60]}”): record it again or remove the recording"))


def recording_problems(data: Any) -> list[Problem]:
    """Stale recordings keep a menu from being published (shown next to their node). A
    recording of a prompt that no longer exists is ignored."""
    recs = recordings(data)
    out: list[Problem] = []
    for slot in slots(data):
        for lang in sorted(slot.words.keys() | {k.rpartition("/")[2] for k in recs
                                                 if k.rpartition("/")[0] == slot.id}):
            rec = recs.get(recording_key(slot.id, lang))
            if rec is not None and (problem := stale_problem(slot, lang, rec)):
                out.append(problem)
    return out


def apply_sounds(data: Any, sounds: dict[str, Any]) -> dict[str, Any]:
    """The menu as the engine plays it: each prompt's words replaced by the sound file published
    for it in each language. A slot without sounds keeps its texts (the engine then plays them
    as file names: a legacy menu)."""
    out = copy.deepcopy(data)
    for slot_id, _, _, holder, key in _refs(out):
        files = sounds.get(slot_id)
        if not isinstance(files, dict):
            continue
        prompt = {}
        for lang, entry in files.items():
            file = entry.get("file") if isinstance(entry, dict) else entry
            if isinstance(file, str) and file:
                prompt[str(lang)] = file
        if prompt:
            holder[key] = prompt
    return dict(out)


def placeholder_sounds(data: Any) -> dict[str, Any]:
    """For a version that has words but no published audio (seeded and never built, or
    published before prompts were words): a prompt whose text is already a sound file name
    (`311/en/main-menu`) plays that file; any other plays `311/<slot>`, a file no publish
    writes, so Asterisk reports it missing and the IVR counts it (/health degraded) instead of
    failing on words it cannot send as a file name."""
    out: dict[str, Any] = {}
    for slot in slots(data):
        for lang, words in slot.words.items():
            file = words if PROMPT_RE.match(words) else f"311/{slot.slug}"
            out.setdefault(slot.id, {})[lang] = {"file": file}
    return out


def sound_files(sounds: Any) -> set[tuple[str, str]]:
    """(language, file) of every sound a version (or an announcement) plays."""
    out: set[tuple[str, str]] = set()
    if not isinstance(sounds, dict):
        return out
    for files in sounds.values():
        if isinstance(files, dict):
            for lang, entry in files.items():
                file = entry.get("file") if isinstance(entry, dict) else None
                if isinstance(file, str):
                    out.add((str(lang), file))
    return out
