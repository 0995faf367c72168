"""Forms of the signal pages: publishing a master, following a signal (the copy link form's sizing), stopping."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from .forms import CopyLinkForm
from .signal_services import FOLLOW_FIELDS

MONEY = {"max_digits": 20, "decimal_places": 2, "min_value": Decimal("0"), "max_value": Decimal("1000000000")}


class SignalForm(forms.Form):
    master = forms.ChoiceField(help_text="One of your accounts: its synced history is the signal's record.")
    name = forms.CharField(max_length=80)
    description = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 4}))
    min_deposit = forms.DecimalField(**MONEY, initial=0, help_text="A follower's account needs this balance.")
    monthly_fee = forms.DecimalField(**MONEY, initial=0, help_text="Charged each month a follower follows.")
    performance_fee_pct = forms.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        initial=0,
        label="Performance fee %",
        help_text="Of a follower's copied profit above their high-water mark, each month.",
    )

    def __init__(self, *args, masters=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["master"].choices = [(str(a.pk), str(a)) for a in masters]


class FollowForm(CopyLinkForm):
    """The copy link form's sizing fields and risk guards; the master is the signal's."""

    def __init__(self, *args, accounts=(), **kwargs):
        super().__init__(*args, masters=(), slaves=accounts, **kwargs)
        self.fields["slave"].label = "Your account"
        self.fields["slave"].help_text = "It receives the copies; its balance must reach the minimum deposit."
        keep = {"slave", *FOLLOW_FIELDS}
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]

    def link_values(self) -> dict:
        values = {name: self.cleaned_data[name] for name in FOLLOW_FIELDS if name in self.cleaned_data}
        for name in ("multiplier", "fixed_volume", "risk_percent"):
            if values.get(name) is not None:
                values[name] = Decimal(str(values[name]))
        return values


class StopForm(forms.Form):
    close_open = forms.TypedChoiceField(
        choices=[("1", "Close the open copies"), ("0", "Keep the open copies (they become yours)")],
        coerce=lambda value: value == "1",
        label="Open copies",
    )
