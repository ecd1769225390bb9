import json

from tests.conftest import PASSPHRASE


def test_accept_then_duplicate(client):
    body = {
        "passphrase": PASSPHRASE,
        "ticker": "NASDAQ:AAPL",
        "action": "buy",
        "price": 190.1,
        "time": "2026-11-26T14:30:00Z",
    }
    r = client.http.post("/webhook", headers={"Content-Type": "text/plain"}, body=json.dumps(body))
    print(r.status_code, r.body)
    assert r.status_code == 202
    r2 = client.http.post(
        "/webhook", headers={"Content-Type": "application/json"}, body=json.dumps(body)
    )
    print(r2.status_code, r2.body)
    assert r2.status_code == 200
