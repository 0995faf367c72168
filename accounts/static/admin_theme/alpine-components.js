// The admin theme's Alpine components under Alpine's CSP build: an x-data expression may call only what is
// registered with Alpine.data, not global functions, so the theme's own (defined in unfold/js/app.js) are
// registered here before Alpine starts.
document.addEventListener("alpine:init", () => {
  for (const name of ["theme", "searchForm", "searchDropdown", "searchCommand"]) {
    if (typeof window[name] === "function") {
      window.Alpine.data(name, window[name]);
    }
  }
});
