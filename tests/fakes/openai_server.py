"""A local OpenAI chat-completions API for tests: threaded HTTP on 127.0.0.1, scripted answers.

`POST /v1/chat/completions` answers in the spec's `CreateChatCompletionResponse` shape
(`tests/fixtures/openai/chat_completion.json`, from openai/openai-openapi's example) with
`usage`; errors in its `ErrorResponse` shape (`error_429.json`, `error_500.json`). What it
checks like OpenAI: the bearer key (401 `invalid_api_key` otherwise), a `model` and
`messages`, and — for Structured Outputs (https://platform.openai.com/docs/guides/
structured-outputs#supported-schemas) — that a `json_schema` response format is strict with
every property required and `additionalProperties: false` (400 otherwise).

Script the next answers with `queue(...)`: `success(...)`, `slow(...)` (held until the test
ends or `release()`: longer than any client timeout), `error(429|500)`, `malformed(text)`,
`refusal(text)`, `cut()` (finish_reason "length"). With nothing queued it answers `default`.
`requests` records every request body for assertions.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "openai"


def load_fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source", None)
    return data


@dataclass
class Answer:
    """One scripted answer: an HTTP status and body, or a chat completion to build."""

    status: int = 200
    content: str | None = None
    refusal: str | None = None
    finish_reason: str = "stop"
    error: str | None = None  # fixture name of an ErrorResponse
    hold: bool = False  # wait for release() before answering
    usage: tuple[int, int] = (1117, 46)
    headers: dict[str, str] = field(default_factory=dict)


def success(
    score: int = 72,
    agrees: bool = True,
    reasons: list[str] | None = None,
    risk_flags: list[str] | None = None,
    usage: tuple[int, int] = (1117, 46),
) -> Answer:
    body = {
        "score": score,
        "agrees_with_alert": agrees,
        "reasons": reasons if reasons is not None else ["above VWAP on strong volume"],
        "risk_flags": risk_flags if risk_flags is not None else ["extended from the open"],
    }
    return Answer(content=json.dumps(body), usage=usage)


def text(content: str, usage: tuple[int, int] = (300, 120)) -> Answer:
    return Answer(content=content, usage=usage)


def slow() -> Answer:
    return Answer(content=success().content, hold=True)


def error(status: int) -> Answer:
    name = {429: "error_429.json"}.get(status, "error_500.json")
    headers = {"retry-after": "20"} if status == 429 else {}
    return Answer(status=status, error=name, headers=headers)


def malformed(content: str = '{"score": 80, "agrees_with_alert": tr') -> Answer:
    return Answer(content=content)


def refusal(message: str = "I'm sorry, I can't help with that request.") -> Answer:
    # Structured Outputs: a refusal comes as message.refusal with content null
    # (https://platform.openai.com/docs/guides/structured-outputs#refusals).
    return Answer(content=None, refusal=message, usage=(1117, 12))


def cut() -> Answer:
    return Answer(
        content='{"score": 61, "agrees_with_alert": true, "reasons": ["a', finish_reason="length"
    )


class FakeOpenAI:
    """The server; use as a context manager. `base_url` is what the SDK's base_url takes."""

    def __init__(self, api_key: str = "sk-test") -> None:
        self.api_key = api_key
        self.default = success()
        self.requests: list[dict[str, Any]] = []
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._thread.join(timeout=5)

    def queue(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def release(self) -> None:
        self._released.set()

    def _next(self) -> Answer:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(
            json.dumps(body), status=status, mimetype="application/json", headers=headers or {}
        )

    def _error(self, status: int, message: str, code: str | None, kind: str) -> Response:
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return self._json(status, body)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self._handle(request)(environ, start_response)

    def _handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/v1/chat/completions":
            return self._error(
                404, f"Unknown request URL: {request.path}", None, "invalid_request_error"
            )
        if request.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return self._error(
                401, "Incorrect API key provided.", "invalid_api_key", "invalid_request_error"
            )
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            return self._error(
                400, "We could not parse the JSON body.", None, "invalid_request_error"
            )
        with self._lock:
            self.requests.append(body)
        problem = _request_problem(body)
        if problem:
            return self._error(400, problem, None, "invalid_request_error")
        answer = self._next()
        if answer.hold:
            self._released.wait(timeout=30)
        if answer.error:
            return self._json(answer.status, load_fixture(answer.error), answer.headers)
        completion = load_fixture("chat_completion.json")
        choice = completion["choices"][0]
        choice["message"]["content"] = answer.content
        choice["message"]["refusal"] = answer.refusal
        choice["finish_reason"] = answer.finish_reason
        prompt, completion_tokens = answer.usage
        completion["usage"].update(
            prompt_tokens=prompt,
            completion_tokens=completion_tokens,
            total_tokens=prompt + completion_tokens,
        )
        completion["model"] = f"{body['model']}-2024-07-18"
        return self._json(200, copy.deepcopy(completion))


def _strict_problem(schema: dict[str, Any], where: str) -> str | None:
    if schema.get("type") == "object":
        props = set(schema.get("properties", {}))
        if set(schema.get("required", [])) != props:
            return f"Invalid schema: In context={where}, 'required' must list every property"
        if schema.get("additionalProperties") is not False:
            return f"Invalid schema: In context={where}, 'additionalProperties' must be false"
        for name, sub in schema.get("properties", {}).items():
            problem = _strict_problem(sub, f"{where}.{name}")
            if problem:
                return problem
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return _strict_problem(schema["items"], f"{where}[]")
    return None


def _request_problem(body: dict[str, Any]) -> str | None:
    if not body.get("model"):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    for message in messages:
        if message.get("role") not in ("system", "developer", "user", "assistant"):
            return "invalid message role"
    fmt = body.get("response_format")
    if fmt and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        if not spec.get("name"):
            return "Missing required parameter: 'response_format.json_schema.name'."
        if spec.get("strict"):
            return _strict_problem(spec.get("schema") or {}, "()")
    return None
