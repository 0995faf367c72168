"""Forms of the trader web app: sign-up, profile, trading accounts, deal filters, statement upload."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm

from .choices import AccountCategory, PasswordKind
from .models import User
from .statements.upload import StatementTooLarge, upload_limit_message

KNOWN_SERVERS = ("MetaSim-Demo", "MetaSim-Live", "OtherFX-Server")


class SignupForm(UserCreationForm):
    marketing_consent = forms.BooleanField(
        required=False,
        label="Send me news and offers by email",
        help_text="Optional. Your name, email and account figures then go to our marketing tool; change it in "
        "Settings → Privacy at any time.",
    )

    class Meta:
        model = User
        fields = ("email", "display_name")
        labels = {"display_name": "Your name"}

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Log in or reset your password.")
        return email


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ("display_name", "email")
        labels = {"display_name": "Your name"}

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("Another person already uses this email.")
        return email


class TradingAccountAddForm(forms.Form):
    name = forms.CharField(
        max_length=100, required=False, help_text="Shown on your dashboard; defaults to the MT5 name."
    )
    login = forms.IntegerField(label="MT5 login", min_value=1, max_value=2**63 - 1)
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        max_length=128,
        help_text="Investor (read-only) or master password. Stored encrypted.",
    )
    server = forms.CharField(
        max_length=128,
        widget=forms.TextInput(attrs={"list": "known-servers"}),
        help_text="Exactly as the MT5 terminal shows it, e.g. MetaSim-Demo.",
    )
    category = forms.ChoiceField(choices=AccountCategory.choices, initial=AccountCategory.DEMO)
    password_kind = forms.ChoiceField(
        label="Password type",
        choices=PasswordKind.choices,
        initial=PasswordKind.MASTER,
        required=False,  # not given: the master password (an investor login is still recognised when MT5 says so)
        widget=forms.RadioSelect,
    )
    holder_name = forms.CharField(
        label="Account holder's name",
        max_length=150,
        required=False,
        help_text="Investor password only: as your MT5 terminal shows it (Navigator → Accounts).",
    )
    currency = forms.CharField(
        label="Account currency",
        max_length=8,
        required=False,
        help_text="Investor password only: the deposit currency, e.g. USD.",
    )

    known_servers = KNOWN_SERVERS


class TradingAccountEditForm(forms.Form):
    name = forms.CharField(max_length=100, required=False)
    category = forms.ChoiceField(choices=AccountCategory.choices)
    is_active = forms.BooleanField(required=False, label="Keep syncing this account")
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        max_length=128,
        required=False,
        help_text="Leave empty to keep the stored password. A new one is checked first.",
    )


DEAL_KINDS = (
    ("", "All types"),
    ("trades", "Trades"),
    ("buy", "Buy"),
    ("sell", "Sell"),
    ("balance", "Deposits & withdrawals"),
    ("credit", "Credit"),
    ("other", "Other (commission, fees…)"),
)


class DealFilterForm(forms.Form):
    symbol = forms.CharField(max_length=64, required=False)
    magic = forms.IntegerField(required=False, min_value=0, max_value=2**63 - 1)
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    kind = forms.ChoiceField(choices=DEAL_KINDS, required=False, label="Type")

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("“From” must be on or before “To”.")
        return data


class StatementUploadForm(forms.Form):
    report = forms.FileField(
        label="MT5 report (HTML or XLSX)",
        help_text="In the MT5 terminal: History tab → right click → Report → HTML or Open XML.",
        widget=forms.ClearableFileInput(attrs={"accept": ".html,.htm,.xlsx"}),
    )

    def clean_report(self):
        report = self.cleaned_data["report"]
        # The size the upload handler counted, before a byte of the file is read.
        if report.size is None or report.size > settings.STATEMENT_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(upload_limit_message(), code=StatementTooLarge.code)
        return report

    @classmethod
    def refused(cls, message: str) -> StatementUploadForm:
        """A bound form whose only error is ``message``, for a request refused before its body was read."""
        form = cls(data={}, files={})
        form.full_clean()
        form.errors["report"] = form.error_class([message])
        return form


class AnalyticsRangeForm(forms.Form):
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))


class ConsentForm(forms.Form):
    marketing_consent = forms.BooleanField(required=False, label="Send me news and offers by email")


class DeleteAccountForm(forms.Form):
    password = forms.CharField(label="Your password", strip=False, widget=forms.PasswordInput(render_value=False))
    otp_code = forms.CharField(
        label="Two-factor code",
        max_length=32,
        required=False,
        help_text="Only if two-factor login is on: a code from your authenticator app, or a backup code.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )
    confirm = forms.BooleanField(label="I understand this cannot be undone")
