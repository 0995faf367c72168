"""Server-rendered pages of the integrations app: the staff status page (Systeme.io and webhooks)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.permissions import capability_required

from . import selectors
from .models import RuleFiring


@login_required
@capability_required("system.config")
def integrations_status(request):
    """Connection status, last sync, recent rule firings and webhook health, for staff."""
    firings = RuleFiring.objects.select_related("rule", "contact").order_by("-fired_at")[:20]
    return render(
        request,
        "integrations/status.html",
        {
            "systeme": selectors.systeme_stats(),
            "webhooks": selectors.webhooks_status(),
            "firings": firings,
        },
    )
