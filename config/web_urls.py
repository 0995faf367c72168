"""Web UI routes (server-rendered pages): each app's web_urls, mounted at the root."""

from django.urls import include, path

WEB_APPS = ["accounts", "mt5bridge", "copytrading", "bonuses", "billing", "integrations"]

urlpatterns = [path("", include(f"{app}.web_urls")) for app in WEB_APPS]
