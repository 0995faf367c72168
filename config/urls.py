"""Top-level URLs: admin, API (schema, docs and each app's routes), web UI."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

handler400 = "config.errors.json_400"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"

API_APPS = ["accounts", "mt5bridge", "copytrading", "bonuses", "billing", "integrations"]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as its own file (?script): no inline script under the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    *[path("api/", include(f"{app}.urls")) for app in API_APPS],
    path("", include("config.web_urls")),
]
