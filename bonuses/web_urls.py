"""Web UI routes of the bonuses app (server-rendered pages)."""

urlpatterns: list = []
