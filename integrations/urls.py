"""API routes of the integrations app (mounted under /api/)."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from accounts.api import UUID_PATTERN

from . import api

router = SimpleRouter()
router.trailing_slash = "/?"  # the constructor only takes a bool; both spellings are served
router.register("webhooks/endpoints", api.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhooks/deliveries", api.WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = [
    path("systeme/stats", api.SystemeStatsView.as_view(), name="systeme-stats"),
    path("systeme/sync", api.SystemeSyncView.as_view(), name="systeme-sync"),
    path("webhooks/systeme", api.SystemeWebhookView.as_view(), name="systeme-webhook"),
    path("webhooks/status", api.WebhookStatusView.as_view(), name="webhooks-status"),
    re_path(
        rf"^accounts/(?P<account_id>{UUID_PATTERN})/preflight/?$", api.PreflightView.as_view(), name="account-preflight"
    ),
    re_path(
        rf"^accounts/(?P<account_id>{UUID_PATTERN})/preflight/template\.tpl$",
        api.PreflightFileView.as_view(kind="template", http_method_names=["get", "head", "options"]),
        name="account-preflight-template",
    ),
    re_path(
        rf"^accounts/(?P<account_id>{UUID_PATTERN})/preflight/startup\.ini$",
        api.PreflightFileView.as_view(kind="ini"),
        name="account-preflight-ini",
    ),
    *router.urls,
]
