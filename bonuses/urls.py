"""API routes of the bonuses app (mounted under /api/)."""

from django.urls import path

from .api import bonuses, campaigns, monitoring, reports, trader, triggers
from .api.finance import FinanceExportView, FinanceReportView
from .api.reconciliation import MismatchListView, MismatchReviewView, RunListView

urlpatterns = [
    path("campaigns", campaigns.CampaignListView.as_view(), name="bonus-campaigns"),
    path("campaigns/<int:pk>", campaigns.CampaignDetailView.as_view(), name="bonus-campaign"),
    path("campaigns/<int:pk>/duplicate", campaigns.CampaignDuplicateView.as_view(), name="bonus-campaign-duplicate"),
    path("campaigns/<int:pk>/status", campaigns.CampaignStatusView.as_view(), name="bonus-campaign-status"),
    path("bonuses", bonuses.BonusListView.as_view(), name="bonus-list"),
    path("bonuses/check-eligibility", bonuses.EligibilityView.as_view(), name="bonus-check-eligibility"),
    path("bonuses/assign", bonuses.AssignView.as_view(), name="bonus-assign"),
    path("bonuses/<int:pk>", bonuses.BonusDetailView.as_view(), name="bonus-detail"),
    path("bonuses/<int:pk>/cancel", bonuses.BonusCancelView.as_view(), name="bonus-cancel"),
    path("bonuses/<int:pk>/force-convert", bonuses.BonusForceConvertView.as_view(), name="bonus-force-convert"),
    path(
        "bonuses/<int:pk>/override-leverage",
        bonuses.BonusOverrideLeverageView.as_view(),
        name="bonus-override-leverage",
    ),
    path("triggers/deposit", triggers.DepositTriggerView.as_view(), name="bonus-trigger-deposit"),
    path("triggers/registration", triggers.RegistrationTriggerView.as_view(), name="bonus-trigger-registration"),
    path("triggers/promo-code", triggers.PromoCodeTriggerView.as_view(), name="bonus-trigger-promo"),
    # Integer MT5 logins: the traders' /api/accounts/{uuid} routes only match UUIDs.
    # A trader's own account (UUID, the accounts app's id): bonuses and a withdrawal preview.
    path("accounts/<uuid:account_id>/bonuses", trader.AccountBonusesView.as_view(), name="trader-account-bonuses"),
    path("accounts/mt5-metadata", monitoring.Mt5MetadataView.as_view(), name="bonus-mt5-metadata"),
    path("accounts/<int:login>", monitoring.AccountLookupView.as_view(), name="bonus-account-lookup"),
    path("monitoring/status", monitoring.MonitoringStatusView.as_view(), name="bonus-monitoring-status"),
    path("monitoring/accounts", monitoring.MonitoredAccountListView.as_view(), name="bonus-monitored-accounts"),
    path("monitoring/accounts/<int:login>/register", monitoring.RegisterAccountView.as_view(), name="bonus-register"),
    path(
        "monitoring/accounts/<int:login>/reset-errors", monitoring.ResetErrorsView.as_view(), name="bonus-reset-errors"
    ),
    path(
        "monitoring/accounts/<int:login>/test-deposit", monitoring.TestDepositView.as_view(), name="bonus-test-deposit"
    ),
    path(
        "monitoring/accounts/<int:login>/test-withdraw",
        monitoring.TestWithdrawView.as_view(),
        name="bonus-test-withdraw",
    ),
    path("reports/summary", reports.SummaryReportView.as_view(), name="bonus-report-summary"),
    path("reports/conversions", reports.ConversionsReportView.as_view(), name="bonus-report-conversions"),
    path("reports/cancellations", reports.CancellationsReportView.as_view(), name="bonus-report-cancellations"),
    path("reports/leverage", reports.LeverageReportView.as_view(), name="bonus-report-leverage"),
    path("reports/export", reports.ExportView.as_view(), name="bonus-report-export"),
    path("reports/finance", FinanceReportView.as_view(), name="bonus-report-finance"),
    path("reports/finance/export", FinanceExportView.as_view(), name="bonus-report-finance-export"),
    path("reconciliation/runs", RunListView.as_view(), name="bonus-reconciliation-runs"),
    path("reconciliation/mismatches", MismatchListView.as_view(), name="bonus-reconciliation-mismatches"),
    path(
        "reconciliation/mismatches/<int:pk>/review",
        MismatchReviewView.as_view(),
        name="bonus-reconciliation-review",
    ),
    path("audit", reports.AuditListView.as_view(), name="bonus-audit"),
]
