"""The Google Sheets journal through gspread and google-auth against a local Sheets API v4
and token endpoint (tests/fakes/google_sheets_server.py), the service-account key read from
Secrets Manager on moto's server: rows appended once, however often the report runs."""

from __future__ import annotations

import json

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib import bootstrap
from chalicelib.services.daily_report import daily_report
from tests.fakes.google_sheets_server import GoogleSheetsServer
from tests.reports.test_daily_report import MON, TUE, state, trade  # noqa: F401 - fixture

EMAIL = "journal@flowtrader-test.iam.gserviceaccount.com"


@pytest.fixture
def sheets(aws, monkeypatch):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with GoogleSheetsServer() as server:
        server.add_service_account(EMAIL, key.public_key())
        # The shape of a key file Google's console downloads (service account → Keys → JSON).
        info = {
            "type": "service_account",
            "project_id": "flowtrader-test",
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": EMAIL,
            "client_id": "123456789012345678901",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": server.token_uri,
        }
        secret = boto3.client("secretsmanager").create_secret(
            Name="flowtrader-test/google-service-account", SecretString=json.dumps(info)
        )["ARN"]
        monkeypatch.setenv("FLOWTRADER_GOOGLE_SHEETS_ID", server.spreadsheet_id)
        monkeypatch.setenv("FLOWTRADER_GOOGLE_SERVICE_ACCOUNT_SECRET", secret)
        monkeypatch.setenv("FLOWTRADER_GOOGLE_SHEETS_BASE_URL", server.base_url)
        bootstrap.reset()
        yield server


def run(day):
    c = bootstrap.container()
    journal = bootstrap.sheets_journal(c)
    return daily_report(c.state_store, c.report_sink, day, journal=journal)


def test_the_journal_gets_each_trade_and_day_once(state, sheets):  # noqa: F811
    first = run(MON)
    assert first["journal"] == {"trades": 2, "daily_pnl": 1}
    assert run(MON)["journal"] == {"trades": 0, "daily_pnl": 0}  # re-run: nothing twice
    assert run(TUE)["journal"] == {"trades": 2, "daily_pnl": 1}

    trades = sheets.rows("trades")
    assert trades[0][:4] == ["key", "symbol", "side", "qty"]
    assert [r[0] for r in trades[1:]] == ["m1", "m2", "t1", "t2"]
    assert trades[1][1:4] == ["AAPL", "long", "10"]
    daily = sheets.rows("daily_pnl")
    assert daily[0] == ["date", "trades", "gross_pnl", "commission", "net_pnl", "cum_net_pnl",
                        "equity"]  # fmt: skip
    assert [r[0] for r in daily[1:]] == ["2026-03-02", "2026-03-03"]
    assert daily[2][4] == "9.366667"

    state.state_store.record_trade(trade("m3", MON, 19, 100.0))  # a late fill for Monday
    assert run(MON)["journal"] == {"trades": 1, "daily_pnl": 0}
    assert [r[0] for r in sheets.rows("trades")[1:]] == ["m1", "m2", "t1", "t2", "m3"]


def test_the_service_account_flow_is_googles(state, sheets):  # noqa: F811
    run(MON)
    calls = [c for c in sheets.requests]
    assert calls[0] == ("POST", "/token")  # a signed JWT traded for an access token first
    assert ("GET", f"/v4/spreadsheets/{sheets.spreadsheet_id}") in calls
    assert ("POST", f"/v4/spreadsheets/{sheets.spreadsheet_id}:batchUpdate") in calls  # addSheet


def test_a_failing_spreadsheet_never_stops_the_report(state, sheets, monkeypatch):  # noqa: F811
    sheets.add_service_account(EMAIL, rsa.generate_private_key(65537, 2048).public_key())

    result = run(MON)  # the token endpoint now refuses the JWT (another key registered)

    assert result["journal"] is None
    assert result["trades"] == 2
    c = bootstrap.container()
    assert c.report_sink.get("daily/2026-03-02/trades.csv") is not None
