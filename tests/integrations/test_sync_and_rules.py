"""Contact sync and automation rules against the fake Systeme.io server."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Deal
from integrations.choices import FiringResult, RuleCondition
from integrations.models import AutomationRule, ContactSync, RuleFiring, SystemeSettings
from integrations.selectors import account_figures
from integrations.services.contacts import SystemeNotConfigured, contact_include, systeme_settings_update, systeme_sync
from integrations.services.rules import rules_evaluate
from mt5bridge.sync import account_sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced_account(owned_account):
    account_sync(account_id=owned_account.pk, trigger="manual")
    owned_account.refresh_from_db()
    return owned_account


def test_default_rules_are_the_seeds_three_workflows():
    rules = {r.slug: r for r in AutomationRule.objects.all()}
    assert {"profitable-trades", "loss-recovery", "high-activity"} <= set(rules)
    assert rules["loss-recovery"].condition == RuleCondition.LOSS_BEYOND_PERCENT
    assert rules["high-activity"].condition == RuleCondition.TRADES_PER_DAY_ABOVE


def test_sync_creates_a_contact_with_the_trading_figures(fake_systeme, synced_account):
    summary = systeme_sync()
    assert summary == {"synced": 1, "failed": 0, "errors": []}
    owner = synced_account.owner
    contact = fake_systeme.contact_by_email(owner.email)
    fields = {f["slug"]: f["value"] for f in contact["fields"]}
    assert fields["mt5_balance"] == str(synced_account.balance.quantize(Decimal("0.01")))
    assert "mt5_last_activity" not in fields  # Systeme.io has no such field: not sent, reported
    row = SystemeSettings.load()
    assert row.last_sync_ok is True and row.connection_ok is True
    assert row.missing_fields == ["mt5_last_activity"]
    assert ContactSync.objects.get(user=owner).contact_id == str(contact["id"])


def test_second_sync_updates_the_same_contact_with_a_merge_patch(fake_systeme, synced_account):
    systeme_sync()
    systeme_sync()
    assert len(fake_systeme.contacts) == 1
    assert len(fake_systeme.calls("PATCH", "/api/contacts/")) == 1


def test_sync_with_a_wrong_key_records_the_failure(fake_systeme, synced_account, settings):
    settings.SYSTEME_API_KEY = "wrong"
    summary = systeme_sync()
    row = SystemeSettings.load()
    assert row.connection_ok is False and "refused the API key" in row.connection_error
    assert row.last_sync_ok is False and summary["synced"] == 0


def test_no_key_means_not_configured(synced_account, settings):
    settings.SYSTEME_API_KEY = ""
    with pytest.raises(SystemeNotConfigured):
        systeme_sync()


def _equity_rule(threshold) -> AutomationRule:
    AutomationRule.objects.update(enabled=False)
    return AutomationRule.objects.create(
        name="Low equity",
        slug="low-equity",
        condition=RuleCondition.EQUITY_BELOW,
        threshold=threshold,
        tag="mt5-low-equity",
    )


def test_a_rule_fires_once_per_crossing_and_rearms_when_the_condition_clears(fake_systeme, synced_account):
    systeme_sync()
    equity = synced_account.equity
    rule = _equity_rule(equity + 1)
    contact_id = ContactSync.objects.get(user=synced_account.owner).contact_id

    assert rules_evaluate()["fired"] == 1
    assert [t["name"] for t in fake_systeme.contacts[int(contact_id)]["tags"]] == ["mt5-low-equity"]
    assert rules_evaluate()["fired"] == 0  # still below: no second firing
    assert RuleFiring.objects.filter(rule=rule).count() == 1

    rule.threshold = equity - 1
    rule.save()
    assert rules_evaluate()["rearmed"] == 1
    rule.threshold = equity + 1
    rule.save()
    assert rules_evaluate()["fired"] == 1
    assert RuleFiring.objects.filter(rule=rule, result=FiringResult.OK).count() == 2


def test_a_failed_action_is_logged_and_tried_again_next_time(fake_systeme, synced_account):
    systeme_sync()
    rule = _equity_rule(synced_account.equity + 1)
    fake_systeme.fail_next(422)  # the tag lookup is refused
    assert rules_evaluate()["failed"] == 1
    failed = RuleFiring.objects.get(rule=rule)
    assert failed.result == FiringResult.FAILED and "422" in failed.error
    assert rules_evaluate()["fired"] == 1


def test_remove_tag_rule_untags_the_contact(fake_systeme, synced_account):
    systeme_sync()
    contact = ContactSync.objects.get(user=synced_account.owner)
    tag = fake_systeme.add_tag("mt5-newbie")
    fake_systeme.contacts[int(contact.contact_id)]["tags"].append(tag)
    _equity_rule(synced_account.equity + 1)
    AutomationRule.objects.filter(slug="low-equity").update(action="remove_tag", tag="mt5-newbie")
    rules_evaluate()
    assert fake_systeme.contacts[int(contact.contact_id)]["tags"] == []


def test_high_activity_counts_trades_opened_today(synced_account):
    now = timezone.now()
    before = account_figures(synced_account, now).trades_today
    Deal.objects.bulk_create(
        [
            Deal(
                account=synced_account,
                ticket=9_000_000 + n,
                time=now - timedelta(minutes=1),
                deal_type=0,
                entry=0,
                symbol="BTCUSD",
                volume=Decimal("0.1"),
                price=Decimal("1"),
            )
            for n in range(21)
        ]
    )
    assert account_figures(synced_account, now).trades_today == before + 21


def test_with_sync_all_off_only_included_users_are_synced(fake_systeme, synced_account):
    systeme_settings_update(sync_all_traders=False)
    assert systeme_sync()["synced"] == 0
    contact_include(user=synced_account.owner, included=True)
    assert systeme_sync()["synced"] == 1


def test_an_excluded_trader_is_not_synced(fake_systeme, synced_account):
    contact_include(user=synced_account.owner, included=False)
    assert systeme_sync()["synced"] == 0 and fake_systeme.contacts == {}
