"""The copy-trading panel of the support agent's account 360 page (filled into `accounts.ports` at start-up).

Read-only: the account's copy links in both directions with their refusal, its copy mode, the latest copy
failures and skips (copy events that did not end in a copy) and the latest risk-rule hits.
"""

from __future__ import annotations

from django.db.models import Q

from accounts.models import TradingAccount

from .models import AccountCopyState, CopyEvent, CopyLink, RuleHit

RECENT = 20


def copy_panel(account: TradingAccount) -> dict:
    links = CopyLink.objects.select_related("master", "slave")
    events = (
        CopyEvent.objects.filter(Q(master_account=account) | Q(slave_account=account))
        .select_related("master_account", "slave_account")
        .order_by("-created_at", "-id")[:RECENT]
    )
    return {
        "links_out": list(links.filter(master=account).order_by("-created_at")),
        "links_in": list(links.filter(slave=account).order_by("-created_at")),
        "state": AccountCopyState.objects.filter(account=account).first(),
        "failures": list(events),
        "rule_hits": list(RuleHit.objects.filter(account=account).select_related("rule")[:RECENT]),
    }
