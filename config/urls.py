"""Top-level URLs: admin, API (schema, docs and each app's routes), web UI."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import LivenessView, ReadinessView

handler400 = "config.errors.json_400"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"

API_APPS = ["accounts", "mt5bridge", "copytrading", "bonuses", "billing", "integrations"]

urlpatterns = [
    path("admin/", admin.site.urls),
    # Probes (docs/deploy.md "Health"): no sign-in, JSON, never cached.
    path("health/live/", LivenessView.as_view(), name="health-live"),
    path("health/ready/", ReadinessView.as_view(), name="health-ready"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as its own file (?script): no inline script under the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    *[path("api/", include(f"{app}.urls")) for app in API_APPS],
    path("", include("config.web_urls")),
]
