"""The composition root builds what the services use: the worker's pipeline from the settings,
the Alpaca broker's keys read through the container's Secrets Manager client, the health
probes through the container's AWS clients."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import pytest

from chalicelib.bootstrap import Container
from chalicelib.domain import OrderIntent, OrderStatus, Side
from chalicelib.rules.checks import Cooldown
from chalicelib.services.health import check_health
from chalicelib.settings import Settings
from tests.fakes.alpaca_server import FakeAlpaca


@pytest.fixture
def fake():
    with FakeAlpaca() as server:
        server.prices["AAPL"] = 190.0
        yield server


def count_calls(client, service: str) -> Counter[str]:
    calls: Counter[str] = Counter()
    client.meta.events.register(
        f"before-call.{service}.*", lambda model, **_: calls.update([model.name])
    )
    return calls


def test_the_workers_pipeline_comes_from_the_settings(aws):
    c = Container(Settings(max_trades_per_hour=7, cooldown_per_symbol=2, default_qty=3))

    execution = c.execution

    assert execution.state is c.state_store
    assert execution.broker is c.broker
    assert execution.notifier is c.notifier
    cooldown = next(check for check in execution.gate.checks if isinstance(check, Cooldown))
    assert (cooldown.max_trades, cooldown.per_symbol) == (7, 2)
    assert execution.rules.default_qty == 3


def test_alpaca_keys_are_read_through_the_containers_secrets_client(aws, fake):
    arn = boto3.client("secretsmanager").create_secret(
        Name="flowtrader-test/wiring",
        SecretString=json.dumps(
            {"ALPACA_API_KEY": fake.key_id, "ALPACA_SECRET_KEY": fake.secret_key}
        ),
    )["ARN"]
    c = Container(Settings(broker="alpaca", secrets_arn=arn, alpaca_base_url=fake.url))
    reads = count_calls(c.secrets_client, "secrets-manager")

    order = c.broker.place_order(
        OrderIntent(client_order_id="ft-w-1", alert_id="w", symbol="AAPL", side=Side.BUY, qty=1)
    )

    assert order.status is OrderStatus.FILLED
    assert reads == Counter({"GetSecretValue": 1})


def test_health_probes_use_the_containers_clients(aws):
    c = Container()
    dynamodb = count_calls(c.dynamodb_client, "dynamodb")
    sqs = count_calls(c.sqs_client, "sqs")

    report = check_health(c)

    assert report["ready"] is True
    assert dynamodb["DescribeTable"] == 2
    assert sqs["GetQueueAttributes"] == 1
