"""Capture AMI bytes from a running Asterisk for the issue-19 scenarios (data tooling).

This script only talks to an Asterisk that is already running (config in ``config-19/``); it
builds nothing. One AMI connection per scenario: everything Asterisk sends is written to
``<out>/<name>.raw`` exactly as received, everything we send to ``<out>/<name>.sent.raw``.
The slices of ``queue_log`` and the CDR/CEL CSV files written during the scenario are saved
beside it as ``<name>.queue_log``, ``<name>.cdr.csv`` and ``<name>.cel.csv``.

    python capture_ami.py --out /work/captures blind-transfer timeout-fallback abandon
    python capture_ami.py --out /tmp/x --digits 1wwwwww1 --patience 25 --name en product-ivr

``product-ivr`` calls ``Local/311@cc-from-citizen`` (the product's FastAGI IVR, see
``config-19/extensions.conf``); the citizen keys ``--digits`` (``w`` = 0.5 s pause).
"""

from __future__ import annotations

import argparse
import queue
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

Message = dict[str, str]

CALLER_ID = '"Maria Lopez" <7875550101>'
OPERATORS = {"2001": "Ana", "2002": "Ben", "2003": "Carla", "2004": "Dan", "2005": "Eve"}


class Ami:
    """A raw AMI connection that records both directions byte for byte."""

    def __init__(self, host: str, port: int, received: Path, sent: Path) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.settimeout(None)
        self.received = received.open("wb")
        self.sent = sent.open("wb")
        self.messages: queue.Queue[Message] = queue.Queue()
        self.seq = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            self.received.write(chunk)
            self.received.flush()
            buf += chunk
            if buf.startswith(b"Asterisk Call Manager/"):
                _banner, _, buf = buf.partition(b"\r\n")
            while b"\r\n\r\n" in buf:
                raw, _, buf = buf.partition(b"\r\n\r\n")
                msg: Message = {}
                for line in raw.decode("utf-8", "replace").split("\r\n"):
                    key, sep, value = line.partition(": ")
                    if sep and key not in msg:
                        msg[key] = value
                self.messages.put(msg)
        self.messages.put({"Event": "_closed"})

    def send(self, action: str, *fields: tuple[str, str]) -> str:
        self.seq += 1
        action_id = f"cap-{self.seq}"
        lines = [f"Action: {action}", f"ActionID: {action_id}"]
        lines += [f"{k}: {v}" for k, v in fields]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.sent.write(data)
        self.sent.flush()
        self.sock.sendall(data)
        return action_id

    def wait(self, pred: Callable[[Message], bool], timeout: float, seen: list[Message]) -> Message:
        """Return the first message matching pred; every message read is appended to seen."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching AMI message")
            try:
                msg = self.messages.get(timeout=left)
            except queue.Empty as exc:
                raise TimeoutError("no matching AMI message") from exc
            seen.append(msg)
            if msg.get("Event") == "_closed":
                raise ConnectionError("AMI connection closed")
            if pred(msg):
                return msg

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.reader.join(timeout=5)
        self.sock.close()
        self.received.close()
        self.sent.close()


def response_to(action_id: str) -> Callable[[Message], bool]:
    return lambda m: m.get("ActionID") == action_id and "Response" in m


def event(name: str, **fields: str) -> Callable[[Message], bool]:
    return lambda m: m.get("Event") == name and all(m.get(k) == v for k, v in fields.items())


class Scenario:
    def __init__(self, ami: Ami) -> None:
        self.ami = ami
        self.seen: list[Message] = []
        self.live: set[str] = set()

    def act(self, action: str, *fields: tuple[str, str]) -> Message:
        action_id = self.ami.send(action, *fields)
        return self.until(response_to(action_id), 10)

    def until(self, pred: Callable[[Message], bool], timeout: float = 60) -> Message:
        def track(m: Message) -> bool:
            if m.get("Event") == "Newchannel":
                self.live.add(m.get("Uniqueid", ""))
            elif m.get("Event") == "Hangup":
                self.live.discard(m.get("Uniqueid", ""))
            return pred(m)

        return self.ami.wait(track, timeout, self.seen)

    def add(self, queue_name: str, ext: str, paused: str = "") -> None:
        fields = [
            ("Queue", queue_name),
            ("Interface", f"Local/{ext}@agents/n"),
            ("MemberName", OPERATORS[ext]),
            ("StateInterface", f"Local/{ext}@agents"),
        ]
        self.act("QueueAdd", *fields)
        if paused:
            self.act(
                "QueuePause",
                ("Queue", queue_name),
                ("Interface", f"Local/{ext}@agents/n"),
                ("Paused", "true"),
                ("Reason", paused),
            )

    def remove_all(self) -> None:
        for q, exts in (("sanitation", "2001 2002"), ("general-311", "2005 2003")):
            for ext in exts.split():
                self.act("QueueRemove", ("Queue", q), ("Interface", f"Local/{ext}@agents/n"))

    def globals(self, **values: int) -> None:
        for name, value in values.items():
            self.act("Setvar", ("Variable", name), ("Value", str(value)))

    def call(self, patience: int, **variables: str) -> None:
        fields = [
            ("Channel", "Local/311@from-citizen"),
            ("Context", "citizen-dialer"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("CallerID", CALLER_ID),
            ("Timeout", "30000"),
            ("Async", "true"),
            ("Variable", f"PATIENCE={patience}"),
        ]
        fields += [("Variable", f"{k}={v}") for k, v in variables.items()]
        self.act("Originate", *fields)
        self.until(event("Newchannel"), 10)

    def until_idle(self, timeout: float = 90) -> None:
        """Wait until every channel seen has hung up, then for the CDR/CEL to be written."""
        deadline = time.monotonic() + timeout
        while self.live:
            self.until(lambda m: not self.live, deadline - time.monotonic())
        end = time.monotonic() + 2
        while True:
            try:
                self.until(lambda m: False, end - time.monotonic())
            except TimeoutError:
                return


def blind_transfer(s: Scenario) -> None:
    """general-311: Eve answers; 5 s later she blind-transfers the caller to sanitation (Ana)."""
    s.globals(RING_2005=1, TALK_2005=60, RING_2003=2, TALK_2003=5, RING_2001=2, TALK_2001=6)
    s.add("sanitation", "2001")
    s.add("sanitation", "2002", paused="break")
    s.add("general-311", "2005")
    s.add("general-311", "2003")
    s.call(patience=60, QUEUE="general-311")
    connect = s.until(event("AgentConnect", Queue="general-311"))
    time.sleep(5)
    s.act(
        "BlindTransfer",
        ("Channel", connect["DestChannel"]),
        ("Context", "transfers"),
        ("Exten", "sanitation"),
    )
    s.until(event("AgentComplete", Queue="sanitation"))
    s.until_idle()
    s.remove_all()


def timeout_fallback(s: Scenario) -> None:
    """sanitation (Queue timeout 8 s, both paused) times out; the dialplan falls back to
    general-311, where Eve is paused and Carla answers after 2 s and talks 5 s."""
    s.globals(RING_2003=2, TALK_2003=5, RING_2005=1, TALK_2005=5)
    s.add("sanitation", "2001", paused="break")
    s.add("sanitation", "2002", paused="break")
    s.add("general-311", "2005", paused="lunch")
    s.add("general-311", "2003")
    s.call(patience=60, QUEUE="sanitation", QWAIT="8", FALLBACK="general-311")
    s.until(event("AgentComplete", Queue="general-311"))
    s.until_idle()
    s.remove_all()


def abandon(s: Scenario) -> None:
    """sanitation, both paused: the caller hangs up after about 6 s in the queue."""
    s.add("sanitation", "2001", paused="break")
    s.add("sanitation", "2002", paused="break")
    s.add("general-311", "2005")
    s.add("general-311", "2003")
    s.call(patience=6, QUEUE="sanitation")
    s.until(event("QueueCallerAbandon", Queue="sanitation"))
    s.until_idle()
    s.remove_all()


def product_ivr(s: Scenario, digits: str, patience: int) -> None:
    """The product's own IVR answers; operators Ana (sanitation), Dan (potholes), Eve (general)."""
    s.globals(RING_2001=2, TALK_2001=5, RING_2004=2, TALK_2004=5, RING_2005=1, TALK_2005=5)
    s.add("sanitation", "2001")
    s.add("potholes", "2004")
    s.add("general-311", "2005")
    fields = [
        ("Channel", "Local/311@cc-from-citizen"),
        ("Context", "citizen-keys"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("CallerID", CALLER_ID),
        ("Timeout", "30000"),
        ("Async", "true"),
        ("Variable", f"DIGITS={digits}"),
        ("Variable", f"PATIENCE={patience}"),
        ("Variable", "PREWAIT=1"),
    ]
    s.act("Originate", *fields)
    s.until(event("Newchannel"), 10)
    s.until_idle(120)
    for q, ext in (("sanitation", "2001"), ("potholes", "2004"), ("general-311", "2005")):
        s.act("QueueRemove", ("Queue", q), ("Interface", f"Local/{ext}@agents/n"))


SCENARIOS: dict[str, tuple[str, Callable[[Scenario], None]]] = {
    "blind-transfer": ("ami-blind-transfer", blind_transfer),
    "timeout-fallback": ("ami-queue-timeout-fallback", timeout_fallback),
    "abandon": ("ami-caller-abandon-queue", abandon),
}


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=15038)
    p.add_argument("--username", default="testuser")
    p.add_argument("--secret", default="testpass")
    p.add_argument("--logdir", type=Path, default=Path("/opt/asterisk22-test/log"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--digits", default="1wwwwww1", help="product-ivr: what the citizen keys")
    p.add_argument("--patience", type=int, default=25, help="product-ivr: seconds before hang-up")
    p.add_argument("--name", default="call", help="product-ivr: ami-product-ivr-NAME.raw")
    p.add_argument("scenario", nargs="+", choices=[*sorted(SCENARIOS), "product-ivr"])
    args = p.parse_args()
    SCENARIOS["product-ivr"] = (
        f"ami-product-ivr-{args.name}",
        lambda s: product_ivr(s, args.digits, args.patience),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    logs = {
        "queue_log": args.logdir / "queue_log",
        "cdr.csv": args.logdir / "cdr-csv" / "Master.csv",
        "cel.csv": args.logdir / "cel-custom" / "Master.csv",
    }
    for key in args.scenario:
        name, run = SCENARIOS[key]
        before = {suffix: size(path) for suffix, path in logs.items()}
        ami = Ami(args.host, args.port, args.out / f"{name}.raw", args.out / f"{name}.sent.raw")
        s = Scenario(ami)
        ok = s.act("Login", ("Username", args.username), ("Secret", args.secret))
        if ok.get("Response") != "Success":
            raise SystemExit(f"login refused: {ok}")
        try:
            run(s)
        finally:
            s.act("Logoff")
            ami.close()
        for suffix, path in logs.items():
            if path.exists():
                with path.open("rb") as f:
                    f.seek(before[suffix])
                    (args.out / f"{name}.{suffix}").write_bytes(f.read())
        print(f"{name}: {len(s.seen)} messages")


if __name__ == "__main__":
    main()
