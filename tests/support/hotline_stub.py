"""A hotline (and department) system for tests, run as a process of its own on 127.0.0.1:
``python -m tests.support.hotline_stub --port P --log FILE --secret whsec_...``.

It records every request it receives (path, headers, body, whether the Standard Webhooks signature
holds for the shared secret, and what it answered) as a JSON line of ``FILE``, before answering,
and answers each path as the test tells it through ``POST /_control`` (``{"path": "/hotline",
"mode": "ok" | "fail" | "hang"}``): 200, 500, or no answer for a minute (past any timeout of the
city's). Stopping the process makes the city's connections refused; starting it again on the same
port and file carries on. Standard library only: it is the other side, and shares no code with
what it checks.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONTROL = "/_control"
HANG_S = 60.0
TOLERANCE_S = 300


class Stub:
    """The stub's state: the modes by path, the log, the secret."""

    def __init__(self, log: Path, secret: str) -> None:
        self.log = log
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.modes: dict[str, str] = {}
        self.lock = threading.Lock()

    def verified(self, headers: dict[str, str], body: bytes) -> str | None:
        """None when the Standard Webhooks signature holds and is fresh, else why not."""
        try:
            message_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
            signatures = headers["webhook-signature"].split(" ")
        except KeyError as missing:
            return f"missing header {missing}"
        if abs(time.time() - int(timestamp)) > TOLERANCE_S:
            return "stale timestamp"
        signed = f"{message_id}.{timestamp}.".encode() + body
        expected = hmac.new(self.key, signed, hashlib.sha256).digest()
        for signature in signatures:
            version, _, value = signature.partition(",")
            try:
                if version == "v1" and hmac.compare_digest(base64.b64decode(value), expected):
                    return None
            except binascii.Error:
                continue
        return "bad signature"

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock, self.log.open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry, ensure_ascii=False) + "\n")


def handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(200, b"stub")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path == CONTROL:
                order = json.loads(body)
                stub.modes[order["path"]] = order["mode"]
                self._answer(200, b"ok")
                return
            mode = stub.modes.get(self.path, "ok")
            headers = {name.lower(): value for name, value in self.headers.items()}
            stub.record(
                {
                    "path": self.path,
                    "headers": headers,
                    "body": body.decode("utf-8", errors="replace"),
                    "signature_error": stub.verified(headers, body),
                    "answer": {"ok": 200, "fail": 500}.get(mode, mode),
                    "at": time.time(),
                }
            )
            if mode == "hang":
                time.sleep(HANG_S)
                return
            self._answer(200 if mode == "ok" else 500, b"{}")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the log file is the record."""

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument(
        "--mode", action="append", default=[], metavar="PATH=MODE", help="a path's answer from the start"
    )
    args = parser.parse_args()
    stub = Stub(args.log, args.secret)
    stub.modes.update(mode.split("=", 1) for mode in args.mode)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(stub))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
