"""A local HTTP endpoint that answers like LLM providers do, for demos, tests and benchmarks.

Standard library only, so it runs in any Python 3.10+ without installing anything. Each provider
is one ``*_routes.py`` module next to this file that exports ``ROUTES``, a list of
``(method, path_regex, handler)``; see README.md for the contract. Run it with either::

    python -m examples.local_provider --port 0 --port-file /tmp/port    # from the repo root
    python examples/local_provider/server.py --port 8765                # from anywhere

and point an SDK at it, e.g. ``OPENAI_BASE_URL=http://127.0.0.1:8765/v1``. In-process use (tests)::

    with running() as server:
        client = OpenAI(base_url=server.url + "/v1", api_key="sk-test")
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

HERE = Path(__file__).resolve().parent
ROUTE_GLOB = "*_routes.py"

#: handler(body, headers, **path_params) -> (status, headers, body bytes | iterable of bytes)
Handler = Callable[..., "tuple[int, Mapping[str, str], Any]"]


@dataclass(frozen=True)
class Route:
    """One endpoint: the regex must match the whole path (query string excluded)."""

    method: str
    pattern: "re.Pattern[str]"
    handler: Handler
    provider: str


def load_routes(folder: Path = HERE, names: Sequence[str] | None = None) -> list[Route]:
    """Import every ``*_routes.py`` in ``folder`` (or only the providers in ``names``).

    Modules are loaded by file path, so the server works whether it runs as a package module or
    as a plain script. A module that fails to import is reported on stderr and skipped, so one
    broken provider does not take the others down.
    """
    routes: list[Route] = []
    for path in sorted(folder.glob(ROUTE_GLOB)):
        provider = path.name[: -len("_routes.py")]
        if names is not None and provider not in names:
            continue
        try:
            spec = importlib.util.spec_from_file_location(f"_local_provider_{provider}_routes", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            for method, regex, handler in module.ROUTES:
                pattern = regex if isinstance(regex, re.Pattern) else re.compile(regex)
                routes.append(Route(method.upper(), pattern, handler, provider))
        except Exception:
            print(f"local provider: skipping {path.name}:\n{traceback.format_exc()}", file=sys.stderr)
    return routes


def _json_error(status: int, message: str, kind: str = "invalid_request_error") -> tuple[int, dict[str, str], bytes]:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return status, {"content-type": "application/json"}, json.dumps(body).encode()


class _RequestHandler(BaseHTTPRequestHandler):
    """Dispatches each request to the first route whose method and path regex match."""

    protocol_version = "HTTP/1.1"  # keep-alive, and chunked transfer for streams
    server: "LocalProviderServer"

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        if self.server.verbose:
            sys.stderr.write("local provider: " + (format % args) + "\n")

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        raw = self._read_body()
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._respond(200, {"content-type": "text/plain"}, b"ok\n")
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        headers[":method"] = self.command
        headers[":path"] = self.path
        result = None
        allowed = False
        for route in self.server.routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            allowed = True
            if route.method != self.command:
                continue
            body = _parse_body(raw, headers.get("content-type", ""))
            try:
                result = route.handler(body, headers, **match.groupdict())
            except Exception:
                traceback.print_exc(file=sys.stderr)
                result = _json_error(500, "local provider: the route handler failed", "server_error")
            break
        if result is None:
            status = 405 if allowed else 404
            result = _json_error(status, f"local provider: no route for {self.command} {path}")
        self._respond(*result)

    def _respond(self, status: int, headers: Mapping[str, str], body: Any) -> None:
        if self.server.latency > 0:
            time.sleep(self.server.latency)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if isinstance(body, str):
            body = body.encode()
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        iterator: Iterator[bytes] = iter(body)
        try:
            for piece in iterator:
                if not piece:
                    continue
                if self.server.chunk_delay > 0:
                    time.sleep(self.server.chunk_delay)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading the stream
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()


def _parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """JSON bodies become dicts; anything else is passed as ``{"_raw": bytes}``."""
    if not raw:
        return {}
    if "json" in content_type or raw[:1] in (b"{", b"["):
        try:
            value = json.loads(raw)
        except ValueError:
            return {"_raw": raw}
        return value if isinstance(value, dict) else {"_json": value}
    return {"_raw": raw}


class LocalProviderServer(ThreadingHTTPServer):
    """The endpoint; ``url`` is ``http://host:port`` once bound."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        routes: Sequence[Route] | None = None,
        *,
        verbose: bool = False,
        latency_ms: float = 0.0,
        chunk_delay_ms: float = 0.0,
    ) -> None:
        self.routes = list(routes) if routes is not None else load_routes()
        self.verbose = verbose
        self.latency = latency_ms / 1000.0
        self.chunk_delay = chunk_delay_ms / 1000.0
        super().__init__((host, port), _RequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}"

    def providers(self) -> list[str]:
        return sorted({route.provider for route in self.routes})


@contextlib.contextmanager
def running(port: int = 0, **options: Any) -> Iterator[LocalProviderServer]:
    """Serve in a background thread for the duration of the block (tests, benchmarks)."""
    server = LocalProviderServer(port=port, **options)
    thread = threading.Thread(target=server.serve_forever, name="local-provider", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _write_port_file(path: str, port: int) -> None:
    """Write atomically, so a script polling for the file never reads half of it."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as handle:
        handle.write(f"{port}\n")
    os.replace(temporary, path)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local_provider", description="Local stand-in for LLM provider APIs.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--port-file", help="write the bound port to this file once listening")
    parser.add_argument("--providers", help="comma-separated providers to serve (default: every *_routes.py)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each response")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay before each streamed chunk")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(list(argv) if argv is not None else None)

    names = [name.strip() for name in args.providers.split(",")] if args.providers else None
    server = LocalProviderServer(
        args.host,
        args.port,
        load_routes(names=names),
        verbose=args.verbose,
        latency_ms=args.latency_ms,
        chunk_delay_ms=args.chunk_delay_ms,
    )
    if not server.routes:
        print("local provider: no routes loaded", file=sys.stderr)
        return 1

    def _stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    if args.port_file:
        _write_port_file(args.port_file, server.port)
    print(f"local provider listening on {server.url} ({', '.join(server.providers())})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if args.port_file:
            with contextlib.suppress(OSError):
                os.unlink(args.port_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
