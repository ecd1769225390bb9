"""TradeStation (SIM or live) behind the `Broker` port, on the v3 REST API through `requests`.

TradeStation has no official Python SDK; the contract is its OpenAPI document
(api.tradestation.com/docs, "TradeStation API v3") and the authentication pages.

Money safety first:
- **No client order id in the API.** An order request can carry `OrderConfirmID` ("a unique
  identifier regarding an order used to prevent duplicates. Must be unique per API key, per
  order, per user", 1..22 characters), but no order TradeStation returns echoes it. So:
  1. every request carries `OrderConfirmID` derived from our client order id (`confirm_id`), so
     a second POST of the same intent is refused as a duplicate instead of becoming a second
     order;
  2. the TradeStation `OrderID` of every order placed is remembered under our id
     (`client_ids`, in memory, backed by `recorded_id`: the state table's recorded order);
  3. when the outcome of a POST is unknown (timeout, 5xx, 429) or TradeStation calls it a
     duplicate, today's orders are scanned for the intent's fingerprint (symbol, trade action,
     quantity, type, prices) among orders no other id claims, before anything is POSTed again.
  A fingerprint scan that finds an older identical order answers with it: in doubt an order is
  *not* placed rather than placed twice.
- One POST per `place_order` call; reads (GETs, cancels) are retried here (`read_attempts`).
- `TradeAction` comes from the position (`trade_action`): BUY / SELLSHORT open, SELL /
  BUYTOCOVER close; an intent that would cross zero is refused (a reversal is a close and an
  open, two intents).
- A bracket entry is one POST: the entry with `OSOs: [{Type: BRK, Orders: [limit, stop]}]`; a
  held remainder's OCO protection is a `BRK` group (`/orderexecution/ordergroups`): "Bracket
  orders are used to exit an existing position" (API reference, Place Group Order).
- Tokens: access tokens last 20 minutes and are cached until shortly before `expires_in`; the
  refresh token lives in Secrets Manager and, when TradeStation rotates it, the new one is
  written back (`RefreshTokenStore`) before it is used
  (https://api.tradestation.com/docs/fundamentals/authentication/refresh-tokens/). A 401 on a
  call refreshes once and repeats the call once.
- Errors become `BrokerRejected` (TradeStation said no) or `BrokerUnavailable` (outcome
  unknown) with TradeStation's own words; tokens and secrets never reach a message or a log.
"""

from chalicelib.adapters.tradestation.auth import (
    SecretsManagerRefreshToken,
    StaticRefreshToken,
    TokenSource,
)
from chalicelib.adapters.tradestation.broker import LIVE_URL, SIM_URL, TradeStationBroker
from chalicelib.adapters.tradestation.orders import build_order_request, confirm_id, trade_action

__all__ = [
    "LIVE_URL",
    "SIM_URL",
    "SecretsManagerRefreshToken",
    "StaticRefreshToken",
    "TokenSource",
    "TradeStationBroker",
    "build_order_request",
    "confirm_id",
    "trade_action",
]
