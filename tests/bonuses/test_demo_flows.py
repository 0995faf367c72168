"""The run command's bonus demo moves: deposits and withdrawals on the demo clients make every campaign fire.

Reported fault: the bonus demo was idle (three campaigns, no bonus ever granted, every dashboard figure 0).
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.utils import timezone

from bonuses import selectors
from bonuses.admin.dashboard import conversion_progress, granted_and_cancelled
from bonuses.choices import AuditAction, BonusStatus, BonusType, OperationKind
from bonuses.models import AuditLog, Bonus, BonusOperation
from bonuses.monitor import Monitor
from mt5bridge import gateway as gw
from mt5bridge.simulated.demo_flows import CLIENTS, DemoFlows, clients_ensure

pytestmark = pytest.mark.django_db


def _run_demo(steps: int) -> Monitor:
    call_command("seed_bonus_demo", verbosity=0)
    clients_ensure()
    sim = gw.get_gateway("simulated")
    monitor = Monitor(gateway=sim, worker="demo-test", queued=False)
    monitor.cycle()  # discovery and baselines
    flows = DemoFlows(sim, seed=7)
    for _ in range(steps):
        flows.step()
        monitor.cycle()
        monitor.cycle()
    return monitor


def test_a_few_demo_steps_grant_every_bonus_type_and_show_on_the_dashboard():
    _run_demo(steps=4)
    a_login, b_login, c_login = (client.login for client in CLIENTS)
    sim = gw.get_gateway("simulated")

    # Type B: a fixed-leverage credit on the first deposit, trimmed by the withdrawals that followed.
    b = Bonus.objects.get(login=b_login, bonus_type=BonusType.FIXED_LEVERAGE)
    assert b.status == BonusStatus.ACTIVE
    assert D("0") < b.credit_outstanding < b.amount
    assert sim.account_info(b_login).credit == b.credit_outstanding

    # Type A: the grant lowered the leverage (1:500 -> about 1:333), and a withdrawal moved it again.
    a = Bonus.objects.get(login=a_login, bonus_type=BonusType.DYNAMIC_LEVERAGE)
    leverage_changes = BonusOperation.objects.filter(bonus=a, kind=OperationKind.LEVERAGE)
    assert leverage_changes.count() >= 2
    assert sim.account_info(a_login).leverage < 500

    # Type C: converting as the client trades.
    c = Bonus.objects.get(login=c_login, bonus_type=BonusType.CONVERTIBLE)
    assert c.status == BonusStatus.ACTIVE and c.lots_traded > 0 and c.converted_amount > 0

    # What the dashboard shows: three open bonuses, credit outstanding, grants today, type C progress.
    figures = selectors.dashboard()
    assert figures["active_bonuses"] == 3 and figures["credit_outstanding"] > 0 and figures["given_30d"] > 0
    assert granted_and_cancelled(timezone.localdate())["granted"][-1] == 3
    progress = conversion_progress()
    assert progress["open"] == 1 and progress["rows"][0]["percent"] > 0
    assert AuditLog.objects.filter(action=AuditAction.CONVERTED, login=c_login).exists()


def test_seed_bonus_demo_is_idempotent_and_keeps_every_campaign_running():
    call_command("seed_bonus_demo", verbosity=0)
    call_command("seed_bonus_demo", verbosity=0)
    from bonuses.models import Campaign

    campaigns = Campaign.objects.order_by("bonus_type")
    assert [c.bonus_type for c in campaigns] == ["A", "B", "C"]
    assert all(c.status == "active" for c in campaigns)
    assert [c.agent_codes for c in campaigns] == [["DEMO-A"], ["DEMO-B"], ["DEMO-C"]]
    assert campaigns.count() == 3  # the second run created nothing
