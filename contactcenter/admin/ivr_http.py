"""The IVR menu editor: versions, the outline editor on drafts, validation next to each node,
the preview walk, publish / roll back, export / import, and the announcement of the day."""

from __future__ import annotations

import copy
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..ivr import prompts as pslots
from ..ivr.menu import (
    LANG_RE,
    Problem,
    default_menu,
    load_menu_json,
    parse_menu,
    validate,
    words_problem,
)
from ..ivr.models import Announcement, MenuVersion
from ..ivr.preview import walk
from ..ivr.services import is_open
from ..keys import CLOCK, SESSIONS, SETTINGS
from ..prompts.audio import MAX_UPLOAD_BYTES, AudioError
from ..prompts.keys import PROMPTS
from ..prompts.voice import SpeechError
from ..queues.models import Queue, ServiceType
from ..web.auth import require_role, require_user
from . import ivr_services as ivs
from . import menu_edit
from .menu_edit import ACTION_LABELS, EditError

log = logging.getLogger(__name__)
admin_only = require_role("admin")
MAX_IMPORT_BYTES = 1_000_000


def _render(request: web.Request, template: str, context: dict[str, Any],
            status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(f"admin/{template}", request, context, status=status)


def _general(request: web.Request) -> str:
    return request.app[SETTINGS].general_queue


def _number(request: web.Request) -> int:
    raw = request.match_info["version"]
    if not raw.isdigit():
        raise web.HTTPNotFound(text="no such menu version")
    return int(raw)


async def _version_or_404(db: AsyncSession, number: int) -> MenuVersion:
    try:
        return await ivs.get_version(db, number)
    except ivs.VersionError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None


def _editor_url(number: int, **query: Any) -> str:
    q = {k: v for k, v in query.items() if v is not None and v != ""}
    return f"/admin/ivr/versions/{number}" + (f"?{urlencode(q)}" if q else "")


def group_problems(problems: list[Problem]) -> dict[str | None, list[str]]:
    out: dict[str | None, list[str]] = defaultdict(list)
    for p in problems:
        out[p.node_id].append(p.message)
    return dict(out)


# --- the versions page ---------------------------------------------------------------------------


async def _index_context(request: web.Request) -> dict[str, Any]:
    async with request.app[SESSIONS]() as db:
        rows = await ivs.versions(db)
        queues, services = await ivs.known(db)
        anns = await ivs.announcements(db)
    general = _general(request)
    counts = {r.version: len(validate(r.data, queues, services, general_queue=general))
              + len(pslots.recording_problems(r.data))
              for r in rows}
    return {"versions": rows, "problem_counts": counts, "announcements": anns,
            "now": request.app[CLOCK].now(), "import_problems": None,
            "tz": _zone(request), "zone": _zone(request).key,
            "message": request.query.get("msg"), "error": None}


@admin_only
async def ivr_index(request: web.Request) -> web.Response:
    return _render(request, "ivr_index.html", await _index_context(request))


@admin_only
async def new_draft(request: web.Request) -> web.Response:
    actor = require_user(request).username
    form = await request.post()
    source = str(form.get("from", "") or "")
    async with request.app[SESSIONS]() as db, db.begin():
        if source == "default":
            data, comment = default_menu(_general(request)), "from the default 3-1-1 menu"
        elif source.isdigit():
            try:
                src = await ivs.get_version(db, int(source))
            except ivs.VersionError as exc:
                raise web.HTTPNotFound(text=str(exc)) from None
            data, comment = src.data, f"from version {src.version}"
        else:
            active = await ivs.active_version(db)
            if active is None:
                data, comment = default_menu(_general(request)), "from the default 3-1-1 menu"
            else:
                data, comment = active.data, f"from version {active.version}"
        row = await ivs.create_draft(db, actor, data, comment=comment)
    raise web.HTTPFound(_editor_url(row.version))


# --- the editor ----------------------------------------------------------------------------------


async def _choices(request: web.Request) -> tuple[list[str], list[tuple[str, str]]]:
    async with request.app[SESSIONS]() as db:
        queues = list((await db.execute(select(Queue.name).order_by(Queue.name))).scalars())
        services = [(c, n) for c, n in (await db.execute(
            select(ServiceType.code, ServiceType.name).where(ServiceType.active.is_(True))
            .order_by(ServiceType.code))).all()]
    return queues, services


async def _editor(request: web.Request, number: int, *, errors: Mapping[str, str] | None = None,
                  values: Mapping[str, Any] | None = None, error: str | None = None,
                  status: int = 200, panel: dict[str, Any] | None = None) -> web.Response:
    async with request.app[SESSIONS]() as db:
        row = await _version_or_404(db, number)
        problems = await ivs.problems_of(db, row.data, _general(request))
    queues, services = await _choices(request)
    data = row.data
    trees, unreachable = menu_edit.outline(data)
    q = request.query
    panel = panel or {"edit": q.get("edit", ""), "node": q.get("node", ""),
                      "option": q.get("option", "")}
    node_ids = [n.get("id") for n in menu_edit.nodes(data)]
    if not panel["edit"] and not panel["node"]:
        panel["node"] = data.get("start") or (node_ids[0] if node_ids else "")
    node = next((n for n in menu_edit.nodes(data) if n.get("id") == panel["node"]), None)
    option = None
    if node is not None and str(panel.get("option", "")).isdigit():
        opts = node.get("options") or []
        i = int(panel["option"])
        option = opts[i] if i < len(opts) else None
    langs = menu_edit.languages(data)
    forms = form_defaults(data, node, option, langs)
    form_errors: dict[str, Mapping[str, str]] = {}
    if panel.get("form"):
        form_errors[panel["form"]] = errors or {}
        if values is not None:
            forms[panel["form"]] = values
    return _render(request, "ivr_edit.html", {
        "row": row, "data": data, "editable": row.status == "draft", "trees": trees,
        "unreachable": unreachable, "problems": group_problems(problems),
        "problem_total": len(problems), "panel": panel, "node": node, "option": option,
        "langs": langs, "node_ids": node_ids, "queues": queues,
        "services": services, "actions": ACTION_LABELS, "forms": forms,
        "form_errors": form_errors, "error": error, "message": q.get("msg"),
        "audio_status": request.app[PROMPTS].status(data), "prompt_slots": pslots.slots(data),
    }, status=status)


def _prompt_fields(prefix: str, prompt: Any, langs: list[str]) -> dict[str, str]:
    prompt = prompt if isinstance(prompt, dict) else {}
    return {f"{prefix}_{lang}": str(prompt.get(lang, "")) for lang in langs}


def form_defaults(data: Mapping[str, Any], node: Mapping[str, Any] | None,
                  option: Mapping[str, Any] | None, langs: list[str]) -> dict[str, Any]:
    """The values each editor form starts with (the stored draft)."""
    lm, after = data.get("language_menu"), data.get("after_retries")
    lm = lm if isinstance(lm, dict) else {}
    after = after if isinstance(after, dict) else {}
    forms: dict[str, Any] = {
        "menu": {"name": data.get("name", ""), "languages": ", ".join(langs),
                 "default_language": data.get("default_language", langs[0]),
                 "timeout_ms": data.get("timeout_ms", 5000), "retries": data.get("retries", 3),
                 "after_retries_queue": after.get("queue", ""),
                 **_prompt_fields("language_prompt", lm.get("prompt")
                                  if isinstance(lm.get("prompt"), dict)
                                  else {langs[0]: lm.get("prompt", "")}, langs),
                 "language_keys": ", ".join(f"{k}={v}" for k, v in
                                            (lm.get("options") or {}).items()),
                 **_prompt_fields("invalid_prompt", data.get("invalid_prompt"), langs)},
        "new_node": {"id": ""},
        "new_option": {"digit": "", "action": "queue"},
        "node": {}, "option": {},
    }
    if node is not None:
        forms["node"] = {"id": node.get("id", ""), "timeout_ms": node.get("timeout_ms", ""),
                         "retries": node.get("retries", ""),
                         **_prompt_fields("prompt", node.get("prompt"), langs),
                         **_prompt_fields("invalid_prompt", node.get("invalid_prompt"), langs)}
    if option is not None:
        forms["option"] = {k: option.get(k, "") for k in
                           ("digit", "action", "node", "queue", "service", "number")}
        forms["option"].update(_prompt_fields("prompt", option.get("prompt"), langs))
    return forms


@admin_only
async def edit_page(request: web.Request) -> web.Response:
    return await _editor(request, _number(request))


async def _apply(request: web.Request, what: str, change: Any, *,
                 panel: dict[str, Any], redirect: dict[str, Any]) -> web.Response:
    """Load the draft, apply `change(data, form) -> data`, save and audit; on EditError show
    the form again with the message next to its field, nothing saved."""
    actor = require_user(request).username
    number = _number(request)
    form = await request.post()
    try:
        async with request.app[SESSIONS]() as db, db.begin():
            row = await _version_or_404(db, number)
            if row.status != "draft":
                raise ivs.VersionError(f"version {number} is {row.status}: only drafts can be "
                                       "edited; make a new draft from it")
            data, extra = change(row.data, form)
            await ivs.save_draft(db, actor, row, data, what, menu_edit.diff(row.data, data))
    except EditError as exc:
        if not panel.get("form"):  # a button, not a form: say it at the top
            return await _editor(request, number, error=exc.message, status=400, panel=panel)
        return await _editor(request, number, errors={exc.field: exc.message},
                             values=dict(form), status=400, panel=panel)
    except ivs.VersionError as exc:
        return await _editor(request, number, error=str(exc), status=409)
    target = {**redirect, **(extra or {}), "msg": f"Saved: {what}."}
    raise web.HTTPFound(_editor_url(number, **target))


@admin_only
async def save_settings(request: web.Request) -> web.Response:
    return await _apply(request, "menu settings",
                        lambda d, f: (menu_edit.update_settings(d, f), None),
                        panel={"edit": "menu", "node": "", "option": "", "form": "menu"},
                        redirect={"edit": "menu"})


@admin_only
async def add_node(request: web.Request) -> web.Response:
    def change(d: Any, f: Any) -> tuple[Any, dict[str, str]]:
        data, node_id = menu_edit.add_node(d, f)
        return data, {"node": node_id}

    return await _apply(request, "add node", change,
                        panel={"edit": "node", "node": "", "option": "", "form": "new_node"},
                        redirect={})


@admin_only
async def update_node(request: web.Request) -> web.Response:
    node_id = request.match_info["node"]

    def change(d: Any, f: Any) -> tuple[Any, dict[str, str]]:
        data, new_id = menu_edit.update_node(d, node_id, f)
        return data, {"node": new_id}

    return await _apply(request, f"node {node_id}", change,
                        panel={"edit": "", "node": node_id, "option": "", "form": "node"},
                        redirect={})


@admin_only
async def delete_node(request: web.Request) -> web.Response:
    node_id = request.match_info["node"]
    return await _apply(request, f"delete node {node_id}",
                        lambda d, f: (menu_edit.delete_node(d, node_id), None),
                        panel={"edit": "", "node": node_id, "option": ""}, redirect={})


def _index(request: web.Request) -> int:
    raw = request.match_info["index"]
    if not raw.isdigit():
        raise web.HTTPNotFound(text="no such option")
    return int(raw)


@admin_only
async def save_option(request: web.Request) -> web.Response:
    node_id = request.match_info["node"]
    index = _index(request) if "index" in request.match_info else None
    return await _apply(
        request, f"node {node_id} " + ("new option" if index is None else f"option {index + 1}"),
        lambda d, f: (menu_edit.save_option(d, node_id, index, f), None),
        panel={"edit": "", "node": node_id, "option": "" if index is None else str(index),
               "form": "new_option" if index is None else "option"},
        redirect={"node": node_id})


@admin_only
async def delete_option(request: web.Request) -> web.Response:
    node_id, index = request.match_info["node"], _index(request)
    return await _apply(request, f"node {node_id} delete option {index + 1}",
                        lambda d, f: (menu_edit.delete_option(d, node_id, index), None),
                        panel={"edit": "", "node": node_id, "option": str(index)},
                        redirect={"node": node_id})


@admin_only
async def move_option(request: web.Request) -> web.Response:
    node_id, index = request.match_info["node"], _index(request)

    def change(d: Any, f: Any) -> tuple[Any, dict[str, str] | None]:
        target = str(f.get("target", "") or "")
        if target:
            return menu_edit.move_option_to(d, node_id, index, target), {"node": target}
        return menu_edit.move_option(d, node_id, index, str(f.get("direction", ""))), None

    return await _apply(request, f"node {node_id} move option {index + 1}", change,
                        panel={"edit": "", "node": node_id, "option": str(index)},
                        redirect={"node": node_id})


# --- prompts: words, audio, recordings -----------------------------------------------------------


def _slot_lang(request: web.Request) -> tuple[str, str]:
    slot, lang = request.match_info["slot"], request.match_info.get("lang", "")
    if lang and not LANG_RE.fullmatch(lang):
        raise web.HTTPNotFound(text="no such language")
    return slot, lang


@admin_only
async def save_words(request: web.Request) -> web.Response:
    """One prompt's words in every language (the editor's prompts table)."""
    slot_id, _ = _slot_lang(request)

    def change(d: Any, f: Any) -> tuple[Any, None]:
        if pslots.find_slot(d, slot_id) is None:
            raise EditError("slot", f"this menu has no prompt {slot_id!r}")
        words = menu_edit.parse_prompt(f, "words", menu_edit.languages(d))
        return pslots.set_words(d, slot_id, words), None

    return await _apply(request, f"words of {slot_id}", change,
                        panel={"edit": "prompts", "node": "", "option": ""},
                        redirect={"edit": "prompts"})


@admin_only
async def prompt_audio(request: web.Request) -> web.StreamResponse:
    """A prompt's audio as the caller would hear it (the editor's and preview's players): the
    recording, else the words spoken (made now if they never were)."""
    number = _number(request)
    slot_id, lang = _slot_lang(request)
    async with request.app[SESSIONS]() as db:
        row = await _version_or_404(db, number)
    prompts = request.app[PROMPTS]
    try:
        sha = await prompts.slot_audio(row.data, slot_id, lang)
    except LookupError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    except SpeechError as exc:
        raise web.HTTPServiceUnavailable(text=f"the words could not be spoken: {exc}") from None
    return _wav(prompts.library.path(sha))


def _wav(path: Any) -> web.FileResponse:
    return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                           "Cache-Control": "private, max-age=3600"})


async def _upload_bytes(request: web.Request) -> tuple[bytes, str]:
    """The uploaded file: a raw body (the editor's script: the CSRF token in a header, no size
    limit but ours) or a multipart form (no script: the app's body limit applies)."""
    if request.content_type.startswith(("audio/", "application/octet-stream")):
        if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES:
            raise AudioError(f"the file is {request.content_length / 1e6:.1f} MB; at most "
                             f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB")
        buf = bytearray()
        async for chunk in request.content.iter_chunked(256 * 1024):
            buf += chunk
            if len(buf) > MAX_UPLOAD_BYTES:
                raise AudioError(f"the file is larger than {MAX_UPLOAD_BYTES / 1e6:.0f} MB")
        return bytes(buf), unquote(request.headers.get("X-Filename", ""))[:200]
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField) or not upload.filename:
        raise AudioError("choose a WAV, MP3 or OGG file to upload")
    return upload.file.read(MAX_UPLOAD_BYTES + 1), upload.filename


@admin_only
async def upload_recording(request: web.Request) -> web.Response:
    actor = require_user(request).username
    number = _number(request)
    slot_id, lang = _slot_lang(request)
    panel = {"edit": "prompts", "node": "", "option": ""}
    try:
        payload, filename = await _upload_bytes(request)
        sha = await request.app[PROMPTS].record(payload, filename)
    except AudioError as exc:
        return await _editor(request, number, status=400, panel=panel,
                             error=f"Recording not saved: {exc}.")
    try:
        async with request.app[SESSIONS]() as db, db.begin():
            row = await _version_or_404(db, number)
            slot = pslots.find_slot(row.data, slot_id)
            if slot is None or lang not in menu_edit.languages(row.data):
                raise web.HTTPNotFound(text=f"this menu has no prompt {slot_id!r} in {lang!r}")
            data = copy.deepcopy(row.data)
            found = data.get("recordings")
            recs: dict[str, Any] = found if isinstance(found, dict) else {}
            recs[pslots.recording_key(slot_id, lang)] = {
                "sha256": sha, "words": slot.words.get(lang, ""), "filename": filename[:200],
                "at": request.app[CLOCK].now().isoformat()}
            data["recordings"] = recs
            await ivs.save_draft(db, actor, row, data, f"recording of {slot_id} ({lang})",
                                 {"sha256": sha, "filename": filename[:200]})
    except ivs.VersionError as exc:
        return await _editor(request, number, error=str(exc), status=409, panel=panel)
    raise web.HTTPFound(_editor_url(number, edit="prompts",
                                    msg=f"Saved: recording of {slot.label} ({lang})."))


@admin_only
async def delete_recording(request: web.Request) -> web.Response:
    slot_id, lang = _slot_lang(request)

    def change(d: Any, f: Any) -> tuple[Any, None]:
        out = copy.deepcopy(d)
        recs = out.get("recordings")
        key = pslots.recording_key(slot_id, lang)
        if not isinstance(recs, dict) or key not in recs:
            raise EditError("recording", "there is no such recording")
        del recs[key]
        return out, None

    return await _apply(request, f"remove recording of {slot_id} ({lang})", change,
                        panel={"edit": "prompts", "node": "", "option": ""},
                        redirect={"edit": "prompts"})


# --- publish, roll back, discard -----------------------------------------------------------------


@admin_only
async def publish(request: web.Request) -> web.Response:
    actor, number = require_user(request).username, _number(request)
    try:
        await publish_version(request.app, actor, number)
    except ivs.InvalidMenu as exc:
        audio = [str(p) for p in exc.audio]
        return await _editor(request, number, status=400, error=(
            f"Not published: {len(exc.problems)} problem(s) must be fixed first "
            "(listed next to their node)." + (" Audio: " + "; ".join(audio[:8]) if audio else "")))
    except ivs.VersionError as exc:
        return await _editor(request, number, error=str(exc), status=409)
    raise web.HTTPFound(f"/admin/ivr?msg=Version+{number}+is+now+active.")


async def publish_version(app: web.Application, actor: str, number: int) -> None:
    """Publish a draft with its audio: speech made where needed, every file written where
    Asterisk reads sounds *before* the version becomes active (the next call finds them), the
    file names stored with the version; then files nothing in use plays are pruned."""
    prompts = app[PROMPTS]
    async with app[SESSIONS]() as db:
        row = await ivs.get_version(db, number)
        data = row.data
    if row.status != "draft":
        raise ivs.VersionError(f"version {number} is {row.status}: only a draft can be published")
    sounds, audio_problems = await prompts.prepare(data)
    if not audio_problems:
        await prompts.deliver(sounds)
    async with app[SESSIONS]() as db, db.begin():
        await ivs.publish(db, actor, number, app[SETTINGS].general_queue, app[CLOCK].now(),
                          sounds=sounds, audio_problems=audio_problems)
    await _prune(app)


async def _prune(app: web.Application) -> None:
    try:
        await app[PROMPTS].prune_unused(app[CLOCK].now())
    except Exception:  # a full disk or a permission: the publish itself is done
        log.exception("prompts: pruning old sound files failed")


@admin_only
async def rollback(request: web.Request) -> web.Response:
    actor, number = require_user(request).username, _number(request)
    prompts = request.app[PROMPTS]
    try:
        async with request.app[SESSIONS]() as db:
            source = await ivs.get_version(db, number)
        # its files may have been pruned since: written again before it goes live
        sounds, audio_problems = await prompts.prepare(source.data)
        if not audio_problems:
            await prompts.deliver(sounds)
        async with request.app[SESSIONS]() as db, db.begin():
            row = await ivs.rollback(db, actor, number, _general(request),
                                    request.app[CLOCK].now(), sounds=sounds,
                                    audio_problems=audio_problems)
    except ivs.InvalidMenu as exc:
        context = await _index_context(request)
        context["error"] = (f"Version {number} cannot go live again: "
                            + "; ".join(str(p) for p in exc.problems[:5]))
        return _render(request, "ivr_index.html", context, status=400)
    except ivs.VersionError as exc:
        context = await _index_context(request)
        context["error"] = str(exc)
        return _render(request, "ivr_index.html", context, status=409)
    raise web.HTTPFound(f"/admin/ivr?msg=Rolled+back:+version+{row.version}+(a+copy+of+"
                        f"{number})+is+now+active.")


@admin_only
async def discard(request: web.Request) -> web.Response:
    actor, number = require_user(request).username, _number(request)
    try:
        async with request.app[SESSIONS]() as db, db.begin():
            await ivs.discard(db, actor, number)
    except ivs.VersionError as exc:
        return await _editor(request, number, error=str(exc), status=409)
    raise web.HTTPFound(f"/admin/ivr?msg=Draft+{number}+discarded.")


# --- preview ------------------------------------------------------------------------------------


@admin_only
async def preview(request: web.Request) -> web.Response:
    number = _number(request)
    keys = [k for k in request.query.getall("k", []) if len(k) <= 4][:60]
    async with request.app[SESSIONS]() as db:
        row = await _version_or_404(db, number)
        queue_rows = {q.name: q for q in (await db.execute(select(Queue))).scalars()}
        anns = await ivs.announcements(db)
    at = request.app[CLOCK].now()
    # each prompt stands for its slot while walking: what is heard is then shown as its words
    # (in the language the caller has at that point) with a player of its audio
    all_slots = {slot.id: slot for slot in pslots.slots(row.data)}
    langs = menu_edit.languages(row.data)
    tokens = {sid: {lang: {"file": f"@{sid}"} for lang in langs} for sid in all_slots}
    menu, problems = parse_menu(pslots.apply_sounds(row.data, tokens), _general(request))
    result = None
    heard: list[dict[str, Any]] = []
    announcement = next((a.prompts for a in anns
                         if a.enabled and a.starts_at <= at < a.ends_at and a.prompts), None)
    if menu is not None:
        def queue_open(name: str) -> bool:
            q = queue_rows.get(name)
            return q is None or is_open(q.office_hours, q.holidays, q.timezone, at)

        result = walk(menu, keys, announcement=announcement, queue_open=queue_open)
        for h in result.heard:
            lang = (menu.default_language if h.what == "language menu"
                    else result.language or menu.default_language)
            slot = all_slots.get(h.file[1:]) if h.file.startswith("@") else None
            if slot is None:
                heard.append({"what": h.what, "words": h.file, "slot": None, "lang": lang})
            elif slot.id == "language":  # every language's part, in turn
                heard.append({"what": h.what, "slot": slot.id, "lang": lang,
                              "words": " / ".join(slot.words.get(x, "") for x in langs)})
            else:
                heard.append({"what": h.what, "words": slot.words.get(lang, ""),
                              "slot": slot.id, "lang": lang})
    return _render(request, "ivr_preview.html", {
        "row": row, "keys": keys[: result.used] if result else [], "result": result,
        "heard": heard, "problems": problems,
        "back_keys": keys[: max(0, (result.used if result else 0) - 1)],
    })


# --- export / import -----------------------------------------------------------------------------


@admin_only
async def export(request: web.Request) -> web.Response:
    raw = request.query.get("version", "")
    async with request.app[SESSIONS]() as db:
        if raw:
            if not raw.isdigit():
                raise web.HTTPBadRequest(text="version must be a number")
            try:
                row = await ivs.get_version(db, int(raw))
            except ivs.VersionError as exc:
                raise web.HTTPNotFound(text=str(exc)) from None
        else:
            found = await ivs.active_version(db)
            if found is None:
                raise web.HTTPNotFound(text="no active menu version yet")
            row = found
    body = json.dumps(row.data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    return web.Response(text=body, content_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="ivr-menu-v{row.version}.json"'})


async def import_problems(request: web.Request, payload: bytes | str) -> tuple[Any, list[Problem]]:
    data, problems = load_menu_json(payload)
    if data is not None and not problems:
        async with request.app[SESSIONS]() as db:
            problems = await ivs.problems_of(db, data, _general(request))
    return data, problems


@admin_only
async def import_menu(request: web.Request) -> web.Response:
    actor = require_user(request).username
    form = await request.post()
    upload = form.get("file")
    payload: bytes | str
    name = "pasted JSON"
    if isinstance(upload, web.FileField) and upload.filename:
        payload = upload.file.read(MAX_IMPORT_BYTES + 1)
        name = upload.filename
    else:
        payload = str(form.get("json", "") or "")
    problems: list[Problem]
    if not payload:
        data, problems = None, [Problem(None, "choose a JSON file (or paste the JSON)")]
    elif len(payload) > MAX_IMPORT_BYTES:
        data, problems = None, [Problem(None, "the file is larger than 1 MB")]
    else:
        data, problems = await import_problems(request, payload)
    if problems or data is None:
        context = await _index_context(request)
        context["import_problems"] = problems
        context["import_name"] = name
        return _render(request, "ivr_index.html", context, status=400)
    async with request.app[SESSIONS]() as db, db.begin():
        row = await ivs.create_draft(db, actor, data, comment=f"imported from {name}"[:400],
                                     action="import")
    raise web.HTTPFound(_editor_url(row.version, msg=f"Imported {name} as draft."))


# --- announcements ------------------------------------------------------------------------------


def _parse_when(form: Mapping[str, Any], name: str, errors: dict[str, str],
                tz: ZoneInfo) -> datetime | None:
    """A date and time typed in the center's time zone (CC_TIMEZONE) -> UTC."""
    raw = str(form.get(name, "") or "").strip()
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        errors[name] = f"a date and time like 2026-11-23 08:00 ({tz.key})"
        return None
    return (value.replace(tzinfo=tz) if value.tzinfo is None else value).astimezone(UTC)


def parse_announcement(form: Mapping[str, Any], langs: list[str], tz: ZoneInfo | None = None,
                       ) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's values (the words per language; start and end in `tz`, stored in UTC)."""
    tz = tz or ZoneInfo("UTC")
    errors: dict[str, str] = {}
    name = str(form.get("name", "") or "").strip()
    if not name or len(name) > 120:
        errors["name"] = "a short name is required (at most 120 characters)"
    prompts: dict[str, str] = {}
    for lang in langs:
        value = " ".join(str(form.get(f"prompt_{lang}", "") or "").split())
        if not value:
            errors[f"prompt_{lang}"] = f"the {lang} words are required: every caller hears them"
        elif problem := words_problem(value):
            errors[f"prompt_{lang}"] = problem
        prompts[lang] = value
    starts = _parse_when(form, "starts_at", errors, tz)
    ends = _parse_when(form, "ends_at", errors, tz)
    if starts and ends and ends <= starts:
        errors["ends_at"] = "the end must be after the start"
    enabled = str(form.get("enabled", "") or "") in ("on", "1", "true")
    return ({"name": name, "prompts": prompts, "starts_at": starts, "ends_at": ends,
             "enabled": enabled}, errors)


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[SETTINGS].timezone)


async def _languages(request: web.Request) -> list[str]:
    async with request.app[SESSIONS]() as db:
        active = await ivs.active_version(db)
    return menu_edit.languages(active.data) if active else ["en", "es"]


@admin_only
async def announcement_form(request: web.Request) -> web.Response:
    langs = await _languages(request)
    ann = None
    if "id" in request.match_info:
        async with request.app[SESSIONS]() as db:
            raw = request.match_info["id"]
            ann = await db.get(Announcement, int(raw)) if raw.isdigit() else None
        if ann is None:
            raise web.HTTPNotFound(text="no such announcement")
    values: dict[str, Any] = {"name": "", "enabled": True, "starts_at": "", "ends_at": ""}
    tz = _zone(request)
    if ann is not None:
        values = {"name": ann.name, "enabled": ann.enabled,
                  "starts_at": ann.starts_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
                  "ends_at": ann.ends_at.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
                  **{f"prompt_{k}": v for k, v in (ann.prompts or {}).items()}}
    return _render(request, "ivr_announcement.html", {"ann": ann, "values": values,
                                                      "errors": {}, "langs": langs,
                                                      "zone": tz.key})


@admin_only
async def announcement_save(request: web.Request) -> web.Response:
    actor = require_user(request).username
    langs = await _languages(request)
    form = await request.post()
    values, errors = parse_announcement(form, langs, _zone(request))
    raw = request.match_info.get("id")
    ann_id = int(raw) if raw and raw.isdigit() else None
    if raw and ann_id is None:
        raise web.HTTPNotFound(text="no such announcement")
    if not errors:
        # spoken and written for Asterisk before it is saved: live on the next call
        try:
            values["sounds"] = await request.app[PROMPTS].speak_announcement(values["prompts"])
        except (SpeechError, OSError) as exc:
            errors["prompt_" + langs[0]] = f"the words could not be spoken: {exc}"
    if not errors:
        try:
            async with request.app[SESSIONS]() as db, db.begin():
                await ivs.save_announcement(db, actor, ann_id, values)
        except ivs.VersionError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        raise web.HTTPFound("/admin/ivr?msg=Announcement+saved.")
    return _render(request, "ivr_announcement.html", {
        "ann": {"id": ann_id} if ann_id else None, "values": dict(form), "errors": errors,
        "langs": langs, "zone": _zone(request).key}, status=400)


@admin_only
async def announcement_audio(request: web.Request) -> web.StreamResponse:
    raw, lang = request.match_info["id"], request.match_info["lang"]
    async with request.app[SESSIONS]() as db:
        ann = await db.get(Announcement, int(raw)) if raw.isdigit() else None
    entry = (ann.sounds or {}).get(lang) if ann is not None else None
    prompts = request.app[PROMPTS]
    if not isinstance(entry, dict) or not prompts.library.has(str(entry.get("sha256"))):
        raise web.HTTPNotFound(text="this announcement has no audio in that language")
    return _wav(prompts.library.path(str(entry["sha256"])))


@admin_only
async def announcement_delete(request: web.Request) -> web.Response:
    actor = require_user(request).username
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise web.HTTPNotFound(text="no such announcement")
    try:
        async with request.app[SESSIONS]() as db, db.begin():
            await ivs.delete_announcement(db, actor, int(raw))
    except ivs.VersionError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    raise web.HTTPFound("/admin/ivr?msg=Announcement+deleted.")


def add_routes(app: web.Application) -> None:
    r = app.router
    base = "/admin/ivr/versions/{version}"
    r.add_get("/admin/ivr", ivr_index, name="admin_ivr")
    r.add_post("/admin/ivr/drafts", new_draft)
    r.add_get("/admin/ivr/export", export)
    r.add_post("/admin/ivr/import", import_menu)
    r.add_get(base, edit_page)
    r.add_post(base + "/settings", save_settings)
    r.add_post(base + "/nodes", add_node)
    r.add_post(base + "/nodes/{node}", update_node)
    r.add_post(base + "/nodes/{node}/delete", delete_node)
    r.add_post(base + "/nodes/{node}/options", save_option)
    r.add_post(base + "/nodes/{node}/options/{index}", save_option)
    r.add_post(base + "/nodes/{node}/options/{index}/delete", delete_option)
    r.add_post(base + "/nodes/{node}/options/{index}/move", move_option)
    r.add_post(base + "/publish", publish)
    r.add_post(base + "/rollback", rollback)
    r.add_post(base + "/discard", discard)
    r.add_get(base + "/preview", preview)
    r.add_post(base + "/prompts/{slot}", save_words)
    r.add_get(base + "/prompts/{slot}/{lang}.wav", prompt_audio)
    r.add_post(base + "/prompts/{slot}/{lang}/recording", upload_recording)
    r.add_post(base + "/prompts/{slot}/{lang}/recording/delete", delete_recording)
    r.add_get("/admin/ivr/announcements/new", announcement_form)
    r.add_post("/admin/ivr/announcements/new", announcement_save)
    r.add_get("/admin/ivr/announcements/{id}", announcement_form)
    r.add_post("/admin/ivr/announcements/{id}", announcement_save)
    r.add_post("/admin/ivr/announcements/{id}/delete", announcement_delete)
    r.add_get("/admin/ivr/announcements/{id}/audio/{lang}.wav", announcement_audio)
