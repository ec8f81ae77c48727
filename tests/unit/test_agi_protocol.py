"""The AGI wire format: the request block, replies, quoting."""

from __future__ import annotations

import pytest

from contactcenter.telephony.agi import AgiProtocolError, AgiRequest, parse_reply, quote
from tests.agi_fake import parse_capture
from tests.conftest import transcript


def test_request_block_of_the_capture_is_typed() -> None:
    head = parse_capture(transcript("agi-call-answered.raw")).header
    req = AgiRequest.from_lines(head.decode().splitlines()[:-1])
    assert req.path == "/ivr" and req.network_script == "ivr"
    assert req.channel == "Local/311@from-citizen-00000000;2"
    assert req.uniqueid == "1795406102.1" and req.language == "en"
    assert (req.callerid, req.calleridname) == ("7875550101", "Maria Lopez")
    assert req.dnid is None and req.context == "from-citizen" and req.extension == "311"
    assert req.raw["accountcode"] == "" and req.args == ()


def test_request_args_and_bad_lines() -> None:
    req = AgiRequest.from_lines(["agi_channel: SIP/x", "agi_uniqueid: 1.2", "agi_arg_1: a b",
                                 "agi_arg_2: c", "agi_callerid: unknown"])
    assert req.args == ("a b", "c") and req.callerid is None and req.language == "en"
    with pytest.raises(AgiProtocolError, match="not an agi_"):
        AgiRequest.from_lines(["agi_channel: x", "GET DATA foo"])
    with pytest.raises(AgiProtocolError, match="agi_uniqueid missing"):
        AgiRequest.from_lines(["agi_channel: x"])


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "extra"),
    [
        ("200 result=0", 200, "0", None, ""),
        ("200 result=1", 200, "1", None, ""),
        ("200 result=-1", 200, "-1", None, ""),
        ("200 result=311423", 200, "311423", None, ""),
        ("200 result= (timeout)", 200, "", "timeout", ""),
        ("200 result=12 (timeout)", 200, "12", "timeout", ""),
        ("200 result=1 (a (nested) value)", 200, "1", "a (nested) value", ""),
        ("200 result=0 endpos=8000", 200, "0", None, "endpos=8000"),
        ("510 Invalid or unknown command", 510, "", "Invalid or unknown command", ""),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, "",
         "Command Not Permitted on a dead channel or intercept routine", ""),
    ],
)
def test_parse_reply(line: str, code: int, result: str, data: str | None, extra: str) -> None:
    reply = parse_reply(line)
    assert (reply.code, reply.result, reply.data, reply.extra) == (code, result, data, extra)


@pytest.mark.parametrize("line", ["", "hello", "200 nothing", "20 result=1"])
def test_parse_reply_rejects_garbage(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply(line)


def test_quote_cannot_inject_a_second_command() -> None:
    assert quote("ivr done") == '"ivr done"'
    assert quote('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert "\n" not in quote("x\nHANGUP") and quote("x\nHANGUP") == '"x HANGUP"'
