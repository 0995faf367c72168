"""The admin theme's settings (django-unfold's UNFOLD), named by the broker's header.

The sidebar, its per-role entries and the dashboard are built per request in accounts.admin_nav and
bonuses.admin.dashboard (named here by path: config imports no app). Alpine.js runs as its CSP build
from node_modules (templates/unfold/layouts/skeleton.html), so the Content-Security-Policy stays strict.
"""

from __future__ import annotations


def unfold_settings(header: str) -> dict:
    return {
        "SITE_TITLE": header,
        "SITE_HEADER": header,
        "SITE_SUBHEADER": "Back office",
        "SITE_SYMBOL": "monitoring",
        "SHOW_VIEW_ON_SITE": False,
        "DASHBOARD_CALLBACK": "bonuses.admin.dashboard.dashboard_callback",
        "SIDEBAR": {
            "show_search": False,
            "show_all_applications": "accounts.admin_nav.show_all_applications",
            "navigation": "accounts.admin_nav.navigation",
        },
    }
