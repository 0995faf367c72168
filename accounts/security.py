"""Security audit of trading accounts, and the one path that gives an MT5 password out.

The MT5 password is stored encrypted (accounts.vault) and is part of no API, web or admin response, but one:
the account's owner, after re-entering their own login password, may download a start-up .ini holding it
(integrations.api.PreflightFileView.post). Not staff, whatever their role, and not a user the account is
shared with: the password logs in to the account itself, beyond what any permission here grants. Each time
it is given out, and each refused attempt, leaves a SecurityEvent row.
"""

from __future__ import annotations

from config.errors import NotAllowed, ServiceError

from .choices import SecurityAction
from .models import SecurityEvent, TradingAccount, User
from .vault import SecretUnreadable, decrypt


def security_event_record(
    *,
    action: str,
    actor: User | None,
    account: TradingAccount | None,
    ip_address: str | None = None,
    user_agent: str = "",
    detail: str = "",
) -> SecurityEvent:
    """One audit row. A refusal is recorded before the error is raised (requests are not atomic), so it stays."""
    return SecurityEvent.objects.create(
        action=action,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=(getattr(actor, "email", "") or "")[:254],
        account=account,
        account_login=account.login if account is not None else None,
        ip_address=ip_address or None,
        user_agent=(user_agent or "")[:255],
        detail=detail[:255],
    )


def mt5_password_reveal(
    *, account: TradingAccount, user: User, login_password: str, ip_address: str | None, user_agent: str = ""
) -> str:
    """The decrypted MT5 password of ``account``, for its owner who re-entered their own login password.

    Raises NotAllowed (403) for anyone else or a wrong login password, after recording the refusal.
    """

    def record(action: str, detail: str = "") -> None:
        security_event_record(
            action=action, actor=user, account=account, ip_address=ip_address, user_agent=user_agent, detail=detail
        )

    if user.pk != account.owner_id:
        record(SecurityAction.MT5_PASSWORD_REFUSED, "not the account's owner")
        raise NotAllowed("Only the account's owner can get its MT5 password.", code="owner_only")
    if not login_password or not user.check_password(login_password):
        record(SecurityAction.MT5_PASSWORD_REFUSED, "wrong login password")
        raise NotAllowed("Your login password is not correct.", code="wrong_password")
    try:
        password = decrypt(account.password_encrypted)
    except SecretUnreadable:
        raise ServiceError(
            "The stored MT5 password cannot be decrypted; enter it again.", code="secret_unreadable"
        ) from None
    record(SecurityAction.MT5_PASSWORD_REVEALED)
    return password
