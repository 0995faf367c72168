"""API routes of the accounts app."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api, api_data, api_privacy, api_statements

router = SimpleRouter()
router.trailing_slash = "/?"  # the constructor only takes a bool; both spellings are served
router.register("accounts", api.TradingAccountViewSet, basename="account")

urlpatterns = [
    path("auth/login", api.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", api.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", api.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", api.MeView.as_view(), name="auth-me"),
    path("auth/verify-email", api_privacy.VerifyEmailView.as_view(), name="auth-verify-email"),
    path("auth/verify-email/resend", api_privacy.ResendVerificationView.as_view(), name="auth-verify-email-resend"),
    path("me/consent", api_privacy.ConsentView.as_view(), name="me-consent"),
    path("me/export", api_privacy.ExportView.as_view(), name="me-export"),
    path("me/delete", api_privacy.DeleteAccountView.as_view(), name="me-delete"),
    path("sync/health", api.SyncHealthView.as_view(), name="sync-health"),
    *router.urls,
    # Trader data: dashboard, analytics, per-account history, the MT5 dashboard endpoints.
    path("dashboard/summary", api_data.DashboardSummaryView.as_view(), name="dashboard-summary"),
    path("analytics/<uuid:account_id>", api_data.AnalyticsView.as_view(), name="account-analytics"),
    path("accounts/<uuid:account_id>/snapshots", api_data.AccountSnapshotList.as_view(), name="account-snapshots"),
    path("accounts/<uuid:account_id>/positions", api_data.AccountPositionList.as_view(), name="account-positions"),
    path("accounts/<uuid:account_id>/deals", api_data.AccountDealList.as_view(), name="account-deals"),
    path("mt5/stats", api_data.Mt5StatsView.as_view(), name="mt5-stats"),
    path("mt5/refresh", api_data.Mt5RefreshView.as_view(), name="mt5-refresh"),
]
urlpatterns.append(
    path(
        "accounts/<uuid:account_id>/statements", api_statements.StatementImportView.as_view(), name="account-statements"
    )
)
