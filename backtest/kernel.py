"""The trade-lifecycle simulator: one pass over the bars, compiled with numba.

The kernel is resumable. It runs until it needs a decision only Python can make (an entry:
the live sizing and gate code size and allow it), saves its place in `ist`/`st`, and
returns an event code; the caller fills in the decision and calls it again. Entries are
far rarer than bars, so the bar loop stays compiled and the rules stay the live ones.

Layouts (all indices are module constants below):
- `px`     float64 [PX_ROWS, n]: open, high, low, close, volume, atr, per-signal stop and
           target overrides (NaN = use the configured exits).
- `sig`    int8 [n]: `chalicelib.rules.strategies.Signal` codes, known at each bar's close.
- `last`   bool [n]: the bar is its session's last.
- `fp`/`ip` float / int parameters; `st`/`ist` float / int state; `trades` [cap, T_COLS].
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# px rows
OPEN, HIGH, LOW, CLOSE, VOLUME, ATR, SIG_STOP, SIG_TARGET = range(8)
PX_ROWS = 8

# signal codes (chalicelib.rules.strategies.Signal)
S_NONE, S_LONG, S_SHORT, S_FLAT, S_EXIT_LONG, S_EXIT_SHORT = 0, 1, -1, 2, 3, 4

# int parameters
(
    P_ENTRY_MODE,  # 0 next_open, 1 close
    P_STOP_REF,  # 0 signal_close, 1 fill
    P_SESSION_EXIT,  # 1: flatten at each session's last close
    P_CLOSE_AT_END,  # 1: close what is open at the last bar (end_of_data)
    P_COMM_MODEL,  # 0 none, 1 percent, 2 per_share, 3 per_order, 4 alpaca
    P_SLIP_MODEL,  # 0 none, 1 bps, 2 cents, 3 spread, 4 volume
) = range(6)
IP_SIZE = 6

# float parameters. The config's percents arrive here divided by 100 once
# (`backtest.engine.kernel_params`): `ref * (1 - side * pct / 100)`, the live
# `chalicelib.rules.orders` formula, rounds exactly as `ref * (1 - side * frac)`.
(
    F_SL_FRAC,
    F_TP_FRAC,
    F_TRAIL_FRAC,
    F_ATR_STOP,
    F_ATR_TARGET,
    F_ATR_TRAIL,
    F_C1,
    F_C2,
    F_C3,
    F_S1,
) = range(10)
FP_SIZE = 10

ENTRY_NEXT_OPEN, ENTRY_CLOSE = 0, 1

COMM_NONE, COMM_PERCENT, COMM_PER_SHARE, COMM_PER_ORDER, COMM_ALPACA = range(5)
SLIP_NONE, SLIP_BPS, SLIP_CENTS, SLIP_SPREAD, SLIP_VOLUME = range(5)

# int state
(
    I_BAR,
    I_PHASE,
    I_SIDE,  # +1 long, -1 short, 0 flat
    I_ENTRY_BAR,
    I_SIGNAL_BAR,
    I_N_TRADES,
    I_PENDING,  # signal code waiting for the next open
    I_PENDING_BAR,
    I_EVENT_SIDE,
    I_EVENT_SIGNAL_BAR,
    I_CHUNK_END,  # pause (EV_CHUNK) before this bar, for progress reporting
) = range(11)
IST_SIZE = 11

# float state
(
    X_CASH,
    X_QTY,
    X_ENTRY_FILL,
    X_ENTRY_RAW,
    X_ENTRY_COMM,
    X_ENTRY_SLIP,
    X_STOP,
    X_TARGET,
    X_TRAIL,
    X_EVENT_PRICE,
    X_EVENT_STOP,
    X_EVENT_TARGET,
    X_EVENT_EQUITY,
    X_DECISION_QTY,
) = range(14)
ST_SIZE = 14

# trade columns
(
    T_SIDE,
    T_QTY,
    T_SIGNAL_BAR,
    T_ENTRY_BAR,
    T_EXIT_BAR,
    T_ENTRY_PRICE,
    T_EXIT_PRICE,
    T_REASON,
    T_GROSS,
    T_COMMISSION,
    T_SLIPPAGE,
    T_STOP,
    T_TARGET,
) = range(13)
T_COLS = 13

# exit reasons
R_STOP, R_TARGET, R_TRAIL, R_SIGNAL, R_SESSION, R_END = 1, 2, 3, 4, 5, 6
EXIT_REASONS = {
    R_STOP: "stop_loss",
    R_TARGET: "take_profit",
    R_TRAIL: "trailing_stop",
    R_SIGNAL: "signal",
    R_SESSION: "session_close",
    R_END: "end_of_data",
}

# events
EV_DONE, EV_ENTRY, EV_CHUNK = 0, 1, 2

# phases within a bar
PH_OPEN, PH_OPEN_DECIDED, PH_INTRABAR, PH_CLOSE_DECIDED, PH_AFTER_CLOSE = 0, 1, 2, 3, 4


@njit(cache=True)
def ceil_cent(usd):
    """Round a fee up to the next cent (regulatory fees are charged this way)."""
    return math.ceil(usd * 100.0 - 1e-9) / 100.0


@njit(cache=True)
def commission_usd(model, c1, c2, c3, qty, price, is_sell):
    """Commission for one fill of `qty` shares at `price` (USD).

    percent: qty·price·c1. per_share: qty·c1, at least c2, at most c3·qty·price (c2/c3 = 0
    means no floor / cap). per_order: c1. alpaca: no commission; sells pay the SEC fee
    (c1 · principal) and FINRA TAF (c2 per share, at most c3), each rounded up to the cent.
    """
    if model == COMM_PERCENT:
        return qty * price * c1
    if model == COMM_PER_SHARE:
        fee = qty * c1
        if c2 > 0.0 and fee < c2:
            fee = c2
        if c3 > 0.0 and fee > c3 * qty * price:
            fee = c3 * qty * price
        return fee
    if model == COMM_PER_ORDER:
        return c1
    if model == COMM_ALPACA:
        if not is_sell:
            return 0.0
        taf = qty * c2
        if c3 > 0.0 and taf > c3:
            taf = c3
        return ceil_cent(qty * price * c1) + ceil_cent(taf)
    return 0.0


@njit(cache=True)
def slipped_price(model, s1, price, qty, volume, side):
    """The price a market fill gets: worse than `price` for the taker (`side` +1 buy, −1 sell).

    bps: s1 basis points. cents: s1 USD per share. spread: half of an s1-bps quoted spread.
    volume: s1·sqrt(qty / bar volume) as a fraction of price (s1 when the bar has no volume).
    """
    if model == SLIP_BPS:
        return price * (1.0 + side * s1 * 1e-4)
    if model == SLIP_CENTS:
        return price + side * s1
    if model == SLIP_SPREAD:
        return price * (1.0 + side * s1 * 0.5e-4)
    if model == SLIP_VOLUME:
        frac = s1
        if volume > 0.0:
            frac = s1 * math.sqrt(qty / volume)
        return price * (1.0 + side * frac)
    return price


@njit(cache=True)
def _levels(px, fp, side, sigbar, ref):
    """(stop, target, trail) levels for a new position at `ref`; NaN where not used.

    A per-signal override (`px` SIG_STOP/SIG_TARGET, set from the live decision for replayed
    alerts) wins; else the default protection exactly as `chalicelib.rules.orders._protective`
    computes it: an ATR multiple when configured and the ATR is known and positive, otherwise
    a percent of `ref`; a stop at or below 0 is no stop. Unrounded: the engine puts them on
    ticks with the live rounding when `exits.round_to_tick` is on
    (tests/backtest/test_levels_parity.py holds the two to each other).
    """
    stop = px[SIG_STOP, sigbar]
    target = px[SIG_TARGET, sigbar]
    atr = px[ATR, sigbar]
    if math.isnan(stop):
        if fp[F_ATR_STOP] > 0.0 and atr > 0.0:
            stop = ref - side * fp[F_ATR_STOP] * atr
        elif fp[F_SL_FRAC] > 0.0:
            stop = ref * (1.0 - side * fp[F_SL_FRAC])
        if stop <= 0.0:
            stop = np.nan
    if math.isnan(target):
        if fp[F_ATR_TARGET] > 0.0 and atr > 0.0:
            target = ref + side * fp[F_ATR_TARGET] * atr
        elif fp[F_TP_FRAC] > 0.0:
            target = ref * (1.0 + side * fp[F_TP_FRAC])
    trail = np.nan
    if fp[F_ATR_TRAIL] > 0.0 and not math.isnan(atr):
        trail = ref - side * fp[F_ATR_TRAIL] * atr
    elif fp[F_TRAIL_FRAC] > 0.0:
        trail = ref * (1.0 - side * fp[F_TRAIL_FRAC])
    return stop, target, trail


@njit(cache=True)
def _open_position(px, fp, ip, st, ist, i, raw, side, qty, sigbar):
    fill = slipped_price(ip[P_SLIP_MODEL], fp[F_S1], raw, qty, px[VOLUME, i], side)
    comm = commission_usd(ip[P_COMM_MODEL], fp[F_C1], fp[F_C2], fp[F_C3], qty, fill, side < 0)
    st[X_CASH] -= comm
    st[X_QTY] = qty
    st[X_ENTRY_FILL] = fill
    st[X_ENTRY_RAW] = raw
    st[X_ENTRY_COMM] = comm
    st[X_ENTRY_SLIP] = side * qty * (fill - raw)
    ref = px[CLOSE, sigbar] if ip[P_STOP_REF] == 0 else fill
    stop, target, trail = _levels(px, fp, side, sigbar, ref)
    st[X_STOP] = stop
    st[X_TARGET] = target
    st[X_TRAIL] = trail
    ist[I_SIDE] = side
    ist[I_ENTRY_BAR] = i
    ist[I_SIGNAL_BAR] = sigbar


@njit(cache=True)
def _open_decided(px, fp, ip, st, ist, i):
    """Open what Python's sizing and gate decided for the pending entry (0 shares: denied)."""
    qty = st[X_DECISION_QTY]
    if qty > 0.0:
        _open_position(
            px,
            fp,
            ip,
            st,
            ist,
            i,
            st[X_EVENT_PRICE],
            ist[I_EVENT_SIDE],
            qty,
            ist[I_EVENT_SIGNAL_BAR],
        )


@njit(cache=True)
def _close_position(px, fp, ip, st, ist, trades, i, raw, reason, slips):
    side = ist[I_SIDE]
    qty = st[X_QTY]
    fill = raw
    if slips:
        fill = slipped_price(ip[P_SLIP_MODEL], fp[F_S1], raw, qty, px[VOLUME, i], -side)
    comm = commission_usd(ip[P_COMM_MODEL], fp[F_C1], fp[F_C2], fp[F_C3], qty, fill, side > 0)
    st[X_CASH] += side * qty * (fill - st[X_ENTRY_FILL]) - comm
    k = ist[I_N_TRADES]
    trades[k, T_SIDE] = side
    trades[k, T_QTY] = qty
    trades[k, T_SIGNAL_BAR] = ist[I_SIGNAL_BAR]
    trades[k, T_ENTRY_BAR] = ist[I_ENTRY_BAR]
    trades[k, T_EXIT_BAR] = i
    trades[k, T_ENTRY_PRICE] = st[X_ENTRY_FILL]
    trades[k, T_EXIT_PRICE] = fill
    trades[k, T_REASON] = reason
    trades[k, T_GROSS] = side * qty * (raw - st[X_ENTRY_RAW])
    trades[k, T_COMMISSION] = st[X_ENTRY_COMM] + comm
    trades[k, T_SLIPPAGE] = st[X_ENTRY_SLIP] - side * qty * (fill - raw)
    trades[k, T_STOP] = st[X_STOP]
    trades[k, T_TARGET] = st[X_TARGET]
    ist[I_N_TRADES] = k + 1
    ist[I_SIDE] = 0
    st[X_QTY] = 0.0


@njit(cache=True)
def _closes(code, side):
    """Does signal `code` close a position on `side`?"""
    if code == S_FLAT:
        return True
    if code == S_LONG:
        return side < 0
    if code == S_SHORT:
        return side > 0
    if code == S_EXIT_LONG:
        return side > 0
    if code == S_EXIT_SHORT:
        return side < 0
    return False


@njit(cache=True)
def _wanted_side(code):
    if code == S_LONG:
        return 1
    if code == S_SHORT:
        return -1
    return 0


@njit(cache=True)
def _propose(px, fp, ip, st, ist, side, sigbar, raw):
    """Save an entry proposal for Python: side, signal bar, price, preview stop, equity."""
    ist[I_EVENT_SIDE] = side
    ist[I_EVENT_SIGNAL_BAR] = sigbar
    st[X_EVENT_PRICE] = raw
    ref = px[CLOSE, sigbar] if ip[P_STOP_REF] == 0 else raw
    stop, target, _trail = _levels(px, fp, side, sigbar, ref)
    st[X_EVENT_STOP] = stop
    st[X_EVENT_TARGET] = target
    st[X_EVENT_EQUITY] = st[X_CASH]


@njit(cache=True)
def _check_exits(px, fp, ip, st, ist, trades, i):
    """Stops before targets; a level the open gapped through fills at the open."""
    side = ist[I_SIDE]
    o = px[OPEN, i]
    stop = st[X_STOP]
    trail = st[X_TRAIL]
    reason = R_STOP
    if not math.isnan(trail) and (math.isnan(stop) or side * (trail - stop) > 0.0):
        stop = trail
        reason = R_TRAIL
    target = st[X_TARGET]
    if side > 0:
        if not math.isnan(stop) and px[LOW, i] <= stop:
            _close_position(px, fp, ip, st, ist, trades, i, min(o, stop), reason, True)
        elif not math.isnan(target) and px[HIGH, i] >= target:
            _close_position(px, fp, ip, st, ist, trades, i, max(o, target), R_TARGET, False)
    else:
        if not math.isnan(stop) and px[HIGH, i] >= stop:
            _close_position(px, fp, ip, st, ist, trades, i, max(o, stop), reason, True)
        elif not math.isnan(target) and px[LOW, i] <= target:
            _close_position(px, fp, ip, st, ist, trades, i, min(o, target), R_TARGET, False)


@njit(cache=True)
def simulate(px, sig, last, fp, ip, st, ist, trades, equity, held):
    """Advance the simulation; returns EV_DONE, EV_ENTRY (decide, then call again) or EV_CHUNK."""
    n = px.shape[1]
    i = ist[I_BAR]
    phase = ist[I_PHASE]
    mode = ip[P_ENTRY_MODE]
    while i < n:
        if phase == PH_OPEN:
            if i >= ist[I_CHUNK_END]:
                ist[I_BAR] = i
                ist[I_PHASE] = PH_OPEN
                return EV_CHUNK
            code = ist[I_PENDING]
            if mode == ENTRY_NEXT_OPEN and code != S_NONE:
                ist[I_PENDING] = S_NONE
                side = ist[I_SIDE]
                if side != 0 and _closes(code, side):
                    _close_position(px, fp, ip, st, ist, trades, i, px[OPEN, i], R_SIGNAL, True)
                want = _wanted_side(code)
                if want != 0 and ist[I_SIDE] == 0:
                    _propose(px, fp, ip, st, ist, want, ist[I_PENDING_BAR], px[OPEN, i])
                    ist[I_BAR] = i
                    ist[I_PHASE] = PH_OPEN_DECIDED
                    return EV_ENTRY
            phase = PH_INTRABAR
        if phase == PH_OPEN_DECIDED:
            _open_decided(px, fp, ip, st, ist, i)
            phase = PH_INTRABAR
        if phase == PH_INTRABAR:
            if ist[I_SIDE] != 0:
                _check_exits(px, fp, ip, st, ist, trades, i)
            code = sig[i]
            if mode == ENTRY_CLOSE and code != S_NONE:
                side = ist[I_SIDE]
                if side != 0 and _closes(code, side):
                    _close_position(px, fp, ip, st, ist, trades, i, px[CLOSE, i], R_SIGNAL, True)
                want = _wanted_side(code)
                blocked = ip[P_SESSION_EXIT] == 1 and last[i]
                if want != 0 and ist[I_SIDE] == 0 and not blocked:
                    _propose(px, fp, ip, st, ist, want, i, px[CLOSE, i])
                    ist[I_BAR] = i
                    ist[I_PHASE] = PH_CLOSE_DECIDED
                    return EV_ENTRY
            phase = PH_AFTER_CLOSE
        if phase == PH_CLOSE_DECIDED:
            _open_decided(px, fp, ip, st, ist, i)
            phase = PH_AFTER_CLOSE
        # after the close: session exit, trailing ratchet, marks, next-open signal
        c = px[CLOSE, i]
        side = ist[I_SIDE]
        if side != 0 and ip[P_SESSION_EXIT] == 1 and last[i]:
            _close_position(px, fp, ip, st, ist, trades, i, c, R_SESSION, True)
            side = 0
        if side != 0:
            if fp[F_ATR_TRAIL] > 0.0:
                atr = px[ATR, i]
                if not math.isnan(atr):
                    level = c - side * fp[F_ATR_TRAIL] * atr
                    if math.isnan(st[X_TRAIL]) or side * (level - st[X_TRAIL]) > 0.0:
                        st[X_TRAIL] = level
            elif fp[F_TRAIL_FRAC] > 0.0:
                level = c * (1.0 - side * fp[F_TRAIL_FRAC])
                if math.isnan(st[X_TRAIL]) or side * (level - st[X_TRAIL]) > 0.0:
                    st[X_TRAIL] = level
            equity[i] = st[X_CASH] + side * st[X_QTY] * (c - st[X_ENTRY_FILL])
        else:
            equity[i] = st[X_CASH]
        held[i] = side
        if mode == ENTRY_NEXT_OPEN:
            code = sig[i]
            if code != S_NONE and i + 1 < n:
                if _wanted_side(code) != 0 and ip[P_SESSION_EXIT] == 1 and last[i]:
                    code = S_NONE  # an entry would be carried over the session close
                if code != S_NONE:
                    ist[I_PENDING] = code
                    ist[I_PENDING_BAR] = i
        i += 1
        phase = PH_OPEN
    if ist[I_SIDE] != 0 and ip[P_CLOSE_AT_END] == 1 and n > 0:
        _close_position(px, fp, ip, st, ist, trades, n - 1, px[CLOSE, n - 1], R_END, True)
        equity[n - 1] = st[X_CASH]
    ist[I_BAR] = n
    return EV_DONE


def warm_up() -> None:
    """Load (or compile) `simulate` on a tiny input, so the real run does not wait for it.

    The CLI calls this on a thread while the bars load: numba's cache load spends most of
    its time in LLVM, outside the GIL, as does pyarrow's CSV reader.
    """
    n = 2
    px = np.ones((PX_ROWS, n))
    st = np.zeros(ST_SIZE)
    ist = np.zeros(IST_SIZE, dtype=np.int64)
    ist[I_CHUNK_END] = n + 1
    simulate(
        px,
        np.zeros(n, dtype=np.int8),
        np.ones(n, dtype=np.bool_),
        np.zeros(FP_SIZE),
        np.zeros(IP_SIZE, dtype=np.int64),
        st,
        ist,
        np.zeros((1, T_COLS)),
        np.zeros(n),
        np.zeros(n, dtype=np.int8),
    )
