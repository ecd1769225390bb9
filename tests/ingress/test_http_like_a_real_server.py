"""Issue 9, part 6: the local HTTP server (devstack/http.py, what `make run` serves) answers
broken framing with a 4xx, never echoes a token, and accepts a burst of connections."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import API_TOKEN, PASSPHRASE
from tests.ingress.helpers import alert_body, raw_http


def _request(method: str, path: str, headers: list[bytes], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _error(body: bytes) -> str:
    return json.loads(body)["error"]


@pytest.mark.parametrize(
    ("length_headers", "words"),
    [
        ([b"Content-Length: abc"], "Content-Length must be a number"),
        ([b"Content-Length: -5"], "Content-Length must be a number"),
        ([b"Content-Length: 1e3"], "Content-Length must be a number"),
        ([b"Content-Length: \xc2\xb2"], "not ASCII"),  # "²": str.isdigit() says yes
        ([b"Content-Length: 5", b"Content-Length: 6"], "conflicting Content-Length"),
    ],
)
def test_malformed_content_length_is_400_and_the_connection_closes(http_url, length_headers, words):
    request = _request("POST", "/webhook", [b"Content-Type: text/plain", *length_headers], b"{}")

    status, head, body = raw_http(http_url, request)

    assert status == 400
    assert words in _error(body)
    assert "Connection: close" in head


@pytest.mark.parametrize("path", ["/api/orders", "/webhook", "/no/such/route"])
def test_non_ascii_authorization_header_is_400(http_url, path):
    header = "Authorization: Bearer tökén-ünïcode".encode()

    status, _, body = raw_http(http_url, _request("GET", path, [header]))

    assert status == 400
    assert "header Authorization is not ASCII" in _error(body)


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", ["/nope", "/api/secrets", "/webhook/x", "/api/alert"])
def test_unknown_route_with_a_bearer_token_is_404_and_never_echoes_it(http_url, method, path):
    headers = [f"Authorization: Bearer {API_TOKEN}".encode(), b"Content-Length: 0"]

    status, head, body = raw_http(http_url, _request(method, path, headers))

    assert status == 404
    assert json.loads(body) == {"error": "no such route"}
    assert API_TOKEN not in head + body.decode()
    assert "Credential" not in body.decode()


def test_unknown_method_on_a_route_never_echoes_the_token(http_url):
    headers = [f"Authorization: Bearer {API_TOKEN}".encode(), b"Content-Length: 0"]

    status, head, body = raw_http(http_url, _request("DELETE", "/api/orders", headers))

    assert 400 <= status < 500
    assert API_TOKEN not in head + body.decode()


def test_chunked_body_without_content_length_is_411(http_url):
    request = _request("POST", "/webhook", [b"Transfer-Encoding: chunked"], b"2\r\n{}\r\n0\r\n\r\n")

    status, _, body = raw_http(http_url, request)

    assert status == 411
    assert "Content-Length" in _error(body)


def test_body_over_a_megabyte_is_413_without_reading_it(http_url):
    request = _request("POST", "/webhook", [b"Content-Length: 999999999999"])

    status, _, _ = raw_http(http_url, request)

    assert status == 413


def test_body_cut_short_is_400(http_url):
    request = _request("POST", "/webhook", [b"Content-Length: 100"], b'{"a":')

    status, _, body = raw_http(http_url, request, half_close=True)

    assert status == 400
    assert "before the whole body arrived" in _error(body)


def test_body_that_never_arrives_is_408(http_url, monkeypatch):
    from devstack import http

    monkeypatch.setattr(http._Handler, "timeout", 0.5)
    request = _request("POST", "/webhook", [b"Content-Length: 100"], b'{"a":')

    status, _, body = raw_http(http_url, request)

    assert status == 408
    assert "did not arrive in time" in _error(body)


def test_garbage_request_line_is_400(http_url):
    status, _, _ = raw_http(http_url, b"HELLO THERE\r\n\r\n")

    assert status == 400


def test_well_formed_request_still_works_and_keeps_the_connection(http_url):
    body = json.dumps(alert_body()).encode()
    request = _request(
        "POST",
        "/webhook",
        [b"Content-Type: text/plain", f"Content-Length: {len(body)}".encode()],
        body,
    )

    status, head, answer = raw_http(http_url, request)

    assert status == 202, answer
    assert "Connection: close" not in head
    assert PASSPHRASE not in answer.decode()


def test_100_parallel_connections_are_all_answered(http_url):
    """The listen backlog holds a burst: chalice local's 5 reset or stalled most of them."""

    def one(i: int) -> int:
        body = json.dumps(alert_body(order_id=f"burst-{i}")).encode()
        request = _request(
            "POST",
            "/webhook",
            [b"Content-Type: text/plain", f"Content-Length: {len(body)}".encode()],
            body,
        )
        return raw_http(http_url, request, timeout=60)[0]

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(one, range(100)))

    assert statuses == [202] * 100


def test_listen_backlog_is_far_above_chalice_locals_five():
    from devstack.http import _Server

    assert _Server.request_queue_size >= 128
