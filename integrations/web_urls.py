"""Web UI routes of the integrations app (server-rendered pages)."""

from django.urls import path

from . import web

urlpatterns = [path("integrations/", web.integrations_status, name="integrations-status")]
