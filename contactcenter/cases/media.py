"""Photos sent with requests: Open311 multipart `media` uploads and the citizen web form.

A photo is only kept after Pillow has decoded it: the type is sniffed from the bytes (JPEG, PNG,
WebP or GIF, whatever the file name or the declared type say), the size and pixel count are
bounded, and the picture is re-encoded as a JPEG of at most 2,048 pixels a side. Re-encoding
writes no metadata, so EXIF (GPS position, camera serial numbers) never reaches storage or the
public media_url; the EXIF orientation is applied first so the picture stays upright. Photos live
in the database (`case_media`), so every web process serves every photo; one that no case
claims within a day (a form that was never sent again) is deleted.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import BodyPartReader, web
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .models import CaseMedia

MAX_MEDIA_BYTES = 8 * 1024 * 1024  # a phone's full-size JPEG fits
MAX_PIXELS = 40_000_000  # checked from the header, before anything is decoded
MAX_SIDE = 2048
JPEG_QUALITY = 85
MEDIA_PATH = "/open311/v2/media/"
UNCLAIMED_FOR = timedelta(days=1)
# what a multipart body may hold besides the photo (the same bound as a form-encoded body)
MAX_TEXT = 256 * 1024
MAX_PARTS = 200
# a too-large photo is read to the end (and dropped) up to this, so the browser gets our
# answer instead of a connection reset; beyond it the connection is closed
DRAIN_LIMIT = 64 * 1024 * 1024

_MAGIC: list[tuple[Callable[[bytes], bool], str]] = [
    (lambda b: b.startswith(b"\xff\xd8\xff"), "JPEG"),
    (lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"), "PNG"),
    (lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP", "WEBP"),
    (lambda b: b[:6] in (b"GIF87a", b"GIF89a"), "GIF"),
]


class IntakeError(Exception):
    """An upload we cannot take; `code` lets the web form word it in the citizen's language."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields: dict[str, list[str]] = {}  # what was read before, so a form loses nothing


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes
    width: int
    height: int
    content_type: str = "image/jpeg"


def sniff(raw: bytes) -> str | None:
    """The image format the bytes start with (Pillow's name), or None."""
    for test, name in _MAGIC:
        if test(raw):
            return name
    return None


def process_photo(raw: bytes) -> Photo:
    """Check and re-encode an uploaded photo (blocking: call it in a thread)."""
    if not raw:
        raise IntakeError("media_empty", "media is an empty file")
    if len(raw) > MAX_MEDIA_BYTES:
        raise IntakeError("media_too_big", f"media is larger than {MAX_MEDIA_BYTES // 2**20} MB")
    kind = sniff(raw)
    if kind is None:
        raise IntakeError("media_type", "media must be a JPEG, PNG, WebP or GIF photo")
    try:
        with Image.open(io.BytesIO(raw), formats=[kind]) as img:
            if img.width * img.height > MAX_PIXELS:
                raise IntakeError("media_pixels",
                                  f"media has more than {MAX_PIXELS // 1_000_000} megapixels")
            if kind == "JPEG":
                img.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at a reduced scale: faster
            upright = ImageOps.exif_transpose(img)
            upright.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            if upright.mode in ("RGBA", "LA", "P"):
                rgba = upright.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
            else:
                flat = upright.convert("RGB")
            out = io.BytesIO()
            # no exif=, icc_profile= or comment: the new file carries no metadata at all
            flat.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
            return Photo(out.getvalue(), flat.width, flat.height)
    except IntakeError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError, EOFError) as exc:
        raise IntakeError("media_damaged", "media could not be read as a picture "
                          f"({type(exc).__name__})") from None


def media_path(key: str) -> str:
    return f"{MEDIA_PATH}{key}.jpg"


# --- multipart bodies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    filename: str


async def _read_limited(part: BodyPartReader, limit: int) -> tuple[bytes, bool]:
    """The part's bytes up to `limit`; (b"", True) when it is longer (the rest is drained)."""
    buf = bytearray()
    total = 0
    while True:
        chunk = await part.read_chunk(256 * 1024)
        if not chunk:
            break
        total += len(chunk)
        if total > DRAIN_LIMIT:
            raise web.HTTPRequestEntityTooLarge(max_size=DRAIN_LIMIT, actual_size=total)
        if total <= limit:
            buf.extend(chunk)
    if total > limit:
        return b"", True
    # a part sent with Content-Transfer-Encoding (rare) is decoded like aiohttp's read()
    return bytes(part.decode(bytes(buf))), False


async def read_multipart(
    request: web.Request, file_field: str = "media"
) -> tuple[dict[str, list[str]], Upload | None]:
    """A multipart/form-data body as the same form dict `open311.parse_form` gives, and the
    photo. Raises IntakeError with a one-line reason."""
    form: dict[str, list[str]] = {}
    upload: Upload | None = None
    text_bytes = 0
    parts = 0
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise IntakeError("body", "the multipart body is malformed (no boundary)") from None
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            parts += 1
            if parts > MAX_PARTS:
                raise IntakeError("body", f"the request has more than {MAX_PARTS} fields")
            if not isinstance(part, BodyPartReader):
                raise IntakeError("body", "nested multipart bodies are not accepted")
            name = part.name or ""
            if part.filename is not None:
                if name != file_field:
                    raise IntakeError("body", f"only one file is taken, named {file_field!r}; "
                                      f"got a file named {name[:40]!r}")
                data, too_big = await _read_limited(part, MAX_MEDIA_BYTES)
                if too_big:
                    raise IntakeError("media_too_big",
                                      f"media is larger than {MAX_MEDIA_BYTES // 2**20} MB")
                if not data and not part.filename:
                    continue  # a file input left empty
                if upload is not None:
                    raise IntakeError("body", f"{file_field} was given more than once")
                upload = Upload(data, part.filename[:200])
                continue
            raw, too_big = await _read_limited(part, MAX_TEXT - text_bytes)
            if too_big:
                raise IntakeError("body", f"the request's fields are larger than {MAX_TEXT} bytes")
            text_bytes += len(raw)
            try:
                value = raw.decode(part.get_charset("utf-8"))
            except (UnicodeDecodeError, LookupError):
                raise IntakeError("body", f"the field {name[:40]!r} is not valid UTF-8") from None
            form.setdefault(name, []).append(value)
    except IntakeError as exc:
        exc.fields = form
        raise
    except web.HTTPException:
        raise
    except (ValueError, AssertionError, RuntimeError) as exc:
        error = IntakeError("body", f"the multipart body is malformed ({exc})"[:200])
        error.fields = form
        raise error from None
    return form, upload


# --- storage ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMedia:
    content_type: str
    data: bytes


class MediaStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def save(self, photo: Photo, now: datetime) -> str:
        """Store a checked photo, not yet claimed by a case (`NewCase.media_key` claims it);
        returns its key. Clears photos left unclaimed for a day."""
        key = secrets.token_urlsafe(18)
        async with self.sessions() as session, session.begin():
            await session.execute(delete(CaseMedia).where(
                CaseMedia.case_id.is_(None), CaseMedia.created_at < now - UNCLAIMED_FOR))
            session.add(CaseMedia(key=key, content_type=photo.content_type, width=photo.width,
                                  height=photo.height, data=photo.data, created_at=now))
        return key

    async def claimed(self, key: str) -> StoredMedia | None:
        """A photo a case has claimed (unclaimed uploads are never served)."""
        if not key or len(key) > 40:
            return None
        async with self.sessions() as session:
            row = (await session.execute(
                select(CaseMedia.content_type, CaseMedia.data)
                .where(CaseMedia.key == key, CaseMedia.case_id.is_not(None))
            )).first()
        return None if row is None else StoredMedia(row[0], row[1])
