"""Charging a signal follower's fee: copy trading announces it (``copytrading.signals.signal_fee_due``), billing
charges it.

With Stripe keys: an invoice item and an invoice on the follower's Stripe customer (dj-stripe's ``Customer``),
paid at once with the saved payment method, then mirrored into dj-stripe's ``Invoice`` table. Every request
carries an idempotency key derived from the fee's, so a retried charge is the same charge. In local mode (no
keys) the local stand-in records the charge as a Stripe-shaped ``invoice.paid`` local billing event, once per
fee, and nothing talks to Stripe. The answer goes back to copy trading, which records it on the fee.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import stripe
from django.conf import settings
from django.utils import timezone
from djstripe.models import Customer, Invoice
from djstripe.settings import djstripe_settings

from copytrading.signals import signal_fee_due  # copy trading's port: the one module of it billing may import
from entitlements.selectors import local_mode

from .models import LocalBillingEvent

logger = logging.getLogger(__name__)


def charge_signal_fee(
    sender=None,
    *,
    fee_id: int,
    user,
    amount: Decimal,
    currency: str,
    description: str,
    idempotency_key: str,
    **_kwargs,
) -> dict:
    if amount <= 0:
        return {"status": "failed", "error": "nothing to charge"}
    if local_mode():
        event, _ = LocalBillingEvent.objects.get_or_create(
            id=f"evt_local_{idempotency_key}",
            defaults={"type": "invoice.paid", "outcome": "applied", "user": user, "created": timezone.now()},
        )
        return {"status": "charged", "reference": f"local:{event.id}"}
    return _stripe_charge(fee_id, user, amount, currency, description, idempotency_key)


def _stripe_charge(fee_id, user, amount: Decimal, currency: str, description: str, key: str) -> dict:
    api_key = djstripe_settings.STRIPE_SECRET_KEY
    metadata = {"signal_fee": str(fee_id), "user_id": str(user.pk)}
    try:
        customer, _ = Customer.get_or_create(subscriber=user, livemode=settings.STRIPE_LIVE_MODE)
        stripe.InvoiceItem.create(
            api_key=api_key,
            customer=customer.id,
            amount=int((amount * 100).to_integral_value()),
            currency=currency.lower(),
            description=description,
            metadata=metadata,
            idempotency_key=f"{key}-item",
        )
        invoice = stripe.Invoice.create(
            api_key=api_key,
            customer=customer.id,
            collection_method="charge_automatically",
            pending_invoice_items_behavior="include",
            auto_advance=False,
            description=description,
            metadata=metadata,
            idempotency_key=f"{key}-invoice",
        )
        paid = stripe.Invoice.pay(invoice["id"], api_key=api_key, idempotency_key=f"{key}-pay")
    except stripe.StripeError as exc:
        return {"status": "failed", "error": f"Stripe refused the charge: {exc.user_message or exc}"[:255]}
    try:
        Invoice.sync_from_stripe_data(paid, api_key=api_key)
    except Exception:  # the charge stands; Stripe's invoice.paid webhook brings the row later
        logger.exception("signal fee %s: invoice %s not mirrored into dj-stripe", fee_id, paid.get("id"))
    if paid.get("status") != "paid":
        return {"status": "failed", "error": f"invoice {paid['id']} is {paid.get('status')}", "reference": paid["id"]}
    return {"status": "charged", "reference": paid["id"]}


def connect_receivers() -> None:
    signal_fee_due.connect(charge_signal_fee, dispatch_uid="billing.signal_fees.charge")
