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


RATIO_MODES = (SizingMode.BALANCE_RATIO, SizingMode.EQUITY_RATIO, SizingMode.FREE_MARGIN_RATIO)
# The fields each sizing mode reads (copytrading.sizing.raw_volume); the others do not apply to it.
MODE_FIELDS: dict[str, tuple[str, ...]] = {
    SizingMode.MULTIPLIER: ("multiplier",),
    SizingMode.FIXED: ("fixed_volume",),
    **{mode: ("multiplier",) for mode in RATIO_MODES},
    SizingMode.RISK_PERCENT: ("risk_percent", "no_sl", "default_sl_points"),
}
SIZING_FIELDS = ("multiplier", "fixed_volume", "risk_percent", "no_sl", "default_sl_points")


class CopyLinkForm(forms.Form):
    master = forms.ChoiceField(help_text="Your account, or a master shared with you.")
    slave = forms.ChoiceField(help_text="One of your accounts: it receives the copies.")
    sizing_mode = forms.ChoiceField(choices=SizingMode.choices, help_text="How the slave's volume is worked out.")
    multiplier = forms.DecimalField(
        max_digits=12,
        decimal_places=4,
        min_value=Decimal("0.0001"),
        initial=1,
        required=False,
        help_text="Master lots x this (ratio modes: x the accounts' ratio x this).",
    )
    fixed_volume = forms.DecimalField(
        max_digits=14,
        decimal_places=4,
        min_value=Decimal("0.0001"),
        initial="0.01",
        required=False,
        help_text="Every copy opens this many lots.",
    )
    risk_percent = forms.DecimalField(
        max_digits=6,
        decimal_places=3,
        min_value=Decimal("0.001"),
        max_value=Decimal("100"),
        initial=1,
        required=False,
        help_text="Percent of the slave's equity a stop at the master's SL loses.",
    )
    no_sl = forms.ChoiceField(choices=NoStopLoss.choices, label="Trades without SL", required=False)
    default_sl_points = forms.IntegerField(
        min_value=0, initial=0, required=False, help_text="The SL distance assumed for a master trade without one."
    )
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
    skip_below_min_volume = forms.BooleanField(
        required=False,
        label="Skip copies below the minimum lot",
        help_text="A copy sized below the slave symbol's minimum is skipped (and logged), not raised to the minimum.",
    )
    equity_stop = forms.DecimalField(
        max_digits=20,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        label="Equity stop (amount)",
        help_text="The link stops opening copies when the slave's equity falls to or below this.",
    )
    equity_stop_percent = forms.DecimalField(
        max_digits=6,
        decimal_places=3,
        min_value=Decimal("0.001"),
        max_value=Decimal("100"),
        required=False,
        label="Equity stop (% of the start equity)",
        help_text="Or at this % of the slave's equity when the link starts (70: after a 30% fall).",
    )
    equity_stop_close = forms.BooleanField(required=False, label="Close the link's copies when the equity stop fires")

    def __init__(self, *args, masters=(), slaves=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["master"].choices = [(str(a.pk), str(a)) for a in masters]
        self.fields["slave"].choices = [(str(a.pk), str(a)) for a in slaves]
        # The page shows a sizing field only under the modes that read it (templates/copytrading/_link_form.html).
        for name in SIZING_FIELDS:
            self.fields[name].sizing_modes = " ".join(m for m, names in MODE_FIELDS.items() if name in names)

    def clean(self):
        data = super().clean()
        mode = data.get("sizing_mode")
        if not mode:
            return data
        used = set(MODE_FIELDS[mode])
        if data.get("no_sl") != NoStopLoss.DEFAULT:
            used.discard("default_sl_points")
        for name in SIZING_FIELDS:
            if name not in used:
                # Not read by this mode: whatever was typed there is neither checked nor stored.
                self._errors.pop(name, None)
                data[name] = self.fields[name].initial if name != "no_sl" else NoStopLoss.SKIP
            elif data.get(name) in (None, ""):
                if name not in self._errors:
                    label = dict(SizingMode.choices)[mode]
                    self.add_error(name, f"Required with the sizing mode “{label}”.")
        if (
            data.get("equity_stop_close")
            and data.get("equity_stop") is None
            and data.get("equity_stop_percent") is None
        ):
            self.add_error("equity_stop_close", "Give the equity stop's amount or percentage first.")
        if mode == SizingMode.RISK_PERCENT and data.get("no_sl") == NoStopLoss.DEFAULT:
            if data.get("default_sl_points") == 0 and "default_sl_points" not in self._errors:
                self.add_error("default_sl_points", "Give the SL distance to assume, or skip trades without SL.")
        return data

    def link_values(self) -> dict:
        values = dict(self.cleaned_data)
        values.pop("master"), values.pop("slave")
        for name in ("multiplier", "fixed_volume", "risk_percent"):
            values[name] = Decimal(str(values[name]))
        values["symbols_include"] = _symbols(values["symbols_include"])
        values["symbols_exclude"] = _symbols(values["symbols_exclude"])
        return values


class SampleTradeForm(forms.Form):
    """The master trade the link form's preview sizes."""

    sample_symbol = forms.CharField(max_length=32, initial="EURUSD", label="Master symbol")
    sample_volume = forms.DecimalField(
        max_digits=14, decimal_places=4, min_value=Decimal("0.0001"), initial="1.00", label="Master lots"
    )
    sample_sl_points = forms.IntegerField(
        min_value=0, max_value=10_000_000, initial=0, label="Master SL (points, 0: none)"
    )


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
