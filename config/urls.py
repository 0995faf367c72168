"""Top-level URLs: admin, API (schema, docs and each app's routes), web UI."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

handler400 = "config.errors.json_400"

API_APPS = ["accounts", "mt5bridge", "copytrading", "bonuses", "billing", "integrations"]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    *[path("api/", include(f"{app}.urls")) for app in API_APPS],
    path("", include("config.web_urls")),
]
