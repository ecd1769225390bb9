"""The Chalice app over HTTP on loopback, as `chalice local` serves it, but like a real server.

`chalice local` is a development server: it listens with a backlog of 5 (a burst of parallel
connections is reset or waits out SYN retransmits), answers nothing at all to broken framing
(`Content-Length: abc`, a non-ASCII header: the handler thread dies), and for an unknown route
copies API Gateway's "Authorization header requires 'Credential' parameter ... Authorization=
<the header>" message, echoing the caller's bearer token. Here:

- one thread per connection and a listen backlog of `LISTEN_BACKLOG`, so 100 parallel
  connections are all accepted at once;
- broken framing gets a 4xx and the connection is closed: 400 for a Content-Length that is
  no number (or several that disagree) and for header values that are not ASCII, 411 for a
  body without a Content-Length (chunked), 413 for one over `MAX_BODY_BYTES`, 408 for a body
  that does not arrive within `timeout` seconds;
- an unknown route (or method) is 404 `{"error": "no such route"}`, never echoing a header;
  in AWS the API's gateway responses say the same (infra/deploy.py, GATEWAY_RESPONSES);
- an unexpected error outside the app is 502, as API Gateway answers a crashed Lambda.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

from chalice import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LocalChalice,
    LocalDevServer,
    LocalGateway,
    LocalGatewayException,
    ThreadedHTTPServer,
)

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn (4096 on current Linux)
MAX_BODY_BYTES = 1024 * 1024  # the app refuses webhook bodies over 16 KiB; API Gateway, 10 MB
NO_SUCH_ROUTE = b'{"error": "no such route"}'


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _NoSuchRoute(LocalGatewayException):
    CODE = 404


class _Gateway(LocalGateway):
    def _generate_lambda_event(self, method: str, path: str, headers: Any, body: Any) -> Any:
        try:
            return super()._generate_lambda_event(method, path, headers, body)
        except ValueError:  # no route: chalice would answer 403 echoing the Authorization
            raise _NoSuchRoute({"x-amzn-ErrorType": "NotFoundException"}, NO_SUCH_ROUTE) from None


class _Handler(ChaliceRequestHandler):
    # The handler writes headers and body separately; with Nagle on, the body waits for the
    # client's delayed ACK (40 ms on Linux) on every keep-alive request after the first.
    disable_nagle_algorithm = True
    # Seconds a connection may sit idle or trickle a request before it is closed.
    timeout = 30

    def __init__(self, request: Any, client_address: Any, server: Any, *, app_object: Chalice,
                 config: Config) -> None:  # fmt: skip
        self.local_gateway = _Gateway(app_object, config)
        # ChaliceRequestHandler.__init__ would build chalice's own gateway; skip to the base.
        super(ChaliceRequestHandler, self).__init__(request, client_address, server)

    def _content_length(self) -> int:
        for name, value in self.headers.items():
            if not (name.isascii() and value.isascii()):
                raise _Refused(
                    400, f"header {name.encode('ascii', 'replace').decode()} is not ASCII"
                )
        if self.headers.get("transfer-encoding"):
            raise _Refused(411, "send the body with a Content-Length (chunked is not accepted)")
        given = self.headers.get_all("content-length") or []
        if len(set(given)) > 1:
            raise _Refused(400, "conflicting Content-Length headers")
        raw = given[0].strip() if given else "0"
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
            raise _Refused(400, "Content-Length must be a number of bytes")
        length = int(raw)
        if length > MAX_BODY_BYTES:
            raise _Refused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        return length

    def _parse_payload(self) -> tuple[dict[str, str], bytes | None]:
        length = self._content_length()
        body = None
        if length:
            try:
                body = self.rfile.read(length)
            except TimeoutError:
                raise _Refused(408, "the request body did not arrive in time") from None
            if len(body) < length:
                raise _Refused(400, "the connection closed before the whole body arrived")
        return dict(self.headers), body

    def _generic_handle(self) -> None:
        try:
            super()._generic_handle()
        except _Refused as refused:
            self._refuse(refused.status, refused.message)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client is gone; nobody to answer
        except Exception:
            log.exception("local gateway error for %s %s", self.command, self.path)
            self._refuse(502, "internal server error")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, headers too long, ...) as JSON, and
        with a status line: it answers an unparseable request line HTTP/0.9-style, bare."""
        self.request_version = "HTTP/1.1"
        self._refuse(code, message or self.responses.get(code, ("error",))[0])

    def _refuse(self, status: int, message: str) -> None:
        """Answer and close: after broken framing, where the next request starts is unknown."""
        body = json.dumps({"error": message}).encode()
        self.close_connection = True
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle


class _Server(ThreadedHTTPServer):
    """One thread per connection; `request_queue_size` is the listen() backlog."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        super().server_bind()


def local_server(app: Chalice, host: str, port: int, stage: str = "local") -> LocalDevServer:
    """Bind the app to host:port (0 picks a free port); call `.server.serve_forever()`."""
    if not isinstance(app, LocalChalice):  # what create_local_server does, once per app
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice  # current_request becomes per thread
    config = Config(chalice_stage=stage)
    return LocalDevServer(app, config, host, port, handler_cls=_Handler, server_cls=_Server)
