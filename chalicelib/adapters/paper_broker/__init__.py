"""The paper broker: the local default `Broker`, a simulated account kept in DynamoDB.

State lives in the state table (never in process memory), so every Lambda-style invocation
sees the same account. Fill prices come from `chalicelib.rules.fills` (the same pure model the
backtest uses).

- `book`: the pure half: cash/positions/realized P/L, order records and their roles
  (entries, bracket/OTO legs, protective OCO pairs), validation; tested without AWS.
- `store`: the table layout and every DynamoDB call, including the indexes that keep the
  decision path's reads independent of the account's history.
- `broker`: `PaperBroker`, the `SimulatedBroker` façade.
"""

from chalicelib.adapters.paper_broker.book import Book, apply_fill
from chalicelib.adapters.paper_broker.broker import PaperBroker

__all__ = ["Book", "PaperBroker", "apply_fill"]
