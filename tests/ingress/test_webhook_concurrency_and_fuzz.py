"""Duplicates under concurrency over real HTTP, and fuzzed bodies that must never 5xx."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingress.helpers import alert_body, post, stored_items, todays_bar


def _post_http(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/webhook",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_25_identical_alerts_in_parallel_store_one(http_url):
    body = alert_body(order_id="Long", strategy="ORB")

    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(lambda _: _post_http(http_url, body), range(25)))

    statuses = Counter(status for status, _ in results)
    assert statuses == {202: 1, 200: 24}
    assert len({payload["alert_id"] for _, payload in results}) == 1
    alerts = [
        i
        for i in stored_items(os.environ["FLOWTRADER_ALERTS_TABLE"])
        if i["pk"]["S"].startswith("alert#")
    ]
    assert len(alerts) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
alert_like = st.fixed_dictionaries(
    {},
    optional={
        "passphrase": st.sampled_from(["correct horse battery staple", "nope"]) | json_values,
        "ticker": st.sampled_from(["NASDAQ:AAPL", "AAPL", "", ":", "A B"]) | json_values,
        "action": st.sampled_from(["buy", "sell", "short", "cover", "exit", "BUY"]) | json_values,
        "price": st.floats(allow_nan=True, allow_infinity=True) | json_values,
        "order_type": st.sampled_from(["market", "limit", "stop", "trailing_stop"]) | json_values,
        "limit_price": st.floats(allow_nan=True) | json_values,
        "trail_percent": st.floats() | json_values,
        "stop_loss": st.floats() | json_values,
        "take_profit": st.floats() | json_values,
        "time": st.sampled_from([todays_bar(), "x"]) | json_values,
        "interval": st.sampled_from(["1D", "1", "{{interval}}"]) | json_values,
        "market_position": st.sampled_from(["long", "short", "flat"]) | json_values,
    },
)
raw_bodies = st.binary(max_size=300) | alert_like.map(lambda d: json.dumps(d).encode())


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=raw_bodies, content_type=st.sampled_from(["application/json", "text/plain"]))
def test_fuzzed_bodies_never_5xx_and_rejections_store_nothing(client, raw, content_type):
    table = os.environ["FLOWTRADER_ALERTS_TABLE"]
    before = len(stored_items(table))

    response = post(client, raw, content_type=content_type)

    assert response.status_code < 500, response.body
    after = len(stored_items(table))
    if response.status_code >= 400:
        assert after == before
        assert "error" in json.loads(response.body)
    elif response.status_code == 202:
        assert after == before + 2  # the alert and its idempotency key
