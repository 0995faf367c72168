"""API routes of the bonuses app (mounted under /api/)."""

from django.urls import path

from . import api

urlpatterns = [
    path("campaigns", api.CampaignListView.as_view(), name="bonus-campaigns"),
    path("campaigns/<int:pk>", api.CampaignDetailView.as_view(), name="bonus-campaign"),
    path("campaigns/<int:pk>/duplicate", api.CampaignDuplicateView.as_view(), name="bonus-campaign-duplicate"),
    path("campaigns/<int:pk>/status", api.CampaignStatusView.as_view(), name="bonus-campaign-status"),
    path("bonuses", api.BonusListView.as_view(), name="bonus-list"),
    path("bonuses/check-eligibility", api.EligibilityView.as_view(), name="bonus-check-eligibility"),
    path("bonuses/assign", api.AssignView.as_view(), name="bonus-assign"),
    path("bonuses/<int:pk>", api.BonusDetailView.as_view(), name="bonus-detail"),
    path("bonuses/<int:pk>/cancel", api.BonusCancelView.as_view(), name="bonus-cancel"),
    path("bonuses/<int:pk>/force-convert", api.BonusForceConvertView.as_view(), name="bonus-force-convert"),
    path("bonuses/<int:pk>/override-leverage", api.BonusOverrideLeverageView.as_view(), name="bonus-override-leverage"),
    path("triggers/deposit", api.DepositTriggerView.as_view(), name="bonus-trigger-deposit"),
    path("triggers/registration", api.RegistrationTriggerView.as_view(), name="bonus-trigger-registration"),
    path("triggers/promo-code", api.PromoCodeTriggerView.as_view(), name="bonus-trigger-promo"),
    # Integer MT5 logins: the traders' /api/accounts/{uuid} routes only match UUIDs.
    path("accounts/mt5-metadata", api.Mt5MetadataView.as_view(), name="bonus-mt5-metadata"),
    path("accounts/<int:login>", api.AccountLookupView.as_view(), name="bonus-account-lookup"),
    path("monitoring/status", api.MonitoringStatusView.as_view(), name="bonus-monitoring-status"),
    path("monitoring/accounts", api.MonitoredAccountListView.as_view(), name="bonus-monitored-accounts"),
    path("monitoring/accounts/<int:login>/register", api.RegisterAccountView.as_view(), name="bonus-register"),
    path("monitoring/accounts/<int:login>/reset-errors", api.ResetErrorsView.as_view(), name="bonus-reset-errors"),
    path("monitoring/accounts/<int:login>/test-deposit", api.TestDepositView.as_view(), name="bonus-test-deposit"),
    path("monitoring/accounts/<int:login>/test-withdraw", api.TestWithdrawView.as_view(), name="bonus-test-withdraw"),
    path("reports/summary", api.SummaryReportView.as_view(), name="bonus-report-summary"),
    path("reports/conversions", api.ConversionsReportView.as_view(), name="bonus-report-conversions"),
    path("reports/cancellations", api.CancellationsReportView.as_view(), name="bonus-report-cancellations"),
    path("reports/leverage", api.LeverageReportView.as_view(), name="bonus-report-leverage"),
    path("reports/export", api.ExportView.as_view(), name="bonus-report-export"),
    path("audit", api.AuditListView.as_view(), name="bonus-audit"),
]
