"""Forms of the copy-trading pages: links, rules, templates and web-terminal orders."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from .choices import NoStopLoss, RuleAction, RuleKind, Side, SizingMode

TERMINAL_KINDS = [
    ("open_market", "Market order"),
    ("place_pending", "Pending order"),
    ("close", "Close position"),
    ("close_partial", "Close part of a position"),
    ("modify_sltp", "Modify SL/TP"),
    ("modify_pending", "Modify pending order"),
    ("cancel_pending", "Cancel pending order"),
    ("close_all", "Close all"),
]
PENDING_TYPES = [(2, "Buy limit"), (3, "Sell limit"), (4, "Buy stop"), (5, "Sell stop")]


def _symbols(text: str) -> list[str]:
    return [s.strip() for s in text.replace("\n", ",").split(",") if s.strip()][:500]


class CopyLinkForm(forms.Form):
    master = forms.ChoiceField(help_text="Your account, or a master shared with you.")
    slave = forms.ChoiceField(help_text="One of your accounts: it receives the copies.")
    sizing_mode = forms.ChoiceField(choices=SizingMode.choices)
    multiplier = forms.DecimalField(max_digits=12, decimal_places=4, min_value=Decimal("0.0001"), initial=1)
    fixed_volume = forms.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0.0001"), initial="0.01")
    risk_percent = forms.DecimalField(
        max_digits=6, decimal_places=3, min_value=Decimal("0.001"), max_value=Decimal("100"), initial=1
    )
    no_sl = forms.ChoiceField(choices=NoStopLoss.choices, label="Trades without SL (risk mode)")
    default_sl_points = forms.IntegerField(min_value=0, initial=0)
    min_volume = forms.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0"), required=False)
    max_volume = forms.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0"), required=False)
    symbols_include = forms.CharField(required=False, help_text="Comma-separated master symbols; empty = all.")
    symbols_exclude = forms.CharField(required=False)
    reverse = forms.BooleanField(required=False)
    copy_sltp = forms.BooleanField(required=False, initial=True, label="Copy SL/TP")
    copy_pending = forms.BooleanField(required=False, label="Copy pending orders")
    close_only = forms.BooleanField(required=False)
    max_delay_seconds = forms.IntegerField(min_value=0, max_value=86400, initial=30)
    max_slippage_points = forms.IntegerField(min_value=0, max_value=100000, initial=20)
    priority = forms.IntegerField(min_value=0, max_value=32767, initial=100)

    def __init__(self, *args, masters=(), slaves=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["master"].choices = [(str(a.pk), str(a)) for a in masters]
        self.fields["slave"].choices = [(str(a.pk), str(a)) for a in slaves]

    def link_values(self) -> dict:
        values = dict(self.cleaned_data)
        values.pop("master"), values.pop("slave")
        values["symbols_include"] = _symbols(values["symbols_include"])
        values["symbols_exclude"] = _symbols(values["symbols_exclude"])
        return values


class RuleForm(forms.Form):
    account = forms.ChoiceField()
    kind = forms.ChoiceField(choices=RuleKind.choices)
    action = forms.ChoiceField(choices=RuleAction.choices)
    threshold = forms.DecimalField(
        max_digits=20,
        decimal_places=2,
        min_value=Decimal("0"),
        required=False,
        help_text="Equity stop level, or the daily loss limit.",
    )
    threshold_is_percent = forms.BooleanField(required=False, label="Daily loss in %")
    max_open_trades = forms.IntegerField(min_value=0, required=False)
    symbols_allow = forms.CharField(required=False)
    symbols_deny = forms.CharField(required=False)
    hours_start = forms.TimeField(required=False, help_text="HH:MM")
    hours_end = forms.TimeField(required=False)
    timezone = forms.CharField(max_length=64, initial="UTC")

    def __init__(self, *args, accounts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [(str(a.pk), str(a)) for a in accounts]

    def rule_values(self) -> dict:
        values = dict(self.cleaned_data)
        values.pop("account")
        values["symbols_allow"] = _symbols(values["symbols_allow"])
        values["symbols_deny"] = _symbols(values["symbols_deny"])
        return values


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=80)
    symbol = forms.CharField(max_length=64)
    side = forms.ChoiceField(choices=Side.choices)
    volume = forms.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0.0001"), required=False)
    risk_percent = forms.DecimalField(
        max_digits=6, decimal_places=3, min_value=Decimal("0.001"), max_value=Decimal("100"), required=False
    )
    sl_points = forms.IntegerField(min_value=0, initial=0)
    tp_points = forms.IntegerField(min_value=0, initial=0)
    comment = forms.CharField(max_length=20, required=False)


class TerminalOrderForm(forms.Form):
    account = forms.ChoiceField()
    kind = forms.ChoiceField(choices=TERMINAL_KINDS)
    symbol = forms.CharField(max_length=64, required=False)
    side = forms.ChoiceField(choices=[("", "—"), *Side.choices], required=False)
    type = forms.TypedChoiceField(
        choices=[("", "—"), *PENDING_TYPES], coerce=int, required=False, empty_value=None, label="Pending type"
    )
    volume = forms.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0.0001"), required=False)
    price = forms.DecimalField(max_digits=20, decimal_places=8, min_value=Decimal("0"), required=False)
    sl = forms.DecimalField(max_digits=20, decimal_places=8, min_value=Decimal("0"), required=False)
    tp = forms.DecimalField(max_digits=20, decimal_places=8, min_value=Decimal("0"), required=False)
    ticket = forms.IntegerField(min_value=1, max_value=2**63 - 1, required=False)

    def __init__(self, *args, accounts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [(str(a.pk), str(a)) for a in accounts]
