"""API routes of the billing app (mounted under /api/), including the Stripe webhook."""

from django.urls import path

from . import api
from .webhooks import stripe_webhook

urlpatterns = [
    path("billing/plans", api.PlansView.as_view(), name="billing-plans"),
    path("billing/subscription", api.SubscriptionView.as_view(), name="billing-subscription"),
    path("billing/usage", api.UsageView.as_view(), name="billing-usage"),
    path("billing/checkout", api.CheckoutView.as_view(), name="billing-checkout"),
    path("billing/portal", api.PortalView.as_view(), name="billing-portal"),
    path("billing/active-accounts", api.ActiveAccountsView.as_view(), name="billing-active-accounts"),
    path("webhooks/stripe", stripe_webhook, name="stripe-webhook"),
]
