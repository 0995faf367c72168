"""The chart data of the account and analytics pages, per named range (JSON for the range buttons)."""

from __future__ import annotations

from dateutil.relativedelta import relativedelta
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from config.errors import error_body

from .analytics.history import chart_for_account
from .web import _account

# Each range ends now and reaches back as its name says (calendar months and years); "All" is the whole history.
RANGES: dict[str, relativedelta | None] = {
    "1D": relativedelta(days=1),
    "1W": relativedelta(weeks=1),
    "1M": relativedelta(months=1),
    "3M": relativedelta(months=3),
    "1Y": relativedelta(years=1),
    "All": None,
}


@login_required
@require_GET
def account_chart(request: HttpRequest, account_id) -> JsonResponse:
    """``{"range", "start", "end", "equity", "growth", "drawdown"}``: rows as in `accounts.analytics.curves`."""
    account = _account(request, account_id)
    name = request.GET.get("range", "All")
    if name not in RANGES:
        message = f"range must be one of {', '.join(RANGES)}."
        return JsonResponse(error_body("invalid_range", message), status=400)
    back = RANGES[name]
    end = timezone.now()
    start = end - back if back is not None else None
    chart = chart_for_account(account, start=start, end=end if back is not None else None, viewer=request.user)
    return JsonResponse({"range": name, **chart})
