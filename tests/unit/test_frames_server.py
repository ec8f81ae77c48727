"""The server side of AMI's wire (telephony/frames.py), shared by the simulator's AmiServer and
replay-ami's ReplayServer: how an action is read and a reply written."""

from __future__ import annotations

import hashlib

from contactcenter.telephony.frames import (
    GREETING,
    GREETING_PREFIX,
    encode_action,
    encode_frame,
    iter_frames,
    login_key,
    parse_action,
)


def test_an_action_is_read_as_manager_c_reads_it() -> None:
    raw = encode_action("Originate", {"Channel": "Local/1@x", "Variable": ["A=1", "B=2"],
                                      "ActionID": "7"})
    h = parse_action(raw)
    assert h == {"action": "Originate", "channel": "Local/1@x", "variable": "A=1,B=2",
                 "actionid": "7"}
    # astman_get_header: the first of a repeated header counts
    assert parse_action(b"Action: Ping\r\nActionID: 1\r\nActionID: 2\r\n\r\n")["actionid"] == "1"
    # a line without a colon and bytes that are not UTF-8 do not stop the frame
    assert parse_action(b"Action: Ping\r\ngarbage\r\nX: \xff\r\n\r\n") == {
        "action": "Ping", "x": "\ufffd"}


def test_a_reply_is_written_in_order_and_the_client_reads_it_back() -> None:
    data = GREETING + encode_frame([("Response", "Success"), ("ActionID", "9"),
                                    ("Message", "Pong: a colon inside")])
    assert data.startswith(GREETING_PREFIX) and data.endswith(b"\r\n\r\n")
    (frame,) = iter_frames(data)
    assert frame.headers["Message"] == "Pong: a colon inside"


def test_login_key_is_md5_of_challenge_and_secret() -> None:
    assert login_key("12345678", "s3") == hashlib.md5(b"12345678s3").hexdigest()
