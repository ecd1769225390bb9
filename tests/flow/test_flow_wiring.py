"""The composition root builds the flow source from the settings, and only with a token."""

from __future__ import annotations

from chalicelib import bootstrap
from chalicelib.adapters.secrets import settings_updates
from chalicelib.adapters.unusual_whales import UnusualWhales
from chalicelib.rules.checks import FlowAgreement
from chalicelib.settings import Settings


def test_no_token_no_flow_source():
    assert bootstrap.flow_source(bootstrap.Container(Settings())) is None


def test_a_token_builds_unusual_whales_with_the_configured_budgets(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # a client is built, never called
    c = bootstrap.Container(
        Settings(unusual_whales_api_key="t0k3n", uw_timeout_s=1.5, uw_scan_timeout_s=12)
    )
    decision = bootstrap.flow_source(c)
    scan = bootstrap.flow_source(c, timeout_s=c.settings.uw_scan_timeout_s)

    assert isinstance(decision, UnusualWhales)
    assert (decision.name, decision.timeout_s, scan.timeout_s) == ("unusual_whales", 1.5, 12)
    assert bootstrap.flow_source(c) is decision  # one adapter (one HTTP session) per budget


def test_the_deploy_secret_key_fills_the_token():
    # infra/template.yaml's app secret carries "unusual_whales_api_key".
    assert settings_updates(Settings(), {"unusual_whales_api_key": "abc"}) == {
        "unusual_whales_api_key": "abc"
    }


def test_scan_rules_and_the_check_follow_the_settings():
    s = Settings(
        flow_sweep_min_premium_usd=1e6, flow_repeat_min_alerts=4, require_flow_agreement=True
    )
    rules = bootstrap.flow_scan_rules(s)
    assert (rules.sweep_min_premium_usd, rules.repeat_min_alerts) == (1e6, 4)
    assert FlowAgreement(required=s.require_flow_agreement).required
