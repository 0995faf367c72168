"""Automation rules: evaluate each rule per contact and act (a Systeme.io tag) once per crossing."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from .. import systeme
from ..choices import FiringResult, RuleAction, WebhookEvent
from ..figures import condition_met
from ..models import AutomationRule, ContactSync, RuleFiring, RuleState
from ..selectors import account_figures, contact_accounts, marketing_permitted
from . import ERROR_LIMIT
from .contacts import systeme_client
from .webhooks import webhook_emit


def rules_evaluate(
    *, client: systeme.SystemeClient | None = None, now: datetime | None = None, user_ids: list[int] | None = None
) -> dict:
    """Evaluate every enabled rule for every linked contact; act on crossings only."""
    now = now or timezone.now()
    rules = list(AutomationRule.objects.filter(enabled=True))
    result = {"evaluated": 0, "fired": 0, "failed": 0, "rearmed": 0}
    if not rules:
        return result
    own_client = client is None
    client = client or systeme_client()
    tag_ids: dict[str, int] = {}
    contacts = ContactSync.objects.exclude(contact_id="").select_related("user")
    # Tags are marketing too: a person who withdrew consent gets none (the sync stopped pushing them as well).
    contacts = contacts.filter(user__in=marketing_permitted(get_user_model().objects.filter(is_active=True)))
    if user_ids is not None:
        contacts = contacts.filter(user_id__in=user_ids)
    try:
        for contact in contacts.iterator():
            per_account = [(account, account_figures(account, now)) for account in contact_accounts(contact.user)]
            for rule in rules:
                result["evaluated"] += 1
                hits = [(a, f) for a, f in per_account if condition_met(rule.condition, rule.threshold, f, now)]
                outcome = _rule_apply(rule=rule, contact=contact, hits=hits, client=client, tag_ids=tag_ids)
                if outcome:
                    result[outcome] += 1
    finally:
        if own_client:
            client.close()
    return result


def _rule_apply(*, rule, contact, hits, client, tag_ids) -> str | None:
    with transaction.atomic():
        RuleState.objects.get_or_create(rule=rule, contact=contact)
        # skip_locked: another evaluator holding this pair is already acting on it.
        state = RuleState.objects.select_for_update(skip_locked=True).filter(rule=rule, contact=contact).first()
        if state is None:
            return None
        if not hits:
            if state.active:
                state.active, state.changed_at = False, timezone.now()
                state.save(update_fields=["active", "changed_at"])
                return "rearmed"
            return None
        if state.active:
            return None  # still above the line: it fired when it crossed
        account, figures = hits[0]
        error = ""
        try:
            tag_id = tag_ids.get(rule.tag)
            if tag_id is None:
                tag_id = tag_ids[rule.tag] = client.ensure_tag(rule.tag).id
            if rule.action == RuleAction.ADD_TAG:
                client.add_tag(int(contact.contact_id), tag_id)
                contact.tags = sorted(set(contact.tags) | {rule.tag})
            else:
                client.remove_tag(int(contact.contact_id), tag_id)
                contact.tags = sorted(set(contact.tags) - {rule.tag})
            contact.save(update_fields=["tags"])
        except systeme.SystemeError as exc:
            error = str(exc)[:ERROR_LIMIT]
        firing = RuleFiring.objects.create(
            rule=rule,
            contact=contact,
            account=account,
            figures=figures.as_json(),
            action=rule.action,
            tag=rule.tag,
            result=FiringResult.FAILED if error else FiringResult.OK,
            error=error,
        )
        if error:
            return "failed"  # the state stays inactive, so the next evaluation tries again
        state.active, state.changed_at = True, timezone.now()
        state.save(update_fields=["active", "changed_at"])
        webhook_emit(
            WebhookEvent.RULE_HIT,
            {
                "rule": rule.slug,
                "action": rule.action,
                "tag": rule.tag,
                "email": contact.email,
                "account_id": str(account.pk),
                "login": account.login,
                "figures": firing.figures,
            },
        )
    return "fired"
