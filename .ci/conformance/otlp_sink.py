"""A local OTLP/HTTP endpoint for the conformance job: accepts every export and counts it.

The instrumented runs export as a user's would, to a collector that answers 200, so exporting never
waits on retries; the counts prove GenOps was active in those runs. Standard library only.

    python otlp_sink.py PORT_FILE COUNTS_FILE

Writes the port it listens on to PORT_FILE, and on SIGTERM/SIGINT the per-path request counts
(JSON) to COUNTS_FILE.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_counts: dict[str, int] = {}
_lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with _lock:
            _counts[self.path] = _counts.get(self.path, 0) + 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        """Quiet: the job's output is the comparison."""


def main(argv: list[str]) -> int:
    port_file, counts_file = Path(argv[0]), Path(argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True

    def stop(_signum: int, _frame: object) -> None:
        with _lock:
            counts_file.write_text(json.dumps(_counts, sort_keys=True), encoding="utf-8")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    port_file.write_text(str(server.server_address[1]), encoding="utf-8")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
