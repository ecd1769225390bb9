"""Signals that arrive together: exits first, then entries best-ranked first (pure rules)."""

from __future__ import annotations

from chalicelib.domain import Score
from chalicelib.rules.rank_model import RankModel
from chalicelib.rules.ranking import Signal, batch_order, rank_of
from chalicelib.rules.score import FEATURE_NAMES, SetupFeatures


def test_exits_go_first_then_entries_by_rank_with_ties_and_the_unranked_in_arrival_order():
    order = batch_order(
        [
            Signal("low", False, 0.40, "deterministic score"),
            Signal("none", False),
            Signal("exit", True),
            Signal("high", False, 0.90, "gpt score"),
            Signal("tie-first", False, 0.70, "gpt score"),
            Signal("tie-second", False, 0.70, "gpt score"),
        ]
    )
    assert [s.alert_id for s in order] == [
        "exit",
        "high",
        "tie-first",
        "tie-second",
        "low",
        "none",
    ]
    exit_, high, *_, low, unranked = order
    assert (exit_.place, exit_.ahead) == (0, ())
    assert (high.place, high.entries, high.ahead) == (1, 5, ())
    assert low.ahead == ("high", "tie-first", "tie-second")
    assert high.outranked_note() == ""  # nobody came before it
    note = low.outranked_note()
    assert "rank 0.40 (deterministic score), 4 of 5 entries that arrived together" in note
    assert note.endswith("after high, tie-first, tie-second")
    assert "unranked, 5 of 5" in unranked.outranked_note()


def test_a_rank_is_the_models_probability_else_the_score_else_none():
    features = SetupFeatures(side=1, trend_atr=2.0, relative_volume=1.8, flow_agrees=True)
    model = RankModel(
        features=FEATURE_NAMES,
        mean=(0.0,) * len(FEATURE_NAMES),
        scale=(1.0,) * len(FEATURE_NAMES),
        coef=(1.0,) + (0.0,) * (len(FEATURE_NAMES) - 1),  # only the trend counts
        intercept=0.0,
    )
    rank, basis = rank_of(features, Score(value=12, source="gpt"), model)
    assert basis == "model P(winner)"
    assert rank == model.probability(features) > 0.8  # sigmoid(2.0) = 0.88
    assert rank_of(features, Score(value=64, source="deterministic"), None) == (
        0.64,
        "deterministic score",
    )
    assert rank_of(features, None, None) == (None, "unranked")
