"""The spreadsheet journal as an Excel file (`GET /api/reports/journal.xlsx`), with openpyxl.

Two sheets with the CSVs' columns and rows: `trades` and `daily_pnl`. Numeric columns are
numbers in Excel (so SUM and charts work), empty cells stay empty, text stays text.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

NUMERIC = frozenset(
    {
        "qty",
        "entry_price",
        "exit_price",
        "gross_pnl",
        "commission",
        "slippage_cost",
        "net_pnl",
        "return_pct",
        "bars_held",
        "trades",
        "cum_net_pnl",
        "equity",
    }
)
CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(column: str, text: str) -> str | float | int | None:
    if text == "":
        return None
    if column in NUMERIC:
        number = float(text)
        return int(number) if number.is_integer() and "." not in text else number
    return text


def workbook(sheets: Sequence[tuple[str, Sequence[str], Sequence[dict[str, str]]]]) -> bytes:
    """An .xlsx file with one sheet per (title, columns, rows); rows are text as in the CSVs."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for title, columns, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append(list(columns))
        for row in rows:
            sheet.append([_cell(c, row.get(c, "")) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
