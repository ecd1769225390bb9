"""Symbol → IBKR contract id (conid), cached: every order and quote names a conid.

`GET /trsrv/stocks?symbols=AAPL` answers every stock contract for the symbol, grouped by
instrument, each contract with its exchange and `isUS` (spec, "Stocks By Symbol"). The US
listing of the first instrument whose name is not a CDR/ADR variant wins; the answer is
cached for `ttl_s` (conids do not change for a listed stock; a day is the default) in
process, so one Lambda resolves a symbol once per container life.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.adapters.ibkr.session import IbkrError, IbkrSession


class UnknownSymbol(Exception):
    """IBKR lists no US stock contract for the symbol."""


@dataclass(frozen=True)
class Contract:
    conid: int
    symbol: str
    exchange: str


class ConidResolver:
    def __init__(
        self,
        session: IbkrSession,
        *,
        ttl_s: float = 86_400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._ttl_s = ttl_s
        self._clock = clock
        self._by_symbol: dict[str, tuple[Contract, float]] = {}
        self._lock = threading.Lock()
        self.lookups = 0  # calls to IBKR (tests read it)

    def contract(self, symbol: str) -> Contract:
        """The US contract of `symbol`; `UnknownSymbol` when IBKR has none, `IbkrError`
        when IBKR could not be asked."""
        symbol = symbol.upper()
        now = self._clock()
        with self._lock:
            hit = self._by_symbol.get(symbol)
            if hit and now - hit[1] < self._ttl_s:
                return hit[0]
        found = self._lookup(symbol)
        with self._lock:
            self._by_symbol[symbol] = (found, now)
        return found

    def conid(self, symbol: str) -> int:
        return self.contract(symbol).conid

    def _lookup(self, symbol: str) -> Contract:
        self.lookups += 1
        try:
            data = self._session.call("GET", "trsrv/stocks", params={"symbols": symbol}) or {}
        except IbkrError as exc:
            if exc.status in (400, 404):
                raise UnknownSymbol(f"IBKR does not know {symbol} ({exc.message})") from exc
            raise
        for instrument in data.get(symbol) or []:
            if instrument.get("assetClass", "STK") != "STK":
                continue
            for contract in instrument.get("contracts") or []:
                if contract.get("isUS"):
                    return Contract(int(contract["conid"]), symbol, str(contract.get("exchange")))
        raise UnknownSymbol(f"IBKR lists no US stock contract for {symbol}")
