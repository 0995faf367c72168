// The admin theme's Alpine components under Alpine's CSP build: an Alpine expression may use only what a component
// or Alpine.data provides, never a global, so the theme's own components (defined in unfold/js/app.js) are
// registered here before Alpine starts, and the page's root component is defined here.
document.addEventListener("alpine:init", () => {
  for (const name of ["theme", "searchForm", "searchDropdown", "searchCommand"]) {
    if (typeof window[name] === "function") {
      window.Alpine.data(name, window[name]);
    }
  }

  // The <body> component (templates/unfold/layouts/skeleton.html): the active tab of a change form, the sidebar's
  // state (remembered across pages), and the two parts of the address the change form's action is built from
  // (read-only: the page's own path and query, not the window object).
  window.Alpine.data("adminPage", function (activeTab) {
    return {
      activeTab: activeTab || "",
      sidebarMobileOpen: false,
      sidebarDesktopOpen: this.$persist(true).as("sidebarDesktopOpen"),
      window: {
        location: {
          get pathname() {
            return window.location.pathname;
          },
          get search() {
            return window.location.search;
          },
        },
      },
    };
  });
});
