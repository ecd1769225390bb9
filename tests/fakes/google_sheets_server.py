"""A local Google Sheets API v4 and OAuth 2.0 token endpoint for tests: threaded HTTP on
127.0.0.1, stateful, answering in Google's documented shapes, driven through gspread and
google-auth exactly as against Google.

Token endpoint (`POST /token`): the service-account flow ("Using OAuth 2.0 for Server to
Server Applications", https://developers.google.com/identity/protocols/oauth2/service-account
— "Making the access token request": `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
and `assertion=<JWT>`). The JWT is checked as Google checks it: RS256 signed by the
service account's key (its public half registered with `add_service_account`), `iss` the
service account's email, `aud` Google's token URL `https://oauth2.googleapis.com/token`
(the docs' fixed value, whatever host the request goes to), `scope` present, `exp` at most
an hour after `iat`. Answers `{"access_token", "expires_in": 3599, "token_type": "Bearer"}`; a bad
assertion is 400 `{"error": "invalid_grant", ...}`.

Sheets API v4 (https://developers.google.com/sheets/api/reference/rest), Bearer token from
above or 401 `{"error": {"code": 401, "status": "UNAUTHENTICATED", ...}}`:
- `GET /v4/spreadsheets/{id}`: the Spreadsheet resource (`spreadsheetId`, `properties`,
  `sheets[].properties` with `sheetId`, `title`, `index`, `sheetType`, `gridProperties`);
- `POST /v4/spreadsheets/{id}:batchUpdate` with `addSheet` requests: `replies[].addSheet`;
  a duplicate title is 400 INVALID_ARGUMENT, as at Google;
- `GET /v4/spreadsheets/{id}/values/{range}`: a ValueRange (`range`, `majorDimension`,
  `values`; `values` omitted when the range is empty, as Google does);
- `POST /v4/spreadsheets/{id}/values/{range}:append?valueInputOption=RAW|USER_ENTERED`:
  rows after the last row with data; AppendValuesResponse (`spreadsheetId`, `tableRange`,
  `updates.updatedRange/updatedRows/updatedColumns/updatedCells`). `valueInputOption` is
  required (400 otherwise).
Ranges: a sheet title (quoted `'trades'` or bare) with an optional A1 part; reads return the
sheet's rows (the A1 part is not used to narrow them). `requests` records every call.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from typing import Any
from urllib.parse import unquote

import jwt
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"
GOOGLE_TOKEN_AUD = "https://oauth2.googleapis.com/token"
SHEET_PATH = re.compile(r"^/v4/spreadsheets/([^/:]+)(:batchUpdate)?$")
VALUES_PATH = re.compile(r"^/v4/spreadsheets/([^/]+)/values/(.+?)(:append)?$")


def _google_error(status: int, reason: str, message: str) -> Response:
    body = {"error": {"code": status, "message": message, "status": reason}}
    return Response(json.dumps(body), status=status, content_type="application/json")


def _column(n: int) -> str:
    name = ""
    while n:
        n, rem = divmod(n - 1, 26)
        name = chr(65 + rem) + name
    return name


def _sheet_title(range_: str) -> str:
    title = range_.split("!", 1)[0]
    if title.startswith("'") and title.endswith("'"):
        title = title[1:-1].replace("''", "'")
    return title


class GoogleSheetsServer:
    def __init__(self, spreadsheet_id: str = "1FakeSpreadsheetId_flowtrader") -> None:
        self.spreadsheet_id = spreadsheet_id
        self.sheets: dict[str, dict[str, Any]] = {"Sheet1": {"sheetId": 0, "index": 0, "rows": []}}
        self.requests: list[tuple[str, str]] = []
        self._keys: dict[str, Any] = {}  # service-account email -> public key
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self.token_uri = f"{self.base_url}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> GoogleSheetsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()

    def add_service_account(self, email: str, public_key: Any) -> None:
        self._keys[email] = public_key

    def rows(self, title: str) -> list[list[Any]]:
        return [list(r) for r in self.sheets[title]["rows"]]

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.requests.append((request.method, request.path))
            response = self._handle(request)
        return response(environ, start_response)

    # --- OAuth 2.0 ------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        def refused(description: str) -> Response:
            body = {"error": "invalid_grant", "error_description": description}
            return Response(json.dumps(body), status=400, content_type="application/json")

        if request.form.get("grant_type") != JWT_BEARER:
            return refused("Invalid grant_type")
        assertion = request.form.get("assertion", "")
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            key = self._keys[unverified["iss"]]
            claims = jwt.decode(
                assertion, key, algorithms=["RS256"], audience=GOOGLE_TOKEN_AUD, leeway=30
            )
        except (jwt.PyJWTError, KeyError) as exc:
            return refused(f"Invalid JWT Signature or claims ({type(exc).__name__})")
        if not claims.get("scope") or claims["exp"] - claims["iat"] > 3600:
            return refused("Invalid JWT: scope missing or lifetime over an hour")
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        self._tokens[token] = time.time() + 3599
        body = {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        return Response(json.dumps(body), content_type="application/json")

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and self._tokens.get(token, 0) > time.time()

    # --- Sheets API v4 --------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        if request.path == "/token" and request.method == "POST":
            return self._token(request)
        if not self._authorized(request):
            return _google_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        path = unquote(request.path)
        values = VALUES_PATH.match(path)
        if values:
            sid, range_, append = values.groups()
            if sid != self.spreadsheet_id:
                return _google_error(404, "NOT_FOUND", "Requested entity was not found.")
            title = _sheet_title(range_)
            if title not in self.sheets:
                return _google_error(400, "INVALID_ARGUMENT", f"Unable to parse range: {range_}")
            if append and request.method == "POST":
                return self._append(request, title)
            if not append and request.method == "GET":
                return self._get_values(request, title)
        sheet = SHEET_PATH.match(path)
        if sheet:
            sid, batch = sheet.groups()
            if sid != self.spreadsheet_id:
                return _google_error(404, "NOT_FOUND", "Requested entity was not found.")
            if batch and request.method == "POST":
                return self._batch_update(request)
            if not batch and request.method == "GET":
                return self._json(self._spreadsheet())
        return _google_error(404, "NOT_FOUND", f"No route for {request.method} {path}")

    @staticmethod
    def _json(body: dict[str, Any]) -> Response:
        return Response(json.dumps(body), content_type="application/json")

    def _properties(self, title: str) -> dict[str, Any]:
        sheet = self.sheets[title]
        return {
            "sheetId": sheet["sheetId"],
            "title": title,
            "index": sheet["index"],
            "sheetType": "GRID",
            "gridProperties": {"rowCount": max(1000, len(sheet["rows"])), "columnCount": 26},
        }

    def _spreadsheet(self) -> dict[str, Any]:
        return {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {"title": "flowtrader journal", "locale": "en_US", "timeZone": "UTC"},
            "sheets": [{"properties": self._properties(t)} for t in self.sheets],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit",
        }

    def _batch_update(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        replies = []
        for change in body.get("requests", []):
            if "addSheet" not in change:
                return _google_error(400, "INVALID_ARGUMENT", "Only addSheet is served here")
            title = change["addSheet"].get("properties", {}).get("title")
            if not title:
                return _google_error(400, "INVALID_ARGUMENT", "addSheet needs a title")
            if title in self.sheets:
                return _google_error(
                    400,
                    "INVALID_ARGUMENT",
                    f'Invalid requests[0].addSheet: A sheet with the name "{title}" already '
                    "exists. Please enter another name.",
                )
            self.sheets[title] = {
                "sheetId": max(s["sheetId"] for s in self.sheets.values()) + 1,
                "index": len(self.sheets),
                "rows": [],
            }
            replies.append({"addSheet": {"properties": self._properties(title)}})
        return self._json({"spreadsheetId": self.spreadsheet_id, "replies": replies})

    def _get_values(self, request: Request, title: str) -> Response:
        rows = self.sheets[title]["rows"]
        body: dict[str, Any] = {
            "range": f"'{title}'!A1:{_column(26)}{max(1000, len(rows))}",
            "majorDimension": request.args.get("majorDimension", "ROWS"),
        }
        if rows:
            if body["majorDimension"] == "COLUMNS":
                width = max(len(r) for r in rows)
                body["values"] = [[r[i] if i < len(r) else "" for r in rows] for i in range(width)]
            else:
                body["values"] = [list(r) for r in rows]
        return self._json(body)

    def _append(self, request: Request, title: str) -> Response:
        option = request.args.get("valueInputOption")
        if option not in ("RAW", "USER_ENTERED"):
            return _google_error(
                400, "INVALID_ARGUMENT", "'valueInputOption' is required but not specified"
            )
        values = (request.get_json(silent=True) or {}).get("values") or []
        rows = self.sheets[title]["rows"]
        first = len(rows) + 1
        # RAW keeps strings as strings; USER_ENTERED would parse "1.5" into a number.
        cells = [
            [str(v) if option == "RAW" and not isinstance(v, str) else v for v in row]
            for row in values
        ]
        rows.extend(cells)
        width = max((len(r) for r in cells), default=0)
        updated = f"'{title}'!A{first}:{_column(max(width, 1))}{first + len(cells) - 1}"
        return self._json(
            {
                "spreadsheetId": self.spreadsheet_id,
                "tableRange": f"'{title}'!A1:{_column(max(width, 1))}{max(first - 1, 1)}",
                "updates": {
                    "spreadsheetId": self.spreadsheet_id,
                    "updatedRange": updated,
                    "updatedRows": len(cells),
                    "updatedColumns": width,
                    "updatedCells": sum(len(r) for r in cells),
                },
            }
        )
