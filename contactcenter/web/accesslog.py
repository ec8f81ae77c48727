"""The access log without secrets: API keys sent in a URL (the `open311` Python wrapper and
FixMyStreet's update fetches do this) are written as `api_key=[redacted]`."""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

# api_key / apikey / key / token in any query string of a logged value (request line, Referer)
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:api_?key|key|token)=)[^&;\s\"']*")


def redact(value: str) -> str:
    return _SECRET_PARAM.sub(r"\1[redacted]", value)


class RedactingAccessLogger(AccessLogger):
    def _format_line(
        self, request: BaseRequest, response: StreamResponse, time: float
    ) -> Iterable[tuple[str | tuple[str, str], str]]:
        return [(key, redact(value) if isinstance(value, str) else value)
                for key, value in super()._format_line(request, response, time)]
