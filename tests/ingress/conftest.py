"""Fixtures the ingress tests share: the app served over HTTP in this process."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


@pytest.fixture
def http_url(aws) -> Iterator[str]:
    """The Chalice app served over HTTP on a free loopback port, as `make run` serves it."""
    from app import app
    from devstack.http import local_server

    server = local_server(app, "127.0.0.1", 0, stage="test")
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server.server_address[1]}"
    server.server.shutdown()
    server.server.server_close()
