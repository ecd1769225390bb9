"""The daily model budget in the state table (moto's server over HTTP): a hard cap shared by
every Lambda, settled to what calls really cost."""

from __future__ import annotations

from datetime import date

import boto3
import pytest

from chalicelib.adapters.dynamodb_score_budget import DynamoScoreBudget
from chalicelib.adapters.memory_score_budget import InMemoryScoreBudget

DAY = date(2026, 3, 10)


@pytest.fixture
def budget(aws):
    client = boto3.session.Session().client("dynamodb")
    return DynamoScoreBudget(client, aws.outputs["StateTableName"])


@pytest.fixture(params=["dynamodb", "memory"])
def any_budget(request):
    if request.param == "memory":
        return InMemoryScoreBudget()
    return request.getfixturevalue("budget")


def test_reservations_stop_at_the_cap_and_settle_to_the_real_cost(any_budget):
    assert any_budget.reserve(DAY, 0.4, 1.0)
    assert any_budget.reserve(DAY, 0.4, 1.0)
    assert not any_budget.reserve(DAY, 0.4, 1.0)  # 1.2 > 1.0
    any_budget.settle(DAY, -0.3)  # the second call cost 0.1
    assert any_budget.spent_usd(DAY) == pytest.approx(0.5)
    assert any_budget.reserve(DAY, 0.4, 1.0)
    assert any_budget.spent_usd(DAY) == pytest.approx(0.9)
    assert any_budget.spent_usd(date(2026, 3, 11)) == 0.0  # a new day starts at 0


def test_an_amount_larger_than_the_cap_is_never_reserved(any_budget):
    assert not any_budget.reserve(DAY, 2.0, 1.0)
    assert any_budget.spent_usd(DAY) == 0.0


def test_two_lambdas_share_one_days_budget(aws, budget):
    """Each Lambda has its own client; the cap holds across them because the check and the
    ADD are one conditional UpdateItem, which DynamoDB applies atomically ("Increment
    counters atomically using ADD", https://docs.aws.amazon.com/amazondynamodb/latest/
    developerguide/example_dynamodb_Scenario_AtomicCounterOperations_section.html). moto's
    server has no per-item lock, so racing threads cannot prove atomicity here: the
    interleaving is sequential."""
    other = DynamoScoreBudget(
        boto3.session.Session().client("dynamodb"), aws.outputs["StateTableName"]
    )
    taken = [b.reserve(DAY, 0.3, 1.0) for b in (budget, other, budget, other)]
    assert taken == [True, True, True, False]
    assert other.spent_usd(DAY) == pytest.approx(0.9)
