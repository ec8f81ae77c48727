"""Pure form parsing for the admin pages: raw form fields in, (values, errors by field) out.

No I/O here: checks that need the store (unique names, the last admin) live in services.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contactcenter.queues.models import SLA_MODES

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                    "Saturday", "Sunday"), strict=True))
# Asterisk app_queue strategies
STRATEGIES = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered",
              "linear", "wrandom")
OPEN311_DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist",
                     "multivaluelist")

EMPTY_RULES = ("yes", "no", "strict", "loose")  # app_queue's joinempty/leavewhenempty words
HOLDTIME = ("no", "yes", "once")
SOUND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_/.-]{0,199}$")
MUSICCLASS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
SERVICE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
INTERFACE = re.compile(r"^(PJSIP|SIP|IAX2|DAHDI|Local)/[A-Za-z0-9._@+-]{1,100}$")
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^[0-9+()\- .]{3,40}$")
MIN_PASSWORD = 8


@dataclass
class Form:
    """The outcome of parsing one submitted form."""

    raw: Mapping[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self, name: str, *, required: bool = False, max_len: int = 200,
             label: str = "This field") -> str:
        value = str(self.raw.get(name, "") or "").strip()
        if required and not value:
            self.errors[name] = f"{label} is required."
        elif len(value) > max_len:
            self.errors[name] = f"{label} is too long: at most {max_len} characters."
        self.values[name] = value
        return value

    def integer(self, name: str, *, low: int, high: int, label: str,
                default: int | None = None) -> int | None:
        """A whole number in [low, high]; left empty, `default` when there is one."""
        value = str(self.raw.get(name, "") or "").strip()
        if not value and default is not None:
            self.values[name] = default
            return default
        try:
            number = int(value)
        except ValueError:
            self.errors[name] = f"{label} must be a whole number."
            return None
        if not low <= number <= high:
            self.errors[name] = f"{label} must be between {low} and {high}."
            return None
        self.values[name] = number
        return number

    def choice(self, name: str, options: tuple[str, ...], *, label: str) -> str | None:
        value = str(self.raw.get(name, "") or "").strip()
        if value not in options:
            self.errors[name] = f"{label} must be one of: {', '.join(options)}."
            return None
        self.values[name] = value
        return value

    def check(self, name: str) -> bool:
        """A checkbox: present with a true-ish value, else False."""
        value = str(self.raw.get(name, "") or "").strip().lower() in ("1", "on", "true", "yes")
        self.values[name] = value
        return value

    def pattern(self, name: str, regex: re.Pattern[str], *, label: str, hint: str,
                required: bool = True) -> str:
        value = str(self.raw.get(name, "") or "").strip()
        if not value:
            if required:
                self.errors[name] = f"{label} is required."
            self.values[name] = value
            return value
        if not regex.fullmatch(value):
            self.errors[name] = f"{label}: {hint}"
        self.values[name] = value
        return value


def getall(raw: Any, name: str) -> list[str]:
    """All values of a multi-valued field (aiohttp MultiDict or a plain mapping of lists)."""
    if hasattr(raw, "getall"):
        return [str(v) for v in raw.getall(name, [])]
    value = raw.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


# --- queues -------------------------------------------------------------------------------------


def parse_office_hours(form: Form) -> dict[str, list[str]]:
    """{"mon": ["08:00", "17:00"], ...}; a day left empty is closed; every day empty: always
    open (the model's convention)."""
    hours: dict[str, list[str]] = {}
    for day in WEEKDAYS:
        start = str(form.raw.get(f"open_{day}", "") or "").strip()
        end = str(form.raw.get(f"close_{day}", "") or "").strip()
        form.values[f"open_{day}"], form.values[f"close_{day}"] = start, end
        name = WEEKDAY_NAMES[day]
        if not start and not end:
            continue
        if not start or not end:
            form.errors[f"hours_{day}"] = f"{name}: give both the opening and the closing time, " \
                "or leave both empty for closed."
        elif not HHMM.fullmatch(start) or not HHMM.fullmatch(end):
            form.errors[f"hours_{day}"] = f"{name}: times are HH:MM on a 24-hour clock " \
                "(e.g. 08:00)."
        elif start >= end:
            form.errors[f"hours_{day}"] = f"{name}: the closing time must be after the " \
                "opening time."
        else:
            hours[day] = [start, end]
    form.values["office_hours"] = hours
    return hours


def parse_holidays(form: Form, name: str = "holidays") -> list[str]:
    text = str(form.raw.get(name, "") or "")
    form.values[name + "_text"] = text
    days: set[str] = set()
    bad: list[str] = []
    for token in re.split(r"[\s,]+", text.strip()):
        if not token:
            continue
        try:
            days.add(date.fromisoformat(token).isoformat())
        except ValueError:
            bad.append(token)
    if bad:
        form.errors[name] = "Not a date (use YYYY-MM-DD, one per line): " + ", ".join(bad[:5])
    result = sorted(days)
    form.values[name] = result
    return result


def parse_queue(raw: Mapping[str, Any], *, creating: bool) -> Form:
    form = Form(raw)
    if creating:
        form.pattern("name", QUEUE_NAME, label="Queue name",
                     hint="letters, digits, '-' and '_' only, as in Asterisk's queues.conf.")
    form.text("display_name", required=True, label="Display name")
    form.choice("strategy", STRATEGIES, label="Strategy")
    form.integer("service_level_seconds", low=1, high=3600, label="Service-level threshold")
    target = form.integer("service_level_target", low=1, high=100, label="Service-level target")
    if target is not None:
        form.values["service_level_target"] = target / 100
    form.integer("short_abandon_seconds", low=0, high=120, label="Short-abandon threshold")
    form.integer("max_wait_target_seconds", low=1, high=7200, label="Longest-wait target")
    form.integer("wrapup_seconds", low=0, high=3600, label="Wrap-up time")
    form.integer("ring_timeout_seconds", low=1, high=600, label="Ring timeout")
    form.integer("retry_seconds", low=0, high=600, label="Retry pause")
    form.choice("joinempty", EMPTY_RULES, label="Join when empty")
    form.choice("leavewhenempty", EMPTY_RULES, label="Leave when empty")
    form.integer("announce_frequency", low=0, high=3600, label="Position announcement every")
    form.check("announce_position")
    form.choice("announce_holdtime", HOLDTIME, label="Announce the expected wait")
    form.pattern("periodic_announce", SOUND, label="Periodic announcement",
                 hint="a sound file name without extension, e.g. queue-periodic-announce.",
                 required=False)
    form.integer("periodic_announce_frequency", low=0, high=3600,
                 label="Periodic announcement every")
    form.pattern("musicclass", MUSICCLASS, label="Music on hold class",
                 hint="a class of musiconhold.conf, e.g. default.")
    form.integer("weight", low=0, high=100, label="Weight")
    form.integer("language_wait_seconds", low=0, high=3600, label="Language wait")
    form.integer("max_wait_seconds", low=0, high=86400, label="Maximum wait", default=0)
    tz = form.text("timezone", required=True, max_len=64, label="Time zone")
    if tz and "timezone" not in form.errors:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            form.errors["timezone"] = f"Time zone: {tz!r} is not a known zone " \
                "(e.g. America/New_York, UTC)."
    form.pattern("group_name", QUEUE_NAME, label="Wallboard group",
                 hint="letters, digits, '-' and '_' only.")
    parse_office_hours(form)
    parse_holidays(form)
    return form


QUEUE_FIELDS = ("display_name", "strategy", "service_level_seconds", "service_level_target",
                "short_abandon_seconds", "max_wait_target_seconds", "wrapup_seconds",
                "ring_timeout_seconds", "timezone", "group_name", "office_hours", "holidays",
                "retry_seconds", "joinempty", "leavewhenempty", "announce_frequency",
                "announce_position", "announce_holdtime", "periodic_announce",
                "periodic_announce_frequency", "musicclass", "weight", "language_wait_seconds",
                "max_wait_seconds")
QUEUE_NUMBERS = ("service_level_seconds", "short_abandon_seconds", "max_wait_target_seconds",
                 "wrapup_seconds", "ring_timeout_seconds", "retry_seconds",
                 "announce_frequency", "periodic_announce_frequency", "weight",
                 "language_wait_seconds", "max_wait_seconds")


# --- service types ------------------------------------------------------------------------------


def open311_attribute_problems(attributes: Any) -> list[str]:
    """Problems with a list of Open311 GeoReport v2 attribute definitions (empty: fine)."""
    if not isinstance(attributes, list):
        return ["the attributes must be a JSON list ([...]) of objects"]
    problems: list[str] = []
    seen: set[str] = set()
    for i, attr in enumerate(attributes, 1):
        where = f"attribute {i}"
        if not isinstance(attr, dict):
            problems.append(f"{where}: must be an object with code, datatype, description")
            continue
        code = attr.get("code")
        if not isinstance(code, str) or not SERVICE_CODE.fullmatch(code):
            problems.append(f"{where}: \"code\" must be a short text of letters, digits, "
                            "'-', '_' or '.'")
        else:
            where = f"attribute {code!r}"
            if code in seen:
                problems.append(f"{where}: the code is used twice")
            seen.add(code)
        datatype = attr.get("datatype")
        if datatype not in OPEN311_DATATYPES:
            problems.append(f"{where}: \"datatype\" must be one of "
                            f"{', '.join(OPEN311_DATATYPES)}")
        if not isinstance(attr.get("description", ""), str) or not attr.get("description"):
            problems.append(f"{where}: \"description\" (the question asked) is required")
        for flag in ("required", "variable"):
            if flag in attr and not isinstance(attr[flag], bool):
                problems.append(f"{where}: \"{flag}\" must be true or false")
        if "order" in attr and (not isinstance(attr["order"], int)
                                or isinstance(attr["order"], bool)):
            problems.append(f"{where}: \"order\" must be a whole number")
        values = attr.get("values")
        if datatype in ("singlevaluelist", "multivaluelist"):
            if not isinstance(values, list) or not values:
                problems.append(f"{where}: a list datatype needs \"values\": "
                                "[{\"key\": ..., \"name\": ...}, ...]")
            else:
                keys: set[str] = set()
                for v in values:
                    if not (isinstance(v, dict) and isinstance(v.get("key"), str)
                            and v["key"] and isinstance(v.get("name"), str) and v["name"]):
                        problems.append(f"{where}: each value needs a text \"key\" and "
                                        "\"name\"")
                        break
                    if v["key"] in keys:
                        problems.append(f"{where}: the value key {v['key']!r} is used twice")
                    keys.add(v["key"])
        elif values not in (None, []):
            problems.append(f"{where}: \"values\" only belongs to singlevaluelist and "
                            "multivaluelist")
        unknown = set(attr) - {"code", "datatype", "required", "description", "values",
                               "variable", "order", "datatype_description"}
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    return problems


def parse_service_type(raw: Mapping[str, Any], *, creating: bool,
                       agency_ids: set[int], queue_ids: set[int]) -> Form:
    form = Form(raw)
    if creating:
        form.pattern("code", SERVICE_CODE, label="Code",
                     hint="letters, digits, '-', '_' and '.' only (the Open311 service_code).")
    form.text("name", required=True, label="Name")
    form.text("description", max_len=2000, label="Description")
    form.text("group_name", max_len=80, label="Group")
    form.text("keywords", max_len=400, label="Keywords")
    form.integer("sla_hours", low=1, high=24 * 365, label="SLA hours")
    if str(raw.get("sla_mode", "") or "").strip():
        form.choice("sla_mode", SLA_MODES, label="SLA clock")
    else:  # a client that does not know the field: the old rule, calendar hours
        form.values["sla_mode"] = "calendar"
    for key, ids, label in (("agency_id", agency_ids, "Agency"), ("queue_id", queue_ids, "Queue")):
        value = str(raw.get(key, "") or "").strip()
        if not value:
            form.values[key] = None
            continue
        if not value.isdigit() or int(value) not in ids:
            form.errors[key] = f"{label}: choose one from the list."
        else:
            form.values[key] = int(value)
    if form.values.get("queue_id") is None and "queue_id" not in form.errors:
        form.errors["queue_id"] = "Queue: choose the queue that takes these calls."
    form.check("active")
    text = str(raw.get("attributes", "") or "").strip() or "[]"
    form.values["attributes_text"] = text
    try:
        attributes = json.loads(text)
    except json.JSONDecodeError as exc:
        form.errors["attributes"] = f"Open311 attributes: not valid JSON (line {exc.lineno}, " \
            f"column {exc.colno}: {exc.msg})."
    else:
        problems = open311_attribute_problems(attributes)
        if problems:
            form.errors["attributes"] = "Open311 attributes: " + "; ".join(problems[:6]) + "."
        else:
            form.values["attributes"] = attributes
    return form


SERVICE_FIELDS = ("name", "description", "group_name", "keywords", "sla_hours", "sla_mode",
                  "agency_id", "queue_id", "active", "attributes")


# --- agencies -----------------------------------------------------------------------------------


def parse_agency(raw: Mapping[str, Any], *, creating: bool) -> Form:
    form = Form(raw)
    if creating:
        form.pattern("code", CODE, label="Code", hint="letters, digits, '-', '_' and '.' only.")
    form.text("name", required=True, label="Name")
    email = form.pattern("email", EMAIL, label="E-mail", hint="not an e-mail address.",
                         required=False)
    form.values["email"] = email or None
    phone = form.pattern("phone", PHONE, label="Phone",
                         hint="digits, spaces and + - ( ) only.", required=False)
    form.values["phone"] = phone or None
    # the business-hours SLA calendar (cases/sla.py): every day empty means Mon-Fri 08-17
    parse_office_hours(form)
    parse_holidays(form)
    return form


AGENCY_FIELDS = ("name", "email", "phone", "office_hours", "holidays")


# --- users --------------------------------------------------------------------------------------


def parse_user(raw: Any, *, creating: bool, roles: tuple[str, ...],
               queue_names: set[str], agency_codes: set[str] | None = None) -> Form:
    form = Form(raw)
    if creating:
        form.pattern("username", USERNAME, label="User name",
                     hint="letters, digits, '.', '-' and '_' only.")
    form.text("display_name", required=True, label="Display name")
    form.choice("role", roles, label="Role")
    interface = form.pattern("interface", INTERFACE, label="Phone interface",
                             hint="like PJSIP/1001.", required=False)
    form.values["interface"] = interface or None
    queues = getall(raw, "queues")
    unknown = [q for q in queues if q not in queue_names]
    if unknown:
        form.errors["queues"] = f"Queues: unknown {', '.join(unknown)}."
    form.values["queues"] = sorted(set(queues) & queue_names)
    langs = [x.strip().lower() for x in re.split(r"[\s,]+", str(raw.get("languages", "") or ""))
             if x.strip()]
    bad = [x for x in langs if not LANGUAGE.fullmatch(x)]
    if bad:
        form.errors["languages"] = ("Languages: language codes like en, es, fr "
                                    f"(not {', '.join(bad[:3])}).")
    form.values["languages"] = sorted(set(langs))
    codes = agency_codes or set()
    agencies = getall(raw, "agencies")
    unknown = [a for a in agencies if a not in codes]
    if unknown:
        form.errors["agencies"] = f"Agencies: unknown {', '.join(unknown)}."
    form.values["agencies"] = sorted(set(agencies) & codes)
    form.check("active")
    password = str(raw.get("password", "") or "")
    confirm = str(raw.get("password2", "") or "")
    if creating and not password:
        form.errors["password"] = "Password is required."
    elif password:
        if len(password) < MIN_PASSWORD:
            form.errors["password"] = f"Password: at least {MIN_PASSWORD} characters."
        elif len(password) > 1024:
            form.errors["password"] = "Password: at most 1024 characters."
        elif password != confirm:
            form.errors["password2"] = "The two passwords differ."
    form.values["password"] = password or None
    if form.values.get("role") == "operator" and not interface and "interface" not in form.errors:
        form.errors["interface"] = "Phone interface: an operator needs one (e.g. PJSIP/1001)."
    if form.values.get("role") == "agency" and not form.values["agencies"] \
            and "agencies" not in form.errors:
        form.errors["agencies"] = "Agencies: an agency user needs at least one."
    return form


USER_FIELDS = ("display_name", "role", "interface", "queues", "languages", "agencies", "active")
