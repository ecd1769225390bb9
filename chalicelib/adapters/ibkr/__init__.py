"""Interactive Brokers (Client Portal Web API over OAuth 1.0a, through ibind).

`session` holds the OAuth session and its keep-alive, `contracts` the symbol → conid cache,
`orders` the order tickets, IBKR's order records and the reply policy, `broker` the
`Broker` port, `market_data` the `MarketData` port. ibind is imported only when a session
is built, never at import time. User guide: docs/brokers/ibkr.md.
"""

from chalicelib.adapters.ibkr.market_data import ibkr_market_data

__all__ = ["ibkr_market_data"]
