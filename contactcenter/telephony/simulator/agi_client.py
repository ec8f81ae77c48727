"""The FastAGI client side of `AGI(agi://host:port/ivr)`, as Asterisk 22 runs it.

It sends the `agi_*` block, reads one command per line, replies `200 result=...`, and emits the
AGIExecStart/End, VarSet and CEL events of each command. When the caller hangs up mid-session it
answers the pending command with `result=-1`, writes `HANGUP` before the next reply, and refuses
commands that need a live channel with `511` (see agi-ivr-hangup.raw). A sound file missing from
`SimDialplan.sound_files` is answered as res_agi.c does: `200 result=-1 endpos=0` to STREAM FILE,
`200 result=-1` to GET DATA, `-1` to SAY DIGITS / NUMBER, with the channel still up
(`CHANNEL STATUS` says 6).
"""

from __future__ import annotations

import asyncio
import logging
import random
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dialplan import SimDialplan
    from .model import CitizenCall

log = logging.getLogger(__name__)

AGI_VERSION = "22-git-69535d4837"
CONNECT_TIMEOUT = 2.0  # real seconds
COMMAND_TIMEOUT = 30.0  # real seconds the IVR may think before Asterisk gives up on it
# Commands app_agi still runs on a dead channel; the others get 511.
DEAD_OK = {
    "SET VARIABLE",
    "GET VARIABLE",
    "GET FULL VARIABLE",
    "VERBOSE",
    "NOOP",
    "DATABASE GET",
    "DATABASE PUT",
    "DATABASE DEL",
    "SET CONTEXT",
    "SET EXTENSION",
    "SET PRIORITY",
    "HANGUP",
}  # not CHANNEL STATUS: res_agi.c marks it as needing a live channel (dead = 0)
DEAD_REPLY = b"511 Command Not Permitted on a dead channel or intercept routine\n"  # Asterisk 22.9
PROMPT_SECONDS = {"hello-world": 1.42}  # a prompt's length (others: 2 s, a digit 0.6 s)


def agi_block(dp: SimDialplan, call: CitizenCall, url: str, script: str | None = None) -> bytes:
    two = call.ch2
    lines = [
        ("agi_network", "yes"),
        ("agi_network_script", script or dp.agi_path),
        ("agi_request", url),
        ("agi_channel", two.name),
        ("agi_language", two.language),
        ("agi_type", "Local"),
        ("agi_uniqueid", two.uniqueid),
        ("agi_version", AGI_VERSION),
        ("agi_callerid", two.cid_num),
        ("agi_calleridname", two.cid_name),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", "unknown"),
        ("agi_rdnis", "unknown"),
        ("agi_context", two.context),
        ("agi_extension", two.exten),
        ("agi_priority", str(two.priority)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ""),
        ("agi_threadid", str(random.randrange(10**14, 10**15))),
    ]
    return ("".join(f"{k}: {v}\n" for k, v in lines) + "\n").encode()


async def run_agi(dp: SimDialplan, call: CitizenCall, path: str | None = None) -> str:
    """Run the AGI() application on the caller's `;2` channel (the script `path`, by default
    the IVR's); returns AGISTATUS."""
    two = call.ch2
    script = path or dp.agi_path
    url = f"agi://{dp.agi_host}:{dp.agi_port}/{script}"
    two.app, two.appdata = "AGI", url
    dp.core.cel(two, "APP_START")
    dp.core.newexten(two, "AGI", url, 3)
    call.where = "agi"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(dp.agi_host, dp.agi_port), CONNECT_TIMEOUT
        )
    except (TimeoutError, OSError) as exc:
        log.warning("FastAGI %s unreachable (%s): dialplan fallback", url, exc)
        dp.core.varset(two, "AGISTATUS", "FAILURE")
        return "FAILURE"
    hangup_sent = False
    try:
        writer.write(agi_block(dp, call, url, script))
        await writer.drain()
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), COMMAND_TIMEOUT)
            except TimeoutError:
                log.warning("FastAGI server silent for %ss; closing", COMMAND_TIMEOUT)
                break
            if not line:
                break
            text = line.decode(errors="replace").strip()
            if not text:
                continue
            if call.caller_gone.is_set() and not hangup_sent:
                writer.write(b"HANGUP\n")
                hangup_sent = True
            reply = await _command(dp, call, text)
            writer.write(reply)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        log.info("FastAGI connection ended: %s", exc)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
    if call.caller_gone.is_set():
        return "HANGUP"
    dp.core.varset(two, "AGISTATUS", "SUCCESS")
    return "SUCCESS"


def _verb(words: list[str]) -> str:
    two = " ".join(words[:2]).upper()
    three = " ".join(words[:3]).upper()
    for cand in (three, two, words[0].upper() if words else ""):
        if cand in KNOWN:
            return cand
    return ""


KNOWN = {
    "ANSWER",
    "HANGUP",
    "GET DATA",
    "SET VARIABLE",
    "GET VARIABLE",
    "VERBOSE",
    "NOOP",
    "STREAM FILE",
    "SAY DIGITS",
    "SAY NUMBER",
    "WAIT FOR DIGIT",
    "EXEC",
    "CHANNEL STATUS",
    "GET FULL VARIABLE",
    "SET CONTEXT",
    "SET EXTENSION",
    "SET PRIORITY",
}


async def _command(dp: SimDialplan, call: CitizenCall, text: str) -> bytes:
    two = call.ch2
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    verb = _verb(words)
    if not verb:
        return b"510 Invalid or unknown command\n"
    dead = call.caller_gone.is_set()
    if dead and verb not in DEAD_OK:
        return DEAD_REPLY
    cmd_id = str(random.randrange(10**8, 2**31))
    dp.core.ev_chan("AGIExecStart", two, [("CommandId", cmd_id), ("Command", text)], "agi,all")
    args = words[len(verb.split()) :]
    result = await _execute(dp, call, verb, args)
    dp.core.ev_chan(
        "AGIExecEnd",
        two,
        [("CommandId", cmd_id), ("Command", text), ("ResultCode", "200"), ("Result", "Success")],
        "agi,all",
    )
    return f"200 result={result}\n".encode()


async def _play(
    dp: SimDialplan, call: CitizenCall, sound: str, interruptible: bool, menu: bool = False
) -> int:
    """Play a prompt (CEL STREAM_BEGIN/END); a digit interrupts it when `interruptible`; a
    `menu` prompt is one a responsive caller answers. Returns the 8 kHz samples played
    (Asterisk's `endpos`)."""
    two = call.ch2
    dp.core.cel(
        two,
        "STREAM_BEGIN",
        extra=f'{{"sound":"{sound}","format":"gsm","language":"{two.language}"}}',
    )
    length = PROMPT_SECONDS.get(sound, 0.6 if sound.startswith("digits/") else 2.0)
    if menu:
        dp.on_prompt(call, length)
    start = dp.core.clock.now()
    deadline = start + length
    while not call.caller_gone.is_set() and not call.done.is_set():
        if interruptible and not call.dtmf.empty():
            break
        left = deadline - dp.core.clock.now()
        if left <= 0:
            due = call.key_due
            if not interruptible or due is None or due > deadline:
                break
            left = 0.0  # a digit keyed before the prompt's end is still on its way
        await dp.core.clock.sleep(min(0.05, left) if left > 0 else 0.001)
    dp.core.cel(two, "STREAM_END")
    return int(max(0.0, min(length, dp.core.clock.now() - start)) * 8000)


async def _digit(dp: SimDialplan, call: CitizenCall, timeout: float) -> str | None:
    """Next DTMF digit within `timeout` virtual seconds; '' on timeout, None on hang-up."""
    deadline = dp.core.clock.now() + timeout
    while True:
        if not call.dtmf.empty():
            return call.dtmf.get_nowait()
        if call.caller_gone.is_set():
            return None
        left = deadline - dp.core.clock.now()
        if left <= 0:
            return ""
        await dp.core.clock.sleep(min(0.05, left))


async def _execute(dp: SimDialplan, call: CitizenCall, verb: str, args: list[str]) -> str:
    two = call.ch2
    if verb == "ANSWER":
        return "0"
    if verb == "GET DATA":
        sound = args[0] if args else ""
        timeout = float(args[1]) / 1000 if len(args) > 1 and args[1].isdigit() else 6.0
        maxdigits = int(args[2]) if len(args) > 2 and args[2].isdigit() else 1024
        if sound and not dp.has_sound(sound, two.language):
            return "-1"  # ast_app_getdata_full: the stream failed, no digits are read
        await _play(dp, call, sound, True, menu=True)
        got = ""
        while len(got) < maxdigits:
            d = await _digit(dp, call, timeout)
            if d is None:
                return "-1"
            if d == "":
                return f"{got} (timeout)"
            if d == "#":
                break
            got += d
        return got
    if verb == "WAIT FOR DIGIT":
        ms = float(args[0]) if args and args[0].lstrip("-").isdigit() else -1
        d = await _digit(dp, call, ms / 1000 if ms >= 0 else 3600)
        return "-1" if d is None else (str(ord(d)) if d else "0")
    if verb in ("STREAM FILE", "SAY DIGITS", "SAY NUMBER"):
        sounds = (
            [args[0]]
            if verb == "STREAM FILE" and args
            else [f"digits/{c}" for c in (args[0] if args else "") if c.isdigit()]
        )
        escape = args[1] if len(args) > 1 else ""
        samples = 0
        for s in sounds:
            if not dp.has_sound(s, two.language):
                return "-1 endpos=0" if verb == "STREAM FILE" else "-1"
            samples += await _play(dp, call, s, bool(escape))
            if call.caller_gone.is_set():
                return "-1"
            if escape and not call.dtmf.empty():
                digit = call.dtmf.get_nowait()
                if digit in escape:
                    return str(ord(digit))
        return f"0 endpos={samples}" if verb == "STREAM FILE" else "0"
    if verb == "SET VARIABLE":
        if len(args) >= 2:
            if args[0].upper() == "CHANNEL(LANGUAGE)":
                two.language = args[1]  # a dialplan function: no VarSet, the snapshot changes
            elif "(" not in args[0]:
                dp.core.varset(two, args[0], args[1])
        return "1"
    if verb in ("GET VARIABLE", "GET FULL VARIABLE"):
        name = args[0] if args else ""
        if name in two.vars:
            return f"1 ({two.vars[name]})"
        return "0"
    if verb == "HANGUP":
        if not call.caller_gone.is_set() and not call.ch1.dead:
            dp.caller_hangup(call)
        return "1"
    if verb == "CHANNEL STATUS":
        return "6"
    return "1" if verb in ("VERBOSE", "NOOP") else "0"
