"""Dashboard sign-in: the API token, once, for a session cookie.

The trader types the API token into the login page; it is compared in constant time and
never stored, echoed or logged. The answer is a random session id in a cookie (HttpOnly,
SameSite=Strict, Secure behind HTTPS, `Max-Age` = the session's life) and a CSRF token the
page sends back in `X-CSRF-Token` on every state-changing request. The state table keeps
only the SHA-256 of the session id, so logout (or the TTL) ends a session for good, and a
tag of the token (an HMAC of a constant under it): rotating the API token ends every
session opened with the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.cookies import CookieError, SimpleCookie

from chalicelib.ports import DashboardSessions

COOKIE = "ft_session"
CSRF_HEADER = "x-csrf-token"
_ID_BYTES = 32  # 256 bits of session id; the cookie is unguessable


@dataclass(frozen=True)
class Session:
    csrf: str
    expires_at: datetime


@dataclass(frozen=True)
class Opened:
    cookie_value: str
    session: Session


def token_tag(api_token: str) -> str:
    """Names the token a session was opened with, without being it."""
    return hmac.new(api_token.encode(), b"flowtrader dashboard session", "sha256").hexdigest()


def _storage_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def token_matches(given: str, api_token: str) -> bool:
    return bool(api_token) and hmac.compare_digest(given.encode(), api_token.encode())


def open_session(store: DashboardSessions, api_token: str, now: datetime, ttl: timedelta) -> Opened:
    session_id = secrets.token_urlsafe(_ID_BYTES)
    session = Session(csrf=secrets.token_urlsafe(_ID_BYTES), expires_at=now + ttl)
    store.save_session(
        _storage_key(session_id),
        csrf=session.csrf,
        token_tag=token_tag(api_token),
        expires_at=session.expires_at,
    )
    return Opened(session_id, session)


def current_session(
    store: DashboardSessions, cookie_value: str | None, api_token: str, now: datetime
) -> Session | None:
    """The live session the cookie names; None when it is absent, unknown, expired or was
    opened with another API token."""
    if not cookie_value or not api_token or len(cookie_value) > 128:
        return None
    found = store.load_session(_storage_key(cookie_value))
    if found is None or found["expires_at"] <= now:
        return None
    if not hmac.compare_digest(found["token_tag"], token_tag(api_token)):
        return None
    return Session(csrf=found["csrf"], expires_at=found["expires_at"])


def close_session(store: DashboardSessions, cookie_value: str | None) -> None:
    if cookie_value and len(cookie_value) <= 128:
        store.delete_session(_storage_key(cookie_value))


def csrf_ok(session: Session, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(session.csrf.encode(), (header or "").encode())


def cookie_from(header: str | None) -> str | None:
    """The session cookie's value from a `Cookie` header; None when absent or malformed."""
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def set_cookie(value: str, ttl: timedelta, *, secure: bool) -> str:
    """The `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/ (every API route behind
    the stage prefix), `Max-Age` the session's life, Secure over HTTPS."""
    parts = [
        f"{COOKIE}={value}",
        "Path=/",
        f"Max-Age={int(ttl.total_seconds())}",
        "HttpOnly",
        "SameSite=Strict",
    ]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie(*, secure: bool) -> str:
    return set_cookie("", timedelta(0), secure=secure)
