// Live figures over the WebSocket: reconnects with backoff and catches up (the server sends the
// latest figures on every connect). Elements opt in with data-live="<account id>" data-field="equity".
(function () {
  "use strict";
  const root = document.querySelector("[data-live-socket]");
  if (!root || !("WebSocket" in window)) return;
  const path = root.getAttribute("data-live-socket");
  const status = document.getElementById("live-status");
  const money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  let delay = 1000;
  let socket = null;
  let lastMessage = 0;

  function setStatus(state, text) {
    if (!status) return;
    status.className = "live-dot " + state;
    status.textContent = text;
  }

  function fmt(value) {
    if (value === null || value === undefined || value === "") return "—";
    const n = Number(value);
    return Number.isFinite(n) ? money.format(n) : String(value);
  }

  function paint(el, value, field) {
    const text = field === "margin_level" && (value === null || value === undefined) ? "—" : fmt(value);
    if (el.textContent.trim() === text) return;
    const before = Number(el.getAttribute("data-value"));
    el.textContent = field === "margin_level" && value !== null && value !== undefined ? text + " %" : text;
    el.setAttribute("data-value", value === null || value === undefined ? "" : value);
    const after = Number(value);
    el.classList.remove("flash-up", "flash-down");
    void el.offsetWidth;  // restart the animation
    if (Number.isFinite(before) && Number.isFinite(after) && before !== after) {
      el.classList.add(after > before ? "flash-up" : "flash-down");
    }
    if (el.hasAttribute("data-signed")) {
      el.classList.toggle("up", after > 0);
      el.classList.toggle("down", after < 0);
    }
  }

  function updateTotals() {
    document.querySelectorAll("[data-total]").forEach(function (el) {
      const currency = el.getAttribute("data-total");
      const field = el.getAttribute("data-field");
      let sum = 0;
      let seen = false;
      document.querySelectorAll('.account-table [data-row-currency="' + currency + '"] [data-field="' + field + '"]').forEach(function (cell) {
        const v = Number(cell.getAttribute("data-value"));
        if (Number.isFinite(v)) { sum += v; seen = true; }
      });
      if (seen) paint(el, sum.toFixed(2), field);
    });
  }

  function esc(value) {
    return String(value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // Every value is escaped: symbols and tickets come from MT5, and fmt() passes a non-number through as text.
  function positionsRows(list) {
    return list.map(function (p) {
      const cls = Number(p.profit) >= 0 ? "up" : "down";
      return "<tr><td>" + esc(p.ticket) + "</td><td>" + esc(p.symbol) + "</td><td>" + esc(p.side) + "</td><td class='num'>" +
        esc(p.volume) + "</td><td class='num'>" + esc(p.price_open) + "</td><td class='num'>" + (p.price_current == null ? "—" : esc(p.price_current)) +
        "</td><td class='num hide-sm'>" + esc(fmt(p.swap)) + "</td><td class='num " + cls + "'>" + esc(fmt(p.profit)) + "</td></tr>";
    }).join("");
  }

  function apply(data) {
    const id = data.account;
    document.querySelectorAll('[data-live="' + id + '"]').forEach(function (el) {
      const field = el.getAttribute("data-field");
      if (field && field in data) paint(el, data[field], field);
    });
    const table = document.querySelector('[data-live-positions="' + id + '"]');
    if (table && Array.isArray(data.positions)) {
      const body = table.querySelector("tbody");
      const empty = document.querySelector('[data-live-positions-empty="' + id + '"]');
      body.innerHTML = positionsRows(data.positions);
      table.hidden = data.positions.length === 0;
      if (empty) empty.hidden = data.positions.length !== 0;
    }
    updateTotals();
    const stamp = document.getElementById("live-updated");
    if (stamp) stamp.textContent = new Date().toLocaleTimeString();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + path);
    setStatus("", "Connecting…");
    socket.onopen = function () { delay = 1000; setStatus("on", "Live"); };
    socket.onmessage = function (event) {
      lastMessage = Date.now();
      let data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (data.type === "account") apply(data);
    };
    socket.onclose = function (event) {
      if (event.code === 4401) { setStatus("off", "Signed out"); return; }
      const wait = delay;
      delay = Math.min(delay * 2, 30000);
      setStatus("off", "Reconnecting in " + Math.round(wait / 1000) + " s…");
      setTimeout(connect, wait + Math.random() * 250);
    };
  }

  document.addEventListener("visibilitychange", function () {
    // Background tabs may have missed updates: ask for the latest copy when shown again.
    if (document.visibilityState === "visible" && socket && socket.readyState === WebSocket.OPEN &&
        Date.now() - lastMessage > 5000) {
      socket.send(JSON.stringify({ type: "refresh" }));
    }
  });
  window.mt5Live = { apply: apply };
  connect();
})();
