"""Signal fees: the high-water mark over a sequence of months (a loss month included), the copied P&L each month
reads from the follower's synced deals, settling once per month, and charging once: through the local billing
stand-in, and through Stripe (a fake Stripe API on loopback) into dj-stripe's Invoice table."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
import stripe
from django.test import Client
from djstripe.models import Invoice

from accounts.models import Deal
from billing.models import LocalBillingEvent
from copytrading import signal_services
from copytrading.choices import CopyStatus
from copytrading.models import CopiedPosition, CopyLink, SignalAudit, SignalFee, SignalSubscription, TradingSignal
from copytrading.signal_fees import period_fee
from tests.billing.fake_stripe import FakeStripe
from tests.personas import UserFactory, api_client_for

from .conftest import make_account

PCT, MONTHLY = D("20"), D("10")


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


# --- The maths -----------------------------------------------------------------------------------------------


def test_the_performance_fee_is_taken_only_above_the_high_water_mark():
    cumulative = hwm = D("0")
    lines = []
    for pnl in ("1000", "-400", "300", "500", "-1600", "1700"):
        line = period_fee(pnl=D(pnl), cumulative=cumulative, hwm=hwm, performance_fee_pct=PCT, monthly_fee=MONTHLY)
        cumulative, hwm = line.cumulative_after, line.hwm_after
        lines.append((line.cumulative_after, line.hwm_after, line.chargeable_gain, line.performance_fee, line.total))
    assert lines == [
        (D("1000"), D("1000"), D("1000"), D("200.00"), D("210.00")),
        (D("600"), D("1000"), D("0"), D("0.00"), D("10.00")),  # a loss: no performance fee
        (D("900"), D("1000"), D("0"), D("0.00"), D("10.00")),  # still below the mark: none
        (D("1400"), D("1400"), D("400"), D("80.00"), D("90.00")),  # only the 400 above the mark
        (D("-200"), D("1400"), D("0"), D("0.00"), D("10.00")),
        (D("1500"), D("1500"), D("100"), D("20.00"), D("30.00")),
    ]


def test_fees_are_decimal_cents_rounded_half_up():
    line = period_fee(pnl=D("33.33"), cumulative=D("0"), hwm=D("0"), performance_fee_pct=D("12.5"), monthly_fee=D("0"))
    assert line.performance_fee == D("4.17") and isinstance(line.total, D)


# --- Settling from the synced deals --------------------------------------------------------------------------


@pytest.fixture
def followed(db, owner, master):
    """A follower's account copying a 20 % + 10 a month signal since 10 July, with one copied position closed in
    each month July to October (+1000, -400, +300, +500) and trades of its own that are not the signal's."""
    follower = UserFactory()
    account = make_account(follower, "MetaSim-Demo", balance="5000", name="Follower")
    signal = TradingSignal.objects.create(
        owner=owner, master=master, name="Signal", currency="USD", monthly_fee=MONTHLY, performance_fee_pct=PCT
    )
    link = CopyLink.objects.create(master=master, slave=account, created_by=follower)
    subscription = SignalSubscription.objects.create(
        signal=signal,
        follower=follower,
        account=account,
        link=link,
        currency="USD",
        monthly_fee=MONTHLY,
        performance_fee_pct=PCT,
        started_at=at("2026-07-10T09:00:00"),
    )
    for n, (opened, closed, profit) in enumerate(
        [
            ("2026-07-12", "2026-07-20", "1000"),
            ("2026-08-02", "2026-08-15", "-400"),
            ("2026-09-01", "2026-09-03", "300"),
            ("2026-10-01", "2026-10-28", "500"),
        ],
        start=1,
    ):
        row = CopiedPosition.objects.create(
            link=link,
            slave_account=account,
            master_ticket=n,
            master_symbol="EURUSD",
            master_volume=D("1"),
            slave_ticket=7000 + n,
            slave_symbol="EURUSD",
            slave_side="buy",
            slave_volume=D("1"),
            status=CopyStatus.CLOSED,
            copy_id=f"c{n}",
        )
        CopiedPosition.objects.filter(pk=row.pk).update(opened_at=at(f"{opened}T10:00:00"))
        Deal.objects.create(account=account, ticket=100 + n, time=at(f"{opened}T10:00:01"), deal_type=0,
                            position_id=7000 + n, commission=D("-2.50"), volume=D("1"), price=D("1.1"))  # fmt: skip
        Deal.objects.create(account=account, ticket=200 + n, time=at(f"{closed}T10:00:00"), deal_type=1, entry=1,
                            position_id=7000 + n, profit=D(profit) + D("2.50"), volume=D("1"), price=D("1.1"))  # fmt: skip
    # The follower's own trade and a deposit: not copied, never counted.
    Deal.objects.create(account=account, ticket=900, time=at("2026-07-25T10:00:00"), deal_type=1, entry=1,
                        position_id=123, profit=D("700"))  # fmt: skip
    Deal.objects.create(account=account, ticket=901, time=at("2026-08-01T10:00:00"), deal_type=2, profit=D("5000"))
    return subscription


def figures(fee: SignalFee) -> tuple:
    return fee.period, fee.pnl, fee.hwm_before, fee.hwm_after, fee.performance_fee, fee.monthly_fee, fee.total


@pytest.mark.django_db
def test_each_finished_month_is_settled_once_from_the_copied_deals(followed):
    fees = signal_services.subscription_settle(subscription_id=followed.pk, now=at("2026-11-05T00:00:00"))
    assert [figures(f) for f in fees] == [
        (date(2026, 7, 1), D("1000.00"), D("0.00"), D("1000.00"), D("200.00"), D("10.00"), D("210.00")),
        (date(2026, 8, 1), D("-400.00"), D("1000.00"), D("1000.00"), D("0.00"), D("10.00"), D("10.00")),
        (date(2026, 9, 1), D("300.00"), D("1000.00"), D("1000.00"), D("0.00"), D("10.00"), D("10.00")),
        (date(2026, 10, 1), D("500.00"), D("1000.00"), D("1400.00"), D("80.00"), D("10.00"), D("90.00")),
    ]  # November is still running: not settled
    followed.refresh_from_db()
    assert (followed.cumulative_pnl, followed.high_water_mark) == (D("1400.00"), D("1400.00"))
    assert signal_services.subscription_settle(subscription_id=followed.pk, now=at("2026-11-30T00:00:00")) == []
    assert SignalFee.objects.count() == 4
    assert SignalAudit.objects.filter(subscription=followed, action="fee_computed").count() == 4


@pytest.mark.django_db
def test_after_a_stop_that_kept_the_copies_nothing_more_counts(followed):
    SignalSubscription.objects.filter(pk=followed.pk).update(
        status="stopped", stopped_at=at("2026-09-10T00:00:00"), stop_mode="keep"
    )
    fees = signal_services.subscription_settle(subscription_id=followed.pk, now=at("2026-12-02T00:00:00"))
    assert [(f.period, f.pnl, f.total) for f in fees] == [
        (date(2026, 7, 1), D("1000.00"), D("210.00")),
        (date(2026, 8, 1), D("-400.00"), D("10.00")),
        (date(2026, 9, 1), D("300.00"), D("10.00")),  # closed before the stop
    ]  # October's copy was opened after the stop; no month after September


@pytest.mark.django_db
def test_the_fees_are_charged_once_through_the_local_stand_in_and_both_sides_see_the_calculation(
    followed, owner, settings
):
    settings.STRIPE_TEST_SECRET_KEY = settings.STRIPE_LIVE_SECRET_KEY = ""  # local mode: the stand-in
    result = signal_services.fees_run(now=at("2026-11-05T00:00:00"))
    assert result == {"settled": 4, "charged": 4, "not_charged": 0}
    fees = SignalFee.objects.order_by("period")
    assert all(f.status == "charged" and f.charge_reference.startswith("local:evt_local_signal-fee-") for f in fees)
    assert LocalBillingEvent.objects.filter(type="invoice.paid", user=followed.follower).count() == 4
    assert signal_services.fees_run(now=at("2026-11-06T00:00:00")) == {"settled": 0, "charged": 0, "not_charged": 0}
    assert LocalBillingEvent.objects.filter(type="invoice.paid").count() == 4
    assert SignalAudit.objects.filter(subscription=followed, action="fee_charged").count() == 4

    mine = api_client_for(followed.follower).get(f"/api/signal-subscriptions/{followed.pk}").json()
    october = next(f for f in mine["fees"] if f["period"] == "2026-10-01")
    assert (october["hwm_before"], october["chargeable_gain"], october["performance_fee"], october["total"]) == (
        "1000.00",
        "400.00",
        "80.00",
        "90.00",
    )
    provider = api_client_for(owner).get(f"/api/signals/{followed.signal_id}/followers").json()
    assert provider["earnings"] == {"currency": "USD", "charged": "320.00", "pending": "0.00"}
    assert provider["followers"][0]["fees"] == mine["fees"]
    for user, page in ((followed.follower, "/copy/following/"), (owner, "/copy/signals/mine/")):
        client = Client()
        client.force_login(user, backend="accounts.backends.ModelBackend")
        html = client.get(page).content.decode()
        assert "1000.00 × 20 % = 200.00" in html and "400.00 × 20 % = 80.00" in html, page
        assert "1000.00 → 1400.00" in html  # October's high-water mark, before and after


# --- Stripe --------------------------------------------------------------------------------------------------


class InvoicingStripe(FakeStripe):
    """The fake Stripe API, taught invoice items, invoices and paying an invoice (``decline_pays``: that many
    payments are declined, as a card would be)."""

    decline_pays = 0

    def answer(self, method, path, query, body):
        if self.fail_next is not None:
            return super().answer(method, path, query, body)
        if method == "POST" and path == "/v1/invoiceitems":
            self.requests.append((method, path, body))
            item = {"id": self.new_id("ii"), "object": "invoiceitem", "invoice": None, "livemode": False, **body}
            item["amount"] = int(body["amount"])
            return 200, self.put(item)
        if method == "POST" and path == "/v1/invoices":
            self.requests.append((method, path, body))
            pending = [o for o in self.objects.values() if o.get("object") == "invoiceitem" and not o["invoice"]]
            invoice = self.put(self._invoice(body, pending))
            for item in pending:
                item["invoice"] = invoice["id"]
            return 200, invoice
        if method == "POST" and path.startswith("/v1/invoices/") and path.endswith("/pay"):
            self.requests.append((method, path, body))
            if self.decline_pays:
                self.decline_pays -= 1
                return 402, {
                    "error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}
                }
            invoice = self.objects[path.split("/")[3]]
            invoice.update(status="paid", paid=True, amount_paid=invoice["amount_due"], amount_remaining=0)
            return 200, invoice
        return super().answer(method, path, query, body)

    def _invoice(self, body, items) -> dict:
        now = int(time.time())
        total = sum(item["amount"] for item in items)
        return {
            "id": self.new_id("in"),
            "object": "invoice",
            "customer": body["customer"],
            "status": "open",
            "paid": False,
            "livemode": False,
            "created": now,
            "currency": items[0]["currency"] if items else "usd",
            "amount_due": total,
            "amount_paid": 0,
            "amount_remaining": total,
            "subtotal": total,
            "total": total,
            "collection_method": body.get("collection_method"),
            "auto_advance": False,
            "billing_reason": "manual",
            "description": body.get("description"),
            "metadata": body.get("metadata", {}),
            "period_start": now,
            "period_end": now,
            "attempt_count": 0,
            "number": f"FAKE-{len(self.objects)}",
            "discounts": [],
            "subscription": None,
            "lines": {"object": "list", "data": [], "has_more": False, "url": "/v1/invoices/lines"},
        }


@pytest.fixture
def invoicing_stripe(settings):
    fake = InvoicingStripe().start()
    previous = stripe.api_base
    stripe.api_base = fake.url
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_FakeKeyForSignalFeeTests42"
    settings.STRIPE_LIVE_MODE = False
    yield fake
    stripe.api_base = previous
    fake.stop()


@pytest.mark.django_db
def test_with_stripe_each_fee_is_one_paid_invoice_mirrored_into_dj_stripe(followed, invoicing_stripe):
    signal_services.subscription_settle(subscription_id=followed.pk, now=at("2026-08-03T00:00:00"))
    fee = SignalFee.objects.get()
    charged = signal_services.fee_charge(fee_id=fee.pk)
    assert charged.status == "charged", charged.charge_error
    items = invoicing_stripe.requests_to("POST", "/v1/invoiceitems")
    assert len(items) == 1
    assert (items[0][2]["amount"], items[0][2]["currency"], items[0][2]["metadata"]["signal_fee"]) == (
        "21000",
        "usd",
        str(fee.pk),
    )
    invoice = Invoice.objects.get(id=charged.charge_reference)
    assert invoice.customer.subscriber == followed.follower
    assert invoice.stripe_data["status"] == "paid" and invoice.stripe_data["amount_paid"] == 21000
    # Charging again sends nothing.
    assert signal_services.fee_charge(fee_id=fee.pk).status == "charged"
    assert len(invoicing_stripe.requests_to("POST", "/v1/invoiceitems")) == 1


@pytest.mark.django_db
def test_a_refused_card_leaves_the_fee_failed_with_the_reason_and_it_is_retried(followed, invoicing_stripe):
    signal_services.subscription_settle(subscription_id=followed.pk, now=at("2026-08-03T00:00:00"))
    fee = SignalFee.objects.get()
    previous, stripe.max_network_retries = stripe.max_network_retries, 0
    invoicing_stripe.decline_pays = 1
    try:
        failed = signal_services.fee_charge(fee_id=fee.pk)
    finally:
        stripe.max_network_retries = previous
    assert failed.status == "failed" and "declined" in failed.charge_error
    assert SignalAudit.objects.filter(action="fee_not_charged", detail__fee=fee.pk).exists()
    retried = signal_services.fee_charge(fee_id=fee.pk)  # the nightly run retries a failed fee
    assert retried.status == "charged" and retried.charge_error == ""
    assert len(invoicing_stripe.requests_to("POST", "/v1/invoices/")) == 2  # one declined payment, one paid
