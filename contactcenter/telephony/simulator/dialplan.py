"""The citizen's side of a call and the dialplan around Queue(): the originated
`Local/311@from-citizen` pair, `citizen-dialer` (wait, key digits, wait the caller's patience,
hang up), `from-citizen` (Answer, the IVR over FastAGI, Queue()) and the hang-ups that end the
caller's leg. Also what the IVR may play (the sound files Asterisk would find)."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from .agi_client import run_agi
from .channels import SimChannels
from .core import ANSWER_DELAY, CALL, CDR, CID_PRES, DTMF, SimCore, fmt_num
from .model import CitizenCall
from .queues import SimQueues
from .wire import cdr, hangup_extra

if TYPE_CHECKING:
    from .app_queue import SimAppQueue


class SimDialplan:
    """Owns the citizens' calls (`calls`), the FastAGI server's address, the sounds and the
    prompts played; hands each caller to app_queue.py's `queue_app`."""

    app_queue: SimAppQueue  # set by SimPbx: the queue and the dialplan call each other

    def __init__(
        self,
        core: SimCore,
        chans: SimChannels,
        qs: SimQueues,
        *,
        agi_host: str,
        agi_port: int,
        agi_path: str,
        sound_files: frozenset[str] | None,
        sounds_dir: Path | None,
        fallback_queue: str | None,
    ) -> None:
        self.core, self.chans, self.qs = core, chans, qs
        self.calls: list[CitizenCall] = []
        self.agi_host, self.agi_port, self.agi_path = agi_host, agi_port, agi_path
        # the sound files that exist (names as the AGI commands give them, e.g.
        # "311/en/main-menu"); None: every file exists. A missing one gets Asterisk's -1.
        self.sound_files = sound_files
        # Asterisk's sounds directory (CC_SOUNDS_DIR): our prompts exist when their file does
        self.sounds_dir = sounds_dir
        self.played: deque[tuple[str, str]] = deque(maxlen=2000)  # (language, sound), in order
        # The shipped dialplan (asterisk-config/extensions.conf): a caller that times out of
        # (or is sent out of an emptied) queue is queued again in this one. None: the capture
        # config's dialplan, which hangs up.
        self.fallback_queue = fallback_queue

    def has_sound(self, name: str, language: str = "en") -> bool:
        """Whether Asterisk would find the sound: in `sound_files` when given; with a
        `sounds_dir`, our prompts (`311/...`) as Asterisk looks them up (`<lang>/<name>.wav`,
        then `en/`, then no language), while its core sounds (digits/...) count as installed."""
        if self.sound_files is not None and name not in self.sound_files:
            return False
        if self.sounds_dir is not None and name.startswith("311/"):
            found = any((self.sounds_dir / d / f"{name}.{ext}").is_file()
                        for d in dict.fromkeys((language, "en", ""))
                        for ext in ("wav", "sln", "ulaw", "gsm"))
            if not found:
                return False
        self.played.append((language, name))
        return True

    def originate_citizen(
        self,
        cid_num: str,
        cid_name: str,
        digits: str,
        patience: float,
        prewait: float = 2.0,
        action_id: str = "",
        hangup_exten: bool = False,
        answers: list[str] | None = None,
    ) -> CitizenCall:
        """AMI Originate of Local/311@from-citizen whose other half runs citizen-dialer.
        With `answers`, the caller keys each entry when a menu prompt starts, as a person
        does, instead of the captures' blind `SendDTMF(${DIGITS})`."""
        one, two = self.chans.local_pair("311", "from-citizen", None)
        call = CitizenCall(
            one,
            two,
            digits,
            patience,
            prewait,
            hangup_exten,
            answers=list(answers) if answers is not None else None,
        )
        self.calls.append(call)
        variables = [("PREWAIT", fmt_num(prewait)), ("PATIENCE", fmt_num(patience)),
                     ("DIGITS", digits)]
        self.core.cel(one, "CHAN_START")
        self.core.cel(two, "CHAN_START")
        self.core.ev_chan("Newchannel", one)
        self.core.ev_chan("Newchannel", two)
        self.core.newexten(one, "AppDial2", "(Outgoing Line)")
        for k, v in variables:
            self.core.varset(one, k, v)
        one.cid_num, one.cid_name = cid_num, cid_name
        self.core.ev_chan("NewCallerid", one, CID_PRES)
        one.conn_num, one.conn_name = cid_num, cid_name
        self.core.ev_chan("NewConnectedLine", one)
        for k, v in reversed(variables):
            self.core.varset(two, k, v)
        two.cid_num, two.cid_name = cid_num, cid_name
        two.conn_num, two.conn_name = cid_num, cid_name
        self.core.ev_chan("NewCallerid", two, CID_PRES)
        two.conn_num, two.conn_name = cid_num, cid_name
        self.core.ev_chan("NewConnectedLine", two)
        self.core.emit(
            "LocalBridge",
            CALL,
            one.snapshot("LocalOne")
            + two.snapshot("LocalTwo")
            + [("Context", "from-citizen"), ("Exten", "311"), ("LocalOptimization", "Yes")],
        )
        self.core.cel(two, "ANSWER", app="Answer", appdata="")
        self.core.cel(one, "ANSWER")
        self.core.emit(
            "OriginateResponse",
            CALL,
            [
                ("ActionID", action_id),
                ("Response", "Success"),
                ("Channel", one.name),
                ("Context", "citizen-dialer"),
                ("Exten", "hangup" if hangup_exten else "s"),
                ("Reason", "4"),
                ("Uniqueid", one.uniqueid),
                ("CallerIDNum", cid_num),
                ("CallerIDName", cid_name),
            ],
        )
        self.core.emit("DialBegin", CALL,
                       [*one.snapshot("Dest"), ("DialString", "311@from-citizen")])
        self.core.newexten(two, "NoOp", f"3-1-1 call from {cid_num}", 1)
        self.core.newexten(two, "Answer", "", 2)
        self.chans.newstate(two, 6)
        self.chans.newstate(one, 6)
        self.core.emit("DialEnd", CALL, [*one.snapshot("Dest"), ("DialStatus", "ANSWER")])
        self.core.newexten(
            one, "Wait", fmt_num(prewait), 1, "hangup" if hangup_exten else "s", "citizen-dialer"
        )
        self.chans.dsc_local("Local/311@from-citizen")
        self.chans.dsc_local("Local/311@from-citizen")
        self.core.spawn(self._dialer(call))
        self.core.spawn(self._dialplan(call))
        return call

    async def _dialer(self, call: CitizenCall) -> None:
        one = call.ch1
        t = one.created + call.prewait
        if call.answers is None and not call.hangup_exten and call.digits:
            call.key_due = t + 0.2  # known now: a prompt ending later must wait for it
        if await self.core.until(t, call.done):
            return
        if not call.hangup_exten:
            if call.answers is None:  # the captures' citizen: SendDTMF(${DIGITS},250), blind
                self.core.newexten(one, "SendDTMF", f"{call.digits},250", 2)
                keyed = await self._key(call, call.digits, t)
                if keyed is None:
                    return
                t = keyed
            self.core.newexten(one, "Wait", fmt_num(call.patience), 3)
            if await self.core.until(t + call.patience, call.done):
                return
        self.caller_hangup(call)

    async def _key(self, call: CitizenCall, digits: str, t: float) -> float | None:
        """The caller keys `digits` from time `t`: each tone lasts 100 ms, 250 ms apart, and
        arrives on the IVR's channel. Returns when it is done (None: the call ended)."""
        for digit in digits:
            call.key_due = t + 0.2
            await self.core.until(t + 0.1)
            if call.done.is_set() or call.caller_gone.is_set():
                return None
            self.core.ev_chan("DTMFBegin", call.ch2,
                              [("Digit", digit), ("Direction", "Received")], DTMF)
            await self.core.until(t + 0.2)
            if call.done.is_set() or call.caller_gone.is_set():
                return None
            self.core.ev_chan(
                "DTMFEnd",
                call.ch2,
                [("Digit", digit), ("DurationMs", "100"), ("Direction", "Received")],
                DTMF,
            )
            self.core.cel(call.ch2, "DTMF", extra=f'{{"digit":"{digit}","duration_ms":100}}')
            call.dtmf.put_nowait(digit)
            call.key_due = None
            t += 0.45
            await self.core.until(t)
        return t

    def on_prompt(self, call: CitizenCall, length: float) -> None:
        """A menu prompt starts (GET DATA): a responsive caller answers it with their next
        keys after listening to part of it."""
        if not call.answers:
            return
        keys = call.answers.pop(0)
        start = self.core.clock.now() + self.core.rng.uniform(0.4, 1.0) * length + 0.3
        if keys:
            call.key_due = start + 0.2
        self.core.spawn(self._key(call, keys, start))

    def caller_hangup(self, call: CitizenCall) -> None:
        """The citizen's dialer half runs Hangup(): the ;1 side goes, ;2 is asked to hang up.
        Public because the AGI side (agi_client's HANGUP command) ends calls this way too."""
        one, two = call.ch1, call.ch2
        self.core.emit("Cdr", CDR, cdr(one, self.core.clock.now(), last_app="Hangup",
                                       answered=one.answered))
        self.core.cel(one, "HANGUP", extra=hangup_extra(16, "dialplan/builtin", ""))
        self.chans.chan_end(one)
        self.core.newexten(one, "Hangup", "", 2 if call.hangup_exten else 4)
        self.core.ev_chan("SoftHangupRequest", one, [("Cause", "16")])
        self.core.ev_chan("HangupRequest", two, [("Cause", "16")])
        self.chans.hangup_event(one, 16)
        self.chans.dsc_local("Local/311@from-citizen")
        call.caller_gone.set()

    async def _dialplan(self, call: CitizenCall) -> None:
        two = call.ch2
        try:
            await self.core.until(two.created + ANSWER_DELAY, call.caller_gone)
            if call.caller_gone.is_set():
                self.end_caller_leg(call)
                return
            status = await run_agi(self, call)  # the AGI() application
            if status == "HANGUP":
                self.end_caller_leg(call, app="AGI")
                return
            queue = two.vars.get("QUEUE", "")
            if queue:
                self.core.newexten(two, "GotoIf", "0?fallback", 4)
                prio = 5
                self.language_window(call, queue)  # the shipped `queue` extension only
            else:
                self.core.newexten(two, "GotoIf", "1?fallback", 4)
                queue, prio = "general-311", 7
            await self.app_queue.queue_app(call, queue, prio)
        finally:
            call.done.set()

    def caller_cdrs(self, call: CitizenCall, answered_by: str, last_app: str = "Queue") -> None:
        """The caller's channel ends: one CDR per member channel dialled (at least one), the
        one that answered ANSWERED, the others NO ANSWER (ami-burst-40.raw)."""
        two = call.ch2
        for dest in [*call.tried, answered_by] if answered_by else call.tried or [""]:
            disposition = "ANSWERED" if dest == answered_by or not dest else "NO ANSWER"
            self.core.emit(
                "Cdr",
                CDR,
                cdr(
                    two,
                    self.core.clock.now(),
                    dest_channel=dest,
                    last_app=last_app,
                    last_data=two.appdata,
                    answered=two.answered,
                    disposition=disposition,
                ),
            )

    def end_caller_leg(self, call: CitizenCall, app: str = "") -> None:
        """The caller's `;2` half hangs up before it reached a member (IVR or queue)."""
        two = call.ch2
        if app == "AGI":
            self.core.varset(two, "AGISTATUS", "HANGUP")
        self.core.ev_chan("SoftHangupRequest", two, [("Cause", "16")])
        self.chans.hangup_event(two, 16)
        self.caller_cdrs(call, "", last_app=two.app or app)
        if two.app in ("AGI", "Queue"):
            self.core.cel(two, "APP_END")
        self.core.cel(two, "HANGUP", app="", appdata="", extra=hangup_extra(16, "", ""))
        self.chans.chan_end(two, app="", appdata="")
        self.chans.dsc_local("Local/311@from-citizen")
        if not call.outcome:
            call.outcome = "ivr_hangup"
        call.where = "ended"

    def language_window(self, call: CitizenCall, queue: str) -> None:
        """The shipped dialplan's `queue` extension: a caller whose LANG has a
        LANG_PENALTY_<lang> global starts with QUEUE_MIN_PENALTY = QUEUE_MAX_PENALTY = that
        band and the queue's rule `lang-<queue>` (which later opens the queue to everyone)."""
        lang = call.ch2.vars.get("LANG", "")
        band = self.core.globals.get(f"LANG_PENALTY_{lang}", "") if lang else ""
        if band.strip().isdigit():
            call.min_penalty = call.max_penalty = int(band)
            call.rule = list(self.qs.rules.get(f"lang-{queue}", []))

    async def after_queue(self, call: CitizenCall, prio: int, app_end: bool = True) -> None:
        """Queue() returned (timeout, join-empty): the dialplan's Hangup() runs."""
        two = call.ch2
        call.where = "dialplan"
        if app_end:
            self.core.cel(two, "APP_END")
            self.core.newexten(two, "Hangup", "", prio + 1)
        call.done.set()
        self.core.cel(two, "HANGUP", app="", appdata="",
                      extra=hangup_extra(16, "dialplan/builtin", ""))
        self.core.ev_chan("SoftHangupRequest", two, [("Cause", "16")])
        self.core.ev_chan("HangupRequest", call.ch1, [("Cause", "16")])
        self.chans.hangup_event(two, 16)
        self.core.emit("Cdr", CDR, cdr(two, self.core.clock.now(), last_app="Hangup",
                                       answered=two.answered))
        self.chans.chan_end(two, app="", appdata="")
        if not call.ch1.dead:
            self.core.ev_chan("SoftHangupRequest", call.ch1, [("Cause", "16")])
            self.chans.hangup_event(call.ch1, 16)
            self.core.cel(call.ch1, "HANGUP", extra=hangup_extra(16, "", ""))
            self.chans.chan_end(call.ch1)
            self.core.emit(
                "Cdr",
                CDR,
                cdr(call.ch1, self.core.clock.now(), last_app="Wait", answered=call.ch1.answered),
            )
        self.chans.dsc_local("Local/311@from-citizen")
        self.chans.dsc_local("Local/311@from-citizen")
        call.where = "ended"
