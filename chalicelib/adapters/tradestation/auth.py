"""TradeStation's OAuth refresh-token grant, and where the refresh token is kept.

TradeStation (https://api.tradestation.com/docs/fundamentals/authentication/refresh-tokens/):
access tokens last 20 minutes; "a new access token should only be obtained when the current
one is approaching expiration or has expired"; a key "configured to expiring and rotating
Refresh Tokens" returns a new refresh token with every grant. Refresh tokens need the
`offline_access` scope at sign-in.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.tradestation.errors import failure_of
from chalicelib.ports import BrokerRejected, BrokerUnavailable, RefreshTokenStore

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

TOKEN_URL = "https://signin.tradestation.com/oauth/token"  # noqa: S105 (a URL)
TOKEN_MARGIN_S = 60.0  # refresh this long before the access token's `expires_in` runs out


class StaticRefreshToken:
    """A refresh token held in memory only (a token from the environment). A rotated token
    is kept for this process and lost on the next cold start, so a warning says so."""

    def __init__(self, token: str) -> None:
        self._token = token

    def load(self) -> str:
        return self._token

    def save(self, refresh_token: str) -> None:
        log.warning(
            "tradestation: the refresh token was rotated but no secret is configured to keep "
            "it (FLOWTRADER_TRADESTATION_REFRESH_TOKEN_SECRET); sign in again after a restart"
        )
        self._token = refresh_token


class SecretsManagerRefreshToken:
    """The refresh token in a JSON secret (the app secret by default): read on every refresh,
    so a token another Lambda rotated is picked up; a rotated one is written back into the
    same JSON (the other keys kept)."""

    def __init__(
        self,
        client: Any,
        secret_id: str,
        key: str = "tradestation_refresh_token",
        *,
        fallback: str = "",
    ) -> None:
        self._client = client
        self._secret_id = secret_id
        self._key = key
        self._fallback = fallback  # the environment's token, until the secret holds one

    def _value(self) -> dict[str, Any]:
        from chalicelib.adapters.secrets import SecretsUnavailable, fetch_secret_json

        try:
            return fetch_secret_json(self._secret_id, self._client)
        except SecretsUnavailable as exc:
            raise BrokerUnavailable(f"cannot read the TradeStation refresh token: {exc}") from exc

    def _key_in(self, value: dict[str, Any]) -> str:
        wanted = self._key.lower().removeprefix("flowtrader_")
        for key in value:
            if str(key).lower().removeprefix("flowtrader_") == wanted:
                return str(key)
        return self._key

    def load(self) -> str:
        value = self._value()
        return str(value.get(self._key_in(value)) or self._fallback)

    def save(self, refresh_token: str) -> None:
        value = self._value()
        value[self._key_in(value)] = refresh_token
        try:
            self._client.put_secret_value(SecretId=self._secret_id, SecretString=json.dumps(value))
        except Exception as exc:  # boto errors; the secret's name is enough to act on
            raise BrokerUnavailable(
                f"TradeStation rotated the refresh token but writing it to {self._secret_id} "
                f"failed ({type(exc).__name__}): sign in again if the next start cannot refresh"
            ) from exc
        log.info("tradestation: rotated refresh token written to %s", self._secret_id)


class TokenSource:
    """Access tokens by the refresh-token grant, cached until `TOKEN_MARGIN_S` before expiry.

    TradeStation: "A new access token should only be obtained when the current one is
    approaching expiration or has expired"; with a rotating key "you will receive a new
    Refresh Token in the response" — written to `store` before it is relied on. When the grant
    is refused the store is read again once (another Lambda may have rotated the token).
    """

    def __init__(
        self,
        session: requests.Session,
        token_url: str,
        client_id: str,
        client_secret: str,
        store: RefreshTokenStore,
        *,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._store = store
        self._timeout_s = timeout_s
        self._clock = clock
        self._access: str | None = None
        self._expires_at = 0.0
        self._unsaved: str | None = None  # a rotated token the store could not keep yet
        self._lock = threading.Lock()

    def access_token(self) -> str:
        with self._lock:
            if self._access is None or self._clock() >= self._expires_at:
                self._refresh()
            assert self._access is not None
            return self._access

    def invalidate(self) -> None:
        with self._lock:
            self._access = None

    def _refresh(self) -> None:
        token = self._unsaved or self._store.load()
        if not token:
            raise BrokerRejected(
                "no TradeStation refresh token: sign in once (docs/brokers/tradestation.md) "
                "and store it as tradestation_refresh_token",
                code="auth",
            )
        body = self._grant(token)
        if body is None:  # refused: maybe another process rotated it meanwhile
            again = self._store.load()
            body = self._grant(again) if again and again != token else None
            token = again or token
        if body is None:
            raise BrokerRejected(
                "TradeStation refused the refresh token (expired, revoked or rotated away): "
                "sign in again (docs/brokers/tradestation.md)",
                code="auth",
            )
        rotated = body.get("refresh_token")
        if rotated and rotated != token:
            self._keep(str(rotated))
        elif self._unsaved:
            self._keep(self._unsaved)
        self._access = str(body["access_token"])
        lifetime = float(body.get("expires_in") or 1200)
        self._expires_at = self._clock() + max(lifetime - TOKEN_MARGIN_S, lifetime / 2)

    def _keep(self, rotated: str) -> None:
        """Save a rotated refresh token; when the store fails, hold it in memory (the old one
        no longer works) and try again at the next refresh."""
        try:
            self._store.save(rotated)
        except BrokerUnavailable as exc:
            log.error("tradestation: %s; kept in memory, saved at the next refresh", exc)
            self._unsaved = rotated
        else:
            self._unsaved = None

    def _grant(self, refresh_token: str) -> dict[str, Any] | None:
        """The token endpoint's answer, None when it refuses the grant."""
        import requests

        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "refresh_token": refresh_token,
        }
        if self._client_secret:
            form["client_secret"] = self._client_secret
        try:
            resp = self._session.post(self._url, data=form, timeout=self._timeout_s)
        except requests.RequestException as exc:
            raise BrokerUnavailable(
                f"TradeStation sign-in unreachable ({type(exc).__name__})"
            ) from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise BrokerUnavailable(f"TradeStation sign-in unavailable (HTTP {resp.status_code})")
        if resp.status_code != 200:
            failure = failure_of(resp)
            log.warning("tradestation: refresh grant refused (%s)", failure.error or failure)
            return None
        body = resp.json()
        if not isinstance(body, dict) or not body.get("access_token"):
            raise BrokerUnavailable("TradeStation sign-in answered without an access token")
        return body
