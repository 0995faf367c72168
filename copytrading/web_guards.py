"""The follower's risk guards on the copy-trading pages: slippage and delay per link, one link's fills and the
audit of its equity stop. Rows come through the API's permission path (``links_visible_to``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from .api.links import links_visible_to
from .models import CopyLink, LinkStop
from .slippage import LIMIT, link_slippage


def with_slippage(links: list[CopyLink]) -> list[CopyLink]:
    """Each link with its ``slippage`` summary (p50/p95 of slippage and delay), for the links page."""
    report = link_slippage(links)
    for link in links:
        link.slippage = report[link.pk]
    return links


@login_required
@require_GET
def link_fills(request: HttpRequest, pk: int) -> HttpResponse:
    link = get_object_or_404(links_visible_to(request.user), pk=pk)
    report = link_slippage([link])[link.pk]
    stops = LinkStop.objects.filter(link=link).select_related("actor")[:50]
    return render(
        request, "copytrading/link_fills.html", {"link": link, "report": report, "stops": stops, "limit": LIMIT}
    )
