"""The spreadsheet journal in Google Sheets (optional): every closed trade and every daily
P/L row appended to two worksheets, `trades` and `daily_pnl`, with gspread.

Idempotent: the first column is a key (the trade's fill key; the day's date); before
appending, the sheet's rows are read and only rows with a new key are appended, so a re-run
never duplicates a row (a day already in `daily_pnl` keeps its first figure: the cumulative
CSV is the record that follows late fills). The daily report runs once per day, so two
writers never race for the same sheet.

Auth: a Google service account's JSON key, kept in Secrets Manager
(`google_service_account_secret`), through gspread's `service_account_from_dict`
(https://docs.gspread.org/en/latest/oauth2.html#for-bots-using-service-account): google-auth
signs a JWT and trades it for an access token at the key's `token_uri`. Share the
spreadsheet with the service account's email. `google_sheets_base_url` (tests: a local
server in the Sheets API's shapes) rebases the API URLs in gspread's HTTP client, which
`service_account_from_dict` takes as `http_client`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.rules.report_rows import DAILY_COLUMNS, TRADE_COLUMNS

if TYPE_CHECKING:
    from chalicelib.services.daily_report import DayReport
    from chalicelib.settings import Settings

SHEETS_API = "https://sheets.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
TRADE_HEADER = ("key", *TRADE_COLUMNS)
DAILY_HEADER = DAILY_COLUMNS  # the date is the key


def _http_client(base_url: str) -> Any:
    from gspread.http_client import HTTPClient

    if not base_url:
        return HTTPClient

    class _Rebased(HTTPClient):
        def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
            if endpoint.startswith(SHEETS_API):
                endpoint = base_url.rstrip("/") + endpoint[len(SHEETS_API) :]
            return super().request(method, endpoint, *args, **kwargs)

    return _Rebased


class SheetsJournal:
    def __init__(
        self, service_account: dict[str, Any], spreadsheet_id: str, *, base_url: str = ""
    ) -> None:
        self._info = service_account
        self._spreadsheet_id = spreadsheet_id
        self._base_url = base_url

    @classmethod
    def from_settings(
        cls, settings: Settings, read_secret: Callable[[str], dict[str, Any]]
    ) -> SheetsJournal:
        if not settings.google_service_account_secret:
            raise ValueError("google_sheets_id is set but google_service_account_secret is not")
        return cls(
            read_secret(settings.google_service_account_secret),
            settings.google_sheets_id,
            base_url=settings.google_sheets_base_url,
        )

    def _spreadsheet(self) -> Any:
        import gspread

        client = gspread.service_account_from_dict(
            self._info, scopes=list(SCOPES), http_client=_http_client(self._base_url)
        )
        return client.open_by_key(self._spreadsheet_id)

    @staticmethod
    def _worksheet(spreadsheet: Any, title: str, header: Sequence[str]) -> Any:
        import gspread

        try:
            return spreadsheet.worksheet(title)
        except gspread.WorksheetNotFound:
            sheet = spreadsheet.add_worksheet(title, rows=1000, cols=len(header))
            sheet.append_rows([list(header)], value_input_option="RAW")
            return sheet

    @staticmethod
    def _append_new(sheet: Any, header: Sequence[str], rows: list[list[str]]) -> int:
        existing = sheet.get_all_values()
        if not existing:
            sheet.append_rows([list(header)], value_input_option="RAW")
            existing = [list(header)]
        seen = {row[0] for row in existing[1:] if row}
        fresh = []
        for row in rows:
            if row[0] not in seen:
                seen.add(row[0])
                fresh.append(row)
        if fresh:
            # USER_ENTERED: numbers become numbers in the sheet, as a trader typing them would.
            sheet.append_rows(fresh, value_input_option="USER_ENTERED")
        return len(fresh)

    def append_day(self, report: DayReport) -> dict[str, int]:
        """Append the day's trades and its daily row; how many rows each sheet gained."""
        spreadsheet = self._spreadsheet()
        trades = self._worksheet(spreadsheet, "trades", TRADE_HEADER)
        daily = self._worksheet(spreadsheet, "daily_pnl", DAILY_HEADER)
        trade_rows = [
            [t.key, *(row[c] for c in TRADE_COLUMNS)]
            for t, row in zip(report.trades, report.trade_rows, strict=True)
        ]
        daily_rows = [[report.daily[c] for c in DAILY_COLUMNS]]
        return {
            "trades": self._append_new(trades, TRADE_HEADER, trade_rows),
            "daily_pnl": self._append_new(daily, DAILY_HEADER, daily_rows),
        }
