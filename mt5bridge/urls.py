"""API routes of the MT5 bridge (mounted under /api/): the EA protocol and the owner's EA token."""

from django.urls import path

from mt5bridge.ea import api as ea_api

urlpatterns: list = [
    path("ea/heartbeat", ea_api.HeartbeatView.as_view(), name="ea-heartbeat"),
    path("ea/commands", ea_api.CommandsView.as_view(), name="ea-commands"),
    path("ea/command-ack", ea_api.CommandAckView.as_view(), name="ea-command-ack"),
    path("accounts/<uuid:account_id>/ea-token", ea_api.AccountEATokenView.as_view(), name="account-ea-token"),
]
