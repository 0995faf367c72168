"""Web UI routes of the MT5 bridge (server-rendered pages): the EA setup page of an account."""

from django.urls import path

from . import web

urlpatterns = [
    path("accounts/<uuid:account_id>/ea/", web.ea_setup, name="web-account-ea"),
    path("accounts/<uuid:account_id>/ea/status/", web.ea_status, name="web-account-ea-status"),
    path("accounts/<uuid:account_id>/ea/download/<slug:kind>/", web.ea_download, name="web-account-ea-download"),
]
