"""Broker financial controls: campaign budget caps, maker-checker approval of large grants, the abuse signal."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from config.errors import Conflict, NotAllowed, ServiceError

from ..choices import AbuseKind, ApprovalStatus, AuditAction, BonusStatus, Trigger
from ..eligibility import blocking
from ..formulas import ZERO
from ..models import AbuseSignal, Bonus, Campaign, GrantApproval, MonitoredAccount
from .audit import audit_write

# --- budget caps ----------------------------------------------------------------------------


def _granted(campaign: Campaign, **filters) -> Decimal:
    # Credit a campaign has given: every bonus but those MT5 refused (converted and removed credit was still spent).
    rows = Bonus.objects.filter(campaign=campaign, **filters).exclude(status=BonusStatus.FAILED)
    return rows.aggregate(s=Sum("amount"))["s"] or ZERO


def budget_refusal(*, campaign: Campaign, login: int, amount: Decimal) -> dict | None:
    """Why granting ``amount`` to ``login`` would break one of the campaign's budget caps (None: it fits).

    Call with the campaign row locked (``campaign_budget_lock``) so two grants cannot both fit the last of it.
    """
    if campaign.budget_total is not None:
        used = _granted(campaign)
        if used + amount > campaign.budget_total:
            left = max(ZERO, campaign.budget_total - used)
            return {
                "check": "budget_total",
                "message": f"The campaign's budget of {campaign.budget_total} has {left} left; this grant is {amount}.",
                "cap": str(campaign.budget_total),
                "used": str(used),
            }
    if campaign.client_credit_cap is not None:
        used = _granted(campaign, login=login)
        if used + amount > campaign.client_credit_cap:
            return {
                "check": "client_credit_cap",
                "message": f"Login {login} has received {used} of this campaign's {campaign.client_credit_cap} "
                f"per-client cap; this grant is {amount}.",
                "cap": str(campaign.client_credit_cap),
                "used": str(used),
            }
    return None


def campaign_budget_lock(campaign: Campaign) -> None:
    """Serialise the grants of a campaign with a budget cap (after the account row: the order every writer uses)."""
    if campaign.budget_total is not None or campaign.client_credit_cap is not None:
        list(Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("pk"))


class BudgetRefused(Conflict):
    """A grant over a budget cap; raised inside the grant's transaction, audited by ``budget_refused_audit``."""


def budget_refused_error(refusal: dict, amount: Decimal) -> BudgetRefused:
    failure = {"check": refusal["check"], "message": refusal["message"], "overridable": False, "amount": str(amount)}
    return BudgetRefused(refusal["message"], code="budget_exceeded", details={"failures": [failure]})


def budget_refused_audit(*, actor, campaign: Campaign, login: int, error: BudgetRefused) -> None:
    """The refused grant's audit row, written after its transaction rolled back (so it stays)."""
    audit_write(
        actor=actor,
        action=AuditAction.GRANT_REFUSED,
        login=login,
        campaign=campaign,
        after=error.details["failures"][0],
        message=error.message,
    )


# --- maker-checker --------------------------------------------------------------------------


def approval_needed(*, actor, amount: Decimal) -> bool:
    """A grant by a person above BONUS_APPROVAL_THRESHOLD waits for a second person (internal callers never do)."""
    threshold = settings.BONUS_APPROVAL_THRESHOLD
    return threshold is not None and actor is not None and not isinstance(actor, str) and amount > threshold


def approval_request(
    *,
    actor,
    campaign: Campaign,
    login: int,
    key: str,
    request_hash: str,
    deposit: Decimal | None,
    amount: Decimal,
    override: bool,
    failures: list,
) -> tuple[GrantApproval, bool]:
    """Record a grant that waits for approval, once per key: eligibility and the budget are checked first."""
    existing = GrantApproval.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.request_hash != request_hash:
            raise Conflict(
                f"This idempotency key was already used for a different request (approval #{existing.pk}).",
                code="idempotency_key_reused",
                details={"approval": existing.pk},
            )
        return existing, False
    stop = blocking(failures, override=override)
    if stop:
        raise Conflict(
            "The account is not eligible for this bonus.",
            code="not_eligible",
            details={
                "failures": [f.as_dict() for f in failures],
                "overridable": all(f.overridable for f in stop),
            },
        )
    refusal = budget_refusal(campaign=campaign, login=login, amount=amount)
    if refusal is not None:
        error = budget_refused_error(refusal, amount)
        budget_refused_audit(actor=actor, campaign=campaign, login=login, error=error)
        raise error
    with transaction.atomic():
        approval = GrantApproval.objects.create(
            campaign=campaign,
            login=login,
            idempotency_key=key,
            request_hash=request_hash,
            deposit_amount=deposit,
            amount=amount,
            override=override,
            overridden_checks=[f.check for f in failures],
            requested_by=actor,
        )
        audit_write(
            actor=actor,
            action=AuditAction.APPROVAL_REQUESTED,
            login=login,
            campaign=campaign,
            after=approval_state(approval),
            message=f"approval #{approval.pk}: {amount} waits for a second staff member",
        )
    return approval, True


def approval_state(approval: GrantApproval) -> dict:
    return {
        "approval": approval.pk,
        "status": approval.status,
        "amount": str(approval.amount),
        "deposit": None if approval.deposit_amount is None else str(approval.deposit_amount),
        "override": approval.override,
        "overridden": approval.overridden_checks,
        "bonus": approval.bonus_id,
    }


def _decision_lock(actor, approval: GrantApproval, *, retry_approved: bool) -> GrantApproval:
    approval = GrantApproval.objects.select_for_update().get(pk=approval.pk)
    if approval.requested_by_id is not None and approval.requested_by_id == getattr(actor, "pk", None):
        raise NotAllowed(
            "A grant is approved by a second staff member, not by the person who asked for it.",
            code="same_person",
        )
    waiting = approval.status == ApprovalStatus.PENDING
    unfinished = retry_approved and approval.status == ApprovalStatus.APPROVED and approval.bonus_id is None
    if not (waiting or unfinished):
        raise Conflict(f"The approval is already {approval.status}.", code="approval_decided")
    return approval


def approval_reject(*, actor, approval: GrantApproval, note: str = "") -> GrantApproval:
    with transaction.atomic():
        approval = _decision_lock(actor, approval, retry_approved=False)
        before = approval_state(approval)
        approval.status, approval.decided_by, approval.decided_at = ApprovalStatus.REJECTED, actor, timezone.now()
        approval.note = note[:255]
        approval.save(update_fields=["status", "decided_by", "decided_at", "note"])
        audit_write(
            actor=actor,
            action=AuditAction.APPROVAL_REJECTED,
            login=approval.login,
            campaign=approval.campaign,
            before=before,
            after=approval_state(approval),
            message=f"approval #{approval.pk} rejected {note}".strip(),
        )
    return approval


def approval_approve(*, actor, approval: GrantApproval, gateway=None) -> GrantApproval:
    """A second staff member approves: the grant is made under the maker's key (idempotent), or recorded as failed.

    The decision commits before MT5 is called; an approval left approved without its bonus (a crash in
    between) can be approved again, and the same key makes sure it is granted once.
    """
    from .assignment import bonus_assign  # noqa: PLC0415 (assignment imports this module for the budget check)

    with transaction.atomic():
        approval = _decision_lock(actor, approval, retry_approved=True)
        before = approval_state(approval)
        approval.status, approval.decided_by, approval.decided_at = ApprovalStatus.APPROVED, actor, timezone.now()
        approval.save(update_fields=["status", "decided_by", "decided_at"])
        audit_write(
            actor=actor,
            action=AuditAction.APPROVAL_APPROVED,
            login=approval.login,
            campaign=approval.campaign,
            before=before,
            after=approval_state(approval),
            message=f"approval #{approval.pk}: {approval.amount} approved",
        )
    try:
        result = bonus_assign(
            campaign=approval.campaign,
            login=approval.login,
            trigger=Trigger.MANUAL,
            idempotency_key=approval.idempotency_key,
            actor=approval.requested_by or actor,
            deposit=approval.deposit_amount,
            amount=approval.amount,
            override=approval.override,
            gateway=gateway,
            request_hash=approval.request_hash,
        )
    except ServiceError as exc:
        GrantApproval.objects.filter(pk=approval.pk).update(status=ApprovalStatus.FAILED, note=exc.message[:255])
        approval.refresh_from_db()
        audit_write(
            actor=actor,
            action=AuditAction.APPROVAL_APPROVED,
            login=approval.login,
            campaign=approval.campaign,
            after=approval_state(approval),
            message=f"approval #{approval.pk}: the grant was refused: {exc.message}",
        )
        raise
    GrantApproval.objects.filter(pk=approval.pk).update(bonus=result.bonus)
    approval.refresh_from_db()
    return approval


# --- abuse signal ---------------------------------------------------------------------------


def _shared_values(account: MonitoredAccount, campaign: Campaign) -> dict[str, str]:
    ignored = {d.lower() for d in settings.BONUS_ABUSE_IGNORED_DOMAINS}
    agent_codes = {c.strip().lower() for c in campaign.agent_codes or []}
    values = {}
    if account.email_domain and account.email_domain.lower() not in ignored:
        values[AbuseKind.EMAIL_DOMAIN] = account.email_domain.lower()
    # An agent-code campaign targets one lead source on purpose: sharing it is what qualifies, not a signal.
    if account.lead_source and account.lead_source.strip().lower() not in agent_codes:
        values[AbuseKind.LEAD_SOURCE] = account.lead_source.strip()
    if account.last_ip:
        values[AbuseKind.IP] = account.last_ip
    return values


FIELD = {AbuseKind.EMAIL_DOMAIN: "email_domain__iexact", AbuseKind.LEAD_SOURCE: "lead_source", AbuseKind.IP: "last_ip"}


def abuse_signals_update(*, campaign: Campaign, login: int, actor) -> list[AbuseSignal]:
    """After ``login`` got ``campaign``'s bonus: list each shared email domain, lead source or IP for review.

    A signal is raised when BONUS_ABUSE_MIN_ACCOUNTS accounts sharing the value hold a bonus of the
    campaign; a reviewed signal is raised again when more accounts join it.
    """
    account = MonitoredAccount.objects.filter(login=login).first()
    if account is None:
        return []
    raised = []
    holders = Bonus.objects.filter(campaign=campaign).exclude(status=BonusStatus.FAILED).values("login")
    for kind, value in _shared_values(account, campaign).items():
        logins = sorted(
            MonitoredAccount.objects.filter(**{FIELD[kind]: value}, login__in=holders).values_list("login", flat=True)[
                :500
            ]
        )
        if len(logins) < settings.BONUS_ABUSE_MIN_ACCOUNTS:
            continue
        signal, created = AbuseSignal.objects.get_or_create(
            campaign=campaign, kind=kind, value=value[:128], defaults={"logins": logins, "accounts": len(logins)}
        )
        if not created and len(logins) <= signal.accounts:
            continue
        if not created:
            signal.logins, signal.accounts, signal.reviewed_by, signal.reviewed_at = logins, len(logins), None, None
            signal.save(update_fields=["logins", "accounts", "reviewed_by", "reviewed_at", "last_seen_at"])
        audit_write(
            actor=actor,
            action=AuditAction.ABUSE_FLAGGED,
            login=login,
            campaign=campaign,
            after={"kind": kind, "value": value, "accounts": len(logins)},
            message=f"{len(logins)} accounts share {kind} {value}",
        )
        raised.append(signal)
    return raised


def abuse_signal_review(*, actor, signal: AbuseSignal) -> AbuseSignal:
    with transaction.atomic():
        signal = AbuseSignal.objects.select_for_update().get(pk=signal.pk)
        if signal.reviewed_at is not None:
            return signal
        signal.reviewed_by, signal.reviewed_at = actor, timezone.now()
        signal.save(update_fields=["reviewed_by", "reviewed_at"])
        audit_write(
            actor=actor,
            action=AuditAction.ABUSE_REVIEWED,
            campaign=signal.campaign,
            after={"kind": signal.kind, "value": signal.value, "accounts": signal.accounts},
            message=f"abuse signal #{signal.pk} reviewed",
        )
    return signal


def client_ip_record(*, login: int, ip: str | None) -> None:
    """Remember the IP a trigger reported for the client (the abuse signal's third key)."""
    if ip:
        MonitoredAccount.objects.filter(login=login).update(last_ip=ip)
