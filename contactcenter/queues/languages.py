"""Language routing as numbers app_queue understands (pure).

An operator's queue memberships get a penalty that is their language band: 0 when they speak
none of the routed languages (`CC_ROUTED_LANGUAGES`), else 1 + the position of the first
routed language they speak. The dialplan starts a caller of a routed language with
QUEUE_MIN_PENALTY = QUEUE_MAX_PENALTY = its band; the queue's rule opens it to everyone after
its language wait. Callers of the site's own language have no window: app_queue tries the
lowest penalty first, so operators without a routed language take them first and speakers stay
free for the callers who need them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def member_penalty(languages: Iterable[str], routed: Sequence[str]) -> int:
    spoken = {lang.strip().lower() for lang in languages}
    for i, lang in enumerate(routed):
        if lang in spoken:
            return i + 1
    return 0


__all__ = ["member_penalty"]
