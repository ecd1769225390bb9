"""Every route of app.py, fuzzed (path parameters, query strings, headers, bodies; with and
without credentials): never a 5xx, and a refused request changes no state."""

from __future__ import annotations

import json
import os
from urllib.parse import quote, urlencode

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import API_TOKEN, PASSPHRASE
from tests.ingress.helpers import alert_body, stored_items


def _routes() -> list[tuple[str, str]]:
    from app import app

    return sorted((path, method) for path, views in app.routes.items() for method in views)


def _state() -> tuple[int, int, str]:
    """Items in both tables and the queue's depth: what a refused request must not change."""
    sqs = boto3.client("sqs")
    depth = sqs.get_queue_attributes(
        QueueUrl=os.environ["FLOWTRADER_QUEUE_URL"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        len(stored_items(os.environ["FLOWTRADER_ALERTS_TABLE"])),
        len(stored_items(os.environ["FLOWTRADER_STATE_TABLE"])),
        json.dumps(depth, sort_keys=True),
    )


texts = st.text(max_size=40) | st.sampled_from(["²", "１２", "-1", "0", "500", "{{x}}", "' OR 1"])
path_params = texts.filter(bool).map(lambda s: quote(s, safe=""))
query = st.dictionaries(
    st.sampled_from(["limit", "date", "from", "to", "alert_id", "x"]) | st.text(max_size=8),
    texts,
    max_size=3,
).map(lambda q: "?" + urlencode(q) if q else "")
headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.sampled_from(
            [f"Bearer {API_TOKEN}", "Bearer nope", "Basic x", "", f"bearer {API_TOKEN} x"]
        )
        | st.text(max_size=30),
        "Content-Type": st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded"]
        ),
        "X-Forwarded-For": st.text(max_size=20),
        "Accept": texts,
    },
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=10,
)
bodies = (
    st.binary(max_size=200)
    | st.dictionaries(texts, json_values, max_size=5).map(lambda d: json.dumps(d).encode())
    | st.builds(
        lambda extra, passphrase: json.dumps(
            {**alert_body(passphrase=passphrase), **extra}
        ).encode(),
        st.dictionaries(
            st.sampled_from(["ticker", "price", "time", "timenow", "interval", "quantity", "x"]),
            json_values,
            max_size=3,
        ),
        st.sampled_from([PASSPHRASE, "nope"]),
    )
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(_routes()),
    params=st.lists(path_params, min_size=3, max_size=3),
    query_string=query,
    request_headers=headers,
    body=bodies,
)
def test_fuzzed_requests_to_every_route_never_5xx_and_refusals_change_nothing(
    client, route, params, query_string, request_headers, body
):
    path, method = route
    for name, value in zip(["{alert_id}", "{id}", "{symbol}"], params, strict=True):
        path = path.replace(name, value)
    path = path.split("{")[0] + "x" if "{" in path else path  # any other parameter
    before = _state()

    response = client.http.request(
        method, path + query_string, headers=request_headers, body=body if method != "GET" else b""
    )

    assert response.status_code < 500 or (path == "/api/health"), (path, response.body)
    if response.status_code >= 400 or method == "GET":
        assert _state() == before, (path, response.status_code)
    if response.status_code >= 400 and response.body:
        assert API_TOKEN not in response.body.decode("utf-8", "replace")
        assert PASSPHRASE not in response.body.decode("utf-8", "replace")
