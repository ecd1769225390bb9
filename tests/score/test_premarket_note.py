"""The pre-market note: facts gathered per source, GPT text through the real openai client
against the local fake, else the deterministic text; kept, sent, served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from chalicelib.adapters.dynamodb_notes import DynamoNoteStore
from chalicelib.adapters.memory_score_budget import InMemoryScoreBudget
from chalicelib.adapters.openai_scorer import OpenAIScorer
from chalicelib.domain import Bar, DayType, MarketNote
from chalicelib.ports import MarketDataUnavailable
from chalicelib.rules.risk_state import InMemoryRiskState
from chalicelib.services.premarket_note import NOTE_SYSTEM_PROMPT, premarket_note
from tests.conftest import API_TOKEN
from tests.fakes import openai_server as fake

MORNING = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # Tuesday, 09:00 New York
PRICES = {"gpt-4o-mini": (0.15, 0.60)}


class DailyBars:
    """A MarketData source with five finished sessions and a pre-market price."""

    name = "test"

    def __init__(self, fail: set[str] | None = None) -> None:
        self.fail = fail or set()

    def bars(self, symbol, timeframe, start, end):
        if symbol in self.fail:
            raise MarketDataUnavailable(f"{symbol}: not entitled")
        assert timeframe == "1Day"
        days = [datetime(2026, 3, d, 5, 0, tzinfo=UTC) for d in (3, 4, 5, 6, 9)]
        return [
            Bar(time=t, open=100 + i, high=102 + i, low=99 + i, close=101 + i, volume=1e6)
            for i, t in enumerate(days)
        ]

    def latest_price(self, symbol):
        return 106.1

    def latest_quote(self, symbol):
        return None

    def trades(self, symbol, start, end):
        return []


class Notes:
    def __init__(self) -> None:
        self.saved: list[MarketNote] = []

    def save_note(self, note):
        self.saved.append(note)

    def latest_note(self):
        return self.saved[-1] if self.saved else None


class Inbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def notify(self, subject, message):
        self.sent.append((subject, message))


def state_with_yesterday(kind: DayType) -> InMemoryRiskState:
    state = InMemoryRiskState()
    state.set_day_type((MORNING - timedelta(days=1)).date(), kind)
    return state


def write(**kw):
    args = {
        "now": MORNING,
        "symbols": ["SPY", "QQQ"],
        "market_data": DailyBars(),
        "state": state_with_yesterday(DayType.TREND_UP),
        "store": Notes(),
        "notifier": Inbox(),
    }
    args.update(kw)
    return premarket_note(**args), args


def test_without_a_key_the_note_is_the_deterministic_text_of_the_facts():
    highlights = [{"summary": "SPY 2026-03-20 510C sweep, $1.2M at the ask"}]
    note, args = write(highlights=highlights)
    assert note.source == "deterministic"
    assert note.fallback_reason == "no_key"
    assert "SPY: prior close 105.00, high 106.00, low 103.00" in note.text
    assert "5-session range 99.00–106.00, gap +1.05% at 106.10" in note.text
    assert "yesterday trended up" in note.text
    assert "510C sweep" in note.text
    assert args["store"].saved == [note]
    subject, body = args["notifier"].sent[0]
    assert subject == "flowtrader pre-market note 2026-03-10 (deterministic)"
    assert body == note.text


def test_a_symbol_without_data_is_named_and_the_note_still_goes_out():
    note, _ = write(market_data=DailyBars(fail={"QQQ"}))
    assert "QQQ: no levels (market data failed (MarketDataUnavailable))" in note.text
    assert "SPY: prior close" in note.text


def test_no_note_on_a_market_holiday():
    note, args = write(now=datetime(2026, 12, 25, 13, 0, tzinfo=UTC))
    assert note is None
    assert args["store"].saved == []
    assert args["notifier"].sent == []


@pytest.fixture
def server():
    with fake.FakeOpenAI() as srv:
        yield srv


def writer(server, **kw):
    args = {"model": "gpt-4o-mini", "prices": PRICES, "timeout_s": 2.0, "base_url": server.base_url}
    return OpenAIScorer(server.api_key, **{**args, **kw})


def test_with_a_key_the_model_writes_the_note_from_the_facts(server):
    server.queue(fake.text("SPY gapped up 1% above a 5-day range; yesterday trended up."))
    budget = InMemoryScoreBudget()
    note, args = write(writer=writer(server), budget=budget)
    assert note.source == "gpt"
    assert note.text.startswith("SPY gapped up")
    assert note.cost_usd == pytest.approx((300 * 0.15 + 120 * 0.60) / 1e6)
    assert budget.spent_usd(MORNING.date()) == pytest.approx(note.cost_usd)
    sent = server.requests[-1]
    assert sent["messages"][0]["content"] == NOTE_SYSTEM_PROMPT
    assert '"prior_close": 105.0' in sent["messages"][1]["content"]
    assert sent["max_completion_tokens"] == 400
    assert "response_format" not in sent
    assert args["notifier"].sent[0][0] == "flowtrader pre-market note 2026-03-10"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(fake.error(500), "error"), (fake.slow(), "timeout"), (fake.refusal(), "refusal")],
)
def test_a_failing_model_gives_the_deterministic_note(server, answer, reason):
    server.queue(answer)
    note, _ = write(writer=writer(server, timeout_s=0.3), budget=InMemoryScoreBudget())
    assert (note.source, note.fallback_reason) == ("deterministic", reason)
    assert "SPY: prior close" in note.text


def test_the_spent_budget_keeps_the_model_out(server):
    note, _ = write(writer=writer(server), budget=InMemoryScoreBudget(), daily_cap_usd=0.0)
    assert note.fallback_reason == "cost_cap"
    assert server.requests == []


def test_notes_are_kept_in_the_state_table_and_served_with_the_token(client, aws):
    store = DynamoNoteStore(
        boto3.session.Session().client("dynamodb"), aws.outputs["StateTableName"]
    )
    assert client.http.get("/api/notes/latest").status_code == 401
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    assert client.http.get("/api/notes/latest", headers=auth).status_code == 404
    older, _ = write(now=MORNING - timedelta(days=1), store=store)
    newer, _ = write(store=store)
    response = client.http.get("/api/notes/latest", headers=auth)
    assert response.status_code == 200
    body = response.json_body
    assert body["day"] == "2026-03-10"
    assert body["text"] == newer.text
    assert MarketNote.model_validate(body) == newer
    assert store.latest_note() == newer != older


def test_the_scheduled_handler_writes_a_note_without_keys(client, aws):
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    result = client.lambda_.invoke("premarket_note", event).payload
    # no key and (here) no market data source: a deterministic note, levels named missing
    if result["note"] is None:
        assert result["reason"] == "market closed today"
        return
    assert result["source"] == "deterministic"
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    note = client.http.get("/api/notes/latest", headers=auth).json_body
    assert note["fallback_reason"] == "no_key"
    assert "SPY" in note["text"]


def test_a_second_run_the_same_day_sends_nothing_new():
    store, inbox = Notes(), Inbox()
    first, _ = write(store=store, notifier=inbox)
    again, _ = write(store=store, notifier=inbox, now=MORNING + timedelta(hours=1))
    assert again == first
    assert len(inbox.sent) == 1
    forced, _ = write(store=store, notifier=inbox, force=True)
    assert len(inbox.sent) == 2
    assert forced is not first


def test_the_note_reads_the_flow_scanners_highlights(aws):
    from chalicelib import bootstrap
    from chalicelib.domain import FlowHighlight, utc_now

    c = bootstrap.container()
    now = utc_now()
    for key, premium in (("a", 2e5), ("b", 9e5)):
        highlight = FlowHighlight(
            key=key, symbol="SPY", kind="sweep", at=now - timedelta(hours=1),
            premium_usd=premium, headline=f"SPY sweep {premium:,.0f}", direction="bullish",
        )  # fmt: skip
        bootstrap.flow_highlights(c).record_once(highlight, now)
    found = bootstrap.note_flow_highlights(c)
    assert [h["summary"] for h in found] == ["SPY sweep 900,000", "SPY sweep 200,000"]
