"""Billing's part of a person's data export and account deletion (accounts.ports.provide_personal_data; the module
registers itself when accounts discovers it at start-up).

Export: the plan (entitlements' assignment and its change log) and, from dj-stripe's copies of Stripe's objects, the
person's customers, subscriptions and invoices. Deletion: refused while a subscription would still renew (the person
cancels it first, or it would go on charging); invoices are kept (tax and accounting law) with the name, email,
phone and addresses on the local copies replaced by the pseudonym (docs/privacy.md).
"""

from __future__ import annotations

from djstripe.models import Customer, Invoice, Subscription

from accounts.ports import provide_personal_data
from config.errors import Conflict
from entitlements.models import PlanAssignment, PlanChange, SubscriptionStatus

SUBSCRIPTION_KEYS = ("id", "status", "created", "current_period_start", "current_period_end", "cancel_at_period_end")
INVOICE_KEYS = ("id", "number", "status", "currency", "amount_due", "amount_paid", "total", "created", "period_end")
CUSTOMER_PERSONAL = ("email", "name", "phone", "address", "shipping", "description")
INVOICE_PERSONAL = ("customer_email", "customer_name", "customer_phone", "customer_address", "customer_shipping")
#: A subscription in one of these still charges (unless it is set to end with its period).
RENEWING = (
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    SubscriptionStatus.UNPAID,
    SubscriptionStatus.PAUSED,
)


def _pick(data: dict | None, keys) -> dict:
    data = data or {}
    return {key: data.get(key) for key in keys}


def _rows(queryset) -> list[dict]:
    return list(queryset.values(*(f.attname for f in queryset.model._meta.concrete_fields)))


def billing_data_export(user) -> dict:
    customers = list(Customer.objects.filter(subscriber=user))
    return {
        "plan": next(iter(_rows(PlanAssignment.objects.filter(user=user))), None),
        "plan_changes": _rows(PlanChange.objects.filter(user=user).order_by("created_at")),
        "stripe_customers": [{"id": c.id, "email": c.email, "livemode": c.livemode} for c in customers],
        "subscriptions": [
            _pick(s.stripe_data, SUBSCRIPTION_KEYS) for s in Subscription.objects.filter(customer__in=customers)
        ],
        "invoices": [_pick(i.stripe_data, INVOICE_KEYS) for i in Invoice.objects.filter(customer__in=customers)],
    }


def billing_data_erase(user, pseudonym: str) -> None:
    plan = PlanAssignment.objects.filter(user=user).first()
    if plan is not None and plan.subscription_status in RENEWING and not plan.cancel_at_period_end:
        raise Conflict(
            "You have a subscription that would keep renewing: cancel it first (Settings → Plan → Manage billing), "
            "then delete your account.",
            code="subscription_active",
        )
    email = f"{pseudonym}@erased.invalid"
    for customer in Customer.objects.filter(subscriber=user):
        data = dict(customer.stripe_data or {})
        data.update({key: None for key in CUSTOMER_PERSONAL if key in data}, email=email, name=pseudonym)
        Customer.objects.filter(pk=customer.pk).update(email=email, stripe_data=data)
        for invoice in Invoice.objects.filter(customer=customer):
            data = dict(invoice.stripe_data or {})
            data.update({key: None for key in INVOICE_PERSONAL if key in data}, customer_email=email)
            Invoice.objects.filter(pk=invoice.pk).update(stripe_data=data)


provide_personal_data("billing", billing_data_export, billing_data_erase)
