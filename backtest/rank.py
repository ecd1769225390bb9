"""`python -m backtest rank-train`: does a model over the scorer's features rank trades?

For every backtest trade the features the scorer sees (`rules.score.setup_features`) are
computed at its signal bar — known at that bar's close, before the entry — from a
`MarketSnapshot` built out of the bars so far (what live would have seen):

- intraday bars: the session's bars up to the signal bar; VWAP is the session VWAP
  (`rules.indicators.session_vwap`); relative volume is the session's volume so far over
  the mean of the previous (up to 20) sessions' volume by the same bar of the session;
- daily bars: the last 20 bars; VWAP is their volume-weighted typical price; relative
  volume the bar's volume over the previous 20 bars' mean;
- ATR: `rules.indicators.atr` with `[exits] atr_period`; volume confirmation: the signal
  bar's volume at least 1.2× the previous 20 bars' mean (a proxy of the live rule);
- day type and flow: none in the backtest (their features are 0).

Walk-forward: trades in entry order are cut into `folds + 1` blocks; fold k scores block k
with a model fitted only on trades that *exited* before block k's first entry (labels
known by then). Block 0 is never scored. The label is "the trade is a winner" (net P/L > 0).
The model is scikit-learn's `StandardScaler` + `LogisticRegression`; `model.json` is the
same model fitted on every trade, in the JSON `chalicelib.rules.rank_model` evaluates.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.config import Config
from backtest.data import Bars
from chalicelib.domain import Bar, MarketSnapshot, Side, Verdict
from chalicelib.rules.indicators import atr, session_starts, session_vwap
from chalicelib.rules.rank_model import KIND, RankModel
from chalicelib.rules.score import FEATURE_NAMES, SetupFeatures, score_features, setup_features

LOOKBACK = 20
VOLUME_CONFIRM_MULT = 1.2
MIN_TRAIN = 20
TOP_FRACTION = 0.2


@dataclass
class FoldResult:
    fold: int
    train_n: int
    test_n: int
    train_last_exit: str | None
    test_first_entry: str
    test_last_entry: str
    auc: float | None
    skipped: str | None = None
    train_index: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    test_index: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))

    def as_dict(self) -> dict[str, Any]:
        return {
            "fold": self.fold,
            "train_trades": self.train_n,
            "test_trades": self.test_n,
            "train_last_exit": self.train_last_exit,
            "test_first_entry": self.test_first_entry,
            "test_last_entry": self.test_last_entry,
            "auc": self.auc,
            "skipped": self.skipped,
        }


def _mean_before(values: np.ndarray, i: int, n: int) -> float | None:
    window = values[max(0, i - n) : i]
    return float(window.mean()) if window.size else None


def _session_rvol(bars: Bars, cumvol: np.ndarray, start: np.ndarray, i: int) -> float | None:
    """Session volume up to bar i over the mean of earlier sessions' volume by the same bar."""
    offset = i - start[i]
    usual = []
    s = start[i]
    while s > 0 and len(usual) < LOOKBACK:
        prev_start = start[s - 1]
        j = prev_start + offset
        if j < s:  # the earlier session reached that bar
            usual.append(cumvol[j] - (cumvol[prev_start - 1] if prev_start else 0.0))
        s = prev_start
    base = float(np.mean(usual)) if usual else 0.0
    today = cumvol[i] - (cumvol[start[i] - 1] if start[i] else 0.0)
    return today / base if base > 0 else None


def trade_features(bars: Bars, trades: pd.DataFrame, atr_period: int) -> list[SetupFeatures]:
    """The scorer's features of each trade, at its signal bar (module docstring)."""
    a = bars.arrays
    atrs = atr(a.high, a.low, a.close, atr_period)
    start = session_starts(a.session_id)
    vwaps = session_vwap(a.high, a.low, a.close, a.volume, a.session_id)
    cumvol = np.cumsum(a.volume.astype(np.float64))
    typical = (a.high + a.low + a.close) / 3.0
    out = []
    for signal, side in zip(trades["signal_bar"], trades["side"], strict=True):
        i = int(signal)
        first = max(0, i - LOOKBACK + 1) if bars.daily else int(start[i])
        if bars.daily:
            vol = a.volume[first : i + 1]
            vwap = float((typical[first : i + 1] * vol).sum() / vol.sum()) if vol.sum() else None
            mean = _mean_before(a.volume, i, LOOKBACK)
            rvol = float(a.volume[i]) / mean if mean else None
        else:
            vwap = float(vwaps[i])
            rvol = _session_rvol(bars, cumvol, start, i)
        mean = _mean_before(a.volume, i, LOOKBACK)
        confirmation = None
        if mean:
            confirmation = (
                Verdict.allow("volume")
                if a.volume[i] >= VOLUME_CONFIRM_MULT * mean
                else Verdict.deny("volume below 1.2x the 20-bar mean", check="volume")
            )
        moment = bars.time[i].tz_convert("UTC").to_pydatetime()
        window = tuple(
            Bar(
                time=bars.time[j].tz_convert("UTC").to_pydatetime(),
                open=float(a.open[j]),
                high=float(a.high[j]),
                low=float(a.low[j]),
                close=float(a.close[j]),
                volume=float(a.volume[j]),
            )
            for j in (first, i)  # the trend reads the first open and the last close
        )
        value = float(atrs[i])
        snapshot = MarketSnapshot(
            symbol=bars.symbol,
            source="backtest",
            as_of=moment,
            last_price=float(a.close[i]),
            bars=window,
            atr=value if math.isfinite(value) and value > 0 else None,
            vwap=vwap,
            relative_volume=rvol,
            volume_confirmation=confirmation,
        )
        out.append(setup_features(Side.BUY if side == "long" else Side.SELL, snapshot, None, None))
    return out


def _fit(x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(x, y)


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(set(y.tolist())) < 2:
        return None
    return float(roc_auc_score(y, score))


def walk_forward(
    x: np.ndarray,
    y: np.ndarray,
    entry_ns: np.ndarray,
    exit_ns: np.ndarray,
    folds: int,
) -> tuple[np.ndarray, np.ndarray, list[FoldResult]]:
    """Out-of-sample P(winner) per trade (NaN where unscored), its fold (−1: none), folds.

    Trades must be in entry order. Fold k's model sees only trades that exited before the
    fold's first entry.
    """
    n = len(y)
    scores = np.full(n, np.nan)
    fold_of = np.full(n, -1, dtype=np.int64)
    results = []
    blocks = np.array_split(np.arange(n), folds + 1)
    for k, block in enumerate(blocks[1:], start=1):
        if block.size == 0:
            continue
        begins = entry_ns[block[0]]
        train = np.flatnonzero(exit_ns < begins)
        stamp = pd.Timestamp(int(begins), tz="UTC").isoformat()
        last_exit = (
            pd.Timestamp(int(exit_ns[train].max()), tz="UTC").isoformat() if train.size else None
        )
        result = FoldResult(
            fold=k,
            train_n=int(train.size),
            test_n=int(block.size),
            train_last_exit=last_exit,
            test_first_entry=stamp,
            test_last_entry=pd.Timestamp(int(entry_ns[block[-1]]), tz="UTC").isoformat(),
            auc=None,
            train_index=train,
            test_index=block,
        )
        if train.size < MIN_TRAIN or len(set(y[train].tolist())) < 2:
            result.skipped = f"{train.size} earlier trades, need {MIN_TRAIN} with wins and losses"
        else:
            model = _fit(x[train], y[train])
            scores[block] = model.predict_proba(x[block])[:, 1]
            fold_of[block] = k
            result.auc = _auc(y[block], scores[block])
        results.append(result)
    return scores, fold_of, results


def to_rank_model(pipeline: Any, trained_on: dict[str, Any]) -> RankModel:
    scaler, logistic = pipeline[0], pipeline[-1]
    return RankModel(
        features=FEATURE_NAMES,
        mean=tuple(float(v) for v in scaler.mean_),
        scale=tuple(float(v) for v in scaler.scale_),
        coef=tuple(float(v) for v in logistic.coef_[0]),
        intercept=float(logistic.intercept_[0]),
        trained_on=trained_on,
    )


def top_fifth(score: np.ndarray, pnl: np.ndarray) -> dict[str, Any]:
    """Mean net P/L per trade of the highest-scored fifth vs all scored trades (USD)."""
    n = score.size
    if n == 0:
        return {"trades": 0, "top_trades": 0, "pnl_per_trade_all": None, "pnl_per_trade_top": None}
    k = max(1, math.ceil(n * TOP_FRACTION))
    top = np.argsort(-score, kind="stable")[:k]
    return {
        "trades": int(n),
        "top_trades": int(k),
        "pnl_per_trade_all": round(float(pnl.mean()), 4),
        "pnl_per_trade_top": round(float(pnl[top].mean()), 4),
    }


def collect_trades(datasets: list[tuple[Bars, pd.DataFrame]], atr_period: int) -> pd.DataFrame:
    """Every trade of every data set with its features, in entry order (UTC)."""
    frames = []
    for bars, trades in datasets:
        if trades.empty:
            continue
        ns = bars.time_ns_utc
        features = trade_features(bars, trades, atr_period)
        frame = pd.DataFrame(
            {
                "entry_time": trades["entry_time"].to_numpy(),
                "symbol": bars.symbol,
                "net_pnl": trades["net_pnl"].to_numpy(dtype=float),
                "entry_ns": ns[trades["entry_bar"].to_numpy()],
                "exit_ns": ns[trades["exit_bar"].to_numpy()],
                "deterministic": [score_features(f).value for f in features],
            }
        )
        vectors = np.array([f.vector() for f in features], dtype=float)
        for j, name in enumerate(FEATURE_NAMES):
            frame[name] = vectors[:, j]
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    return (
        pd.concat(frames, ignore_index=True)
        .sort_values("entry_ns", kind="stable")
        .reset_index(drop=True)
    )


def rank_train(
    datasets: list[tuple[Bars, pd.DataFrame]], config: Config, out: Path, folds: int = 5
) -> dict[str, Any]:
    """Walk-forward ranking over the data sets' trades; writes the three files into `out`."""
    table = collect_trades(datasets, config.exits.atr_period)
    if len(table) < MIN_TRAIN + 1:
        raise ValueError(f"{len(table)} trades: rank-train needs more than {MIN_TRAIN}")
    x = table[list(FEATURE_NAMES)].to_numpy(dtype=float)
    y = (table["net_pnl"].to_numpy() > 0).astype(int)
    entry_ns = table["entry_ns"].to_numpy()
    exit_ns = table["exit_ns"].to_numpy()
    scores, fold_of, results = walk_forward(x, y, entry_ns, exit_ns, folds)
    scored = fold_of >= 0
    pnl = table["net_pnl"].to_numpy()
    trained_on = {
        "trades": len(table),
        "symbols": sorted(set(table["symbol"])),
        "first_entry": str(table["entry_time"].iloc[0]),
        "last_entry": str(table["entry_time"].iloc[-1]),
        "win_rate": round(float(y.mean()), 4),
    }
    final = to_rank_model(_fit(x, y), trained_on) if len(set(y.tolist())) == 2 else None
    deterministic = table["deterministic"].to_numpy()
    summary: dict[str, Any] = {
        "label": "net_pnl > 0",
        "features": list(FEATURE_NAMES),
        "folds": [r.as_dict() for r in results],
        "out_of_sample": {
            "trades": int(scored.sum()),
            "auc": _auc(y[scored], scores[scored]) if scored.any() else None,
            "deterministic_score_auc": (
                _auc(y[scored], deterministic[scored]) if scored.any() else None
            ),
            "model": top_fifth(scores[scored], pnl[scored]),
            "deterministic_score": top_fifth(deterministic[scored], pnl[scored]),
        },
        "model": final.to_dict() if final else None,
    }
    out.mkdir(parents=True, exist_ok=True)
    ranked = pd.DataFrame(
        {
            "entry_time": table["entry_time"][scored],
            "symbol": table["symbol"][scored],
            "fold": fold_of[scored],
            "score": np.round(scores[scored], 6),
            "net_pnl": np.round(pnl[scored], 4),
        }
    )
    ranked.to_csv(out / "ranked_trades.csv", index=False)
    (out / "ranking.json").write_text(json.dumps(summary, indent=2) + "\n")
    if final is not None:
        (out / "model.json").write_text(json.dumps(final.to_dict(), indent=2) + "\n")
    return summary


def format_ranking(summary: dict[str, Any]) -> str:
    oos = summary["out_of_sample"]

    def fig(value: float | None, spec: str = ".3f") -> str:
        return "n/a" if value is None else format(value, spec)

    m, d = oos["model"], oos["deterministic_score"]
    lines = [
        f"walk-forward ranking, label {summary['label']}, features {', '.join(summary['features'])}"
    ]
    for f in summary["folds"]:
        what = f"skipped ({f['skipped']})" if f["skipped"] else f"AUC {fig(f['auc'])}"
        lines.append(
            f"  fold {f['fold']}: train {f['train_trades']:>4} (exits ≤ {f['train_last_exit']}),"
            f" test {f['test_trades']:>4} from {f['test_first_entry']}: {what}"
        )
    lines += [
        f"  out of sample   {oos['trades']:,} trades, AUC {fig(oos['auc'])} "
        f"(deterministic score {fig(oos['deterministic_score_auc'])})",
        f"  P/L per trade   all {fig(m['pnl_per_trade_all'], ',.2f')}, "
        f"model's top fifth {fig(m['pnl_per_trade_top'], ',.2f')} ({m['top_trades']} trades), "
        f"deterministic top fifth {fig(d['pnl_per_trade_top'], ',.2f')}",
    ]
    return "\n".join(lines)


__all__ = [
    "KIND",
    "collect_trades",
    "format_ranking",
    "rank_train",
    "trade_features",
    "walk_forward",
]
