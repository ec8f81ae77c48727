"""A logging FastAGI relay (data tooling): Asterisk connects here, every session is passed on to
the real FastAGI server and written to ``<out>/session-NNN.raw`` like
``shared/asterisk-transcripts/agi-*.raw``: the server's lines prefixed with ``>>> ``, Asterisk's
bytes as they are. It builds nothing and knows nothing of Asterisk beyond TCP.

    python agi_relay.py 14574 14573 /tmp/agi-sessions
"""

from __future__ import annotations

import itertools
import socket
import sys
import threading
from pathlib import Path
from typing import BinaryIO


def pump(
    src: socket.socket, dst: socket.socket, out: BinaryIO, lock: threading.Lock, server: bool
) -> None:
    pending = b""
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if not data:
            break
        with lock:
            if server:  # prefix whole lines, so a command split over two reads stays one line
                pending += data
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    out.write(b">>> " + line + b"\n")
            else:
                out.write(data)
            out.flush()
        try:
            dst.sendall(data)
        except OSError:
            break
    with lock:
        if server and pending:
            out.write(b">>> " + pending)
            out.flush()
    try:
        dst.shutdown(socket.SHUT_WR)  # half-close: the other side may still answer
    except OSError:
        pass


def session(client: socket.socket, target: int, path: Path) -> None:
    server = socket.create_connection(("127.0.0.1", target))
    lock = threading.Lock()
    with path.open("wb") as out:
        back = threading.Thread(target=pump, args=(server, client, out, lock, True), daemon=True)
        back.start()
        pump(client, server, out, lock, False)
        back.join(timeout=30)
    client.close()
    server.close()


def main() -> None:
    listen, target, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen))
    ls.listen(50)
    for n in itertools.count(1):
        conn, _ = ls.accept()
        path = out / f"session-{n:03d}.raw"
        threading.Thread(target=session, args=(conn, target, path), daemon=True).start()


if __name__ == "__main__":
    main()
