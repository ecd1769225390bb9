"""Shared fixtures: a real moto server over HTTP (session-wide), reset and provisioned from
infra/template.yaml for each test that asks for `aws`."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from chalicelib import bootstrap
from devstack.aws import EmbeddedAws, deploy_stack, reset, start_embedded_aws

PASSPHRASE = "correct horse battery staple"
API_TOKEN = "test-api-token-0123456789"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[EmbeddedAws]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    embedded = start_embedded_aws(port=0, stage="test")
    yield embedded
    embedded.stop()


@pytest.fixture
def aws(moto_server: EmbeddedAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedAws]:
    """Fresh resources from the CloudFormation template, and the env that points at them."""
    reset(moto_server.endpoint_url)
    moto_server.outputs = deploy_stack(moto_server.endpoint_url, stage="test")
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FLOWTRADER_WEBHOOK_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("FLOWTRADER_API_TOKEN", API_TOKEN)
    monkeypatch.delenv("FLOWTRADER_ALLOWED_IPS", raising=False)
    monkeypatch.setenv("FLOWTRADER_DESKTOP_ALERTS", "false")  # no pop-ups or speech from
    monkeypatch.setenv("FLOWTRADER_SPOKEN_ALERTS", "false")  # tests (issue 13's channels)
    bootstrap.reset()
    yield moto_server
    bootstrap.reset()


@pytest.fixture
def client(aws: EmbeddedAws):
    from chalice.test import Client

    from app import app

    with Client(app) as c:
        yield c
