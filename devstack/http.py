"""The Chalice app over HTTP on loopback, as `chalice local` serves it, minus one stall."""

from __future__ import annotations

import functools

from chalice import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalDevServer, create_local_server


class _NoDelayHandler(ChaliceRequestHandler):
    # The handler writes headers and body separately; with Nagle on, the body waits for the
    # client's delayed ACK (40 ms on Linux) on every keep-alive request after the first.
    disable_nagle_algorithm = True


def local_server(app: Chalice, host: str, port: int, stage: str = "local") -> LocalDevServer:
    """Bind the app to host:port (0 picks a free port); call `.server.serve_forever()`."""
    config = Config(chalice_stage=stage)
    server = create_local_server(app, config, host, port)
    server.server.RequestHandlerClass = functools.partial(
        _NoDelayHandler, app_object=app, config=config
    )
    return server
