"""The signed opt-out token in every message (pure): the citizen's id and an HMAC of it under
the site's secret key, so a link cannot be forged for someone else, and needs no table to check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_CONTEXT = b"contactcenter notify opt-out v1:"


def _mac(secret: str, citizen_id: int) -> str:
    key = hashlib.sha256(_CONTEXT + secret.encode()).digest()
    digest = hmac.new(key, str(citizen_id).encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_token(secret: str, citizen_id: int) -> str:
    return f"{citizen_id}.{_mac(secret, citizen_id)}"


def read_token(secret: str, token: str) -> int | None:
    """The citizen id of a valid token, else None."""
    ident, sep, mac = token.partition(".")
    if not sep or not ident.isdigit() or len(ident) > 12 or len(mac) > 40:
        return None
    citizen_id = int(ident)
    return citizen_id if hmac.compare_digest(mac, _mac(secret, citizen_id)) else None
