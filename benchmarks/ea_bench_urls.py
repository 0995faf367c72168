"""URLs for the EA benchmarks: the whole project plus bare JSON endpoints to compare the heartbeat with."""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as project_urlpatterns


@csrf_exempt
async def bare_async(request):
    """Parse the JSON body and answer a small JSON reply: the floor of a Django async JSON endpoint."""
    json.loads(request.body or b"{}")
    return JsonResponse({"v": 1, "status": "ok", "commands": []})


@csrf_exempt
def bare_sync(request):
    json.loads(request.body or b"{}")
    return JsonResponse({"v": 1, "status": "ok", "commands": []})


urlpatterns = [
    path("bench/bare", bare_async),
    path("bench/bare-sync", bare_sync),
    *project_urlpatterns,
]
