"""The composition root: the one place that knows which adapter serves which port.

Adapters (and the boto3/vendor clients inside them) are built lazily, on first use, so a
cold start pays only for what the invoked handler touches.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb_alerts import DynamoAlertStore
    from chalicelib.adapters.dynamodb_state import DynamoStateStore
    from chalicelib.adapters.sqs import SqsAlertQueue
    from chalicelib.ports import Broker, Notifier
    from chalicelib.settings import Settings


class Container:
    """Adapters built from one `Settings`, each on first use."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @cached_property
    def settings(self) -> Settings:
        from chalicelib.settings import load_settings  # pydantic-settings: paid on first use

        return self._settings or load_settings()

    @cached_property
    def boto_session(self):
        import boto3

        return boto3.session.Session()

    @cached_property
    def alert_store(self) -> DynamoAlertStore:
        from chalicelib.adapters.dynamodb_alerts import DynamoAlertStore

        return DynamoAlertStore(self.boto_session.client("dynamodb"), self.settings.alerts_table)

    @cached_property
    def alert_queue(self) -> SqsAlertQueue:
        from chalicelib.adapters.sqs import SqsAlertQueue

        return SqsAlertQueue(self.boto_session.client("sqs"), self.settings.queue_url)

    @cached_property
    def state_store(self) -> DynamoStateStore:
        """Risk state, cooldown slots, journal, orders and positions (the state table)."""
        from chalicelib.adapters.dynamodb_state import DynamoStateStore

        return DynamoStateStore(self.boto_session.client("dynamodb"), self.settings.state_table)

    @cached_property
    def notifier(self) -> Notifier:
        """Every channel behind one fan-out that never raises: the log, and SNS when
        `topic_arn` is set (SMS/email subscribers of the topic)."""
        from chalicelib.services.notify import FanOutNotifier, LogNotifier

        channels: list[Notifier] = [LogNotifier()]
        if self.settings.topic_arn:
            from chalicelib.adapters.sns import SnsNotifier

            channels.append(
                SnsNotifier(
                    self.boto_session.client("sns"),
                    self.settings.topic_arn,
                    sms_chars=self.settings.notify_sms_chars,
                )
            )
        return FanOutNotifier(channels)

    @cached_property
    def broker(self) -> Broker:
        """The order venue `settings.broker` names: paper (simulated in the state table) or
        alpaca (paper or live account by `alpaca_paper`)."""
        s = self.settings
        if s.broker == "alpaca":
            from chalicelib.adapters.alpaca import AlpacaBroker

            return AlpacaBroker.from_settings(s)
        if s.broker != "paper":
            raise ValueError(f"unknown broker {s.broker!r}; use paper or alpaca")
        from chalicelib.adapters.paper_broker import PaperBroker

        return PaperBroker(
            self.boto_session.client("dynamodb"),
            s.state_table,
            slippage_bps=s.paper_slippage_bps,
            starting_cash=s.paper_starting_cash,
        )


_lock = threading.Lock()
_container: Container | None = None


def container() -> Container:
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                _container = Container()
    return _container


def reset(new: Container | None = None) -> None:
    """Drop the cached container (tests, and the local stack after it sets the env)."""
    global _container
    with _lock:
        _container = new
