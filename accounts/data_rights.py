"""A person's data rights: marketing consent (audited), the JSON export of their data, and account deletion.

What is exported, erased and kept, and why, is written down in docs/privacy.md; this module is its one write path.
Apps above accounts add their part through `accounts.ports.provide_personal_data` (copy links, bonuses, the plan and
its invoices, the Systeme.io contact), so the export and the deletion cover them without accounts importing them.
"""

from __future__ import annotations

import logging
import secrets

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.models import UserObjectPermission
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from config.errors import NotAllowed, ServiceError

from . import ports
from .choices import ConsentSource, SecurityAction
from .models import (
    AccountSnapshot,
    ConsentRecord,
    Deal,
    Order,
    Position,
    SecurityEvent,
    StatementImport,
    TradingAccount,
    User,
)
from .security import security_event_record

logger = logging.getLogger(__name__)

#: Erased people keep their row (money records and audit rows point at it) under this kind of address.
ERASED_DOMAIN = "erased.invalid"
#: Trading-account columns the export leaves out: the credential and the sync's internal bookkeeping.
ACCOUNT_EXCLUDED = ("password_encrypted",)
EXPORT_FORMAT = "mt5-backoffice-personal-data/1"


# --- Consent -------------------------------------------------------------------------------


def consent_set(
    *,
    user: User,
    granted: bool,
    source: str,
    actor: User | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> ConsentRecord | None:
    """Set ``user``'s marketing consent; a change leaves a ConsentRecord (None: it was already so)."""
    if not isinstance(granted, bool):
        raise ServiceError("Consent is true or false.", code="invalid")
    if source not in ConsentSource.values:
        raise ServiceError(f"Unknown consent source {source!r}.", code="invalid")
    actor = actor if actor is not None and actor.is_authenticated else None
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.erased_at is not None:
            raise ServiceError("This account was deleted.", code="erased", status_code=409)
        if locked.marketing_consent == granted:
            return None
        now = timezone.now()
        User.objects.filter(pk=user.pk).update(marketing_consent=granted, marketing_consent_at=now)
        record = ConsentRecord.objects.create(
            user=locked,
            previous=locked.marketing_consent,
            granted=granted,
            source=source,
            actor=actor,
            actor_label=(actor.email if actor is not None else "")[:254],
            ip_address=ip_address or None,
            user_agent=(user_agent or "")[:255],
            created_at=now,
        )
    user.marketing_consent, user.marketing_consent_at = granted, now
    logger.info("user %s marketing consent %s (%s)", user.pk, "granted" if granted else "withdrawn", source)
    return record


def consent_history(user: User) -> list[dict]:
    return [
        {
            "at": row.created_at,
            "purpose": row.purpose,
            "previous": row.previous,
            "granted": row.granted,
            "source": row.source,
            "by": row.actor_label,
        }
        for row in ConsentRecord.objects.filter(user=user).order_by("created_at", "id")
    ]


# --- Export --------------------------------------------------------------------------------


def _rows(queryset, *exclude: str) -> list[dict]:
    fields = [f.attname for f in queryset.model._meta.concrete_fields if f.attname not in exclude]
    return list(queryset.values(*fields))


def personal_data_export(*, user: User, ip_address: str | None = None, user_agent: str = "") -> dict:
    """Everything the product holds about ``user`` as plain JSON-ready values (Decimal and datetime are left to the
    encoder: DjangoJSONEncoder writes them as strings). No credential is in it: no MT5 password, no login password
    hash, no token, no two-factor secret."""
    profile = model_to_dict(
        user,
        fields=[
            "id",
            "email",
            "display_name",
            "first_name",
            "last_name",
            "email_verified_at",
            "marketing_consent",
            "marketing_consent_at",
        ],
    )
    profile.update(
        date_joined=user.date_joined,
        last_login=user.last_login,
        roles=sorted(user.groups.values_list("name", flat=True)),
        two_factor_enrolled=user_has_device(user, confirmed=True),
    )
    accounts = []
    for account in TradingAccount.objects.filter(owner=user).order_by("created_at"):
        (row,) = _rows(TradingAccount.objects.filter(pk=account.pk), *ACCOUNT_EXCLUDED)
        accounts.append(
            {
                "account": row,
                "snapshots": _rows(AccountSnapshot.objects.filter(account=account).order_by("taken_at")),
                "positions": _rows(Position.objects.filter(account=account).order_by("opened_at")),
                "orders": _rows(Order.objects.filter(account=account).order_by("placed_at")),
                "deals": _rows(Deal.objects.filter(account=account).order_by("time", "ticket")),
                "statement_imports": _rows(StatementImport.objects.filter(account=account).order_by("uploaded_at")),
            }
        )
    data = {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now(),
        "profile": profile,
        "consent": consent_history(user),
        "trading_accounts": accounts,
        "security_events": _rows(SecurityEvent.objects.filter(actor=user).order_by("created_at"), "actor_id"),
        **ports.personal_data_sections(user),
    }
    security_event_record(
        action=SecurityAction.DATA_EXPORTED,
        actor=user,
        account=None,
        ip_address=ip_address,
        user_agent=user_agent,
        detail=f"{len(accounts)} trading accounts",
    )
    return data


# --- Deletion ------------------------------------------------------------------------------


def account_erase(
    *, user: User, password: str, otp_code: str = "", ip_address: str | None = None, user_agent: str = ""
) -> bool:
    """Delete ``user``'s account: credentials and history erased, money and audit records kept under a pseudonym
    (docs/privacy.md). Needs the login password, and the two-factor code when enrolled. Idempotent: an erased
    person is left as is (False); True when this call erased.
    """
    if user.erased_at is not None:
        return False

    def refuse(message: str, code: str) -> None:
        security_event_record(
            action=SecurityAction.ERASE_REFUSED,
            actor=user,
            account=None,
            ip_address=ip_address,
            user_agent=user_agent,
            detail=code,
        )
        raise NotAllowed(message, code=code)

    if user.is_staff or user.is_superuser:
        refuse("Staff accounts are removed by a Super Admin in the admin, not from here.", "staff_account")
    if not password or not user.check_password(password):
        refuse("Your password is not correct.", "wrong_password")
    if user_has_device(user, confirmed=True):
        code = "".join((otp_code or "").split()).lower()
        if not code:
            refuse("Enter the code from your authenticator app (or a backup code).", "otp_required")
        if match_token(user, code) is None:
            refuse("That two-factor code is not right.", "otp_invalid")

    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.erased_at is not None:
            return False
        pseudonym = f"erased-{secrets.token_hex(6)}"
        erased_email = f"{pseudonym}@{ERASED_DOMAIN}"
        old_email = locked.email
        accounts = list(TradingAccount.objects.filter(owner=locked).values_list("login", flat=True))
        if locked.marketing_consent:
            consent_set(user=locked, granted=False, source=ConsentSource.ERASURE, actor=locked)
        # The apps above first: they may read the accounts (copy links, bonuses by login) before those go.
        steps = ports.personal_data_erase(locked, pseudonym)
        # Trading accounts with their credential and history: snapshots, positions, orders, deals, sync runs,
        # statement imports, EA tokens (every row hanging off an account is deleted with it).
        TradingAccount.objects.filter(owner=locked).delete()
        TOTPDevice.objects.filter(user=locked).delete()
        StaticDevice.objects.filter(user=locked).delete()
        OutstandingToken.objects.filter(user=locked).delete()  # their blacklist rows go with them
        UserObjectPermission.objects.filter(user=locked).delete()
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            model.objects.filter(username__iexact=old_email).delete()
        # Audit rows stay, pointing at the pseudonymised row; the address, IP and browser they copied go.
        SecurityEvent.objects.filter(actor=locked).update(actor_label=erased_email, ip_address=None, user_agent="")
        ConsentRecord.objects.filter(user=locked).update(ip_address=None, user_agent="")
        ConsentRecord.objects.filter(actor=locked).update(actor_label=erased_email)
        locked.email = erased_email
        locked.display_name = locked.first_name = locked.last_name = ""
        locked.set_unusable_password()
        locked.is_active = False
        locked.email_verified_at = None
        locked.erased_at = timezone.now()
        locked.save()
        locked.groups.clear()
        locked.user_permissions.clear()
        security_event_record(
            action=SecurityAction.ACCOUNT_ERASED,
            actor=locked,
            account=None,
            detail=f"{len(accounts)} MT5 accounts erased; parts: {', '.join(steps) or 'accounts only'}"[:255],
        )
    user.refresh_from_db()
    logger.info("user %s deleted their account (%s MT5 accounts erased)", user.pk, len(accounts))
    return True
