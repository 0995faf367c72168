"""Web UI routes of the accounts app (server-rendered pages)."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import web, web_charts, web_privacy, web_settings

auth = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="accounts/login.html",
            redirect_authenticated_user=True,
            authentication_form=web_settings.TraderLoginForm,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", web.signup, name="signup"),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(
            template_name="accounts/password_reset.html",
            email_template_name="accounts/password_reset_email.txt",
            subject_template_name="accounts/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(template_name="accounts/password_reset_confirm.html"),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="accounts/password_reset_complete.html"),
        name="password_reset_complete",
    ),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(
            template_name="accounts/password_change.html", success_url=reverse_lazy("profile")
        ),
        name="password_change",
    ),
    path("profile/", web.profile, name="profile"),
    path("profile/api-tokens/", web_settings.api_tokens, name="profile-api-tokens"),
    path("profile/two-factor/", web_settings.two_factor_settings, name="profile-two-factor"),
    path("profile/privacy/", web_privacy.privacy, name="profile-privacy"),
    path("profile/privacy/export/", web_privacy.privacy_export, name="profile-privacy-export"),
    path("profile/privacy/delete/", web_privacy.privacy_delete, name="profile-privacy-delete"),
    path("email/verify/resend/", web_privacy.email_verify_resend, name="email-verify-resend"),
    path("email/verify/<str:token>/", web_privacy.email_verify, name="email-verify"),
]

urlpatterns = [
    path("", web.home, name="home"),
    *auth,
    path("dashboard/", web.dashboard, name="dashboard"),
    path("accounts/", web.account_list, name="web-account-list"),
    path("accounts/add/", web.account_add, name="web-account-add"),
    path("accounts/<uuid:account_id>/", web.account_detail, name="web-account-detail"),
    path("accounts/<uuid:account_id>/edit/", web.account_edit, name="web-account-edit"),
    path("accounts/<uuid:account_id>/delete/", web.account_delete, name="web-account-delete"),
    path("accounts/<uuid:account_id>/sync/", web.account_sync, name="web-account-sync"),
    path("accounts/<uuid:account_id>/deals/", web.account_deals, name="web-account-deals"),
    path("accounts/<uuid:account_id>/analytics/", web.account_analytics, name="web-account-analytics"),
    path("accounts/<uuid:account_id>/chart/", web_charts.account_chart, name="web-account-chart"),
    path("accounts/<uuid:account_id>/import/", web.account_import, name="web-account-import"),
]
