// Rule hits arrive live on each account's WebSocket group (same socket as the dashboards). The account ids
// come from the table's data-live-accounts attribute; every value goes into the page as text, never as HTML.
(function () {
  "use strict";
  var table = document.getElementById("rule-hits");
  if (!table || !("WebSocket" in window)) return;
  var ids = (table.getAttribute("data-live-accounts") || "").split(/\s+/).filter(function (id) { return /^\d+$/.test(id); });
  var proto = location.protocol === "https:" ? "wss://" : "ws://";
  ids.forEach(function (id) {
    try {
      var ws = new WebSocket(proto + location.host + "/ws/accounts/" + id + "/");
      ws.onmessage = function (e) {
        var msg;
        try { msg = JSON.parse(e.data); } catch (err) { return; }
        var hit = msg.type === "rule_hit" ? msg.rule_hit : null;
        if (!hit) return;
        var body = table.querySelector("tbody");
        var empty = body.querySelector(".empty-row"); if (empty) empty.remove();
        var tr = document.createElement("tr");
        [hit.created_at, id, hit.kind, hit.action, hit.detail].forEach(function (text) {
          var td = document.createElement("td"); td.textContent = text == null ? "" : String(text); tr.appendChild(td);
        });
        body.prepend(tr);
      };
    } catch (err) { /* live updates are a bonus; the list reloads with the page */ }
  });
})();
