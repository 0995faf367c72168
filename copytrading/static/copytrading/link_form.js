// The copy link form shows only the sizing fields of the chosen mode (rows carry data-sizing-modes);
// without JavaScript every field shows and the server ignores the ones the mode does not read.
(function () {
  "use strict";
  document.querySelectorAll("form[data-link-form]").forEach(function (form) {
    const mode = form.querySelector("[name=sizing_mode]");
    const noSl = form.querySelector("[name=no_sl]");
    if (!mode) return;
    function sync() {
      form.querySelectorAll("[data-sizing-modes]").forEach(function (row) {
        let shown = row.getAttribute("data-sizing-modes").split(" ").indexOf(mode.value) >= 0;
        if (shown && noSl && row.querySelector("[name=default_sl_points]")) shown = noSl.value === "default";
        row.hidden = !shown;
      });
    }
    mode.addEventListener("change", sync);
    if (noSl) noSl.addEventListener("change", sync);
    sync();
  });
})();
