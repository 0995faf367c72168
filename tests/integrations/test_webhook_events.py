"""Every event an endpoint can subscribe to is sent, signed, by the code that causes it.

Each subscribable event (``WebhookEvent``) gets an endpoint on a loopback receiver that wants only that event; the
event is caused the way it happens (a sync, a deposit under a campaign, a copy the slave refuses ...), and the
receiver must get exactly one delivery of it whose signature checks out the way docs/integrations.md tells
receivers to check it. An event added to the choices without a cause here fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest

from accounts.figures import FIGURES
from bonuses import signals as bonus_signals
from bonuses.choices import BonusStatus, BonusType, CancelReason, Trigger
from bonuses.models import Bonus, Campaign
from bonuses.services.ending import bonus_cancel, bonus_force_convert
from bonuses.services.triggers import trigger_deposit
from copytrading import signals as copy_signals
from copytrading.choices import CopyStatus, Side
from copytrading.hooks import on_command_result, on_ea_state
from copytrading.models import CopiedPosition, CopyLink
from copytrading.services import copy_link_create
from integrations.choices import DeliveryStatus, RuleCondition, WebhookEvent
from integrations.models import AutomationRule, WebhookDelivery
from integrations.services.contacts import systeme_sync
from integrations.services.preflight import preflight_run
from integrations.services.rules import rules_evaluate
from integrations.services.webhooks import webhook_endpoint_create, webhook_ping
from mt5bridge.ea.models import Command
from mt5bridge.simulated import deposit
from mt5bridge.sync import account_sync
from tests.bonuses.conftest import RefusesCreditRemoval, make_campaign
from tests.bonuses.conftest import make_account as make_bonus_account
from tests.copytrading.conftest import make_account as make_copy_account
from tests.copytrading.factories import pos, state
from tests.integrations.fakes import WebhookReceiver

pytestmark = pytest.mark.django_db
SECRET = "subscriber-secret"
TOLERANCE_SECONDS = 300


def verify_delivery(secret: str, headers: dict[str, str], body: bytes) -> dict:
    """What docs/integrations.md tells a receiver to do: HMAC-SHA256 over "{timestamp}.{raw body}" with the endpoint's
    secret, compared in constant time with X-MT5BO-Signature's v1=; a timestamp within a few minutes; then the body."""
    timestamp = headers["X-MT5BO-Timestamp"]
    expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers["X-MT5BO-Signature"]):
        raise AssertionError("signature does not match")
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise AssertionError("stale timestamp")
    envelope = json.loads(body)
    assert envelope["id"] == headers["X-MT5BO-Delivery"] and envelope["event"] == headers["X-MT5BO-Event"]
    return envelope


@pytest.fixture
def loopback_receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the receiver is on 127.0.0.1
    for port in range(18600, 18700):
        try:
            server = WebhookReceiver(port=port).start()
        except OSError:
            continue
        break
    else:
        pytest.fail("no free port in 18600-18699")
    yield server
    server.stop()


# --- What causes each event ------------------------------------------------------------------------------------------


def _synced(account) -> None:
    account_sync(account_id=account.pk, trigger="manual")
    account.refresh_from_db()


def cause_account_synced(account, endpoint, request) -> None:
    _synced(account)


def cause_contact_synced(account, endpoint, request) -> None:
    request.getfixturevalue("fake_systeme")
    systeme_sync()


def cause_rule_hit(account, endpoint, request) -> None:
    request.getfixturevalue("fake_systeme")
    _synced(account)
    systeme_sync()
    AutomationRule.objects.update(enabled=False)
    AutomationRule.objects.create(
        name="Low equity",
        slug="low-equity",
        condition=RuleCondition.EQUITY_BELOW,
        threshold=account.equity + 1,
        tag="mt5-low-equity",
    )
    assert rules_evaluate()["fired"] == 1


def cause_preflight_done(account, endpoint, request) -> None:
    preflight_run(account=account)


def cause_ping(account, endpoint, request) -> None:
    webhook_ping(endpoint=endpoint)


def _granted(**campaign) -> Bonus:
    """A deposit on a simulated MT5 account under an active campaign: the bonus engine grants and posts the credit."""
    login = make_bonus_account(balance="0")
    make_campaign(**campaign)
    deposit(login, Decimal("200"))
    (result,) = trigger_deposit(login=login, amount=Decimal("200"))
    return result.bonus


def cause_bonus_granted(account, endpoint, request) -> None:
    _granted()


def cause_bonus_cancelled(account, endpoint, request) -> None:
    bonus_cancel(actor="test", bonus=_granted())


def cause_bonus_converted(account, endpoint, request) -> None:
    bonus_force_convert(actor="test", bonus=_granted(bonus_type=BonusType.CONVERTIBLE))


def cause_bonus_operation_failed(account, endpoint, request) -> None:
    """A bonus is cancelled and MT5 refuses to take its credit back on every attempt: it waits for a person."""
    settings = request.getfixturevalue("settings")
    settings.BONUS_OPERATION_RETRY_SECONDS = 0
    settings.BONUS_OPERATION_MAX_ATTEMPTS = 1
    bonus_cancel(actor="test", bonus=_granted(), gateway=RefusesCreditRemoval())


def cause_copy_command_failed(account, endpoint, request) -> None:
    """A master opens a position; the slave's MT5 refuses the copy (retcode 10019, no money)."""
    owner = account.owner
    master = make_copy_account(owner, "MetaSim-Live", balance="100000", name="Master")
    slave = make_copy_account(owner, "MetaSim-Demo", balance="5000", name="Slave")
    copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk)
    on_ea_state(state(master.pk, []), state(master.pk, [pos(1, "BTCUSD.pro")]))
    (command,) = Command.objects.all()  # the copy's open command, queued for the slave's EA
    Command.objects.filter(pk=command.pk).update(status="failed", retcode=10019, message="no money")
    command.refresh_from_db()
    on_command_result(command)


CAUSES = {
    WebhookEvent.ACCOUNT_SYNCED: cause_account_synced,
    WebhookEvent.CONTACT_SYNCED: cause_contact_synced,
    WebhookEvent.RULE_HIT: cause_rule_hit,
    WebhookEvent.PREFLIGHT_DONE: cause_preflight_done,
    WebhookEvent.PING: cause_ping,
    WebhookEvent.BONUS_GRANTED: cause_bonus_granted,
    WebhookEvent.BONUS_CANCELLED: cause_bonus_cancelled,
    WebhookEvent.BONUS_CONVERTED: cause_bonus_converted,
    WebhookEvent.BONUS_OPERATION_FAILED: cause_bonus_operation_failed,
    WebhookEvent.COPY_COMMAND_FAILED: cause_copy_command_failed,
}


def test_every_subscribable_event_has_a_cause_here():
    assert set(CAUSES) == set(WebhookEvent.values)


@pytest.mark.parametrize("event", WebhookEvent.values)
def test_subscribed_event_is_delivered_signed(
    event, owned_account, loopback_receiver, super_admin, request, django_capture_on_commit_callbacks
):
    cause = CAUSES.get(event)
    if cause is None:
        pytest.fail(f"{event!r} can be subscribed to, but nothing here causes it: is it ever sent?")
    endpoint, _ = webhook_endpoint_create(
        url=f"{loopback_receiver.url}/hook", events=[event], secret=SECRET, created_by=super_admin
    )
    with django_capture_on_commit_callbacks(execute=True):
        cause(owned_account, endpoint, request)

    received = [verify_delivery(SECRET, r["headers"], r["body"]) for r in loopback_receiver.requests]
    assert [envelope["event"] for envelope in received] == [event]
    assert WebhookDelivery.objects.get(pk=received[0]["id"]).status == DeliveryStatus.SUCCEEDED


def _unsaved_bonus(account) -> Bonus:
    return Bonus(
        campaign=Campaign(name="Spring deposit bonus"),
        login=account.login,
        bonus_type=BonusType.CONVERTIBLE,
        trigger=Trigger.AUTO_DEPOSIT,
        status=BonusStatus.CANCELLED,
        amount=Decimal("100.00"),
        credit_outstanding=Decimal("0.00"),
        removed_amount=Decimal("100.00"),
        lots_required=Decimal("10"),
    )


def _unsaved_copy(account) -> CopiedPosition:
    return CopiedPosition(
        link=CopyLink(master_id=account.pk, slave_id=account.pk),
        slave_account_id=account.pk,
        master_ticket=5001,
        master_symbol="EURUSD",
        master_volume=Decimal("1.00"),
        slave_symbol="EURUSD.pro",
        slave_side=Side.BUY,
        slave_volume=Decimal("0.50"),
        status=CopyStatus.FAILED,
        copy_id="c-5001",
    )


def test_bonus_and_copy_events_say_what_happened(
    owned_account, loopback_receiver, super_admin, django_capture_on_commit_callbacks
):
    """The receivers of the ports, given what the ports send (the senders are tested in their apps)."""
    webhook_endpoint_create(url=f"{loopback_receiver.url}/hook", events=["*"], secret=SECRET, created_by=super_admin)
    with django_capture_on_commit_callbacks(execute=True):
        bonus_signals.bonus_cancelled.send_robust(
            sender=Bonus, bonus=_unsaved_bonus(owned_account), reason=CancelReason.WITHDRAWAL
        )
        copy_signals.copy_command_failed.send_robust(
            sender=CopiedPosition, copy=_unsaved_copy(owned_account), retcode=10019, reason="Not enough money"
        )
    cancelled, failed = (verify_delivery(SECRET, r["headers"], r["body"])["data"] for r in loopback_receiver.requests)
    assert cancelled["login"] == owned_account.login and cancelled["reason"] == "withdrawal"
    assert cancelled["campaign"] == "Spring deposit bonus" and cancelled["removed_amount"] == "100.00"
    assert failed["retcode"] == 10019 and failed["reason"] == "Not enough money"
    assert failed["slave_account_id"] == str(owned_account.pk) and failed["slave_volume"] == "0.50"


def test_account_synced_carries_every_account_figure_under_its_one_name(
    owned_account, loopback_receiver, super_admin, request, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(
        url=f"{loopback_receiver.url}/hook", events=["account.synced"], secret=SECRET, created_by=super_admin
    )
    with django_capture_on_commit_callbacks(execute=True):
        cause_account_synced(owned_account, None, request)
    (request_seen,) = loopback_receiver.requests
    data = verify_delivery(SECRET, request_seen["headers"], request_seen["body"])["data"]
    assert set(FIGURES) <= set(data)
    assert data["balance"] == str(owned_account.balance) and data["floating_profit"] is not None


def test_a_wrong_secret_or_an_altered_body_fails_the_receivers_check(
    owned_account, loopback_receiver, super_admin, django_capture_on_commit_callbacks
):
    endpoint, _ = webhook_endpoint_create(
        url=f"{loopback_receiver.url}/hook", events=["ping"], secret=SECRET, created_by=super_admin
    )
    with django_capture_on_commit_callbacks(execute=True):
        webhook_ping(endpoint=endpoint)
    (delivery,) = loopback_receiver.requests
    with pytest.raises(AssertionError, match="signature"):
        verify_delivery("another-secret", delivery["headers"], delivery["body"])
    with pytest.raises(AssertionError, match="signature"):
        verify_delivery(SECRET, delivery["headers"], delivery["body"].replace(b"test delivery", b"test deliverx"))
