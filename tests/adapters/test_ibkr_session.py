"""The IBKR OAuth 1.0a session: ibind's real client against tests/fakes/ibkr_server.py, which
verifies the RSA-SHA256 signed token request and derives the same Diffie-Hellman live session
token (IBKR's "Generate A Live Session Token"; ibind/oauth/oauth1a.py is the client side).

IBKR behaviour cited in the fake's docstring: LSTs last 24 hours and a stale one is answered
401 ("Invalid or expired access token", spec); /iserver endpoints need a brokerage session
opened by `POST /iserver/auth/ssodh/init`; `/tickle` "approximately every 60 seconds"
keeps it (spec, "Brokerage Keep-Alive Ping").
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import boto3
import pytest
from Crypto.Cipher import PKCS1_v1_5
from Crypto.PublicKey import RSA

from chalicelib import bootstrap
from chalicelib.adapters.ibkr.session import (
    IbkrCredentials,
    IbkrError,
    IbkrSession,
    MemoryLstCache,
    StateTableLstCache,
    credentials_from_settings,
    forget_sessions,
)
from chalicelib.settings import Settings
from tests.fakes.ibkr_server import FakeIbkr


@pytest.fixture
def fake() -> Iterator[FakeIbkr]:
    forget_sessions()
    with FakeIbkr() as server:
        yield server
    forget_sessions()


def test_the_live_session_token_is_the_one_the_server_derived(fake):
    session = fake.session()

    session.ensure_ready()

    assert session.client.live_session_token in fake.lsts
    assert fake.lst_requests == 1
    assert fake.ssodh_inits == 1
    paths = [r["path"] for r in fake.requests]
    assert paths[:4] == [
        "oauth/live_session_token",
        "iserver/auth/status",
        "iserver/auth/ssodh/init",
        "iserver/accounts",
    ]
    init = next(r for r in fake.requests if r["path"] == "iserver/auth/ssodh/init")
    assert init["body"] == {"publish": True, "compete": True}


def test_a_cached_token_saves_the_exchange_on_the_next_cold_start(fake):
    cache = MemoryLstCache()
    fake.session(cache=cache).ensure_ready()

    second = fake.session(cache=cache)
    second.ensure_ready()

    assert fake.lst_requests == 1
    assert second.client.live_session_token == cache.value[0]


def test_a_cached_token_about_to_expire_is_renewed(fake):
    cache = MemoryLstCache()
    fake.session(cache=cache).ensure_ready()
    token, _ = cache.value
    cache.save(token, int(time.time() * 1000) + 60_000)  # one minute left

    fake.session(cache=cache).ensure_ready()

    assert fake.lst_requests == 2
    assert cache.value[0] != token


def test_an_expired_token_is_renewed_on_401_and_the_call_goes_through(fake):
    cache = MemoryLstCache()
    session = fake.session(cache=cache)
    session.ensure_ready()
    old = cache.value[0]
    fake.expire_lst()

    trades = session.call("GET", "iserver/account/trades")

    assert trades == []
    assert fake.lst_requests == 2
    assert session.lst_renewals == 2
    assert cache.value[0] != old
    assert cache.value[0] in fake.lsts


def test_a_wrong_access_token_secret_is_refused_in_plain_words(fake):
    other = RSA.import_key(fake.material.encryption_key_pem).publickey()
    wrong = base64.b64encode(PKCS1_v1_5.new(other).encrypt(b"not the secret")).decode()
    session = fake.session(credentials=fake.credentials(access_token_secret=wrong))

    with pytest.raises(IbkrError) as err:
        session.ensure_ready()

    assert err.value.status == 401
    assert "live session token" in err.value.message
    assert wrong not in str(err.value)


def test_a_lost_brokerage_session_is_reopened_with_ssodh_init(fake):
    session = fake.session()
    session.ensure_ready()
    fake.drop_brokerage_session()

    answer = session.call("GET", "iserver/accounts")

    assert answer["accounts"] == [fake.account_id]
    assert fake.ssodh_inits == 2


def test_keep_alive_tickles_and_reopens_a_dropped_session(fake):
    session = fake.session()
    assert session.keep_alive() == {"authenticated": True, "competing": False}
    fake.drop_brokerage_session()

    assert session.keep_alive()["authenticated"] is False

    assert fake.tickles == 2
    assert fake.ssodh_inits == 2
    assert fake.brokerage_authenticated


def test_a_paper_setting_on_a_live_login_is_refused():
    forget_sessions()
    with FakeIbkr(paper=False) as live, pytest.raises(IbkrError) as err:
        live.session(paper=True).ensure_ready()
    assert "live account" in err.value.message
    assert "FLOWTRADER_IBKR_PAPER" in err.value.message


def test_missing_oauth_settings_are_named():
    empty = IbkrCredentials(consumer_key="", access_token="", access_token_secret="", dh_prime="")

    with pytest.raises(IbkrError) as err:
        IbkrSession(empty, account_id="")

    for name in ("consumer_key", "access_token_secret", "encryption_key", "account_id"):
        assert name in err.value.message


def test_credentials_come_from_the_ibkr_secret_when_unset(fake):
    env = fake.settings_env()
    secret = {
        "FLOWTRADER_IBKR_ACCESS_TOKEN_SECRET": env.pop("ibkr_access_token_secret"),
        "ibkr_signature_key_pem": env.pop("ibkr_signature_key_pem"),
    }
    settings = Settings(**env, ibkr_secret_id="flowtrader/ibkr")
    asked: list[str] = []

    def read_secret(name: str) -> dict[str, str]:
        asked.append(name)
        return secret

    credentials = credentials_from_settings(settings, read_secret)

    assert asked == ["flowtrader/ibkr"]
    assert credentials.access_token_secret == secret["FLOWTRADER_IBKR_ACCESS_TOKEN_SECRET"]
    assert credentials.signature_key_pem == secret["ibkr_signature_key_pem"]
    assert "PRIVATE" not in repr(credentials)


def test_the_token_cache_in_the_state_table_survives_a_new_process(aws, fake):
    table = aws.env()["FLOWTRADER_STATE_TABLE"]
    fake.session(cache=StateTableLstCache(boto3.client("dynamodb"), table)).ensure_ready()

    cold = fake.session(cache=StateTableLstCache(boto3.client("dynamodb"), table))
    cold.ensure_ready()

    assert fake.lst_requests == 1
    assert cold.client.live_session_token in fake.lsts


def test_the_tickle_schedule_does_nothing_unless_ibkr_is_in_use(aws):
    container = bootstrap.Container(Settings(broker="paper"))

    assert bootstrap.ibkr_keep_alive(container) == {"skipped": "ibkr not in use"}


def test_the_tickle_schedule_keeps_the_ibkr_session(aws, fake):
    container = bootstrap.Container(Settings(**fake.settings_env()))

    assert bootstrap.ibkr_keep_alive(container) == {"authenticated": True, "competing": False}
    assert fake.tickles == 1


# IBKR's pacing: "/iserver/account/orders GET 1 req/5 secs", "/iserver/account/trades GET
# 1 req/5 secs", a global 10 requests a second; over it, 429 and "a penalty box for 10
# minutes" (https://www.interactivebrokers.com/campus/ibkr-api-page/webapi-doc/#pacing-limitations).


def live_order_reads(fake: FakeIbkr) -> int:
    return len([r for r in fake.requests if r["path"] == "iserver/account/orders"])


def test_a_second_live_orders_read_within_5_s_is_the_first_answer(fake):
    session = fake.session()
    session.ensure_ready()
    reads = live_order_reads(fake)

    first = session.call("GET", "iserver/account/orders")
    second = session.call("GET", "iserver/account/orders")

    assert second == first
    assert live_order_reads(fake) == reads + 1


def test_a_live_orders_read_after_an_order_waits_and_asks_ibkr(fake):
    session = fake.session()
    session.call("GET", "iserver/account/orders")
    fake.clock.slept.clear()
    body = {"orders": [{"conid": 265598, "orderType": "LMT", "price": 50.0, "side": "BUY"}]}
    body["orders"][0] |= {"quantity": 1, "tif": "DAY", "cOID": "ft-paced"}
    session.call("POST", f"iserver/account/{fake.account_id}/orders", body=body)

    after = session.call("GET", "iserver/account/orders")

    assert [o["order_ref"] for o in after["orders"]] == ["ft-paced"]
    assert fake.clock.slept == [pytest.approx(5.0)]


def test_the_pre_flight_answer_is_never_served_to_a_lookup(fake):
    session = fake.session()
    session.ensure_ready()  # its live-orders read answers empty
    fake.orders[1] = {"orderId": 1, "order_ref": "x", "status": "Submitted"}

    assert [o["order_ref"] for o in session.call("GET", "iserver/account/orders")["orders"]] == [
        "x"
    ]


def test_more_than_10_requests_in_a_second_wait_for_the_window():
    from chalicelib.adapters.ibkr.session import Pacer
    from tests.fakes.ibkr_server import VirtualClock

    clock = VirtualClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)

    for _ in range(11):
        pacer.acquire("GET", "portfolio/DU1/summary")

    assert clock.slept == [pytest.approx(1.0)]


def test_app_and_the_ibkr_adapters_import_without_ibind():
    """ibind (and pycryptodome) load only when a session is built: a cold Lambda that never
    talks to IBKR pays nothing for them."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, app, chalicelib.adapters.ibkr.broker, chalicelib.adapters.ibkr.market_data; "
        "print(sorted(m for m in ('ibind', 'Crypto') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_401_takes_the_token_another_process_renewed_before_making_one(fake):
    cache = MemoryLstCache()
    mine = fake.session(cache=cache)
    mine.ensure_ready()
    other = fake.session(cache=cache)
    other.ensure_ready()
    fake.expire_lst()
    other.call("GET", "iserver/account/trades")  # the other Lambda renews first
    renewed = cache.value[0]

    mine.call("GET", "portfolio/accounts")

    assert mine.client.live_session_token == renewed
    assert fake.lst_requests == 2


def test_a_cached_token_ibkr_no_longer_takes_is_renewed_at_start(fake):
    cache = MemoryLstCache()
    fake.session(cache=cache).ensure_ready()
    fake.expire_lst()

    cold = fake.session(cache=cache)
    cold.ensure_ready()

    assert fake.lst_requests == 2
    assert cold.client.live_session_token in fake.lsts
