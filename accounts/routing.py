"""WebSocket routes of the accounts app."""

from django.urls import path

from .consumers import AccountsConsumer

websocket_urlpatterns = [
    path("ws/accounts/", AccountsConsumer.as_asgi()),
    path("ws/accounts/<uuid:account_id>/", AccountsConsumer.as_asgi()),
]
