"""What flowtrader can trade: US-listed stocks and ETFs, which is what both brokers (the paper
broker and Alpaca's equities API) accept.

An alert's `ticker` is TradingView's `{{exchange}}:{{ticker}}` (or the bare `{{ticker}}`):

- the symbol is 1–5 letters with an optional share class after a dot: `AAPL`, `SPY`, `BRK.B`
  (Alpaca spells class shares with the dot, as TradingView does);
- the exchange, when given, is one of `EQUITY_EXCHANGES`. TradingView names NYSE American and
  NYSE Arca listings `AMEX` (e.g. `AMEX:SPY`) and Cboe BZX `BATS`; for delayed data it appends
  `_DL` or `_DLY` (`NYSE_DL`), which is accepted too.

Anything else — futures (`CME_MINI:ES1!`), crypto, forex, OTC, or text that is no ticker at
all — is refused with a reason a trader can act on. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re

SYMBOL_PATTERN = re.compile(r"[A-Z]{1,5}(?:\.[A-Z]{1,2})?")
EQUITY_EXCHANGES = frozenset(
    {"NASDAQ", "NYSE", "AMEX", "ARCA", "NYSEARCA", "NYSEAMERICAN", "BATS", "CBOE", "IEX"}
)
FUTURES_EXCHANGES = frozenset(
    {
        "CME",
        "CME_MINI",
        "CBOT",
        "CBOT_MINI",
        "NYMEX",
        "COMEX",
        "CFE",
        "ICEUS",
        "ICEEUR",
        "ICEEU",
        "EUREX",
        "SGX",
        "OSE",
    }
)
_DELAYED = ("_DLY", "_DL")  # TradingView's suffixes for delayed data


def _venue(exchange: str) -> str:
    for suffix in _DELAYED:
        if exchange.endswith(suffix):
            return exchange.removesuffix(suffix)
    return exchange


def untradeable_reason(ticker: str) -> str | None:
    """Why `ticker` (``SYMBOL`` or ``EXCHANGE:SYMBOL``, upper case) cannot be traded, or None."""
    exchange, _, symbol = ticker.rpartition(":")
    venue = _venue(exchange)
    if symbol.endswith("!") or venue in FUTURES_EXCHANGES:
        return (
            f"{ticker} is a futures contract; futures are not tradeable with this broker "
            "(US stocks and ETFs only)"
        )
    if exchange and venue not in EQUITY_EXCHANGES:
        accepted = ", ".join(sorted(EQUITY_EXCHANGES))
        return (
            f"exchange {exchange} is not a US stock exchange this broker trades on "
            f"(accepted: {accepted})"
        )
    if not SYMBOL_PATTERN.fullmatch(symbol):
        return (
            f"{symbol} is not a US stock symbol: 1-5 letters, optionally a share class "
            "after a dot (AAPL, BRK.B)"
        )
    return None
