"""A local Twilio REST API (2010-04-01) for tests: threaded HTTP on 127.0.0.1, answering
`POST /2010-04-01/Accounts/{AccountSid}/Calls.json` in Twilio's documented shapes.

What it does like Twilio (spec: twilio/twilio-oai `twilio_api_v2010.yaml`, copied in
`tests/fixtures/twilio/`; responses and errors: https://www.twilio.com/docs/usage/twilios-response):
- HTTP basic auth, account SID as user and auth token as password; wrong or missing →
  401 `{"code": 20003, "message": "Authenticate", ...}`.
- `AccountSid` in the path matches `^AC[0-9a-fA-F]{32}$` and the authenticated account.
- Form-encoded body; only the spec's CreateCallRequest fields; `To` and `From` required
  (the spec's `required`); one of `Url`, `Twiml`, `ApplicationSid`; a `To` that is not a
  phone number → 400 code 21211 ("The 'To' number … is not a valid phone number.",
  https://www.twilio.com/docs/api/errors/21211). `Twiml` must be a `<Response>` document.
- 201 with the spec's example Call resource, with a fresh `sid`, the `to`/`from` given,
  `status: queued` and `direction: outbound-api`, as a newly created call is.

`fail_next(status)` makes the next call answer with that error status (a Twilio outage);
`calls` records every accepted call's form fields.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token"
SID_PATTERN = re.compile(r"^AC[0-9a-fA-F]{32}$")
CALLS_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Calls\.json$")
E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def _error(status: int, code: int, message: str) -> Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Response(json.dumps(body), status=status, content_type="application/json")


class TwilioServer:
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        request = json.loads((FIXTURES / "create_call_request.json").read_text())
        self._fields = set(request["properties"])
        self._required = list(request["required"])
        self._example = {
            k: v
            for k, v in json.loads((FIXTURES / "create_call_201.json").read_text()).items()
            if not k.startswith("_")
        }
        self.calls: list[dict[str, str]] = []
        self._faults: list[int] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TwilioServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()

    def fail_next(self, status: int = 500) -> None:
        with self._lock:
            self._faults.append(status)

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid and password == self.auth_token

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return self._handle(request)(environ, start_response)

    def _handle(self, request: Request) -> Response:
        match = CALLS_PATH.match(request.path)
        if match is None or request.method != "POST":
            return _error(404, 20404, "The requested resource was not found")
        if not self._authenticated(request):
            return _error(401, 20003, "Authenticate")
        sid = match.group(1)
        if not SID_PATTERN.match(sid) or sid != self.account_sid:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            return _error(fault, 20500, "An internal server error has occurred")
        if not request.content_type.startswith("application/x-www-form-urlencoded"):
            return _error(400, 20001, "Expected a form-encoded body")
        form = {k: v for k, v in request.form.items()}
        unknown = sorted(set(form) - self._fields)
        if unknown:
            return _error(400, 20001, f"Unknown parameters: {', '.join(unknown)}")
        for name in self._required:
            if not form.get(name):
                code = 21201 if name == "To" else 21213
                return _error(400, code, f"No '{name}' number is specified")
        if not E164.match(form["To"]):
            return _error(400, 21211, f"The 'To' number {form['To']} is not a valid phone number.")
        if not any(form.get(k) for k in ("Url", "Twiml", "ApplicationSid")):
            return _error(400, 21205, "Url, Twiml or ApplicationSid is required")
        if form.get("Twiml"):
            try:
                root = ElementTree.fromstring(form["Twiml"])  # noqa: S314 - test traffic only
            except ElementTree.ParseError:
                return _error(400, 12100, "Document parse failure")
            if root.tag != "Response":
                return _error(400, 12100, "Document parse failure: root is not <Response>")
        call = copy.deepcopy(self._example)
        call_sid = "CA" + uuid.uuid4().hex
        call.update(
            sid=call_sid,
            account_sid=self.account_sid,
            to=form["To"],
            to_formatted=form["To"],
            **{"from": form["From"], "from_formatted": form["From"]},
            status="queued",
            direction="outbound-api",
            duration=None,
            start_time=None,
            end_time=None,
            price=None,
            uri=f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call_sid}.json",
        )
        with self._lock:
            self.calls.append(form)
        return Response(json.dumps(call), status=201, content_type="application/json")
