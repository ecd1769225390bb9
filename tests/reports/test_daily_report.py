"""The daily report on moto's server: trades.csv and daily_pnl.csv with the backtest's exact
columns (one writer for both), the day and the cumulative files in S3, downloads that match
`/api/pnl` for the same day, an idempotent re-run, the summary by SNS, and the .xlsx."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, date, datetime

import boto3
import pytest
from openpyxl import load_workbook

from app import app as chalice_app
from chalicelib import bootstrap
from chalicelib.adapters.s3_reports import DirectoryReportSink
from chalicelib.domain import Account, ClosedTrade, ExitReason, MarketPosition
from chalicelib.services.daily_report import build_day, daily_report, report_due
from tests.conftest import API_TOKEN

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
MON = date(2026, 3, 2)
TUE = date(2026, 3, 3)


def trade(key: str, day: date, hour: int, pnl: float, **kwargs) -> ClosedTrade:
    base = {
        "key": key,
        "symbol": "AAPL",
        "side": MarketPosition.LONG,
        "qty": 10,
        "entry_price": 190.0,
        "exit_price": 190.0 + pnl / 10,
        "pnl_usd": pnl,
        "exit_reason": ExitReason.TAKE_PROFIT if pnl > 0 else ExitReason.STOP_LOSS,
        "exit_time": datetime(day.year, day.month, day.day, hour, 5, tzinfo=UTC),
        "client_order_id": f"ft-{key}-close",
        "alert_id": key,
    }
    return ClosedTrade(**(base | kwargs))


@pytest.fixture
def state(aws):
    c = bootstrap.container()
    store = c.state_store
    for t in (
        trade("m1", MON, 15, 40.25),
        trade("m2", MON, 18, -31.2, symbol="MSFT", side=MarketPosition.SHORT),
        trade("t1", TUE, 14, 12.5),
        trade("t2", TUE, 16, -3.1333333),
    ):
        assert store.record_trade(t)
    store.save_account(
        Account(equity=100_018.42, cash=90_000, buying_power=180_000, last_equity=100_009.0),
        datetime(2026, 3, 3, 20, 55, tzinfo=UTC),
    )
    return c


def tap():
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="report-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(
        TopicArn=os.environ["FLOWTRADER_TOPIC_ARN"], Protocol="sqs", Endpoint=arn
    )

    def read() -> list[dict]:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]

    return read


def s3_text(name: str) -> str:
    body = boto3.client("s3").get_object(
        Bucket=os.environ["FLOWTRADER_REPORTS_BUCKET"], Key=f"reports/{name}"
    )["Body"]
    return body.read().decode()


def header(response, name: str) -> str:
    return {k.lower(): v for k, v in response.headers.items()}[name]


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_report_is_due_at_1630_new_york_whatever_the_season():
    # EDT (UTC-4) in July: 20:30 UTC is 16:30 New York; EST (UTC-5) in January: 21:30 UTC.
    assert report_due(datetime(2026, 7, 15, 20, 30, tzinfo=UTC)) == date(2026, 7, 15)
    assert report_due(datetime(2026, 7, 15, 21, 30, tzinfo=UTC)) is None
    assert report_due(datetime(2026, 1, 15, 20, 30, tzinfo=UTC)) is None
    assert report_due(datetime(2026, 1, 15, 21, 30, tzinfo=UTC)) == date(2026, 1, 15)
    # The schedule's two UTC times across the March switch: one run a day, never two.
    for day in range(2, 14):
        due = [report_due(datetime(2026, 3, day, h, 30, tzinfo=UTC)) for h in (20, 21)]
        assert sum(d is not None for d in due) == (1 if date(2026, 3, day).weekday() < 5 else 0)
    assert report_due(datetime(2026, 7, 3, 20, 30, tzinfo=UTC)) is None  # Independence Day
    assert [s.to_string() for s in _schedules()] == ["cron(30 20,21 ? * MON-FRI *)"]


def _schedules():
    from chalice.app import Cron

    return [
        h.schedule_expression
        for h in chalice_app.event_sources
        if getattr(h, "name", "") == "daily_report" and isinstance(h.schedule_expression, Cron)
    ]


def test_daily_report_writes_the_backtests_columns_for_the_day_and_cumulatively(state, tmp_path):
    from backtest.__main__ import main as backtest_main

    daily_report(state.state_store, state.report_sink, MON)
    daily_report(state.state_store, state.report_sink, TUE)

    day = s3_text("daily/2026-03-03/trades.csv")
    out = tmp_path / "bt"
    data, config = "backtest/data/IBM.csv", "backtest/data/sma_cross_daily.toml"
    assert (
        backtest_main(["run", "--data", data, "--config", config, "--out", str(out), "--quiet"])
        == 0
    )
    for live, backtested in ((day, "trades.csv"), (s3_text("daily_pnl.csv"), "daily_pnl.csv")):
        assert live.splitlines()[0] == (out / backtested).read_text().splitlines()[0]
    assert day.splitlines()[1:] == [
        "AAPL,long,10,,190,2026-03-03T09:05:00-05:00,191.25,take_profit,12.5,0,0,12.5,0.657895,",
        "AAPL,long,10,,190,2026-03-03T11:05:00-05:00,189.686667,stop_loss,-3.133333,0,0,"
        "-3.133333,-0.164912,",
    ]
    assert [r["exit_time"][:10] for r in rows(s3_text("trades.csv"))] == [
        "2026-03-02",
        "2026-03-02",
        "2026-03-03",
        "2026-03-03",
    ]
    assert rows(s3_text("daily_pnl.csv")) == [
        {
            "date": "2026-03-02",
            "trades": "2",
            "gross_pnl": "9.05",
            "commission": "0",
            "net_pnl": "9.05",
            "cum_net_pnl": "9.05",
            "equity": "",  # no account snapshot from that day
        },
        {
            "date": "2026-03-03",
            "trades": "2",
            "gross_pnl": "9.366667",
            "commission": "0",
            "net_pnl": "9.366667",
            "cum_net_pnl": "18.416667",
            "equity": "100018.42",
        },
    ]
    assert rows(s3_text("daily/2026-03-03/daily_pnl.csv"))[0]["cum_net_pnl"] == "18.416667"


def test_a_rerun_never_duplicates_and_a_late_trade_replaces_the_days_rows(state):
    daily_report(state.state_store, state.report_sink, MON)
    daily_report(state.state_store, state.report_sink, TUE)
    daily_report(state.state_store, state.report_sink, MON)
    assert len(rows(s3_text("trades.csv"))) == 4
    assert [r["date"] for r in rows(s3_text("daily_pnl.csv"))] == ["2026-03-02", "2026-03-03"]

    state.state_store.record_trade(trade("m3", MON, 19, 100.0))
    daily_report(state.state_store, state.report_sink, MON)

    assert len(rows(s3_text("trades.csv"))) == 5
    daily = rows(s3_text("daily_pnl.csv"))
    assert [r["net_pnl"] for r in daily] == ["109.05", "9.366667"]
    assert [r["cum_net_pnl"] for r in daily] == ["109.05", "118.416667"]  # later days follow


@pytest.mark.parametrize("day", [MON, TUE])
def test_the_daily_figure_matches_api_pnl_for_the_same_day(client, state, day):
    daily_report(state.state_store, state.report_sink, day)
    pnl = json.loads(client.http.get(f"/api/pnl?date={day}", headers=AUTH).body)

    stored = client.http.get("/api/reports/daily.csv", headers=AUTH)
    live = client.http.get(f"/api/reports/daily.csv?date={day}", headers=AUTH)
    trades = client.http.get(f"/api/reports/trades.csv?date={day}", headers=AUTH)

    assert stored.status_code == live.status_code == trades.status_code == 200
    assert header(stored, "content-type").startswith("text/csv")
    [row] = [r for r in rows(stored.body.decode()) if r["date"] == day.isoformat()]
    assert round(float(row["net_pnl"]), 2) == pnl["realized_usd"]
    assert int(row["trades"]) == len(pnl["trades"])
    assert rows(live.body.decode()) == [row]
    per_trade = [round(float(r["net_pnl"]), 2) for r in rows(trades.body.decode())]
    assert per_trade == [t["pnl_usd"] for t in pnl["trades"]]  # /api/pnl rounds to cents


def test_downloads_need_the_token_and_a_real_date(client, state):
    for path in ("daily.csv", "trades.csv", "journal.xlsx"):
        assert client.http.get(f"/api/reports/{path}").status_code == 401
        bad = client.http.get(f"/api/reports/{path}?date=yesterday", headers=AUTH)
        assert bad.status_code == 400
        none_yet = client.http.get(f"/api/reports/{path}", headers=AUTH)
        assert none_yet.status_code == 404
        assert "daily_report runs after the close" in json.loads(none_yet.body)["error"]


def test_the_summary_is_emailed_through_the_topic(state):
    read = tap()
    result = daily_report(state.state_store, state.report_sink, TUE, notifier=state.notifier)

    assert result["notified"] is True
    [envelope] = read()
    subject = "flowtrader: Day 2026-03-03: +$9.37 realized, 2 trades (1 won, 1 lost)"
    assert envelope["Subject"] == subject
    message = envelope["Message"]
    assert message.splitlines()[0] == "Day 2026-03-03: +$9.37 realized, 2 trades (1 won, 1 lost)"
    assert "AAPL long 10 stop_loss: −$3.13" in message
    assert "equity at the report: $100,018.42" in message


def test_journal_xlsx_holds_the_same_rows_as_numbers(client, state):
    daily_report(state.state_store, state.report_sink, MON)
    daily_report(state.state_store, state.report_sink, TUE)

    # A binary response needs a matching Accept (API Gateway's rule); curl sends */*.
    got = client.http.get("/api/reports/journal.xlsx", headers={**AUTH, "Accept": "*/*"})

    assert got.status_code == 200
    assert header(got, "content-disposition") == 'attachment; filename="journal.xlsx"'
    book = load_workbook(io.BytesIO(got.body))
    assert book.sheetnames == ["trades", "daily_pnl"]
    sheet = [list(r) for r in book["trades"].iter_rows(values_only=True)]
    csv_rows = list(csv.reader(io.StringIO(s3_text("trades.csv"))))
    assert sheet[0] == csv_rows[0]
    assert len(sheet) == len(csv_rows) == 5
    assert sheet[1][2] == 10
    assert sheet[1][3] is None  # empty entry_time stays empty
    assert sheet[2][11] == pytest.approx(-31.2)
    daily = [list(r) for r in book["daily_pnl"].iter_rows(values_only=True)]
    assert daily[2] == ["2026-03-03", 2, 9.366667, 0, 9.366667, 18.416667, 100018.42]


def test_without_a_bucket_the_reports_go_to_the_local_folder(state, tmp_path):
    sink = DirectoryReportSink(tmp_path / "reports")
    daily_report(state.state_store, sink, MON)

    assert (tmp_path / "reports" / "daily" / "2026-03-02" / "trades.csv").is_file()
    assert rows((tmp_path / "reports" / "daily_pnl.csv").read_text())[0]["net_pnl"] == "9.05"
    assert build_day(state.state_store, sink, TUE).all_daily[0]["date"] == "2026-03-02"
    with pytest.raises(ValueError, match="bad report name"):
        sink.get("../secrets.json")
