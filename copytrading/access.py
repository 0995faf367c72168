"""Whether a copy link may copy now: the account state and the plan of its master and of its slave.

The answer comes from the one EA gate (``entitlements.gates.ea_access``: the account is active and not paused by
billing, its owner's plan has copy trading, the account is within the plan's account limit). It is kept with the
master's cached configuration (``selectors.AccountConfig``) for at most ``EA_GATE_CACHE_SECONDS``, and dropped at
once when a plan changes or an account is switched on or off (``connect_receivers``), which also records the new
answer on the links concerned: a refused master's heartbeats are answered "denied" by the bridge and never reach
the copy engine, so its links learn the refusal here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.utils import timezone

from accounts.models import TradingAccount
from entitlements.gates import ea_access
from entitlements.selectors import plan_changed

from .models import CopyEvent, CopyLink
from .selectors import AccountConfig, bump_config_version, config_version, configured_accounts

logger = logging.getLogger(__name__)

ROLE_TEXT = {"master": "the master account", "slave": "the slave account"}


def account_refusal(account: Any) -> tuple[str, str] | None:
    """(reason code, reason) when the account's EA is refused by the gate, else None."""
    allowed, text = ea_access(account)
    if allowed:
        return None
    code, _, detail = text.partition(": ")
    if not detail:  # a reason without a "code: " prefix
        code, detail = "access_denied", text
    return code, detail


def refusal_of(role: str, refusal: tuple[str, str]) -> tuple[str, str]:
    """A gate refusal told from the link's side: ``master_plan_required``, "the master account: ..."."""
    code, detail = refusal
    return f"{role}_{code}"[:40], f"{ROLE_TEXT[role]}: {detail}"[:255]


def link_refusals(links: list) -> dict[int, tuple[str, str]]:
    """Per link that may not copy now: (reason code, reason); the master's refusal wins over the slave's."""
    answers: dict[str, tuple[str, str] | None] = {}

    def refusal(account) -> tuple[str, str] | None:
        key = str(account.pk)
        if key not in answers:
            answers[key] = account_refusal(account)
        return answers[key]

    refused: dict[int, tuple[str, str]] = {}
    for link in links:
        master, slave = refusal(link.master), refusal(link.slave)
        if master is not None:
            refused[link.id] = refusal_of("master", master)
        elif slave is not None:
            refused[link.id] = refusal_of("slave", slave)
    return refused


def config_refusals(config: AccountConfig) -> dict[int, tuple[str, str]]:
    """``link_refusals`` of a master's links, kept with its cached configuration for EA_GATE_CACHE_SECONDS."""
    now = time.monotonic()
    checked = config.refusals_checked_at
    if checked is None or now - checked >= settings.EA_GATE_CACHE_SECONDS:
        config.refusals = link_refusals(config.links_out)
        config.refusals_checked_at = now
    return config.refusals


def links_refusal_refresh(*, owner_id=None, account_id=None) -> int:
    """Record on the active links of an owner's accounts (or of one account; neither: every link) whether the gate
    refuses them now. A link newly refused gets a skipped-copy row in its history saying why; a link allowed again
    loses its refusal. Idempotent: an unchanged answer writes nothing. Returns how many links changed."""
    links = CopyLink.objects.filter(active=True).select_related("master", "slave")
    if account_id is not None:
        links = links.filter(Q(master_id=account_id) | Q(slave_id=account_id))
    elif owner_id is not None:
        links = links.filter(Q(master__owner_id=owner_id) | Q(slave__owner_id=owner_id))
    links = list(links)
    refused = link_refusals(links)
    now, changed = timezone.now(), 0
    with transaction.atomic():
        for link in links:
            refusal = refused.get(link.id)
            if refusal is not None and refusal[0] != link.refusal_code:
                code, reason = refusal
                CopyLink.objects.filter(pk=link.pk).update(refusal_code=code, refusal_reason=reason, refused_at=now)
                CopyEvent.objects.create(
                    link=link,
                    master_account_id=link.master_id,
                    slave_account_id=link.slave_id,
                    intent="refused",
                    status="skipped",
                    reason_code=code,
                    reason=reason,
                )
                changed += 1
            elif refusal is None and link.refusal_code:
                CopyLink.objects.filter(pk=link.pk).update(refusal_code="", refusal_reason="")
                changed += 1
    return changed


def connect_receivers() -> None:
    """When a plan changes or an account with a link is switched on or off: drop the cached answers, and record the
    new ones on the links once the change commits."""
    plan_changed.connect(_plan_changed, dispatch_uid="copytrading.access.plan")
    post_save.connect(_account_saved, sender=TradingAccount, dispatch_uid="copytrading.access.account")


def _refresh_after_commit(**scope) -> None:
    def refresh() -> None:
        try:
            links_refusal_refresh(**scope)
        except Exception:  # the plan or account change stands; the next copy attempt records the refusal
            logger.exception("recording copy-link refusals for %s failed", scope)

    transaction.on_commit(refresh)


def _plan_changed(user_id=None, **_kwargs) -> None:
    bump_config_version()
    _refresh_after_commit(owner_id=user_id)


def _account_saved(instance, created=False, update_fields=None, **_kwargs) -> None:
    if created or (update_fields is not None and "is_active" not in update_fields):
        return
    if str(instance.pk) in configured_accounts(config_version()):
        bump_config_version()
        _refresh_after_commit(account_id=instance.pk)
