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

  function equityChart() {
    const canvas = document.getElementById("equity-chart");
    const rows = data("equity-data");
    if (!canvas || !rows || !rows.length) return;
    const chart = new Chart(canvas, {
      type: "line",
      data: {
        datasets: [
          { label: "Equity", data: rows.map(function (r) { return { x: Date.parse(r[0]), y: num(r[1]) }; }),
            borderColor: BRAND, backgroundColor: "rgba(36,86,211,.08)", fill: true, pointRadius: 0, borderWidth: 2, tension: 0.15 },
          { label: "Balance", data: rows.map(function (r) { return { x: Date.parse(r[0]), y: num(r[2]) }; }),
            borderColor: "#18a37a", pointRadius: 0, borderWidth: 1.5, stepped: true },
        ],
      },
      options: {
        parsing: false, animation: false, interaction: { mode: "index", intersect: false },
        scales: { x: { type: "time", time: { tooltipFormat: "yyyy-MM-dd HH:mm", minUnit: "minute" }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } }, y: { ticks: { callback: function (v) { return v.toLocaleString(); } } } },
        plugins: { zoom: zoom, legend: { position: "bottom" } },
      },
    });
    const last = rows.length ? Date.parse(rows[rows.length - 1][0]) : Date.now();
    document.querySelectorAll("[data-range]").forEach(function (button) {
      button.addEventListener("click", function () {
        document.querySelectorAll("[data-range]").forEach(function (b) { b.classList.remove("active"); });
        button.classList.add("active");
        const days = Number(button.getAttribute("data-range"));
        chart.resetZoom();
        if (days > 0) chart.zoomScale("x", { min: last - days * 86400000, max: last }, "none");
      });
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
    if (ddCanvas && dd.length) {
      new Chart(ddCanvas, {
        type: "line",
        data: { datasets: [{ label: "Drawdown %", data: dd.map(function (r) { return { x: Date.parse(r[0]), y: -Math.abs(num(r[1])) }; }),
          borderColor: DOWN, backgroundColor: "rgba(200,49,58,.12)", fill: true, pointRadius: 0, borderWidth: 1.5 }] },
        options: { parsing: false, animation: false, scales: { x: { type: "time", time: { minUnit: "minute" }, ticks: { maxRotation: 0, maxTicksLimit: 8 } } }, plugins: { zoom: zoom, legend: { display: false } } },
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
