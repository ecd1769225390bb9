"""The JSON app secret overlays Settings at cold start (moto's Secrets Manager over HTTP)."""

from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.adapters.secrets import SecretsUnavailable
from chalicelib.settings import load_settings


@pytest.fixture
def secretsmanager(aws):
    return boto3.session.Session().client("secretsmanager")


def _secret(client, value: object) -> str:
    body = value if isinstance(value, str) else json.dumps(value)
    return client.create_secret(Name="flowtrader-test/app", SecretString=body)["ARN"]


def test_secret_fills_keys_the_environment_leaves_unset(aws, secretsmanager, monkeypatch):
    arn = _secret(
        secretsmanager,
        {
            "webhook_passphrase": "from-secret",
            "ALPACA_API_KEY": "AKTEST",
            "FLOWTRADER_API_TOKEN": "token-from-secret",
            "openai_api_key": "",
            "not_a_setting": "ignored",
        },
    )
    monkeypatch.delenv("FLOWTRADER_WEBHOOK_PASSPHRASE")
    monkeypatch.delenv("FLOWTRADER_API_TOKEN")
    monkeypatch.setenv("FLOWTRADER_SECRETS_ARN", arn)

    settings = load_settings()

    assert settings.webhook_passphrase.get_secret_value() == "from-secret"
    assert settings.api_token.get_secret_value() == "token-from-secret"
    assert settings.alpaca_api_key.get_secret_value() == "AKTEST"
    assert settings.secrets_arn == arn


def test_environment_wins_over_the_secret(aws, secretsmanager, monkeypatch):
    arn = _secret(secretsmanager, {"webhook_passphrase": "from-secret"})
    monkeypatch.setenv("FLOWTRADER_WEBHOOK_PASSPHRASE", "from-env")
    monkeypatch.setenv("FLOWTRADER_SECRETS_ARN", arn)

    assert load_settings().webhook_passphrase.get_secret_value() == "from-env"


def test_no_secret_configured_reads_nothing(aws, monkeypatch):
    monkeypatch.delenv("FLOWTRADER_SECRETS_ARN", raising=False)
    assert load_settings().secrets_arn == ""


@pytest.mark.parametrize("value", ["not json", '["a", "list"]'])
def test_malformed_secret_fails_closed(aws, secretsmanager, monkeypatch, value):
    monkeypatch.setenv("FLOWTRADER_SECRETS_ARN", _secret(secretsmanager, value))
    with pytest.raises(SecretsUnavailable, match="flowtrader-test/app"):
        load_settings()


def test_missing_secret_fails_closed_without_leaking(aws, monkeypatch):
    monkeypatch.setenv("FLOWTRADER_SECRETS_ARN", "flowtrader-test/absent")
    with pytest.raises(SecretsUnavailable) as raised:
        load_settings()
    assert "ResourceNotFoundException" in str(raised.value)
