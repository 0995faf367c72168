"""The write path of a report import: its deals stored in one transaction, the import recorded."""

from __future__ import annotations

from django.db import transaction

from accounts import ports
from accounts.models import Deal, StatementImport, TradingAccount, User

from .parsing import parse_statement
from .upload import StatementInvalid


def statement_import(*, account: TradingAccount, user: User | None, filename: str, data: bytes) -> StatementImport:
    """Import a report's deals into ``account``: new tickets are stored, known ones skipped with a reason.

    One transaction: a malformed file raises before anything is written.
    """
    statement = parse_statement(filename, data)
    if statement.login is not None and statement.login != account.login:
        raise StatementInvalid(
            f"This report is for account {statement.login}, not {account.login}; nothing was imported."
        )
    with transaction.atomic():
        known = set(
            Deal.objects.filter(account=account, ticket__in=[deal.ticket for deal in statement.deals]).values_list(
                "ticket", flat=True
            )
        )
        fresh: list[Deal] = []
        skipped: list[dict] = []
        seen: set[int] = set()
        start = ports.history_start(account.owner_id, viewer=user)  # the owner's plan's history window
        for deal in statement.deals:
            if start is not None and deal.time < start:
                skipped.append({"ticket": deal.ticket, "reason": "older than the plan's history"})
                continue
            if deal.ticket in known:
                skipped.append({"ticket": deal.ticket, "reason": "already in this account"})
                continue
            if deal.ticket in seen:
                skipped.append({"ticket": deal.ticket, "reason": "listed twice in the report"})
                continue
            seen.add(deal.ticket)
            fresh.append(
                Deal(
                    account=account,
                    ticket=deal.ticket,
                    order=deal.order,
                    time=deal.time,
                    deal_type=deal.deal_type,
                    entry=deal.entry,
                    position_id=deal.position_id,
                    volume=deal.volume,
                    price=deal.price,
                    commission=deal.commission,
                    swap=deal.swap,
                    profit=deal.profit,
                    fee=deal.fee,
                    symbol=deal.symbol,
                    comment=deal.comment,
                    external_id="statement",
                )
            )
        Deal.objects.bulk_create(fresh, batch_size=1000)
        record = StatementImport.objects.create(
            account=account,
            uploaded_by=user if user is not None and user.is_authenticated else None,
            filename=filename[:255],
            file_format=statement.file_format,
            report_login=statement.login,
            deals_found=len(statement.deals),
            deals_imported=len(fresh),
            deals_skipped=len(skipped),
            skipped=skipped,
        )
    return record
