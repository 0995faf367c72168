"""The finance report page of the admin: a date range, a period and an optional split by campaign; CSV export.

The views that call these declare ``reports.view`` (bonuses.admin.reconciliation hosts their addresses).
"""

from __future__ import annotations

from django import forms
from django.http import HttpResponse
from django.template.response import TemplateResponse

from config.errors import ServiceError

from .. import reports
from .base import admin_context


class FinanceForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    period = forms.ChoiceField(choices=[(p, p) for p in reports.PERIODS], required=False, initial="day")
    by = forms.ChoiceField(choices=[("", "all campaigns together"), ("campaign", "per campaign")], required=False)


def _query(request) -> tuple[FinanceForm, reports.FinanceQuery | None, str]:
    form = FinanceForm(request.GET or None)
    if request.GET and not form.is_valid():
        return form, None, "Dates are written YYYY-MM-DD; period is day, week, month or all."
    try:
        return form, reports.finance_query(request.GET), ""
    except ServiceError as exc:
        return form, None, exc.message


def finance_page(model_admin, request):
    form, query, error = _query(request)
    report = reports.finance(query) if query is not None else None
    if not request.GET and query is not None:
        form = FinanceForm(initial={"start": query.start, "end": query.end, "period": query.period})
    return TemplateResponse(
        request,
        "admin/bonuses/finance_report.html",
        admin_context(
            model_admin,
            request,
            "Bonus finance report",
            form=form,
            report=report,
            error=error,
            columns=[c for c in reports.FINANCE_COLUMNS if query and (query.by_campaign or "campaign" not in c)],
            export_query=request.GET.urlencode(),
        ),
        status=400 if error else 200,
    )


def finance_export(model_admin, request):
    _, query, error = _query(request)
    if query is None:
        return HttpResponse(error, status=400, content_type="text/plain")
    response = HttpResponse(reports.finance_csv(query), content_type="text/csv")
    stamp = f"{query.start:%Y%m%d}-{query.end:%Y%m%d}-{query.period}"
    response["Content-Disposition"] = f'attachment; filename="bonus-finance-{stamp}.csv"'
    return response
