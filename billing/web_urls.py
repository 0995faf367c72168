"""Web UI routes of the billing app (server-rendered pages)."""

from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("billing/", views.overview, name="overview"),
    path("billing/pricing/", views.pricing, name="pricing"),
    path("billing/checkout/<slug:slug>/<str:interval>/", views.checkout, name="checkout"),
    path("billing/portal/", views.portal, name="portal"),
    path("billing/accounts/", views.active_accounts, name="active-accounts"),
]
