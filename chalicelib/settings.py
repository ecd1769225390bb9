"""Every setting flowtrader reads, in one pydantic-settings class (env prefix FLOWTRADER_).

Nothing reads `os.environ` at import time: `load_settings()` is called by the composition
root the first time a setting is needed, and the result is cached there.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

VERSION = "0.1.0"

# TradingView sends webhooks only from these addresses (TradingView support docs).
TRADINGVIEW_IPS = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWTRADER_", extra="ignore", frozen=True)

    stage: str = Field("local", description="Deployment stage: local, dev or prod.")
    webhook_passphrase: SecretStr = Field(
        SecretStr(""), description="Shared secret every alert must carry in `passphrase`."
    )
    api_token: SecretStr = Field(
        SecretStr(""), description="Bearer token for the /api/* read endpoints."
    )
    allowed_ips: str = Field(
        "",
        description="Comma-separated IPs/CIDRs allowed to post alerts; empty allows any.",
    )
    max_body_bytes: int = Field(16 * 1024, description="Largest webhook body accepted.")
    duplicate_window_s: int = Field(
        60, description="An alert without `time` repeats an identical one within this window."
    )
    dedupe_ttl_days: int = Field(7, description="How long idempotency keys are remembered.")

    alerts_table: str = Field("flowtrader-alerts", description="DynamoDB table of alerts.")
    state_table: str = Field(
        "flowtrader-state", description="DynamoDB table of cooldowns, risk, orders, positions."
    )
    queue_url: str = Field("", description="SQS queue the worker consumes alerts from.")
    topic_arn: str = Field("", description="SNS topic for notifications.")
    reports_bucket: str = Field("", description="S3 bucket for PnL CSVs and reports.")

    @cached_property
    def allowed_networks(
        self,
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        parts = [p.strip() for p in self.allowed_ips.split(",") if p.strip()]
        return tuple(ipaddress.ip_network(p, strict=False) for p in parts)


def load_settings() -> Settings:
    return Settings()
