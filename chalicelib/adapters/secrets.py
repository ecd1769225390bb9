"""Keys from Secrets Manager, overlaid onto Settings once per cold start.

A deployed stage keeps every credential (webhook passphrase, API token, broker, OpenAI,
Unusual Whales, Twilio) in one JSON secret, `flowtrader-<stage>/app` (infra/template.yaml),
whose ARN reaches the Lambdas as FLOWTRADER_SECRETS_ARN. Lambda environment variables are
visible to anyone who can read the function configuration; the secret is not.

Precedence: a value set in the environment wins over the secret (an operator can override
one key without editing the secret); an empty string in the secret means "not set".
Keys are Settings field names, matched case-insensitively and with or without the
FLOWTRADER_ prefix, so `alpaca_api_key`, `ALPACA_API_KEY` and `FLOWTRADER_ALPACA_API_KEY`
all fill `Settings.alpaca_api_key`. Keys that match no field are ignored.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.settings import Settings

log = logging.getLogger(__name__)

ENV_PREFIX = "FLOWTRADER_"


class SecretsUnavailable(RuntimeError):
    """The configured secret could not be read or is not a JSON object of strings."""


def fetch_secret_json(secret_id: str, client: Any | None = None) -> dict[str, Any]:
    """The secret's current value as a dict (one GetSecretValue call)."""
    if client is None:
        import boto3

        client = boto3.session.Session().client("secretsmanager")
    try:
        raw = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except Exception as exc:  # boto errors; the name of the secret is enough to act on
        raise SecretsUnavailable(f"cannot read secret {secret_id}: {type(exc).__name__}") from exc
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise SecretsUnavailable(f"secret {secret_id} is not JSON") from exc
    if not isinstance(value, dict):
        raise SecretsUnavailable(f"secret {secret_id} is not a JSON object")
    return value


def settings_updates(settings: Settings, secret: dict[str, Any]) -> dict[str, Any]:
    """The secret's non-empty values for fields the environment left unset."""
    fields = type(settings).model_fields
    updates: dict[str, Any] = {}
    for key, value in secret.items():
        name = key.lower().removeprefix(ENV_PREFIX.lower())
        if name not in fields or name in settings.model_fields_set:
            continue
        if value is None or value == "":
            continue
        updates[name] = value
    return updates


def overlay_secrets(settings: Settings, client: Any | None = None) -> Settings:
    """Settings with the secret's keys filled in (a new, validated instance)."""
    if not settings.secrets_arn:
        return settings
    updates = settings_updates(settings, fetch_secret_json(settings.secrets_arn, client))
    if not updates:
        return settings
    log.info("settings from secret: %s", ", ".join(sorted(updates)))  # names, never values
    return type(settings)(**updates)
