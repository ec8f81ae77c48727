"""Open311 GeoReport v2: the form parser, field validation and the XML/JSON shapes of the spec.

Pure functions (no I/O), so the parser can be fuzzed and the shapes tested without a server.
Reference: wiki.open311.org/GeoReport_v2 and /Service_Discovery. JSON follows the spec's "Spark
convention" (a container of repeated elements becomes an array). XML is the required format and
the default when a URL names no format.

The public output never carries a citizen's contact details (issue 11): no e-mail, phone or
names, and e-mail addresses or phone numbers typed into a description are masked (dates, asset
numbers and coordinates are not: issue 23). Descriptions are plain text, stored as sent and
escaped wherever they are shown. Contact fields never sink a report: what is usable is kept, what
is not is named in the answer's service_notice and kept for staff in an internal note.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..queues.models import ServiceType
from .store import NUMBER_RE, CaseView, NewCase, PublicUpdate

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
CONTENT_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
DEFAULT_WINDOW = timedelta(days=90)  # GET requests: "defaults to most recent 90 days"
MAX_WINDOW = timedelta(days=90)  # "may not span more than 90 days"
MAX_RESULTS = 1000  # "first 1000 requests returned"
MAX_DESCRIPTION = 4000  # "free form text limited to 4,000 characters"
MAX_FIELDS = 200
MAX_BODY = 256 * 1024
# Longest request URL the API reads (1,000 ids take about 18 kB); the HTTP server reads lines up
# to twice this (app.py), so a longer URL still gets the spec's error list, not plain text.
MAX_URL = 32 * 1024
INVALID_KEY = "Invalid api_key received -- can't proceed with create_request."

# (max length, may contain line breaks) of the plain fields of POST requests
SINGLE_FIELDS: dict[str, tuple[int, bool]] = {
    "api_key": (200, False),
    "jurisdiction_id": (200, False),
    "service_code": (80, False),
    "lat": (40, False),
    "long": (40, False),
    "address_string": (400, False),
    "address_id": (80, False),
    "email": (200, False),
    "device_id": (120, False),
    "account_id": (120, False),
    "first_name": (120, False),
    "last_name": (120, False),
    "phone": (40, False),
    "description": (MAX_DESCRIPTION, True),
    "media_url": (1000, False),
}
ATTRIBUTE_KEY = re.compile(r"^attribute\[([^\[\]]{1,80})\](\[\])?$")
NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?$")
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
PHONE = re.compile(r"^\+?[0-9 ().\-/]{3,40}$")
# "555-867-5309 ext. 12", "x12", "#12", Spanish "ext"/"extensión"/"int."
PHONE_EXTENSION = re.compile(
    r"^(?P<number>.*?\d[\s.,;]*)(?:,|;)?\s*(?:ext\.?|extension|extensi[oó]n|x|int\.?|interno|#)"
    r"\s*:?\s*(?P<ext>\d{1,6})\s*$", re.IGNORECASE)
# W3C date-time profile: a date, or a date and time with a zone (Z or +hh:mm); a time without
# a zone is only read where a zone is given to read it in (attributes: the center's zone)
W3C_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?$"
)
_XML_BAD = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# any e-mail address, internationalised ones too (a Unicode or punycode top-level domain)
_MASK_EMAIL = re.compile(
    r"[^\s@<>()\[\]\"',;:]+@[^\s@<>()\[\]\"',;:]+\.(?:[^\W\d_]{2,}|xn--[A-Za-z0-9-]+)")
# a run of digits and the separators people write numbers with
_NUMBER_RUN = re.compile(r"(?<![\w+.,])(?:\+|\(\+?)?\d(?:[\d .()/\-]*\d)?\)?(?![\w])")
_DATE = re.compile(
    r"^(?:\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{2,4})(?: \d{1,2})?$")
_DECIMAL = re.compile(r"^\d{1,3}\.\d{5,}$")  # a coordinate in degrees
_NANP = re.compile(r"^(?:1[ .\-]?)?(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}$")
# words that say the number after them is a phone number (English and Spanish)
_PHONE_CUE = re.compile(
    r"(?:\b(?:call|phone|telephone|tel|cell|mobile|whats ?app|text|sms|fax|reach|ring|"
    r"llam\w*|tel[eé]fono|celular|cel|m[oó]vil|fijo|contacto|contact)\b|"
    r"\b(?:my|our|mi|nuestro)\s+(?:number|n[uú]mero))[^\d\n]{0,25}$", re.IGNORECASE)
MASK = "[contact removed]"


# --- errors -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Open311Error:
    code: int
    description: str


class Open311Errors(Exception):
    """Answered as the spec's error array with HTTP `status` (400, 403 or 404; 405 and 414
    where plain HTTP would answer in text)."""

    def __init__(self, status: int, errors: Iterable[Open311Error | tuple[int, str] | str]):
        items: list[Open311Error] = []
        for e in errors:
            if isinstance(e, Open311Error):
                items.append(e)
            elif isinstance(e, tuple):
                items.append(Open311Error(*e))
            else:
                items.append(Open311Error(status, e))
        self.status = status
        self.errors = items or [Open311Error(status, "error")]
        super().__init__("; ".join(e.description for e in self.errors))


def bad_request(*descriptions: str) -> Open311Errors:
    return Open311Errors(400, descriptions)


def not_found(*descriptions: str) -> Open311Errors:
    return Open311Errors(404, descriptions)


# --- URLs and forms -----------------------------------------------------------------------------


def split_format(name: str) -> tuple[str, str]:
    """`"pothole.json"` -> ("pothole", "json"); no known suffix: the whole name, XML."""
    stem, dot, ext = name.rpartition(".")
    if dot and ext.lower() in CONTENT_TYPES:
        return stem, ext.lower()
    return name, "xml"


def format_of(ext: str) -> str:
    """The `.xml`/`.json` suffix of a fixed resource; empty means the spec's required XML."""
    fmt = ext.lstrip(".").lower() or "xml"
    if fmt not in CONTENT_TYPES:
        raise bad_request(f"format {fmt!r} is not supported (use .xml or .json)")
    return fmt


Form = dict[str, list[str]]


def parse_form(body: bytes, content_type: str | None = None) -> Form:
    """Decode an application/x-www-form-urlencoded body (UTF-8, the spec's only encoding)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime and mime != "application/x-www-form-urlencoded":
        raise bad_request(
            f"the request body must be application/x-www-form-urlencoded, not {mime[:60]}"
        )
    if len(body) > MAX_BODY:
        raise bad_request(f"the request body is larger than {MAX_BODY} bytes")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                          encoding="utf-8", errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise bad_request("the request body is not valid UTF-8") from None
    except ValueError:
        raise bad_request(f"the request has more than {MAX_FIELDS} fields") from None
    form: Form = {}
    for key, value in pairs:
        form.setdefault(key, []).append(value)
    return form


def merge_query(form: Form, query: Mapping[str, str] | Iterable[tuple[str, str]]) -> Form:
    """Clients sometimes put api_key / jurisdiction_id in the URL of a POST; the body wins."""
    items = query.items() if isinstance(query, Mapping) else query
    out = {k: list(v) for k, v in form.items()}
    for key, value in items:
        if key in ("api_key", "jurisdiction_id") and key not in out:
            out[key] = [value]
    return out


def _bad_chars(value: str, multiline: bool) -> bool:
    for ch in value:
        if ch in "\r\n\t" and multiline:
            continue
        if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and not (ch == "\t"):
            return True
    return False


def single(form: Form, name: str, errors: list[str]) -> str | None:
    """One optional plain field, checked for repetition, length and control characters.
    Empty counts as absent ("a null parameter should be treated as non-declared")."""
    values = form.get(name)
    if not values:
        return None
    if len(values) > 1:
        errors.append(f"{name} was given {len(values)} times")
        return None
    value = values[0].strip()
    if not value:
        return None
    max_len, multiline = SINGLE_FIELDS[name]
    if len(value) > max_len:
        errors.append(f"{name} is longer than {max_len} characters")
        return None
    if _bad_chars(value, multiline):
        errors.append(f"{name} contains control characters" + ("" if multiline else
                                                               " or line breaks"))
        return None
    return value


def parse_coordinate(raw: str, name: str, limit: float, errors: list[str]) -> float | None:
    if not NUMBER.match(raw):
        errors.append(f"{name} must be a decimal number in WGS84 degrees, got {raw[:40]!r}")
        return None
    value = float(raw)
    if not math.isfinite(value) or not -limit <= value <= limit:
        errors.append(f"{name} must be between -{limit:g} and {limit:g}")
        return None
    return value


def parse_datetime(raw: str, local: tzinfo | None = None) -> datetime:
    """A W3C date-time with a time zone (or a bare date, read as UTC midnight); ValueError if
    not. A '+' sent unencoded in a query string arrives as a space and is put back. With
    `local`, a time without a zone (an HTML datetime-local field) is read in that zone."""
    value = raw.strip()
    value = re.sub(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:\d{2})$", r"\1+\2", value)
    m = W3C_DATETIME.match(value)
    if not m:
        raise ValueError(f"{raw[:40]!r} is not a W3C date-time such as 2010-01-01T00:00:00Z")
    if m.group(4) is not None and m.group(8) is None and local is None:
        raise ValueError(f"{raw[:40]!r} has no time zone (add Z or an offset such as -05:00)")
    iso = value.replace("Z", "+00:00")
    if m.group(7) is not None:  # fromisoformat takes at most 6 fraction digits
        iso = re.sub(r"\.(\d{1,9})", lambda f: "." + f.group(1)[:6].ljust(6, "0"), iso)
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"{raw[:40]!r} is not a valid date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=local if m.group(4) is not None and local else UTC)
    return parsed.astimezone(UTC)


# --- POST requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostRequest:
    api_key: str | None
    jurisdiction_id: str | None
    service_code: str | None


def post_header(form: Form) -> PostRequest:
    """The fields needed before anything else is looked at: who, where, what service."""
    errors: list[str] = []
    api_key = single(form, "api_key", errors)
    jurisdiction = single(form, "jurisdiction_id", errors)
    code = single(form, "service_code", errors)
    if errors:
        raise bad_request(*errors)
    return PostRequest(api_key, jurisdiction, code)


def attribute_definitions(stype: ServiceType) -> list[dict[str, Any]]:
    """Service-type attributes completed with the spec's defaults (variable, order...)."""
    out = []
    for i, raw in enumerate(stype.attributes or [], start=1):
        if not isinstance(raw, dict) or not raw.get("code"):
            continue
        out.append({
            "variable": bool(raw.get("variable", True)),
            "code": str(raw["code"]),
            "datatype": str(raw.get("datatype", "string")),
            "required": bool(raw.get("required", False)),
            "datatype_description": raw.get("datatype_description") or None,
            "order": int(raw.get("order", i)),
            "description": str(raw.get("description", "")),
            "values": [
                {"key": str(v.get("key")), "name": str(v.get("name", v.get("key")))}
                for v in raw.get("values", []) if isinstance(v, dict)
            ],
        })
    return sorted(out, key=lambda a: a["order"])


def _attribute_values(form: Form, errors: list[str]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, vals in form.items():
        if not key.startswith("attribute"):
            continue
        m = ATTRIBUTE_KEY.match(key)
        if not m:
            errors.append(f"malformed attribute field {key[:60]!r} (use attribute[code]=value)")
            continue
        values.setdefault(m.group(1), []).extend(v.strip() for v in vals if v.strip())
    return values


def _check_attribute(
    definition: dict[str, Any], given: list[str], errors: list[str], local: tzinfo = UTC
) -> Any:
    code, datatype = definition["code"], definition["datatype"]
    label = f"attribute[{code}]"
    if datatype == "multivaluelist":
        keys = {v["key"] for v in definition["values"]}
        bad = [v for v in given if v not in keys]
        if bad:
            errors.append(f"{label}: {bad[0][:40]!r} is not one of {', '.join(sorted(keys))}")
            return None
        return list(dict.fromkeys(given))
    if len(given) > 1:
        errors.append(f"{label} takes one value, got {len(given)}")
        return None
    value = given[0]
    if datatype == "number":
        if not NUMBER.match(value) or not math.isfinite(float(value)):
            errors.append(f"{label} must be a number, got {value[:40]!r}")
            return None
        return float(value)
    if datatype == "datetime":
        try:
            return parse_datetime(value, local).isoformat().replace("+00:00", "Z")
        except ValueError as exc:
            errors.append(f"{label}: {exc}")
            return None
    if datatype == "singlevaluelist":
        keys = {v["key"] for v in definition["values"]}
        if value not in keys:
            errors.append(f"{label}: {value[:40]!r} is not one of {', '.join(sorted(keys))}")
            return None
        return value
    multiline = datatype == "text"
    limit = MAX_DESCRIPTION if multiline else 1000
    if len(value) > limit or _bad_chars(value, multiline):
        errors.append(f"{label} must be {'text' if multiline else 'one line'} of at most "
                      f"{limit} characters without control characters")
        return None
    return value


# --- contact fields: keep what is usable, say what was not ---------------------------------------

CONTACT_FIELDS = ("email", "phone", "first_name", "last_name")


@dataclass(frozen=True, slots=True)
class ContactNotice:
    """A contact field that was changed or not kept; `reason` is one of the keys of
    CONTACT_REASONS (the web form words them in the citizen's language)."""

    field: str
    value: str
    reason: str
    kept: str | None = None


CONTACT_REASONS = {
    "not_email": "is not an e-mail address",
    "not_phone": "is not a phone number",
    "extension": "has an extension, kept for staff",
    "too_long": "is too long",
    "control": "contains line breaks or control characters",
    "repeated": "was given more than once",
}


def clean_email(raw: str) -> str | None:
    """An e-mail address as sent (NFC), internationalised ones too (RFC 6531: UTF-8 local part,
    IDN domain); None when it is not one. `<addr>` and `mailto:` are unwrapped."""
    value = unicodedata.normalize("NFC", raw.strip())
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    if len(value) > 200 or value.count("@") != 1 or _bad_chars(value, False):
        return None
    local, domain = value.split("@")
    if not local or len(local.encode("utf-8")) > 64 or any(
        ch.isspace() or ch in '"(),:;<>[\\]' for ch in local
    ) or local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    try:
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253 or not all(
        re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", label)
        for label in labels
    ) or labels[-1].isdigit():
        return None
    return value


def clean_phone(raw: str) -> tuple[str, str | None] | None:
    """(the number, its extension or None); None when the text is not a phone number."""
    value = " ".join(raw.split())
    ext = None
    m = PHONE_EXTENSION.match(value)
    if m:
        value, ext = m.group("number").strip(" .,;"), m.group("ext")
    digits = sum(ch.isdigit() for ch in value)
    if not PHONE.match(value) or not 3 <= digits <= 20:
        return None
    return value, ext


def _contact_field(form: Form, name: str, notices: list[ContactNotice]) -> str | None:
    values = [v.strip() for v in form.get(name, []) if v.strip()]
    if not values:
        return None
    if len(values) > 1:
        notices.append(ContactNotice(name, " / ".join(values)[:200], "repeated", values[0]))
    value = values[0]
    max_len = SINGLE_FIELDS[name][0]
    if len(value) > max_len:
        notices.append(ContactNotice(name, value[:max_len], "too_long"))
        return None
    if _bad_chars(value, False):
        notices.append(ContactNotice(name, " ".join(value.split())[:max_len], "control"))
        return None
    return value


@dataclass(frozen=True, slots=True)
class Filing:
    """A valid POST, ready for the store, and what was not kept of the contact fields."""

    case: NewCase
    notices: tuple[ContactNotice, ...] = ()


def notice_text(notices: Iterable[ContactNotice]) -> str:
    """The English sentence the POST answer's service_notice carries."""
    parts = []
    for n in notices:
        what = f"{n.field} {n.value[:60]!r} {CONTACT_REASONS[n.reason]}"
        if n.reason == "repeated" and n.kept:
            what += f" (kept {n.kept[:60]!r})"
        elif n.reason not in ("extension",):
            what += " and was not kept"
        parts.append(what)
    return "; ".join(parts) + "." if parts else ""


def staff_note(notices: Iterable[ContactNotice]) -> str | None:
    """What staff see of contact details that were changed or left out, so nothing is lost."""
    lines = [f"{n.field} as given: {n.value} ({CONTACT_REASONS[n.reason]})" for n in notices]
    return ("Contact details not kept as sent by the client:\n" + "\n".join(lines)
            ) if lines else None


def build_request(
    form: Form, stype: ServiceType, origin: dict[str, Any], local: tzinfo = UTC
) -> Filing:
    """Validate every field of a POST for `stype`; all problems are reported at once, except
    contact fields, which never refuse a report. `local` is the zone times without one
    (attribute datetimes) are read in: the center's."""
    errors: list[str] = []
    f = {name: single(form, name, errors) for name in SINGLE_FIELDS
         if name not in CONTACT_FIELDS}
    notices: list[ContactNotice] = []
    contact = {name: _contact_field(form, name, notices) for name in CONTACT_FIELDS}

    lat = lon = None
    if f["lat"] is not None or f["long"] is not None:
        if f["lat"] is None or f["long"] is None:
            errors.append("lat and long must be sent together")
        else:
            lat = parse_coordinate(f["lat"], "lat", 90.0, errors)
            lon = parse_coordinate(f["long"], "long", 180.0, errors)
    has_location = (f["lat"] is not None and f["long"] is not None) or f["address_string"] \
        or f["address_id"]
    if not has_location and not any(e.startswith(("lat", "long", "address")) for e in errors):
        errors.append("a location is required: lat and long, address_string or address_id")

    email = None
    if contact["email"] is not None:
        email = clean_email(contact["email"])
        if email is None:
            notices.append(ContactNotice("email", contact["email"], "not_email"))
    phone = None
    if contact["phone"] is not None:
        parsed = clean_phone(contact["phone"])
        if parsed is None:
            notices.append(ContactNotice("phone", contact["phone"], "not_phone"))
        else:
            phone, ext = parsed
            if ext:
                notices.append(ContactNotice("phone", contact["phone"], "extension", phone))
    description = f["description"] or ""  # plain text, whatever it holds: escaped when shown
    media_url = f["media_url"]
    if media_url is not None:
        parts = urlsplit(media_url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(
            ch.isspace() for ch in media_url
        ):
            errors.append("media_url must be an http:// or https:// URL")

    given = _attribute_values(form, errors)
    attributes: dict[str, Any] = {}
    definitions = {d["code"]: d for d in attribute_definitions(stype)}
    for code in given:
        if code not in definitions:
            errors.append(f"attribute[{code[:40]}] is not an attribute of {stype.code}")
    for code, definition in definitions.items():
        if not definition["variable"]:
            continue
        if not given.get(code):
            if definition["required"]:
                errors.append(f"attribute[{code}] is required for {stype.code}")
            continue
        value = _check_attribute(definition, given[code], errors, local)
        if value is not None:
            attributes[code] = value

    if errors:
        raise bad_request(*errors)
    case = NewCase(
        service_code=stype.code,
        channel="web",
        description=description,
        address=f["address_string"],
        address_id=f["address_id"],
        lat=lat,
        long=lon,
        attributes=attributes,
        media_url=media_url,
        phone=phone,
        email=email,
        first_name=contact["first_name"],
        last_name=contact["last_name"],
        origin={**origin, "device_id": f["device_id"], "account_id": f["account_id"]},
        staff_note=staff_note(notices),
    )
    return Filing(case, tuple(notices))


def build_new_case(
    form: Form, stype: ServiceType, origin: dict[str, Any], local: tzinfo = UTC
) -> NewCase:
    return build_request(form, stype, origin, local).case


# --- GET requests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestQuery:
    numbers: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


def _comma_list(query: Mapping[str, str] | Any, name: str) -> list[str]:
    values: list[str] = []
    for raw in query.getall(name, []) if hasattr(query, "getall") else [query.get(name, "")]:
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def parse_request_query(query: Any, now: datetime) -> RequestQuery:
    """GET requests: service_request_id overrides everything; otherwise code/status filters in
    a date window of at most 90 days (default: the most recent 90 days)."""
    errors: list[str] = []
    numbers = _comma_list(query, "service_request_id")
    if numbers:
        if len(numbers) > MAX_RESULTS:
            raise bad_request(f"at most {MAX_RESULTS} service_request_id values")
        return RequestQuery(numbers=tuple(n[:40] for n in numbers))
    codes = _comma_list(query, "service_code")
    if any(len(c) > 80 for c in codes):
        errors.append("service_code values are at most 80 characters")
    statuses = [s.lower() for s in _comma_list(query, "status")]
    for s in statuses:
        if s not in ("open", "closed"):
            errors.append(f"status {s[:20]!r} is not open or closed")
    dates: dict[str, datetime | None] = {}
    for name in ("start_date", "end_date"):
        raw = query.get(name, "")
        dates[name] = None
        if raw and raw.strip():
            try:
                dates[name] = parse_datetime(raw)
            except ValueError as exc:
                errors.append(f"{name}: {exc}")
    if errors:
        raise bad_request(*errors)
    start, end = dates["start_date"], dates["end_date"]
    try:
        if start is None and end is None:
            start, end = now - DEFAULT_WINDOW, now
        elif start is None:
            assert end is not None
            start = end - DEFAULT_WINDOW
        elif end is None:
            end = start + DEFAULT_WINDOW
    except OverflowError:
        raise bad_request("the dates are out of range") from None
    if start > end:
        raise bad_request("start_date is after end_date")
    if end - start > MAX_WINDOW:
        raise bad_request("the date range may not span more than 90 days")
    if end.microsecond == 0 and dates["end_date"] is not None:
        # times are printed to the second (w3) but stored to the microsecond: an end_date of
        # 12:00:05Z includes everything printed as 12:00:05Z, so paging back by end_date
        # loses nothing at a page boundary (issue 23, D2)
        end += timedelta(seconds=1) - timedelta(microseconds=1)
    return RequestQuery((), tuple(codes), tuple(statuses), start, end)


def whole_seconds(views: list[CaseView], limit: int = MAX_RESULTS) -> list[CaseView]:
    """A page cut by the result cap ends on a whole printed second: the oldest second, which
    the cap may have split, is left for the next page. So end_date = the oldest
    requested_datetime minus one second pages without loss or repetition (and end_date = that
    time itself repeats one second, losing nothing). One second holding the whole page stays."""
    if len(views) < limit:
        return views
    last = views[-1].created_at.replace(microsecond=0)
    kept = [v for v in views if v.created_at.replace(microsecond=0) != last]
    return kept or views


# --- output shapes ------------------------------------------------------------------------------


def w3(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def open311_status(status: str) -> str:
    return "closed" if status == "closed" else "open"


STATUS_NOTES = {"open": None, "acknowledged": "Acknowledged", "in_progress": "In progress",
                "waiting_citizen": "Waiting for information from the requester"}


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _looks_like_phone(run: str, before: str, known_phones: list[str]) -> bool:
    """A number run is a phone number when it is the submitter's own, has a phone's shape
    (+country code, (area) code, 555-867-5309, 3+ groups) or follows a word such as "call"
    or "celular". Dates, decimal coordinates and bare asset numbers are not."""
    digits = _digits(run)
    if len(digits) < 7 or len(digits) > 15:
        return False
    for known in known_phones:
        if digits in known or known[-7:] in digits:
            return True
    if _DATE.match(run) or _DECIMAL.match(run) or NUMBER_RE.match(run):
        return False
    if run.startswith("+") or run.startswith("(") or _NANP.match(run):
        return True
    groups = [g for g in re.split(r"[ .()/\-]+", run) if g]
    if len(groups) >= 3 and len(digits) >= 9 and all(2 <= len(g) <= 4 for g in groups[1:]):
        return True
    return bool(_PHONE_CUE.search(before))


def mask_contacts(text: str, known: Iterable[str | None] = ()) -> str:
    """Hide e-mail addresses and phone numbers typed into public text: the submitter's own
    (`known`: their e-mail and phone as stored) and anything shaped like one."""
    phones: list[str] = []
    for value in known:
        if not value:
            continue
        if "@" in value:
            text = re.sub(re.escape(value), MASK, text, flags=re.IGNORECASE)
        elif len(_digits(value)) >= 7:
            phones.append(_digits(value))
    text = _MASK_EMAIL.sub(MASK, text)
    out: list[str] = []
    pos = 0
    for m in _NUMBER_RUN.finditer(text):
        run = m.group(0)
        if _looks_like_phone(run, text[max(0, m.start() - 40):m.start()], phones):
            out.append(text[pos:m.start()])
            out.append(MASK)
            pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def service_notice(view: CaseView, expected: datetime | None = None) -> str:
    when = expected or view.sla_due_at
    return (f"Case {view.number} for {view.agency_name or '3-1-1'}; expected by "
            f"{w3(when)}.") if when else f"Case {view.number}."


def request_record(view: CaseView, base: str = "", expected: datetime | None = None
                   ) -> dict[str, Any]:
    """One service request as the spec returns it: public fields only. A photo uploaded to us
    is stored as a path; `base` (scheme://host) makes its media_url absolute. `expected` is the
    honest estimate (cases/estimates.py); without one, the SLA due time."""
    if view.status == "closed":
        notes = view.close_reason
    else:
        public = view.public_notes
        notes = public[-1].body if public else STATUS_NOTES.get(view.status)
    known = (view.citizen_email, view.citizen_phone)
    return {
        "service_request_id": view.number,
        "status": open311_status(view.status),
        "status_notes": mask_contacts(notes, known) if notes else None,
        "service_name": view.service_name,
        "service_code": view.service_code,
        "description": mask_contacts(view.description, known) or None,
        "agency_responsible": view.agency_name,
        "service_notice": service_notice(view, expected),
        "requested_datetime": w3(view.created_at),
        "updated_datetime": w3(view.closed_at or view.updated_at),
        "expected_datetime": w3(expected or view.sla_due_at),
        "address": view.address,
        "address_id": view.address_id,
        "zipcode": None,
        "lat": view.lat,
        "long": view.long,
        "media_url": base + view.media_url if view.media_url and view.media_url.startswith("/")
        else view.media_url,
    }


# servicerequestupdates (the extension FixMyStreet reads): the status of each update in its words
UPDATE_STATUS = {"open": "open", "acknowledged": "investigating", "in_progress": "in_progress"}
CLOSED_STATUS_OF_CODE = {"resolved": "fixed", "duplicate": "duplicate",
                         "no-action": "no_further_action", "not-found": "no_further_action",
                         "referred": "not_councils_responsibility"}


def update_record(update: PublicUpdate) -> dict[str, Any]:
    if update.status == "closed":
        status = CLOSED_STATUS_OF_CODE.get(update.code or "", "closed")
    else:
        status = UPDATE_STATUS.get(update.status, "open")
    return {
        "update_id": str(update.id),
        "service_request_id": update.number,
        "status": status,
        "updated_datetime": w3(update.at),
        "description": mask_contacts(update.note, update.known),
        "media_url": "",
    }


def service_record(stype: ServiceType) -> dict[str, Any]:
    return {
        "service_code": stype.code,
        "service_name": stype.name,
        "description": stype.description or None,
        "metadata": bool(attribute_definitions(stype)),
        "type": "realtime",
        "keywords": stype.keywords or None,
        "group": stype.group_name or None,
    }


def service_definition(stype: ServiceType) -> dict[str, Any]:
    return {"service_code": stype.code, "attributes": attribute_definitions(stype)}


def discovery(base_url: str, changeset: datetime) -> dict[str, Any]:
    stamp = w3(changeset)
    return {
        "changeset": stamp,
        "contact": "3-1-1 Citizen Services: ask the city's 3-1-1 administrators for help.",
        "key_service": "API keys are issued by the city's 3-1-1 administrators.",
        "endpoints": [{
            "specification": SPEC_URL,
            "url": base_url,
            "changeset": stamp,
            "type": "production",
            "formats": ["text/xml", "application/json"],
        }],
    }


def error_payload(errors: Iterable[Open311Error]) -> list[dict[str, Any]]:
    return [{"code": e.code, "description": e.description} for e in errors]


# --- serialization ------------------------------------------------------------------------------

# container element -> repeated child element (the Spark convention's arrays)
ITEMS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
    "service_requests_updates": "request_update",
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return _XML_BAD.sub("", str(value))


def _fill(elem: ET.Element, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(elem, key), child)
    elif isinstance(value, list):
        item = ITEMS.get(elem.tag, "item")
        for child in value:
            _fill(ET.SubElement(elem, item), child)
    else:
        elem.text = _text(value)


def to_xml(root: str, payload: Any) -> bytes:
    elem = ET.Element(root)
    _fill(elem, payload)
    body: bytes = ET.tostring(elem, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def render(root: str, payload: Any, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return to_xml(root, payload)
