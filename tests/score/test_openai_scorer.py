"""The GPT scorer through the real openai SDK against a local server in the API's shapes.

Shapes: CreateChatCompletionResponse / ErrorResponse in openai/openai-openapi's openapi.yaml
(tests/fixtures/openai/); Structured Outputs semantics (strict json_schema, `refusal`,
finish_reason "length"): https://platform.openai.com/docs/guides/structured-outputs.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.openai_scorer import (
    RESPONSE_FORMAT,
    OpenAIScorer,
    estimated_tokens,
    parse_prices,
)
from chalicelib.ports import ScoreUnavailable
from tests.fakes import openai_server as fake

PRICES = {"gpt-4o-mini": (0.15, 0.60)}
MESSAGES = [{"role": "system", "content": "rules"}, {"role": "user", "content": '{"a": 1}'}]


@pytest.fixture
def server():
    with fake.FakeOpenAI() as srv:
        yield srv


def scorer(server, **kw) -> OpenAIScorer:
    args = {"model": "gpt-4o-mini", "prices": PRICES, "timeout_s": 2.0, "base_url": server.base_url}
    return OpenAIScorer(server.api_key, **{**args, **kw})


def test_a_schema_answer_becomes_a_model_answer_priced_from_usage(server):
    server.queue(fake.success(score=81, agrees=True, reasons=["r1"], risk_flags=["f1"]))
    answer = scorer(server).score(MESSAGES)
    assert (answer.value, answer.agrees, answer.reasons, answer.risk_flags) == (
        81,
        True,
        ("r1",),
        ("f1",),
    )
    assert (answer.input_tokens, answer.output_tokens) == (1117, 46)
    assert answer.cost_usd == pytest.approx((1117 * 0.15 + 46 * 0.60) / 1e6)
    assert answer.model == "gpt-4o-mini-2024-07-18"
    sent = server.requests[-1]
    assert sent["response_format"] == RESPONSE_FORMAT
    assert sent["response_format"]["json_schema"]["strict"] is True
    assert sent["max_completion_tokens"] == 300
    assert sent["messages"] == MESSAGES


def test_a_slow_server_is_abandoned_at_the_deadline(server):
    server.queue(fake.slow())
    with pytest.raises(ScoreUnavailable) as caught:
        scorer(server, timeout_s=0.3).score(MESSAGES)
    assert caught.value.reason == "timeout"
    assert len(server.requests) == 1  # no retry


@pytest.mark.parametrize(("status", "reason"), [(429, "rate_limited"), (500, "error")])
def test_http_errors_are_not_retried_and_say_why(server, status, reason):
    server.queue(fake.error(status), fake.success())
    with pytest.raises(ScoreUnavailable) as caught:
        scorer(server).score(MESSAGES)
    assert caught.value.reason == reason
    assert str(status) in caught.value.detail
    assert len(server.requests) == 1  # max_retries=0: the SDK's default would retry twice


def test_a_wrong_key_is_an_error(server):
    with pytest.raises(ScoreUnavailable) as caught:
        OpenAIScorer(
            "sk-wrong", model="gpt-4o-mini", prices=PRICES, base_url=server.base_url
        ).score(MESSAGES)
    assert (caught.value.reason, caught.value.detail) == ("error", "HTTP 401")


@pytest.mark.parametrize(
    "content",
    [
        '{"score": 80, "agrees_with_alert": tr',  # cut JSON
        "Sure! I'd score this 80/100.",  # prose
        json.dumps({"score": 180, "agrees_with_alert": True, "reasons": [], "risk_flags": []}),
        json.dumps({"score": 80, "agrees_with_alert": "yes", "reasons": [], "risk_flags": []}),
        json.dumps({"score": 80, "agrees_with_alert": True, "reasons": []}),
        json.dumps(
            {
                "score": 80,
                "agrees_with_alert": True,
                "reasons": [],
                "risk_flags": [],
                "override_gate": True,
            }
        ),
        json.dumps({"score": True, "agrees_with_alert": True, "reasons": [], "risk_flags": []}),
        json.dumps([80]),
    ],
)
def test_an_answer_off_the_schema_is_malformed_and_keeps_its_text_and_cost(server, content):
    server.queue(fake.malformed(content))
    with pytest.raises(ScoreUnavailable) as caught:
        scorer(server).score(MESSAGES)
    assert caught.value.reason == "malformed"
    assert caught.value.answer == content
    assert caught.value.cost_usd > 0


def test_a_refusal_is_reported_with_its_text(server):
    server.queue(fake.refusal("I can't help with that."))
    with pytest.raises(ScoreUnavailable) as caught:
        scorer(server).score(MESSAGES)
    assert caught.value.reason == "refusal"
    assert caught.value.answer == "I can't help with that."


def test_an_answer_cut_at_the_token_cap_is_malformed(server):
    server.queue(fake.cut())
    with pytest.raises(ScoreUnavailable) as caught:
        scorer(server).score(MESSAGES)
    assert caught.value.reason == "malformed"
    assert "token cap" in caught.value.detail


def test_the_schema_is_one_strict_mode_accepts(server):
    # the fake refuses (400) a strict schema with an optional or extra property, as OpenAI does
    scorer(server).score(MESSAGES)
    assert (
        server.requests[-1]["response_format"]["json_schema"]["schema"]["additionalProperties"]
        is False
    )


def test_the_reservation_covers_the_prompt_and_the_output_cap():
    s = OpenAIScorer.__new__(OpenAIScorer)
    s.model, s.max_output_tokens, s._price = "gpt-4o-mini", 300, PRICES["gpt-4o-mini"]
    tokens = estimated_tokens(MESSAGES)
    assert tokens > sum(len(m["content"]) for m in MESSAGES) / 4
    assert s.max_cost_usd(MESSAGES) == pytest.approx((tokens * 0.15 + 300 * 0.60) / 1e6)


def test_an_unpriced_model_is_never_called(server):
    with pytest.raises(ScoreUnavailable) as caught:
        scorer(server, model="gpt-unpriced").max_cost_usd(MESSAGES)
    assert caught.value.reason == "cost_cap"


@pytest.mark.parametrize("raw", ["nope", "[1]", '{"m": [1]}', '{"m": ["a", 1]}', '{"m": [-1, 1]}'])
def test_bad_price_settings_are_refused(raw):
    with pytest.raises(ValueError, match="FLOWTRADER_OPENAI_PRICES"):
        parse_prices(raw)


def test_prices_parse():
    assert parse_prices('{"gpt-4o-mini": [0.15, 0.6]}') == {"gpt-4o-mini": (0.15, 0.6)}
