"use strict";
// The dashboard's panels: every few seconds each panel reads its /api route (with the
// session cookie) and redraws itself; a route that does not exist yet, or fails, leaves
// that panel saying why and never touches the others. Actions (kill switch, flatten, data
// source) are confirmed first and sent with the session's CSRF token.
(function () {
  const LWC = window.LightweightCharts;
  const state = { csrf: "", refreshMs: 5000, routes: {}, chartSymbol: "", busy: false };
  const DATA_SOURCES = ["alpaca", "ibkr", "tradingview", "files", "replay"];
  const $ = (id) => document.getElementById(id);

  // --- small helpers -----------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key === "title") node.title = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const usd = (v) => (v === null || v === undefined ? "–" :
    (v < 0 ? "−$" : "$") + Math.abs(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  const signed = (v) => el("span", { class: v > 0 ? "pos" : v < 0 ? "neg" : "" }, usd(v));
  const num = (v, digits = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "–");
  const dateTime = (iso) => (iso ? new Date(iso).toLocaleString([], { hour12: false }) : "–");
  const today = () => new Date().toISOString().slice(0, 10);
  const daysAgo = (n) => new Date(Date.now() - n * 86400000).toISOString().slice(0, 10);

  function has(path, method = "GET") {
    return (state.routes[path] || []).includes(method);
  }

  function say(text, bad = false) {
    const notice = $("notice");
    notice.textContent = text;
    notice.className = bad ? "notice bad" : "notice";
    notice.hidden = false;
  }

  function requestId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = state.csrf;
    }
    const response = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      window.location.reload(); // the session ended: back to the login page
      throw new Error("logged out");
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const why = (data && (data.error || data.reason)) || `HTTP ${response.status}`;
      throw new Error(why);
    }
    return data;
  }

  function fill(tbody, rows, empty, columns) {
    tbody.replaceChildren();
    if (!rows.length) {
      tbody.append(el("tr", {}, el("td", { class: "muted", colspan: String(columns) }, empty)));
      return;
    }
    for (const cells of rows) tbody.append(el("tr", {}, ...cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c)))));
  }

  // --- panels ------------------------------------------------------------------------

  async function killSwitch() {
    const data = await api("api/kill-switch");
    const badge = $("kill-state");
    badge.textContent = data.engaged ? `kill switch ON${data.reason ? ": " + data.reason : ""}` : "trading allowed";
    badge.className = data.engaged ? "badge bad" : "badge good";
    const button = $("kill-toggle");
    button.textContent = data.engaged ? "Release kill switch" : "Kill switch";
    button.className = data.engaged ? "" : "danger";
    button.dataset.engaged = data.engaged ? "1" : "0";
    button.disabled = Boolean(data.by_setting); // FLOWTRADER_KILL_SWITCH wins over the button
  }

  function checks(verdicts) {
    const box = el("span");
    for (const v of verdicts || []) {
      box.append(el("span", { class: v.allowed ? "check pass" : "check deny", title: v.reason || "passed" },
        `${v.allowed ? "✓" : "✗"} ${v.check || "check"}`));
    }
    return box.childNodes.length ? box : el("span", { class: "muted" }, "–");
  }

  function score(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") return num(value, 0);
    const reasons = [...(value.reasons || []), ...(value.risk_flags || [])].join("; ");
    return el("span", { title: reasons || value.source || "" }, num(value.value, 0));
  }

  async function setups() {
    const data = await api("api/alerts?limit=25");
    fill($("setups").tBodies[0], data.alerts.map((a) => [
      time(a.received_at), a.symbol, a.action || "",
      el("span", { class: `badge s-${a.status}`, "data-alert": a.alert_id }, a.status),
      el("td", { class: "reason" }, [a.decision, a.reason].filter(Boolean).join(": ")),
      score(a.score), checks(a.verdicts),
      a.latency_ms === null ? "–" : `${a.latency_ms} ms`,
    ]), "No alerts yet: post one to the webhook.", 8);
    return data.alerts;
  }

  async function positions() {
    const data = await api("api/positions");
    $("exposure").textContent = `${data.count} open · gross exposure ${usd(data.gross_exposure_usd)}`;
    fill($("positions").tBodies[0], data.positions.map((p) => [
      p.symbol, num(p.qty, 0), num(p.avg_entry_price), num(p.market_price),
      signed(p.unrealized_pl), usd(p.notional_usd),
      el("button", { class: "danger small", type: "button", "data-symbol": p.symbol,
        onclick: () => flatten(p.symbol) }, "Flatten"),
    ]), "Flat: no open positions.", 7);
    $("flatten-all").disabled = data.count === 0;
    return data.positions;
  }

  async function pnl() {
    const data = await api("api/pnl");
    const box = $("pnl");
    const figure = (label, value) => el("div", { class: "figure" }, el("div", { class: "label" }, label), el("div", { class: "value" }, value));
    box.replaceChildren(
      figure("Realized", signed(data.realized_usd)),
      figure("Unrealized", signed(data.unrealized_usd)),
      figure("Wins / losses", `${data.wins} / ${data.losses}`),
      figure("Broker day P/L", data.broker_day_pl_usd === undefined ? "–" : signed(data.broker_day_pl_usd)),
    );
  }

  // Another area's route, through /dashboard/panel/<name>: {ok, data} or {ok: false, reason}.
  const panelData = (name, query = "") => api(`dashboard/panel/${name}${query}`);

  async function market() {
    const box = $("market");
    const [dayType, settings] = await Promise.all([panelData("day-type"), panelData("settings")]);
    const parts = [];
    if (!dayType.ok) {
      parts.push(el("p", { class: "muted" }, `Day type: ${dayType.reason}`));
    } else {
      const day = dayType.data;
      parts.push(el("p", {}, el("span", { class: "badge", id: "day-type" }, day.day_type || "unclassified"),
        ` ${day.symbol || ""} ${day.confidence === undefined ? "" : "confidence " + num(day.confidence * 100, 0) + " %"} `,
        el("span", { class: "muted" }, day.reason || "")));
      const features = Object.entries(day.features || {});
      if (features.length) {
        parts.push(el("ul", { class: "list" }, ...features.map(([k, v]) => el("li", {}, `${k}: ${typeof v === "number" ? num(v, 3) : v}`))));
      }
    }
    const select = $("data-source");
    if (!settings.ok) {
      parts.push(el("p", { class: "muted" }, `Data source: ${settings.reason}`));
      select.disabled = $("data-source-apply").disabled = true;
      box.replaceChildren(...parts);
      return;
    }
    const s = settings.data;
    const choices = (s.choices && s.choices.data_source) || DATA_SOURCES;
    if (Array.from(select.options, (o) => o.value).join() !== choices.join()) {
      select.replaceChildren(...choices.map((c) => el("option", { value: c }, c)));
      select.value = s.data_source;
    }
    if (document.activeElement !== select && !select.dataset.touched) select.value = s.data_source;
    parts.push(el("p", {}, "Data source: ", el("strong", { id: "data-source-now" }, s.data_source || "–")));
    select.disabled = false;
    $("data-source-apply").disabled = !has("/api/settings", "PUT");
    box.replaceChildren(...parts);
  }

  async function flow() {
    const list = $("flow");
    const answer = await panelData("flow");
    if (!answer.ok) {
      list.replaceChildren(el("li", { class: "muted" }, answer.reason));
      return;
    }
    const data = answer.data;
    const items = (data.highlights || []).map((h) => el("li", {}, typeof h === "string" ? h :
      [h.symbol, h.direction, h.text || h.summary || h.reason, h.premium === undefined ? "" : usd(h.premium)].filter(Boolean).join(" · ")));
    list.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, data.reason || "No highlights.")]));
  }

  // --- charts ------------------------------------------------------------------------

  const charts = {};
  const chartOptions = () => ({
    autoSize: true,
    layout: { background: { color: "#182028" }, textColor: "#e6edf3" },
    grid: { vertLines: { color: "#2a3540" }, horzLines: { color: "#2a3540" } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  const seconds = (iso) => Math.floor(new Date(iso).getTime() / 1000);

  function uniqueTimes(points) {
    // lightweight-charts wants strictly increasing times: same-second points are nudged.
    let last = -Infinity;
    return points.map((p) => { const t = Math.max(p.time, last + 1); last = t; return { ...p, time: t }; });
  }

  async function equity(trades) {
    const message = $("equity-message");
    if (!LWC) { message.textContent = "Chart library missing."; return; }
    let total = 0;
    const points = uniqueTimes(trades.map((t) => ({ time: seconds(t.exit_time), value: (total += t.pnl_usd) })));
    message.textContent = points.length ? "" : "No closed trades in the last 30 days.";
    $("equity").hidden = !points.length;
    if (!points.length) return;
    if (!charts.equity) {
      charts.equity = LWC.createChart($("equity"), chartOptions());
      charts.equityLine = charts.equity.addSeries(LWC.LineSeries, { color: "#58a6ff", lineWidth: 2 });
    }
    charts.equityLine.setData(points.map((p) => ({ time: p.time, value: Math.round(p.value * 100) / 100 })));
    charts.equity.timeScale().fitContent();
  }

  function chartSymbols(alerts, held) {
    const select = $("chart-symbol");
    const symbols = [...new Set([...held.map((p) => p.symbol), ...alerts.map((a) => a.symbol)].filter(Boolean))];
    if (!state.chartSymbol || !symbols.includes(state.chartSymbol)) state.chartSymbol = symbols[0] || "";
    const current = Array.from(select.options, (o) => o.value).join(",");
    if (current !== symbols.join(",")) select.replaceChildren(...symbols.map((s) => el("option", { value: s }, s)));
    select.value = state.chartSymbol;
  }

  async function priceChart(trades, orders) {
    const message = $("chart-message");
    const symbol = state.chartSymbol;
    if (!symbol) { message.textContent = "No symbol yet: the chart follows your positions and alerts."; return; }
    if (!LWC) { message.textContent = "Chart library missing."; return; }
    const answer = await panelData("bars", `?symbol=${encodeURIComponent(symbol)}&timeframe=1Min&limit=390`);
    const data = answer.ok ? answer.data : { bars: [] };
    const bars = uniqueTimes((data.bars || []).map((b) => ({ time: seconds(b.time), open: b.open, high: b.high, low: b.low, close: b.close })));
    message.textContent = bars.length ? "" : `Price bars for ${symbol}: ${answer.ok ? "none yet" : answer.reason}`;
    $("chart").hidden = !bars.length;
    if (!bars.length) return;
    if (!charts.price) {
      charts.price = LWC.createChart($("chart"), chartOptions());
      // Keep the stop and target lines in view: the scale spans them as well as the bars.
      charts.candles = charts.price.addSeries(LWC.CandlestickSeries, {
        autoscaleInfoProvider: (original) => {
          const range = original();
          if (!range || !charts.lineRange) return range;
          const [low, high] = charts.lineRange;
          range.priceRange.minValue = Math.min(range.priceRange.minValue, low);
          range.priceRange.maxValue = Math.max(range.priceRange.maxValue, high);
          return range;
        },
      });
      charts.markers = LWC.createSeriesMarkers(charts.candles, []);
      charts.lines = [];
    }
    charts.candles.setData(bars);
    if (charts.fitted !== symbol) { charts.price.timeScale().fitContent(); charts.fitted = symbol; }
    const mine = trades.filter((t) => t.symbol === symbol);
    const markers = [];
    for (const t of mine) {
      const long = t.side === "long";
      markers.push({ time: seconds(t.entry_time), position: long ? "belowBar" : "aboveBar", color: "#58a6ff", shape: long ? "arrowUp" : "arrowDown", text: `entry ${num(t.entry_price)}` });
      markers.push({ time: seconds(t.exit_time), position: long ? "aboveBar" : "belowBar", color: t.pnl_usd >= 0 ? "#3fb950" : "#f85149", shape: "circle", text: `exit ${num(t.exit_price)}` });
    }
    for (const o of orders.filter((o) => o.symbol === symbol && o.filled_at && !o.parent_client_order_id)) {
      markers.push({ time: seconds(o.filled_at), position: o.side === "buy" ? "belowBar" : "aboveBar", color: "#d29922", shape: o.side === "buy" ? "arrowUp" : "arrowDown", text: `${o.side} ${num(o.filled_avg_price)}` });
    }
    // A marker sits on the bar its moment falls in (the chart places markers on bar times).
    const snapped = [];
    for (const m of markers) {
      let bar = null;
      for (const b of bars) { if (b.time <= m.time) bar = b; else break; }
      if (bar) snapped.push({ ...m, time: bar.time });
    }
    charts.markers.setMarkers(snapped.sort((a, b) => a.time - b.time));
    for (const line of charts.lines) charts.candles.removePriceLine(line);
    charts.lines = [];
    const working = new Set(["new", "accepted", "pending", "partially_filled"]);
    const legs = orders.filter((o) => o.symbol === symbol).flatMap((o) => [o, ...(o.legs || [])]);
    const levels = [];
    for (const leg of legs.filter((l) => working.has(l.status))) {
      if (leg.stop_price) levels.push([leg.stop_price, "#f85149", "stop"]);
      else if (leg.limit_price && leg.parent_client_order_id) levels.push([leg.limit_price, "#3fb950", "target"]);
    }
    for (const [price, color, title] of levels) {
      charts.lines.push(charts.candles.createPriceLine({ price, color, lineStyle: 2, title }));
    }
    charts.lineRange = levels.length ? [Math.min(...levels.map((l) => l[0])), Math.max(...levels.map((l) => l[0]))] : null;
    $("chart").dataset.levels = levels.map((l) => l[2]).join(",");
  }

  // --- journal -----------------------------------------------------------------------

  async function journal() {
    const params = new URLSearchParams({ limit: "100" });
    const symbol = $("f-symbol").value.trim().toUpperCase();
    if (symbol) params.set("symbol", symbol);
    if ($("f-status").value) params.set("status", $("f-status").value);
    if ($("f-date").value) params.set("date", $("f-date").value);
    const data = await api(`api/alerts?${params}`);
    fill($("journal").tBodies[0], data.alerts.map((a) => [
      dateTime(a.received_at), a.symbol, a.action || "", a.price === null ? "–" : num(a.price),
      el("span", { class: `badge s-${a.status}` }, a.status), el("td", { class: "reason" }, a.reason),
    ]), "Nothing matches these filters.", 6);
  }

  function tradesTable(trades) {
    const symbol = $("f-symbol").value.trim().toUpperCase();
    const day = $("f-date").value;
    const shown = trades.filter((t) => (!symbol || t.symbol === symbol) && (!day || t.exit_time.slice(0, 10) === day)).reverse();
    fill($("trades").tBodies[0], shown.map((t) => [
      dateTime(t.exit_time), t.symbol, t.side, num(t.qty, 0), num(t.entry_price), num(t.exit_price), signed(t.pnl_usd), t.exit_reason,
    ]), "No closed trades.", 8);
  }

  // --- actions -----------------------------------------------------------------------

  async function act(what, confirmText, call) {
    if (!window.confirm(confirmText)) return;
    try {
      const result = await call();
      say(`${what}: done${result && result.results ? " — " + result.results.map((r) => `${r.symbol} ${r.status}`).join(", ") : ""}.`);
    } catch (e) {
      say(`${what} failed: ${e.message}`, true);
    }
    refresh();
  }

  function flatten(symbol) {
    const path = symbol ? `api/positions/${encodeURIComponent(symbol)}/flatten` : "api/positions/flatten";
    const id = requestId(); // one per confirmed click: a resend names the same order
    act(symbol ? `Flatten ${symbol}` : "Flatten all", symbol ? `Close the whole ${symbol} position at market now?` : "Close EVERY position at market now?",
      () => api(path, { method: "POST", body: { request_id: id } }));
  }

  $("flatten-all").addEventListener("click", () => flatten(null));
  $("kill-toggle").addEventListener("click", () => {
    const engage = $("kill-toggle").dataset.engaged !== "1";
    act(engage ? "Kill switch on" : "Kill switch off",
      engage ? "Engage the kill switch? No order will be placed until it is released." : "Release the kill switch and allow trading?",
      () => api("api/kill-switch", { method: "PUT", body: { engaged: engage, reason: engage ? "engaged from the dashboard" : "" } }));
  });
  $("data-source").addEventListener("change", () => { $("data-source").dataset.touched = "1"; });
  $("data-source-apply").addEventListener("click", () => {
    delete $("data-source").dataset.touched;
    const source = $("data-source").value;
    act(`Data source ${source}`, `Switch the market data source to ${source}?`,
      () => api("api/settings", { method: "PUT", body: { data_source: source } }));
  });
  $("journal-filters").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  $("chart-symbol").addEventListener("change", () => { state.chartSymbol = $("chart-symbol").value; refresh(); });
  $("logout").addEventListener("click", async () => {
    state.stopped = true;
    try { await api("dashboard/logout", { method: "POST", body: {} }); } catch (e) { /* reloads below */ }
    window.location.reload();
  });

  // --- refresh loop ------------------------------------------------------------------

  async function panel(id, task) {
    // One panel's failure is shown in that panel only; the next refresh clears it.
    const section = $(id);
    try {
      const value = await task();
      const note = section.querySelector(".panel-error");
      if (note) note.remove();
      return value;
    } catch (e) {
      if (e.message === "logged out") return undefined;
      let note = section.querySelector(".panel-error");
      if (!note) { note = el("p", { class: "panel-error error" }); section.append(note); }
      note.textContent = e.message;
      return undefined;
    }
  }

  async function refresh() {
    if (state.busy || state.stopped) return;
    state.busy = true;
    try {
      const [alerts, held] = await Promise.all([
        panel("panel-setups", setups), panel("panel-positions", positions),
        panel("panel-pnl", pnl), killSwitch().catch(() => {}),
        panel("panel-market", market), panel("panel-flow", flow), panel("panel-journal", journal),
      ]);
      let trades = [];
      let orders = [];
      await panel("panel-equity", async () => {
        trades = (await api(`api/pnl?from=${daysAgo(30)}&to=${today()}`)).trades || [];
        tradesTable(trades);
        await equity(trades);
      });
      chartSymbols(alerts || [], held || []);
      await panel("panel-chart", async () => {
        orders = (await api("api/orders?limit=100")).orders || [];
        await priceChart(trades, orders);
      });
      $("updated").textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
    } finally {
      state.busy = false;
    }
  }

  async function start() {
    const session = await api("dashboard/session");
    state.csrf = session.csrf;
    state.refreshMs = Math.max(2, session.refresh_s || 5) * 1000;
    state.routes = session.routes || {};
    await refresh();
    const loop = async () => {
      if (state.stopped) return;
      await refresh();
      setTimeout(loop, state.refreshMs);
    };
    setTimeout(loop, state.refreshMs);
  }

  start().catch((e) => { if (e.message !== "logged out") say(`The dashboard could not start: ${e.message}`, true); });
})();
