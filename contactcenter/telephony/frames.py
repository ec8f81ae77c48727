"""AMI wire frames: a pure, incremental splitter of the byte stream into events and responses.

Asterisk sends a greeting line (``Asterisk Call Manager/11.0.0\\r\\n``), then frames of
``Key: Value\\r\\n`` lines ended by a blank line. Most of a call's frames are ``VarSet``, ``CEL``
and ``Newexten`` that the product never uses; `FrameReader` looks only at the first line of such
a frame and drops it before building a dict, which is where the bridge's time would go.

Bad input never raises: an oversized frame is skipped up to the next blank line, a line without
``": "`` is ignored, invalid UTF-8 is replaced; each is counted in `errors`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import final

from ..clock import SYSTEM
from .numbers import timestamp as _timestamp

EOF_MARK = b"\r\n\r\n"
GREETING_PREFIX = b"Asterisk Call Manager/"
MAX_FRAME = 64 * 1024
# Asterisk's greeting is ~30 bytes; a "greeting" that never ends is not an Asterisk (issue 20:
# endless bytes after the prefix grew memory with quadratic copying until the timeout).
MAX_GREETING = 256

# Channel variables the call tracker reads; every other VarSet is dropped early: the IVR's
# result, and QUEUESTATUS, which Queue() sets as it returns (TIMEOUT tells a queue timeout from
# a caller's hang-up: Asterisk 22 sends QueueCallerAbandon for both).
IVR_VARIABLES = frozenset(
    {"QUEUE", "SERVICE", "LANG", "CASE", "IVRPATH", "IVROUTCOME", "QUEUESTATUS", "CC_CALLBACK"}
)

# Events the product never reads: dropped on their first line.
NOISE_EVENTS = frozenset(
    {
        b"CEL",
        b"Cdr",
        b"Newexten",
        b"DTMFBegin",
        b"DTMFEnd",
        b"AGIExecStart",
        b"AGIExecEnd",
        b"SuccessfulAuth",
        b"ChallengeSent",
        b"RTCPSent",
        b"RTCPReceived",
        b"VarSet",  # but see _wanted_varset
        b"NewAccountCode",
        b"ChannelTalkingStart",
        b"ChannelTalkingStop",
        b"DeviceStateChange",
        b"ExtensionStatus",
        b"PresenceStateChange",
        b"NewConnectedLine",
        b"HangupRequest",
        b"SoftHangupRequest",
        b"LocalBridge",
        b"LocalOptimizationBegin",
        b"LocalOptimizationEnd",
        b"DialState",
        b"Registry",
        b"PeerStatus",
        b"ContactStatus",
        b"Reload",
    }
)


@final  # never subclassed: the read path tells frames apart with `type(frame) is AmiEvent`
@dataclass(frozen=True, slots=True)
class AmiEvent:
    """One AMI event. `headers` keeps the first value of each key."""

    name: str
    headers: Mapping[str, str]
    received_at: float = 0.0  # epoch seconds when the frame was read

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.headers.get(key, default)

    @property
    def timestamp(self) -> float:
        """Asterisk's `Timestamp:` (timestampevents=yes) when present and sane (finite, epoch
        seconds: `numbers.timestamp`), else receipt time."""
        stamp = _timestamp(self.headers.get("Timestamp"))
        return self.received_at if stamp is None else stamp


@dataclass(frozen=True, slots=True)
class AmiResponse:
    """A reply to an action (`Response: Success|Error|Follows|Goodbye`)."""

    status: str
    headers: Mapping[str, str]
    output: tuple[str, ...] = ()

    @property
    def action_id(self) -> str | None:
        return self.headers.get("ActionID")

    @property
    def ok(self) -> bool:
        return self.status in ("Success", "Follows", "Goodbye")

    @property
    def message(self) -> str:
        return self.headers.get("Message", "")


Frame = AmiEvent | AmiResponse


@dataclass(slots=True)
class FrameReader:
    """Feed bytes as they arrive; get complete frames back, in order."""

    keep_noise: bool = False  # True for tools that need every event (fidelity tests)
    # When set, the only events kept (a whitelist, e.g. what the trackers read); None: every
    # event but NOISE_EVENTS. IVR VarSets are kept either way when "VarSet" is wanted.
    keep_events: frozenset[bytes] | None = None
    max_frame: int = MAX_FRAME
    clock: Callable[[], float] = SYSTEM.timestamp  # receipt stamps: the application's clock
    greeting: str | None = None
    bad_greeting: str | None = None  # set when the greeting line is too long: drop the link
    errors: int = 0
    dropped: int = 0
    frames: int = 0
    _buf: bytes = b""
    _skipping: bool = False
    _seen_greeting: bool = False
    _pending: list[Frame] = field(default_factory=list)

    def feed(self, data: bytes) -> list[Frame]:
        if self.bad_greeting is not None:
            return []  # nothing after a bad greeting is read; the owner drops the connection
        buf = self._buf + data if self._buf else data
        out: list[Frame] = []
        if not self._seen_greeting:
            if len(buf) < len(GREETING_PREFIX) and GREETING_PREFIX.startswith(buf):
                self._buf = buf
                return out
            if buf.startswith(GREETING_PREFIX):
                nl = buf.find(b"\r\n", 0, MAX_GREETING)
                if nl < 0:
                    if len(buf) >= MAX_GREETING:
                        self.errors += 1
                        self.bad_greeting = f"greeting longer than {MAX_GREETING} bytes"
                        self._buf = b""
                        return out
                    self._buf = buf
                    return out
                self.greeting = buf[:nl].decode("utf-8", "replace")
                buf = buf[nl + 2 :]
            self._seen_greeting = True
        start = 0
        now = self.clock()
        find = buf.find
        at = buf.startswith
        filtering = not self.keep_noise
        keep = self.keep_events
        max_frame = self.max_frame
        append = out.append
        # The hot loop (issue 10): most frames are noise and leave it after one `find` and one
        # set look-up, before any decoding.
        while True:
            end = find(EOF_MARK, start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            else:
                # Leading blank lines (after the greeting, a stray CRLF) are not a frame.
                while at(b"\r\n", start) and start < end:
                    start += 2
                if start < end:
                    if end - start > max_frame:
                        self.errors += 1
                    else:
                        if filtering and at(b"Event: ", start):
                            nl = find(b"\r\n", start, end)
                            name = buf[start + 7 : end if nl < 0 else nl]
                            if name == b"VarSet":
                                drop = (keep is not None and name not in keep) or (
                                    not _wanted_varset(buf, start, end))
                            elif keep is not None:
                                drop = name not in keep
                            else:
                                drop = name in NOISE_EVENTS
                            if drop:
                                self.dropped += 1
                                start = end + 4
                                continue
                        self.frames += 1
                        frame = parse_frame(buf[start:end], now, self)
                        if frame is not None:
                            append(frame)
            start = end + 4
        rest = buf[start:]
        if len(rest) > self.max_frame:
            # No terminator within the limit: drop what we have, resync on the next blank line.
            self.errors += 1
            self._skipping = True
            rest = rest[-3:]  # a terminator may straddle the cut
        self._buf = rest
        return out


_IVR_VARIABLE_NAMES = frozenset(v.encode() for v in IVR_VARIABLES)


def _wanted_varset(buf: bytes, start: int, end: int) -> bool:
    """A VarSet of one of the IVR's variables (one `find`, no copy of the frame)."""
    i = buf.find(b"\r\nVariable: ", start, end)
    if i < 0:
        return False
    j = buf.find(b"\r\n", i + 12, end)
    return buf[i + 12 : end if j < 0 else j] in _IVR_VARIABLE_NAMES


def parse_frame(raw: bytes, now: float = 0.0, reader: FrameReader | None = None) -> Frame | None:
    text = raw.decode("utf-8", "replace")
    if raw.startswith(b"Event: "):
        # Fast path: every line is "Key: Value" and no key repeats. Anything else (a line
        # without ": ", a repeated key whose first value must win): the careful path below.
        pairs = [line.split(": ", 1) for line in text.split("\r\n")]
        try:
            fast: dict[str, str] = dict(pairs)
        except ValueError:
            pass
        else:
            if len(fast) == len(pairs):
                return AmiEvent(fast["Event"], fast, now)
    headers: dict[str, str] = {}
    output: list[str] = []
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":") and line.find(" ") < 0:
                headers.setdefault(line[:-1], "")
                continue
            if line:
                if reader is not None:
                    reader.errors += 1
            continue
        if key == "Output":
            output.append(value)
            continue
        if key not in headers:
            headers[key] = value
    if "Event" in headers:
        return AmiEvent(headers["Event"], headers, now)
    if "Response" in headers:
        return AmiResponse(headers["Response"], headers, tuple(output))
    if reader is not None:
        reader.errors += 1
    return None


def iter_frames(data: bytes, *, keep_noise: bool = True) -> Iterator[Frame]:
    """Every frame of a whole capture (tests, tools)."""
    reader = FrameReader(keep_noise=keep_noise)
    yield from reader.feed(data)
    if reader._buf.strip():
        yield from reader.feed(EOF_MARK)


def encode_action(action: str, headers: Mapping[str, str | list[str]]) -> bytes:
    """An action as bytes; a list value repeats the key (e.g. several `Variable:` lines).
    CR and LF in values are replaced so a value can never inject a header."""
    lines = [f"Action: {action}"]
    for key, value in headers.items():
        for v in value if isinstance(value, list) else [value]:
            lines.append(f"{key}: {_clean(str(v))}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _clean(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


# --- the server's side: the simulator's AmiServer and replay-ami's ReplayServer ---------------

GREETING = b"Asterisk Call Manager/11.0.0\r\n"  # Asterisk 22's (AMI version 11)


def encode_frame(headers: Iterable[tuple[str, str]]) -> bytes:
    """A response or event as Asterisk writes it: the headers in the order given, then a blank
    line. Values go out as given: captures are reproduced byte for byte."""
    return ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode()


def parse_action(raw: bytes) -> dict[str, str]:
    """An action's headers by lower-case name, read as manager.c reads them: the first of a
    repeated header counts, except `Variable`, whose lines all count (joined by ",")."""
    out: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "variable" and key in out:
            out[key] += "," + value
        else:
            out.setdefault(key, value)
    return out


def login_key(challenge: str, secret: str) -> str:
    """The `Key` of a `Login` with `AuthType: MD5`: md5(challenge + secret), lower-case hex."""
    return hashlib.md5((challenge + secret).encode()).hexdigest()
