"""What TradeStation's failures mean for us: transient (outcome unknown) or a refusal, and a
refusal's reason in a trader's words. Messages never carry tokens or secrets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests


class Transport(Exception):
    """No HTTP answer (timeout, connection refused or dropped)."""


@dataclass
class Failure:
    status: int | None
    error: str
    message: str

    @property
    def transient(self) -> bool:
        return self.status is None or self.status >= 500 or self.status == 429

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "no response"
        text = ": ".join(p for p in (self.error, self.message) if p)
        return f"{where}: {text}" if text else where


def failure_of(resp: requests.Response) -> Failure:
    """TradeStation's `ErrorResponse` ({Error, Message}), else the body's first 200 chars."""
    try:
        body = resp.json()
    except ValueError:
        return Failure(resp.status_code, "", resp.text[:200])
    if isinstance(body, dict):
        return Failure(
            resp.status_code,
            str(body.get("Error") or body.get("error") or ""),
            str(body.get("Message") or body.get("error_description") or "")[:300],
        )
    return Failure(resp.status_code, "", str(body)[:200])


def is_duplicate(failure: Failure) -> bool:
    return "duplicate" in f"{failure.error} {failure.message}".lower()


def reject_reason(failure: Failure) -> str:
    """A trader's reading of a TradeStation refusal; TradeStation's own words follow."""
    status, text = failure.status, f"{failure.error} {failure.message}".lower()
    if status == 401:
        label = "TradeStation refused the access token (check the API key and SIM vs live)"
    elif status == 403:
        label = "forbidden by TradeStation (the key lacks the Trade scope, or the account)"
    elif status == 404:
        label = "not found at TradeStation"
    elif "buying power" in text:
        label = "insufficient buying power"
    elif "short" in text:
        label = "the asset cannot be sold short"
    elif "symbol" in text:
        label = "asset not found or not tradable"
    else:
        label = "refused by TradeStation"
    words = failure.message or failure.error
    return f"{label} (tradestation: {words})" if words else label
