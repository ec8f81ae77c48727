"""Settings: built once in `main()` from CC_* environment variables and an optional INI file.

Precedence: environment over INI over defaults. An unknown key or a malformed value stops
start-up with a message naming the key.
"""

from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class SettingsError(ValueError):
    """A setting is unknown or malformed; the message names the key."""


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AmiEndpoint:
    name: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///var/contactcenter.db"
    redis_url: str = ""  # empty: the in-process bus
    # The Redis pub/sub channel of this site's processes (pub/sub ignores the database number:
    # two sites, or parallel test runs, on one Redis need their own). Empty: "cc:events".
    bus_channel: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = ""
    ami_secret: str = ""
    ami_servers: str = ""  # optional list: "name=host:port,name2=host:port" (several Asterisks)
    ami_enabled: bool = True
    ami_action_timeout: float = 5.0
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agi_enabled: bool = True
    # Who may open FastAGI sessions: Asterisk's addresses or networks ("*": anyone).
    agi_allowed: str = "127.0.0.1,::1"
    agi_max_sessions: int = 2000  # IVR sessions at once, counted from the accept
    agi_media_timeout: float = 120.0  # one prompt plus the caller's digits
    agi_session_timeout: float = 900.0  # a whole IVR session
    # the longest one IVR database call may take before the caller goes to an operator
    ivr_db_timeout_ms: int = 1500
    secret_key: str = ""
    # The site as browsers and Open311 clients see it, e.g. https://311.example.gov: the
    # Open311 discovery URL, the websockets' Origin check; https also means Secure cookies.
    public_url: str = ""
    # Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed.
    trusted_proxies: str = ""
    tls_cert: str = ""  # PEM files: serve HTTPS directly (else plain HTTP, e.g. behind a proxy)
    tls_key: str = ""
    http_header_timeout: float = 10.0  # a request's line and headers, from its first byte
    http_body_timeout: float = 30.0
    http_max_connections: int = 4096
    http_max_connections_per_address: int = 256  # trusted proxies are exempt
    health_api_key: str = ""  # X-API-Key for /health details that needs no database
    general_queue: str = "general-311"
    service_level_seconds: int = 15
    short_abandon_seconds: int = 5
    timezone: str = "UTC"  # the center's: where "today" starts for the wallboard and reports
    spool_dir: str = "var/spool"
    # Prompts (contactcenter/prompts/): where Asterisk reads sounds (<dir>/<lang>/311/...), and
    # the product's own audio (recordings, the synthesis cache), content-addressed.
    sounds_dir: str = "var/sounds"
    prompts_dir: str = "var/prompts"
    tts_engine: str = "espeak-ng"  # or "piper"
    # per language: espeak-ng voice names ("en=en-us,es=es-419", the default) or, for piper,
    # voice model files ("en=/srv/voices/en_US-amy-medium.onnx,es=...")
    tts_voices: str = ""
    piper_binary: str = "piper"
    # Where the generated queue configuration is written for Asterisk (its /etc/asterisk, or a
    # directory shared with it); empty: not written (the admin page says so).
    asterisk_conf_dir: str = ""
    # Caller languages routed to their speakers first, in penalty-band order ("es,fr");
    # the dialplan's LANG_PENALTY_<lang> globals must say the same.
    routed_languages: str = "es"
    # Where Asterisk's own records are read after a gap (telephony/records.py): "table" (the
    # asterisk_queue_log/asterisk_cdr tables Asterisk writes into), "file:<queue_log path>"
    # optionally ";cdr=<csv path>", or "off".
    asterisk_records: str = "table"
    reconcile_interval: float = 5.0  # seconds between checkpoints / partial-call sweeps
    # "pg": bridge processes share a PostgreSQL advisory lock; one reads AMI, the others stand
    # by and take over (telephony/lease.py). "off": every bridge process reads AMI.
    bridge_lease: str = "off"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 0  # 0: e-mail intake off
    smtp_intake_address: str = "311@localhost"
    smtp_relay_host: str = ""
    smtp_relay_port: int = 25
    smtp_max_bytes: int = 1_000_000
    # citizens hear back (contactcenter/notify): SMS by a JSON webhook {to, text} a city points
    # at its SMS provider, or by an e-mail-to-SMS gateway (digits@domain, through the relay)
    sms_webhook_url: str = ""
    sms_email_domain: str = ""
    notify_attempts: int = 5  # tries per message before it is marked failed (logged)
    # the agencies' daily digest of at-risk and overdue cases, local time (CC_TIMEZONE); empty:
    # no digest
    sla_digest_time: str = "07:00"
    retention_days: int = 0  # 0: keep personal data forever
    # honest expected dates (cases/estimates.py): closed cases needed before history replaces
    # the SLA as a service's estimate
    estimate_min_closed: int = 20
    # closing the loop by voice (callbacks/): the channel Asterisk dials to reach a citizen,
    # {number} replaced, e.g. PJSIP/{number}@city-trunk; empty: no call-backs
    callback_channel: str = ""
    callback_caller_id: str = '"3-1-1" <311>'
    callback_hours: str = "09:00-19:00"  # the center's time zone, every day
    callback_attempts: int = 3
    callback_retry_minutes: int = 60
    callback_answer_seconds: int = 90  # placed and no answer within this: not answered
    # an operator may reopen a case closed at most this many days ago (agencies: any time)
    reopen_days: int = 7
    open311_jurisdiction: str = ""  # empty: any jurisdiction_id is accepted (one jurisdiction)
    # browser apps on other sites that may call the Open311 API: "https://app.example,..." or *
    open311_cors_origins: str = ""
    demo: bool = False
    log_level: str = "INFO"
    extra: Mapping[str, str] = field(default_factory=dict)

    def languages_routed(self) -> list[str]:
        return [x.strip().lower() for x in self.routed_languages.split(",") if x.strip()]

    def ami_endpoints(self) -> list[AmiEndpoint]:
        if not self.ami_servers:
            return [AmiEndpoint("default", self.ami_host, self.ami_port)]
        out = []
        for item in self.ami_servers.split(","):
            name, _, addr = item.strip().partition("=")
            host, _, port = addr.rpartition(":")
            if not name or not host or not port.isdigit():
                raise SettingsError(
                    f"CC_AMI_SERVERS: {item!r} is not name=host:port"
                )
            out.append(AmiEndpoint(name, host, int(port)))
        return out

    def agi_networks(self) -> tuple[Network, ...] | None:
        """The FastAGI allow-list; None when anyone may connect ("*")."""
        if self.agi_allowed.strip() == "*":
            return None
        return parse_networks("CC_AGI_ALLOWED", self.agi_allowed)

    def proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks("CC_TRUSTED_PROXIES", self.trusted_proxies)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def parse_networks(name: str, raw: str) -> tuple[Network, ...]:
    """"10.0.0.5, 10.1.0.0/16, ::1" -> networks; a bad item stops start-up naming `name`."""
    out = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                f"{name}: {item!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24)"
            ) from None
    return tuple(out)


def address_in(address: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether a peer address (as sockets give it; IPv4-mapped IPv6 counts as IPv4) is in one
    of `networks`."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


MIN_KEY_BYTES = 32
MIN_KEY_BITS = 64.0
KEY_HINT = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def key_weakness(value: str) -> str | None:
    """Why `value` is too weak to be a key (None if it is fine).

    The estimate is conservative, not a proof: bits per character from the characters'
    frequencies, times the number of characters that are not predictable, where a repeat of an
    earlier run of 4+ characters counts once and a character continuing a run such as "abc",
    "123" or "xxx" counts nothing. A random 32-byte key scores over 80 bits."""
    size = len(value.encode())
    if size < MIN_KEY_BYTES:
        return f"is {size} bytes long; at least {MIN_KEY_BYTES} are needed"
    n = len(value)
    freq = Counter(value)
    per_char = -sum(c / n * math.log2(c / n) for c in freq.values())
    free, i = 0, 0
    while i < n:
        k = 4
        while i >= 4 and i + k <= n and value[i : i + k] in value[:i]:
            k += 1
        if k > 4:  # value[i:i+k-1] repeats something earlier
            free += 1
            i += k - 1
            continue
        if i >= 2 and ord(value[i]) - ord(value[i - 1]) == ord(value[i - 1]) - ord(value[i - 2]):
            i += 1
            continue
        free += 1
        i += 1
    if per_char * free < MIN_KEY_BITS:
        return "is too predictable (repeats, runs such as abc or 123, few distinct characters)"
    return None


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(key: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise SettingsError(f"CC_{key.upper()}: expected true/false, got {raw!r}")
    if isinstance(default, int):
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(f"CC_{key.upper()}: expected a whole number, got {raw!r}") from None
        if key.endswith("_port") and not 0 <= value <= 65535:
            raise SettingsError(f"CC_{key.upper()}: port {value} is out of range 0-65535")
        if value < 0:
            raise SettingsError(f"CC_{key.upper()}: must not be negative, got {value}")
        return value
    if isinstance(default, float):
        try:
            number = float(raw.strip())
        except ValueError:
            raise SettingsError(f"CC_{key.upper()}: expected a number, got {raw!r}") from None
        if number <= 0:
            raise SettingsError(f"CC_{key.upper()}: must be positive, got {number}")
        return number
    return raw.strip()


def load_settings(
    env: Mapping[str, str] | None = None, ini_path: str | os.PathLike[str] | None = None
) -> Settings:
    """Read CC_* variables (and CC_CONFIG or `ini_path`, an INI file with a [contactcenter]
    section of the same keys, lower case, without the CC_ prefix)."""
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    ini = ini_path or env.get("CC_CONFIG")
    if ini:
        path = Path(ini)
        if not path.is_file():
            raise SettingsError(f"CC_CONFIG: no such file {str(path)!r}")
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise SettingsError(f"CC_CONFIG: {path} is not a valid INI file: {exc}") from None
        for section in parser.sections():
            if section != "contactcenter":
                raise SettingsError(f"{path}: unknown section [{section}] (use [contactcenter])")
            for key, raw in parser.items(section):
                key = key.lower().removeprefix("cc_")
                if key not in _FIELDS:
                    raise SettingsError(f"{path}: unknown key {key!r}")
                values[key] = raw
    for name, raw in env.items():
        if not name.startswith("CC_") or name == "CC_CONFIG":
            continue
        key = name[3:].lower()
        if key not in _FIELDS:
            raise SettingsError(f"{name}: unknown setting")
        values[key] = raw
    kwargs = {
        key: _convert(key, raw, _FIELDS[key].default) for key, raw in values.items()
    }
    if "database_url" in kwargs:
        kwargs["database_url"] = async_database_url(kwargs["database_url"])
    settings = Settings(**kwargs)
    settings.ami_endpoints()  # validates CC_AMI_SERVERS
    scheme, sep, _ = settings.database_url.partition("://")
    if not sep or scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise SettingsError(
            f"CC_DATABASE_URL: unsupported database {scheme!r} "
            "(use sqlite:///path.db or postgresql://user@host/db)"
        )
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"CC_TIMEZONE: unknown time zone {settings.timezone!r} (use e.g. America/New_York)"
        ) from None
    if settings.sms_webhook_url and not settings.sms_webhook_url.startswith(
            ("http://", "https://")):
        raise SettingsError(
            f"CC_SMS_WEBHOOK_URL: expected http://... or https://..., got "
            f"{settings.sms_webhook_url[:80]!r}")
    if settings.sms_email_domain and not re.fullmatch(
            r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", settings.sms_email_domain):
        raise SettingsError(
            f"CC_SMS_EMAIL_DOMAIN: expected a domain like sms.example.net, got "
            f"{settings.sms_email_domain[:80]!r}")
    if settings.notify_attempts < 1:
        raise SettingsError("CC_NOTIFY_ATTEMPTS: at least 1")
    if settings.sla_digest_time and not re.fullmatch(
            r"([01]\d|2[0-3]):[0-5]\d", settings.sla_digest_time):
        raise SettingsError(
            f"CC_SLA_DIGEST_TIME: expected HH:MM (24-hour), or empty for no digest, got "
            f"{settings.sla_digest_time[:20]!r}")
    if settings.tts_engine not in ("espeak-ng", "piper"):
        raise SettingsError(f"CC_TTS_ENGINE: {settings.tts_engine!r} is not espeak-ng or piper")
    for item in filter(None, (x.strip() for x in settings.tts_voices.split(","))):
        lang, sep, voice = item.partition("=")
        if not sep or not lang.strip() or not voice.strip():
            raise SettingsError(f"CC_TTS_VOICES: {item!r} is not language=voice "
                                "(e.g. en=en-us,es=es-419)")
        if settings.tts_engine == "piper" and not Path(voice.strip()).is_file():
            raise SettingsError(f"CC_TTS_VOICES: the piper voice model {voice.strip()!r} "
                                "does not exist")
    if settings.redis_url and not settings.redis_url.startswith(("redis://", "rediss://")):
        raise SettingsError(f"CC_REDIS_URL: expected redis://..., got {settings.redis_url!r}")
    if settings.callback_channel and "{number}" not in settings.callback_channel:
        raise SettingsError(
            "CC_CALLBACK_CHANNEL must contain {number}, e.g. PJSIP/{number}@city-trunk")
    if not re.fullmatch(r"\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*", settings.callback_hours):
        raise SettingsError(
            f"CC_CALLBACK_HOURS must be HH:MM-HH:MM, got {settings.callback_hours!r}")
    _check_security(settings)
    return settings


# The URLs people type (and other tools print) name the synchronous drivers; the server's are
# asyncio ones. Same database, same file: only the driver part is swapped.
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
                  "postgres": "postgresql+asyncpg", "postgresql+psycopg2": "postgresql+asyncpg",
                  "postgresql+psycopg": "postgresql+asyncpg"}


def async_database_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{_ASYNC_DRIVERS.get(scheme, scheme)}{sep}{rest}" if sep else url


def _check_security(settings: Settings) -> None:
    for key in ("secret_key", "health_api_key"):
        value = getattr(settings, key)
        if value and (why := key_weakness(value)):
            raise SettingsError(f"CC_{key.upper()} {why}; {KEY_HINT}")
    settings.agi_networks()
    settings.proxy_networks()
    for key in ("http_max_connections", "http_max_connections_per_address", "agi_max_sessions",
                "ivr_db_timeout_ms"):
        if getattr(settings, key) < 1:
            raise SettingsError(f"CC_{key.upper()}: must be at least 1")
    if settings.public_url:
        url = urlsplit(settings.public_url)
        if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/") \
                or url.query or url.fragment or url.username is not None:
            raise SettingsError(
                f"CC_PUBLIC_URL: expected https://host[:port] (no path), "
                f"got {settings.public_url!r}")
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise SettingsError("CC_TLS_CERT and CC_TLS_KEY go together: set both or neither")
    for key in ("tls_cert", "tls_key"):
        value = getattr(settings, key)
        if value and not Path(value).is_file():
            raise SettingsError(f"CC_{key.upper()}: no such file {value!r}")


def require_production_secrets(settings: Settings) -> None:
    """`serve` refuses to start without real secrets; only demo mode may use defaults."""
    missing = []
    if not settings.secret_key:
        missing.append("CC_SECRET_KEY")
    if settings.ami_enabled and not (settings.ami_username and settings.ami_secret):
        missing.append("CC_AMI_USERNAME/CC_AMI_SECRET")
    if missing:
        raise SettingsError(
            "refusing to start without " + ", ".join(missing)
            + " (no secret has a default outside `contactcenter demo`)"
        )
