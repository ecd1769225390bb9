"""rank-train: walk-forward ranking over the scorer's features, and the pure evaluator the
Lambda uses for its model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from backtest.__main__ import main
from backtest.rank import walk_forward
from chalicelib.rules.rank_model import RankModel, RankModelError
from chalicelib.rules.score import FEATURE_NAMES, SetupFeatures

DATA = Path(__file__).resolve().parents[2] / "backtest" / "data"
N_FEATURES = len(FEATURE_NAMES)


def _series(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    entry = np.arange(n, dtype=np.int64) * 100
    exit_ = entry + 150  # each trade exits after the next one has entered
    return x, entry, exit_


def test_every_fold_trains_only_on_trades_that_exited_before_it():
    x, entry, exit_ = _series(180)
    y = (x[:, 0] > 0).astype(int)
    scores, fold_of, folds = walk_forward(x, y, entry, exit_, folds=5)
    assert not any(f.skipped for f in folds)
    assert [f.fold for f in folds] == [1, 2, 3, 4, 5]
    for f in folds:
        assert np.intersect1d(f.train_index, f.test_index).size == 0
        assert exit_[f.train_index].max() < entry[f.test_index].min()
        assert (fold_of[f.test_index] == f.fold).all()
    assert np.isnan(scores[fold_of < 0]).all()
    assert (fold_of[: folds[0].test_index[0]] == -1).all()  # block 0 is never scored


def test_out_of_sample_scores_come_from_the_past_not_the_fold():
    """The feature predicts winners one way before the last block and the other way inside
    it: a model that saw the last block would rank it well; one trained on the past ranks it
    backwards."""
    x, entry, exit_ = _series(300, seed=5)
    y = (x[:, 0] > 0).astype(int)
    last = np.array_split(np.arange(300), 3)[-1]
    y[last] = 1 - y[last]
    _, _, folds = walk_forward(x, y, entry, exit_, folds=2)
    assert folds[-1].auc is not None
    assert folds[-1].auc < 0.2
    assert folds[0].auc > 0.8


def test_a_fold_without_enough_history_is_skipped_and_unscored():
    x, entry, exit_ = _series(30)
    y = (x[:, 0] > 0).astype(int)
    _, fold_of, folds = walk_forward(x, y, entry, exit_, folds=5)
    assert folds[0].skipped
    assert (fold_of[folds[0].test_index] == -1).all()


def test_the_pure_evaluator_reproduces_sklearns_probabilities():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from backtest.rank import to_rank_model

    rng = np.random.default_rng(11)
    x = rng.normal(loc=[0, 1, 1.2, 0, 0, 0], scale=[1, 2, 0.5, 1, 0.01, 3], size=(400, 6))
    y = (x @ np.array([1.0, -0.5, 0.8, 0.3, 0.0, 0.2]) + rng.normal(size=400) > 0).astype(int)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    model = RankModel.from_dict(json.loads(json.dumps(to_rank_model(pipeline, {}).to_dict())))
    expected = pipeline.predict_proba(x)[:, 1]
    got = np.array([model.probability_of(row.tolist()) for row in x])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    features = SetupFeatures(side=1, trend_atr=0.5, vwap_atr=-1.0, relative_volume=1.4)
    want = pipeline.predict_proba(np.array([features.vector()]))[0, 1]
    assert model.probability(features) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "tree"}, "kind"),
        ({"features": ["trend_atr"]}, "features"),
        ({"scale": [1, 1, 1, 0, 1, 1]}, "positive"),
        ({"coef": [1, 1, 1]}, "coef"),
        ({"mean": [0, 0, 0, 0, 0, "x"]}, "mean"),
        ({"intercept": None}, "intercept"),
    ],
)
def test_a_bad_model_file_is_refused(change, message):
    good = {
        "kind": "logistic_regression",
        "features": list(FEATURE_NAMES),
        "mean": [0] * 6,
        "scale": [1] * 6,
        "coef": [0] * 6,
        "intercept": 0.0,
    }
    with pytest.raises(RankModelError, match=message):
        RankModel.from_dict({**good, **change})


def test_rank_train_on_the_shipped_data_writes_its_three_files(tmp_path, capsys):
    out = tmp_path / "rank"
    code = main(
        [
            "rank-train",
            "--data",
            str(DATA / "IBM.csv"),
            "--config",
            str(DATA / "sma_cross_daily.toml"),
            "--out",
            str(out),
            "--folds",
            "3",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "ranking.json").read_text())
    assert len(summary["folds"]) == 3
    oos = summary["out_of_sample"]
    assert f"AUC {oos['auc']:.3f}" in printed
    with (out / "ranked_trades.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["entry_time", "symbol", "fold", "score", "net_pnl"]
    assert len(rows) == oos["trades"]
    assert {int(r["fold"]) for r in rows} <= {1, 2, 3}
    assert all(0 < float(r["score"]) < 1 for r in rows)
    pnl = np.array([float(r["net_pnl"]) for r in rows])
    assert oos["model"]["pnl_per_trade_all"] == pytest.approx(pnl.mean(), abs=1e-3)
    model = RankModel.from_dict(json.loads((out / "model.json").read_text()))
    assert model.trained_on["symbols"] == ["IBM"]
    assert summary["model"] == model.to_dict()


def test_rank_train_with_too_few_trades_exits_2(tmp_path, capsys):
    code = main(
        [
            "rank-train",
            "--data",
            str(DATA / "SYN_1m.csv"),
            "--config",
            str(DATA / "orb_intraday.toml"),
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2
    assert "needs more than" in capsys.readouterr().err
