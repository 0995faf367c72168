"""The copy link form's preview: what a sample master trade becomes on the slave (an htmx fragment).

The volume comes from the copy engine's own mapping and sizing (`copytrading.planning.sample_size`), on an
unsaved link built from the form, with the accounts' last synced figures.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from .choices import SizingMode
from .forms import RATIO_MODES, CopyLinkForm, SampleTradeForm
from .models import CopyLink
from .planning import MasterContext, sample_size
from .sizing import AccountFigures, SizingSkip
from .web import _tradable_accounts, _visible_accounts

RATIO_FIGURE = {
    SizingMode.BALANCE_RATIO: "balance",
    SizingMode.EQUITY_RATIO: "equity",
    SizingMode.FREE_MARGIN_RATIO: "margin_free",
    SizingMode.RISK_PERCENT: "equity",
}


def link_preview_context(form: CopyLinkForm, sample: SampleTradeForm, masters, slaves) -> dict:
    """The preview fragment's context: the volume, the engine's reason to skip, or the form's errors."""
    if not (form.is_valid() & sample.is_valid()):
        return {"errors": {**form.errors, **sample.errors}}
    master = next(a for a in masters if str(a.pk) == form.cleaned_data["master"])
    slave = next(a for a in slaves if str(a.pk) == form.cleaned_data["slave"])
    values = form.link_values()
    link = CopyLink(id=0, master=master, slave=slave, **values)  # never saved
    slave_figures = AccountFigures.of(slave)
    current = SimpleNamespace(
        balance=master.balance, equity=master.equity, margin_free=master.margin_free, received_at=None, server_time=None
    )
    ctx = MasterContext(current, lambda ids: dict.fromkeys(ids, slave_figures))
    mode = values["sizing_mode"]
    context = {"sample": sample.cleaned_data, "mode_label": SizingMode(mode).label}
    field = RATIO_FIGURE.get(mode)
    if field:
        master_value = getattr(master, field) if mode in RATIO_MODES else None
        context["figures"] = {"field": field.replace("_", " "), "master": master_value, "slave": getattr(slave, field)}
    try:
        target, volume = sample_size(
            ctx,
            link,
            symbol=sample.cleaned_data["sample_symbol"].strip(),
            volume=sample.cleaned_data["sample_volume"],
            sl_points=sample.cleaned_data["sample_sl_points"],
        )
    except SizingSkip as exc:
        context["skip"] = exc.message
    else:
        context.update(target=target, volume=volume)
    return context


@login_required
@require_POST
def link_preview(request: HttpRequest) -> HttpResponse:
    masters, slaves = list(_visible_accounts(request.user)), list(_tradable_accounts(request.user))
    form = CopyLinkForm(request.POST, masters=masters, slaves=slaves)
    sample = SampleTradeForm(request.POST)
    return render(request, "copytrading/_link_preview.html", link_preview_context(form, sample, masters, slaves))
