"""The GPT setup scorer: OpenAI chat completions with a strict JSON schema (`Scorer` port),
and the pre-market note's writer (`NoteWriter`, plain text under the same deadline).

Structured Outputs (https://platform.openai.com/docs/guides/structured-outputs): with
`response_format={"type": "json_schema", "json_schema": {..., "strict": true}}` the model's
`message.content` follows the schema, or the model refuses and `message.refusal` says why
(".../structured-outputs#refusals"); a reply cut by `max_completion_tokens` ends with
`finish_reason: "length"` and is not valid JSON. Strict mode wants every property in
`required` and `additionalProperties: false`. The answer is validated again here anyway
(a proxy, an old model or a fake may not honour the schema): anything off is `malformed`.

The call never outlasts `timeout_s`: the SDK's own timeout bounds each HTTP phase,
`max_retries=0` stops its built-in retries (it retries 429/5xx twice by default), and the
call runs on a worker thread we stop waiting for at the deadline. Cost comes from the
response's `usage` (prompt_tokens, completion_tokens) at the model's price per 1M tokens.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.domain import ModelAnswer
from chalicelib.ports import ScoreUnavailable

log = logging.getLogger(__name__)

SCHEMA_NAME = "setup_score"
MAX_REASONS = 6
MAX_FLAGS = 6
MAX_TEXT = 200
# The JSON schema the model must answer in (strict: all required, nothing else allowed).
SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "description": "How good the setup is for the alert's side, 0 (avoid) to 100.",
        },
        "agrees_with_alert": {
            "type": "boolean",
            "description": "Whether the data supports taking the alert's side.",
        },
        "reasons": {
            "type": "array",
            "items": {"type": "string"},
            "description": f"Up to {MAX_REASONS} short reasons, most important first.",
        },
        "risk_flags": {
            "type": "array",
            "items": {"type": "string"},
            "description": f"Up to {MAX_FLAGS} short risks to the trade.",
        },
    },
    "required": ["score", "agrees_with_alert", "reasons", "risk_flags"],
    "additionalProperties": False,
}
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": SCORE_SCHEMA},
}


class _Answer(BaseModel):
    """The schema above, checked on our side (bool is not an int here)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    score: int = Field(ge=0, le=100)
    agrees_with_alert: bool
    reasons: list[str] = Field(max_length=MAX_REASONS * 2)
    risk_flags: list[str] = Field(max_length=MAX_FLAGS * 2)


def parse_prices(raw: str) -> dict[str, tuple[float, float]]:
    """`{"model": [usd per 1M input tokens, usd per 1M output tokens]}` → a dict; a bad
    setting raises ValueError naming the problem (never guessed: the cap needs prices)."""
    try:
        value = json.loads(raw or "{}")
    except ValueError as exc:
        raise ValueError(f"FLOWTRADER_OPENAI_PRICES is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("FLOWTRADER_OPENAI_PRICES must be a JSON object of model → [in, out]")
    prices: dict[str, tuple[float, float]] = {}
    for model, pair in value.items():
        ok = isinstance(pair, list) and len(pair) == 2
        if not ok or not all(isinstance(p, int | float) and 0 <= p < 1e6 for p in pair):
            raise ValueError(
                f"FLOWTRADER_OPENAI_PRICES[{model!r}] must be [input, output] USD per 1M tokens"
            )
        prices[str(model)] = (float(pair[0]), float(pair[1]))
    return prices


def estimated_tokens(messages: list[dict[str, str]]) -> int:
    """A high estimate of the prompt's tokens: English and JSON run ~4 characters a token;
    one per 3 characters plus a per-message overhead overstates it, as a reservation should."""
    return sum(len(m.get("content", "")) // 3 + 8 for m in messages) + 16


class OpenAIScorer:
    """`Scorer` over the openai SDK; `base_url` points it elsewhere (a proxy, a test server)."""

    def __init__(
        self,
        api_key: str,
        *,
        model: str,
        prices: dict[str, tuple[float, float]],
        timeout_s: float = 4.0,
        max_output_tokens: int = 300,
        base_url: str = "",
        max_retries: int = 0,
    ) -> None:
        import openai  # lazily: the SDK (httpx, pydantic models) costs a cold start

        self.model = model
        self.timeout_s = timeout_s
        self.max_output_tokens = max_output_tokens
        self._price = prices.get(model)
        self._openai = openai
        self._client: Any = openai.OpenAI(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout_s,
            max_retries=max_retries,
        )

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        if self._price is None:
            return 0.0
        return (input_tokens * self._price[0] + output_tokens * self._price[1]) / 1e6

    def max_cost_usd(self, messages: list[dict[str, str]]) -> float:
        return self.max_write_cost_usd(messages, self.max_output_tokens)

    def max_write_cost_usd(self, messages: list[dict[str, str]], max_output_tokens: int) -> float:
        if self._price is None:
            raise ScoreUnavailable(
                "cost_cap", f"no price for {self.model} in FLOWTRADER_OPENAI_PRICES"
            )
        return self.cost_usd(estimated_tokens(messages), max_output_tokens)

    def _deadline(self, call: Any) -> Any:
        """`call()` on a worker thread, abandoned at `timeout_s` whatever the server does;
        SDK errors mapped to `ScoreUnavailable` reasons."""
        openai = self._openai
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = call()
            except BaseException as exc:  # re-raised on the caller's thread
                box["error"] = exc

        worker = threading.Thread(target=run, name="openai-call", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            raise ScoreUnavailable("timeout", f"no answer within {self.timeout_s:g} s")
        exc = box.get("error")
        if exc is None:
            return box["result"]
        if isinstance(exc, openai.APITimeoutError):
            raise ScoreUnavailable("timeout", f"no answer within {self.timeout_s:g} s") from exc
        if isinstance(exc, openai.RateLimitError):
            raise ScoreUnavailable("rate_limited", f"HTTP {exc.status_code}") from exc
        if isinstance(exc, openai.APIStatusError):
            raise ScoreUnavailable("error", f"HTTP {exc.status_code}") from exc
        if isinstance(exc, openai.APIConnectionError):
            raise ScoreUnavailable("error", "cannot reach the API") from exc
        if isinstance(exc, openai.OpenAIError | ValueError):  # an answer the SDK cannot read
            raise ScoreUnavailable("malformed", type(exc).__name__) from exc
        raise exc

    def score(self, messages: list[dict[str, str]]) -> ModelAnswer:
        completion = self._deadline(
            lambda: self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                response_format=RESPONSE_FORMAT,
                max_completion_tokens=self.max_output_tokens,
                temperature=0,
            )
        )
        return self._answer(completion)

    def write(self, messages: list[dict[str, str]], max_output_tokens: int) -> tuple[str, float]:
        """A plain-text completion under the same deadline (the pre-market note): the text
        and its cost (USD)."""
        completion = self._deadline(
            lambda: self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                max_completion_tokens=max_output_tokens,
                temperature=0.2,
            )
        )
        usage = getattr(completion, "usage", None)
        cost = self.cost_usd(
            int(getattr(usage, "prompt_tokens", 0) or 0),
            int(getattr(usage, "completion_tokens", 0) or 0),
        )
        choices = getattr(completion, "choices", None) or []
        message = choices[0].message if choices else None
        if message is None or getattr(message, "refusal", None):
            raise ScoreUnavailable("refusal", "the model wrote no note", cost_usd=cost)
        text = (message.content or "").strip()
        if not text:
            raise ScoreUnavailable("malformed", "an empty note", cost_usd=cost)
        return text[:4000], cost

    def _answer(self, completion: Any) -> ModelAnswer:
        usage = getattr(completion, "usage", None)
        input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = self.cost_usd(input_tokens, output_tokens)
        choices = getattr(completion, "choices", None) or []
        if not choices:
            raise ScoreUnavailable("malformed", "no choices in the answer", cost_usd=cost)
        choice = choices[0]
        message = choice.message
        if getattr(message, "refusal", None):
            raise ScoreUnavailable(
                "refusal", "the model refused", answer=str(message.refusal)[:1000], cost_usd=cost
            )
        raw = message.content or ""
        if choice.finish_reason == "length":
            raise ScoreUnavailable(
                "malformed", "answer cut at the token cap", answer=raw[:1000], cost_usd=cost
            )
        try:
            answer = _Answer.model_validate_json(raw)
        except ValidationError as exc:
            where = exc.errors()[0]
            detail = f"{'.'.join(str(p) for p in where['loc']) or 'answer'}: {where['msg']}"
            raise ScoreUnavailable("malformed", detail, answer=raw[:1000], cost_usd=cost) from exc
        return ModelAnswer(
            value=float(answer.score),
            agrees=answer.agrees_with_alert,
            reasons=tuple(r[:MAX_TEXT] for r in answer.reasons[:MAX_REASONS]),
            risk_flags=tuple(f[:MAX_TEXT] for f in answer.risk_flags[:MAX_FLAGS]),
            model=str(getattr(completion, "model", "") or self.model),
            raw=raw[:4000],
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost,
        )
