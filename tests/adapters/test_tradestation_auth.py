"""TradeStation's OAuth refresh-token flow through the adapter against the local sign-in
endpoint (tests/fakes/tradestation_server.py) and moto's Secrets Manager (over HTTP).

TradeStation (https://api.tradestation.com/docs/fundamentals/authentication/refresh-tokens/):
"Access tokens are valid for 20 minutes ... A new access token should only be obtained when the
current one is approaching expiration or has expired"; POST /oauth/token with
`grant_type=refresh_token`, `client_id`, `client_secret`, `refresh_token`, form-encoded; "If your
TradeStation API Key is configured to expiring and rotating Refresh Tokens, you will receive a
new Refresh Token in the response"; the `offline_access` scope is needed for refresh tokens.
"""

from __future__ import annotations

import json
import logging

import boto3
import pytest

from chalicelib.adapters.tradestation import (
    SecretsManagerRefreshToken,
    StaticRefreshToken,
    TradeStationBroker,
)
from chalicelib.domain import OrderIntent, OrderStatus, Side
from chalicelib.ports import BrokerRejected, BrokerUnavailable
from tests.fakes.tradestation_server import FakeTradeStation


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def intent(cid: str = "ft-auth-1") -> OrderIntent:
    return OrderIntent(client_order_id=cid, alert_id=cid, symbol="AAPL", side=Side.BUY, qty=1)


def connect(fake: FakeTradeStation, store, **kwargs) -> TradeStationBroker:
    return TradeStationBroker.connect(
        fake.account_id,
        fake.client_id,
        fake.client_secret,
        store,
        base_url=fake.url,
        token_url=fake.token_url,
        wait_s=0,
        sleep=lambda _: None,
        **kwargs,
    )


@pytest.fixture
def fake():
    with FakeTradeStation() as server:
        server.prices["AAPL"] = 190.0
        yield server


@pytest.fixture
def rotating():
    with FakeTradeStation(rotate=True) as server:
        server.prices["AAPL"] = 190.0
        yield server


def secret(aws, value: dict) -> str:
    return boto3.client("secretsmanager").create_secret(
        Name="flowtrader-test/tradestation", SecretString=json.dumps(value)
    )["ARN"]


def stored(arn: str) -> dict:
    raw = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    return json.loads(raw)


def test_the_access_token_is_cached_until_it_nears_expiry(fake):
    clock = Clock()
    broker = connect(fake, StaticRefreshToken("rt-initial"), clock=clock)

    broker.get_positions()
    broker.get_account()
    assert fake.grants == 1

    clock.now += 1200 - 61  # TradeStation's 20 minutes, less the margin: still good
    broker.get_positions()
    assert fake.grants == 1

    clock.now += 2
    broker.get_positions()
    assert fake.grants == 2


def test_a_401_refreshes_once_and_repeats_the_call(fake):
    broker = connect(fake, StaticRefreshToken("rt-initial"))
    broker.get_positions()
    fake.expire_tokens()  # revoked or invalidated before its 20 minutes are up

    assert broker.place_order(intent()).status is OrderStatus.FILLED
    assert fake.grants == 2
    assert len(fake.posts("/orderexecution/orders")) == 1


def test_a_401_after_a_fresh_token_is_a_plain_rejection_not_a_loop(fake):
    broker = connect(fake, StaticRefreshToken("rt-initial"))
    path = f"/v3/brokerage/accounts/{fake.account_id}/positions"
    fake.inject("GET", path, status=401, times=2)

    with pytest.raises(BrokerRejected, match="refused the access token"):
        broker.get_positions()

    assert fake.grants == 2


def test_a_refused_refresh_token_says_sign_in_again(fake):
    broker = connect(fake, StaticRefreshToken("rt-revoked"))

    with pytest.raises(BrokerRejected, match="sign in again") as err:
        broker.get_positions()

    assert err.value.code == "auth"


def test_a_rotated_refresh_token_is_written_back_to_the_secret(aws, rotating):
    arn = secret(aws, {"api_token": "keep-me", "tradestation_refresh_token": "rt-initial"})
    store = SecretsManagerRefreshToken(boto3.client("secretsmanager"), arn)
    broker = connect(rotating, store)

    broker.place_order(intent())

    value = stored(arn)
    assert value["tradestation_refresh_token"] in rotating.refresh_tokens
    assert value["tradestation_refresh_token"] != "rt-initial"
    assert value["api_token"] == "keep-me"
    # the next cold start signs in with the rotated token from the secret
    restarted = connect(rotating, SecretsManagerRefreshToken(boto3.client("secretsmanager"), arn))
    assert restarted.get_positions()[0].symbol == "AAPL"


def test_a_token_another_process_rotated_is_picked_up_from_the_secret(aws, rotating):
    arn = secret(aws, {"TRADESTATION_REFRESH_TOKEN": "rt-initial"})
    clock = Clock()
    first = connect(
        rotating, SecretsManagerRefreshToken(boto3.client("secretsmanager"), arn), clock=clock
    )
    second = connect(
        rotating, SecretsManagerRefreshToken(boto3.client("secretsmanager"), arn), clock=clock
    )

    first.get_positions()  # rotates: the secret now holds the new token
    second.get_positions()  # reads the secret when it refreshes, so it has the new one too
    clock.now += 1200
    first.get_positions()

    assert rotating.grants == 3
    assert set(stored(arn)) == {"TRADESTATION_REFRESH_TOKEN"}  # the key's spelling is kept


class FlakyStore(StaticRefreshToken):
    """The port's store whose first save fails (Secrets Manager unreachable)."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.saved: list[str] = []
        self.failures = 1

    def save(self, refresh_token: str) -> None:
        if self.failures:
            self.failures -= 1
            raise BrokerUnavailable("writing the refresh token failed (EndpointConnectionError)")
        self.saved.append(refresh_token)


def test_a_rotated_token_the_store_cannot_keep_is_used_from_memory_and_saved_later(rotating):
    clock = Clock()
    store = FlakyStore("rt-initial")
    broker = connect(rotating, store, clock=clock)

    broker.get_positions()  # rotated; the save failed; the call still works
    clock.now += 1200
    broker.get_positions()  # refreshes with the in-memory token, saves the newest

    assert rotating.grants == 2
    assert store.saved == list(rotating.refresh_tokens)


def test_secrets_and_tokens_never_reach_logs_or_errors(aws, rotating, caplog):
    caplog.set_level(logging.DEBUG)
    arn = secret(aws, {"tradestation_refresh_token": "rt-initial"})
    broker = connect(rotating, SecretsManagerRefreshToken(boto3.client("secretsmanager"), arn))
    messages = []

    broker.place_order(intent())
    rotating.expire_tokens()
    broker.get_account()
    rotating.refresh_tokens = set()  # revoked
    rotating.expire_tokens()
    with pytest.raises(BrokerRejected) as err:
        broker.get_positions()
    messages.append(str(err.value))

    ours = ("chalicelib", "urllib3", "requests", "werkzeug")  # botocore's own DEBUG is boto's
    text = " ".join(r.getMessage() for r in caplog.records if r.name.startswith(ours))
    text += " ".join(messages)
    assert "rotated refresh token written to" in text  # the adapter's own records are read
    secrets = {rotating.client_secret, "rt-initial", *rotating.access_tokens}
    secrets |= {r["form"].get("refresh_token", "") for r in rotating.requests if r["form"]}
    secrets |= {f"at-{n}" for n in range(1, 10)} | {f"rt-{n}" for n in range(1, 10)}
    assert [s for s in secrets - {""} if s in text] == []


def test_the_container_builds_tradestation_from_settings_and_the_app_secret(
    aws, rotating, monkeypatch
):
    from chalicelib import bootstrap

    arn = secret(
        aws,
        {
            "TRADESTATION_CLIENT_SECRET": rotating.client_secret,
            "tradestation_refresh_token": "rt-initial",
        },
    )
    env = {
        "BROKER": "tradestation",
        "SECRETS_ARN": arn,
        "TRADESTATION_ACCOUNT_ID": rotating.account_id,
        "TRADESTATION_CLIENT_ID": rotating.client_id,
        "TRADESTATION_BASE_URL": rotating.url,
        "TRADESTATION_TOKEN_URL": rotating.token_url,
    }
    for key, value in env.items():
        monkeypatch.setenv(f"FLOWTRADER_{key}", value)
    bootstrap.reset()
    c = bootstrap.container()

    order = c.broker.place_order(intent("ft-wired-1"))

    assert c.broker.name == "tradestation"
    assert order.status is OrderStatus.FILLED
    assert stored(arn)["tradestation_refresh_token"] in rotating.refresh_tokens
