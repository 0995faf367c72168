"""Web UI routes of the bonuses app (the trader's Bonuses page)."""

from django.urls import path

from . import web

urlpatterns = [
    path("bonuses/", web.bonuses_page, name="bonus-web-list"),
]
