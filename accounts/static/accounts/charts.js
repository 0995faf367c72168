// Charts of the account and analytics pages (Chart.js + zoom plugin, data from json_script tags).
(function () {
  "use strict";
  if (!window.Chart) return;
  const css = getComputedStyle(document.documentElement);
  const UP = css.getPropertyValue("--up").trim() || "#0f8a4f";
  const DOWN = css.getPropertyValue("--down").trim() || "#c8313a";
  const BRAND = css.getPropertyValue("--brand").trim() || "#2456d3";
  if (window.ChartZoom) Chart.register(window.ChartZoom);
  Chart.defaults.font.family = css.fontFamily;
  Chart.defaults.color = "#5d6b82";
  Chart.defaults.maintainAspectRatio = false;

  function data(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  const num = function (v) { return v === null || v === undefined ? null : Number(v); };
  const colorBy = function (values) { return values.map(function (v) { return v >= 0 ? UP : DOWN; }); };
  const zoom = {
    zoom: { wheel: { enabled: true }, pinch: { enabled: true }, drag: { enabled: false }, mode: "x" },
    pan: { enabled: true, mode: "x" },
    limits: { x: { min: "original", max: "original" } },
  };

  const timeScale = { type: "time", time: { tooltipFormat: "yyyy-MM-dd HH:mm", minUnit: "minute" }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } };
  // Rows are [time, ...values]; a point is {x: ms, y: number}.
  const points = function (rows, col, sign) {
    return rows.map(function (r) { const v = num(r[col]); return { x: Date.parse(r[0]), y: v === null ? null : (sign || 1) * v }; });
  };
  // Dashed where the equity is estimated (no snapshot at either end of the segment).
  const estimated = function (rows) {
    return { borderDash: function (ctx) { const r = rows[ctx.p1DataIndex]; const l = rows[ctx.p0DataIndex]; return r && l && r[3] && l[3] ? [5, 4] : undefined; } };
  };

  // The range buttons of a card: "All" shows the data the page came with, the others ask the server for
  // the range (ending now) and redraw every chart of the page with it.
  function rangeButtons(card, initial, draw) {
    if (!card) return;
    const url = card.getAttribute("data-chart-url");
    const buttons = card.querySelectorAll("[data-range]");
    buttons.forEach(function (button) {
      button.addEventListener("click", function () {
        buttons.forEach(function (b) { b.classList.remove("active"); });
        button.classList.add("active");
        const name = button.getAttribute("data-range");
        if (name === "All" || !url) { draw(initial, null); return; }
        fetch(url + "?range=" + encodeURIComponent(name), { headers: { Accept: "application/json" }, credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (body) { if (body) draw(body, { min: Date.parse(body.start), max: Date.parse(body.end) }); });
      });
    });
  }

  function setBounds(chart, bounds) {
    chart.options.scales.x.min = bounds ? bounds.min : undefined;
    chart.options.scales.x.max = bounds ? bounds.max : undefined;
    if (chart.resetZoom) chart.resetZoom("none");
    chart.update("none");
  }

  function equityChart() {
    const canvas = document.getElementById("equity-chart");
    const rows = data("equity-data");
    if (!canvas || !rows || !rows.length) return;
    let current = rows;
    const chart = new Chart(canvas, {
      type: "line",
      data: {
        datasets: [
          { label: "Equity", data: points(rows, 1), segment: { borderDash: function (ctx) { return estimated(current).borderDash(ctx); } },
            borderColor: BRAND, backgroundColor: "rgba(36,86,211,.08)", fill: true, pointRadius: 0, borderWidth: 2, tension: 0.15 },
          { label: "Balance", data: points(rows, 2), borderColor: "#18a37a", pointRadius: 0, borderWidth: 1.5, stepped: true },
        ],
      },
      options: {
        parsing: false, animation: false, interaction: { mode: "index", intersect: false },
        scales: { x: timeScale, y: { ticks: { callback: function (v) { return v.toLocaleString(); } } } },
        plugins: { zoom: zoom, legend: { position: "bottom" } },
      },
    });
    rangeButtons(canvas.closest("[data-chart-url]"), { equity: rows }, function (body, bounds) {
      current = body.equity || [];
      chart.data.datasets[0].data = points(current, 1);
      chart.data.datasets[1].data = points(current, 2);
      setBounds(chart, bounds);
    });
    const reset = document.getElementById("equity-reset");
    if (reset) reset.addEventListener("click", function () { chart.resetZoom(); });
  }

  function bars(id, labels, values, label, opts) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    new Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: label, data: values, backgroundColor: (opts && opts.color) || colorBy(values), borderRadius: 3 }] },
      options: { animation: false, plugins: { legend: { display: false } }, indexAxis: (opts && opts.horizontal) ? "y" : "x" },
    });
  }

  function analytics() {
    const series = data("analytics-series");
    if (!series) return;
    const monthly = series.monthly_returns || [];
    bars("monthly-chart", monthly.map(function (m) { return m.month; }), monthly.map(function (m) { return num(m.return_pct); }), "Return %");
    const dd = series.drawdown || [];
    const ddCanvas = document.getElementById("drawdown-chart");
    let ddChart = null;
    if (ddCanvas && dd.length) {
      ddChart = new Chart(ddCanvas, {
        type: "line",
        data: { datasets: [{ label: "Drawdown %", data: dd.map(function (r) { return { x: Date.parse(r[0]), y: -Math.abs(num(r[1])) }; }),
          borderColor: DOWN, backgroundColor: "rgba(200,49,58,.12)", fill: true, pointRadius: 0, borderWidth: 1.5 }] },
        options: { parsing: false, animation: false, scales: { x: Object.assign({}, timeScale) }, plugins: { zoom: zoom, legend: { display: false } } },
      });
    }
    const growth = series.growth || [];
    const growthCanvas = document.getElementById("growth-chart");
    if (growthCanvas && growth.length) {
      const growthChart = new Chart(growthCanvas, {
        type: "line",
        data: { datasets: [
          { label: "Gain %", data: points(growth, 1), borderColor: BRAND, backgroundColor: "rgba(36,86,211,.08)", fill: "origin", pointRadius: 0, borderWidth: 2, stepped: true },
          { label: "Equity gain %", data: points(growth, 2), borderColor: "#7a8aa6", borderDash: [5, 4], pointRadius: 0, borderWidth: 1.2 },
        ] },
        options: {
          parsing: false, animation: false, interaction: { mode: "index", intersect: false },
          scales: { x: Object.assign({}, timeScale), y: { ticks: { callback: function (v) { return v + " %"; } } } },
          plugins: { zoom: zoom, legend: { position: "bottom" } },
        },
      });
      rangeButtons(growthCanvas.closest("[data-chart-url]"), { growth: growth, drawdown: dd }, function (body, bounds) {
        growthChart.data.datasets[0].data = points(body.growth || [], 1);
        growthChart.data.datasets[1].data = points(body.growth || [], 2);
        setBounds(growthChart, bounds);
        if (ddChart) {
          ddChart.data.datasets[0].data = (body.drawdown || []).map(function (r) { return { x: Date.parse(r[0]), y: -Math.abs(num(r[1])) }; });
          setBounds(ddChart, bounds);
        }
      });
    }
    const sym = (series.by_symbol || []).slice(0, 15);
    bars("symbol-chart", sym.map(function (r) { return r.symbol; }), sym.map(function (r) { return num(r.profit); }), "Profit", { horizontal: true });
    const hours = series.by_hour || [];
    bars("hour-chart", hours.map(function (r) { return String(r.hour).padStart(2, "0") + ":00"; }), hours.map(function (r) { return num(r.profit); }), "Profit");
    const names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const days = series.by_weekday || [];
    bars("weekday-chart", days.map(function (r) { return names[r.weekday]; }), days.map(function (r) { return num(r.profit); }), "Profit");
    const dist = series.profit_distribution || [];
    bars("distribution-chart", dist.map(function (r) { return Math.round(num(r.from)) + "…" + Math.round(num(r.to)); }),
      dist.map(function (r) { return r.count; }), "Trades", { color: dist.map(function (r) { return num(r.to) <= 0 ? DOWN : UP; }) });
  }

  equityChart();
  analytics();
})();
