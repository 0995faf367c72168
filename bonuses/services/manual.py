"""Manual assignment by staff: amount caps (campaign rule, role limit) and the client idempotency key."""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal

from config.errors import NotAllowed, ServiceError

from .. import formulas, limits
from ..choices import (
    Trigger,
)
from ..models import Bonus, Campaign, GrantApproval
from .assignment import Assignment, bonus_assign, eligibility_check, key_reused_error
from .audit import actor_label
from .controls import approval_needed, approval_request

# A client's Idempotency-Key: what a UUID, a ULID or a "ticket-123:retry" looks like.
MANUAL_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _actor_scope(actor) -> str:
    if actor is None or isinstance(actor, str):
        return actor_label(actor)
    pk = actor.pk
    return pk.hex if hasattr(pk, "hex") else str(pk)


def manual_request_hash(
    *, campaign_id: int, login: int, deposit: Decimal | None, amount: Decimal | None, override: bool
) -> str:
    """A digest of what a manual assignment asked for (amounts to the cent: "20" and "20.00" are the same)."""

    def money(value):
        return None if value is None else str(formulas.cents(Decimal(value)))

    body = {
        "campaign": campaign_id,
        "login": login,
        "deposit": money(deposit),
        "amount": money(amount),
        "override": bool(override),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def manual_amount_check(*, actor, campaign: Campaign, deposit: Decimal | None, amount: Decimal | None) -> Decimal:
    """The credit a manual assignment gives, refused (400, naming the cap) above the campaign's rules or the role's limit.

    No amount: what the campaign's rule gives (percent of the deposit, or the fixed amount,
    at most the campaign's maximum). An amount: at most that. Then at most the limit of the
    actor's role (``bonuses/limits.py``). Internal callers (an actor given as a string) have
    no role, so only the campaign's rules apply to them.
    """
    cap, rule = formulas.manual_amount_cap(
        deposit=deposit,
        percent=campaign.bonus_percent,
        max_bonus_amount=campaign.max_bonus_amount,
        fixed_amount=campaign.fixed_amount,
    )
    if amount is None:
        granted = cap
    else:
        granted = formulas.cents_down(Decimal(amount))
        if granted > cap:
            raise ServiceError(
                f"The amount {granted} is above this campaign's cap of {cap} ({rule}).",
                code="amount_above_campaign_cap",
                details={"cap": str(cap), "rule": rule, "requested": str(granted)},
            )
    if granted <= 0:
        raise ServiceError(
            f"The bonus amount would be zero ({rule}): give the deposit or an amount.", code="zero_amount"
        )
    if actor is not None and not isinstance(actor, str):
        declared, limit, role = limits.manual_assign_limit(actor)
        if not declared:
            raise NotAllowed(
                "No manual-assign limit is declared for your role (bonuses/limits.py).", code="no_manual_assign_limit"
            )
        if limit is not None and granted > limit:
            raise ServiceError(
                f"The amount {granted} is above the {role} limit of {limit} per manual assignment.",
                code="amount_above_role_limit",
                details={"cap": str(limit), "role": role, "requested": str(granted)},
            )
    return granted


def bonus_assign_manual(
    *,
    actor,
    campaign: Campaign,
    login: int,
    idempotency_key: str,
    deposit: Decimal | None = None,
    amount: Decimal | None = None,
    override: bool = False,
    gateway=None,
) -> Assignment:
    """Staff give ``login`` a bonus by hand, once per (actor, ``idempotency_key``).

    The amount is capped by the campaign's amount rules and the actor's role limit
    (``manual_amount_check``); ``override`` lifts overridable eligibility checks only, never a
    cap. The key comes from the client (the API's ``Idempotency-Key`` header, the admin form's
    one-time hidden field): a repeat with the same request returns the first bonus without a
    second posting; the same key with a different request is refused (409).
    """
    key = (idempotency_key or "").strip()
    if not MANUAL_KEY.match(key):
        raise ServiceError(
            "A manual assignment needs an idempotency key of 1 to 64 letters, digits or ._:- "
            "(the Idempotency-Key header).",
            code="idempotency_key_required",
        )
    scoped = f"manual:{_actor_scope(actor)}:{key}"
    request_hash = manual_request_hash(
        campaign_id=campaign.pk, login=login, deposit=deposit, amount=amount, override=override
    )
    existing = Bonus.objects.filter(idempotency_key=scoped).first()
    if existing is not None:
        if existing.request_hash != request_hash:
            raise key_reused_error(existing)
        granted = existing.amount  # a repeat: the first request was checked, nothing new is posted
    else:
        waiting = GrantApproval.objects.filter(idempotency_key=scoped).first()
        granted = waiting.amount if waiting else None
        if granted is None:
            granted = manual_amount_check(actor=actor, campaign=campaign, deposit=deposit, amount=amount)
        if waiting is not None or approval_needed(actor=actor, amount=granted):
            # Maker-checker: above the threshold the grant waits for a second staff member (services/controls.py).
            failures = (
                [] if waiting else eligibility_check(campaign=campaign, login=login, deposit=deposit, gateway=gateway)
            )
            approval, created = approval_request(
                actor=actor,
                campaign=campaign,
                login=login,
                key=scoped,
                request_hash=request_hash,
                deposit=deposit,
                amount=granted,
                override=override,
                failures=failures,
            )
            return Assignment(campaign=campaign, approval=approval, created=created)
    return bonus_assign(
        campaign=campaign,
        login=login,
        trigger=Trigger.MANUAL,
        idempotency_key=scoped,
        actor=actor,
        deposit=deposit,
        amount=granted,
        override=override,
        gateway=gateway,
        request_hash=request_hash,
    )
