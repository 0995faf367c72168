"""The simulated server's named SQL (``mt5bridge.simulated.sql``) against PostgreSQL: the same rows as the ORM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from mt5bridge.gateway.simulated import SimulatedGateway
from mt5bridge.gateway.types import NotFound, OrderRequest, OrderType, Retcode, TradeAction
from mt5bridge.simulated import bulk, clock, create_account, deposit, generate_history, reads, sql
from mt5bridge.simulated.book import allocate_tickets
from mt5bridge.simulated.models import SimAccount, SimDeal, SimGroup, SimOrder, SimPosition, SimServer

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the statements run on PostgreSQL"),
]

WEDNESDAY_NOON = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
D = Decimal


@pytest.fixture(autouse=True)
def _market(settings):
    settings.MT5_SIM_SEED = 20261122
    clock.set_now(WEDNESDAY_NOON)
    bulk.HELD.clear()
    yield
    bulk.HELD.clear()
    clock.set_now(None)


@pytest.fixture
def gw() -> SimulatedGateway:
    return SimulatedGateway()


def _send(gw, login, **fields):
    result = gw.order_send(login, OrderRequest(**fields))
    assert result.retcode in (Retcode.DONE, Retcode.PLACED), result
    return result


@pytest.fixture
def trader(gw) -> int:
    """An account with past deals, two open positions (one with a stop), one placed and one removed order."""
    login = create_account(login=7701, password="pw", balance=D("10000"), leverage=100).login
    generate_history(login, days=20, trades_per_day=4, seed=7)
    _send(gw, login, action=TradeAction.DEAL, symbol="EURUSD", volume=D("0.10"), type=OrderType.BUY)
    tick = gw.tick("XAUUSD")
    _send(gw, login, action=TradeAction.DEAL, symbol="XAUUSD", volume=D("0.02"), type=OrderType.SELL,
          sl=tick.ask + D("20"))  # fmt: skip
    ask = gw.tick("EURUSD").ask
    _send(gw, login, action=TradeAction.PENDING, symbol="EURUSD", volume=D("0.10"), type=OrderType.BUY_LIMIT,
          price=ask - D("0.00500"))  # fmt: skip
    removed = _send(gw, login, action=TradeAction.PENDING, symbol="EURUSD", volume=D("0.20"),
                    type=OrderType.BUY_LIMIT, price=ask - D("0.00800"))  # fmt: skip
    _send(gw, login, action=TradeAction.REMOVE, order=removed.order)
    return login


@pytest.fixture
def idle() -> int:
    """An account with no open position."""
    return create_account(login=7702, password="pw", balance=D("2500"), leverage=200).login


def _ms(when: datetime) -> int:
    return (when - EPOCH) // timedelta(milliseconds=1)


def _orm_deals(queryset) -> list[tuple]:
    """The ORM's deal rows in ``sql.DEAL_FIELDS`` order, time as epoch milliseconds (as the statements give it)."""
    at = sql.DEAL_FIELDS.index("time")
    rows = queryset.order_by("time", "ticket").values_list(*sql.DEAL_FIELDS)
    return [(*row[:at], _ms(row[at]), *row[at + 1 :]) for row in rows]


# --- tickets_reserve ----------------------------------------------------------------------


def test_tickets_are_reserved_in_consecutive_blocks_that_never_overlap(trader):
    server = SimAccount.objects.get(login=trader).server
    before = SimServer.objects.get(name=server).next_ticket
    assert SimDeal.objects.filter(account_id=trader).order_by("-ticket").first().ticket < before
    first = allocate_tickets(server, 4)
    second = allocate_tickets(server, 3)
    assert (first, second) == (before, before + 4)
    assert SimServer.objects.get(name=server).next_ticket == before + 7
    assert sql.tickets_reserve(server, 1) == before + 8  # the counter after the reservation


def test_reserving_on_an_unknown_server_changes_nothing_and_is_refused(trader):
    counters = dict(SimServer.objects.values_list("name", "next_ticket"))
    assert sql.tickets_reserve("Nowhere-Server", 5) is None
    with pytest.raises(NotFound):
        allocate_tickets("Nowhere-Server", 5)
    assert dict(SimServer.objects.values_list("name", "next_ticket")) == counters


# --- one account --------------------------------------------------------------------------


def test_account_rows_hold_the_account_its_group_and_open_positions_as_the_orm_does(trader):
    names = sql.row_names()
    rows = sql.account_rows(trader)
    n_account, n_group = len(names.account), len(names.group)
    account = SimAccount.objects.get(login=trader)
    assert {row[:n_account] for row in rows} == {
        SimAccount.objects.filter(login=trader).values_list(*names.account).get()
    }
    assert {row[n_account : n_account + n_group] for row in rows} == {
        SimGroup.objects.filter(pk=account.group_id).values_list(*names.group).get()
    }
    positions = [row[n_account + n_group :] for row in rows]
    orm = list(SimPosition.objects.filter(account_id=trader).order_by("time", "ticket").values_list(*names.position))
    assert positions == orm and len(orm) == 2


def test_an_account_without_positions_has_one_row_and_an_unknown_login_none(idle):
    names = sql.row_names()
    [row] = sql.account_rows(idle)
    n = len(names.account) + len(names.group)
    assert row[: len(names.account)] == SimAccount.objects.filter(login=idle).values_list(*names.account).get()
    assert set(row[n:]) == {None}
    assert sql.account_rows(424242) == []


def test_placed_order_rows_are_the_orms_placed_orders_only(trader):
    names = sql.row_names()
    rows = sql.placed_order_rows(trader, SimOrder.PLACED)
    orm = SimOrder.objects.filter(account_id=trader, state=SimOrder.PLACED).order_by("time_setup", "ticket")
    assert rows == list(orm.values_list(*names.order)) and len(rows) == 1
    cancelled = sql.placed_order_rows(trader, SimOrder.CANCELED)
    assert len(cancelled) == 1 and cancelled[0][names.order.index("volume_initial")] == D("0.20")


def test_the_view_read_through_the_statements_equals_the_orms(trader, monkeypatch):
    view = reads.fetch(trader)
    monkeypatch.setattr(reads, "_is_postgres", lambda: False)
    orm = reads.fetch(trader)
    fields = sql.row_names()
    assert [getattr(view.account, n) for n in fields.account] == [getattr(orm.account, n) for n in fields.account]
    assert [getattr(view.account.group, n) for n in fields.group] == [
        getattr(orm.account.group, n) for n in fields.group
    ]
    assert [p.pk for p in view.positions] == [p.pk for p in orm.positions]
    assert [o.pk for o in view.orders] == [o.pk for o in orm.orders]


def test_account_version_follows_every_change(trader):
    assert sql.account_version(trader) == SimAccount.objects.filter(login=trader).values_list("id", "version").get()
    before = sql.account_version(trader)
    deposit(trader, D("50"))
    after = sql.account_version(trader)
    assert after[0] == before[0] and after[1] > before[1]
    assert after == SimAccount.objects.filter(login=trader).values_list("id", "version").get()
    assert sql.account_version(424242) is None


# --- deals --------------------------------------------------------------------------------


def test_deals_between_two_instants_are_the_orms_with_both_ends_included(trader):
    times = sorted(SimDeal.objects.filter(account_id=trader).values_list("time", flat=True))
    assert len(times) > 20
    date_from, date_to = times[5], times[-6]
    rows = sql.deal_rows_between(trader, date_from, date_to)
    orm = _orm_deals(SimDeal.objects.filter(account_id=trader, time__gte=date_from, time__lte=date_to))
    assert rows == orm
    at = sql.DEAL_FIELDS.index("time")
    assert (rows[0][at], rows[-1][at]) == (_ms(date_from), _ms(date_to))
    assert sql.deal_rows_between(trader, times[-1] + timedelta(days=1), times[-1] + timedelta(days=2)) == []


def test_the_whole_history_read_through_the_statement_equals_the_orms(trader, monkeypatch):
    start, end = datetime(2000, 1, 1, tzinfo=UTC), WEDNESDAY_NOON + timedelta(days=1)
    deals = reads.deals(trader, start, end)
    monkeypatch.setattr(reads, "_is_postgres", lambda: False)
    assert deals == reads.deals(trader, start, end)
    assert len(deals) == SimDeal.objects.filter(account_id=trader).count()


def test_deals_with_a_comment_are_the_orms_and_match_the_whole_comment(trader):
    deposit(trader, D("10"), comment="Bonus 42")
    deposit(trader, D("20"), comment="Bonus 42")
    deposit(trader, D("30"), comment="Bonus 421")
    rows = sql.deal_rows_with_comment(trader, "Bonus 42")
    assert rows == _orm_deals(SimDeal.objects.filter(account_id=trader, comment="Bonus 42"))
    assert [row[sql.DEAL_FIELDS.index("profit")] for row in rows] == [D("10"), D("20")]
    assert sql.deal_rows_with_comment(trader, "Bonus") == []


# --- many accounts ------------------------------------------------------------------------


def _orm_account_rows(logins) -> set[tuple]:
    rows = set()
    for account in SimAccount.objects.filter(login__in=logins).select_related("group"):
        head = (
            account.pk, account.version, account.login, account.server, account.name, account.currency,
            account.leverage, account.margin_mode, account.trade_mode, account.balance, account.credit,
            account.group.company, account.group.margin_call, account.group.stop_out,
        )  # fmt: skip
        positions = SimPosition.objects.filter(account_id=account.login).values_list(
            "symbol", "type", "volume", "price_open", "swap_accrued", "swap_since", "sl", "tp"
        )
        for symbol, side, volume, price_open, accrued, since, sl, tp in positions:
            rows.add((*head, symbol, side, volume, price_open, accrued, int(since.timestamp() // 1), sl, tp))
        if not positions:
            rows.add((*head, *[None] * 8))
    return rows


def test_changed_account_rows_answer_only_what_moved_since_the_callers_copy(trader, idle):
    logins = [trader, idle, 424242]
    rows = sql.changed_account_rows(logins, [0, 0, 0], [-1, -1, -1])
    assert {row for row in rows if row[0] is not None} == _orm_account_rows([trader, idle])
    assert [row[2] for row in rows if row[0] is None] == [424242]  # no such account: one row, no id
    held = dict(SimAccount.objects.filter(login__in=logins).values_list("login", "id"))
    current = {login: sql.account_version(login) for login in (trader, idle)}
    ids = [held.get(login, 0) for login in logins]
    versions = [current[login][1] if login in current else -1 for login in logins]
    assert [row[2] for row in sql.changed_account_rows(logins, ids, versions)] == [424242]
    deposit(idle, D("75"))
    moved = sql.changed_account_rows(logins, ids, versions)
    assert {row for row in moved if row[0] is not None} == _orm_account_rows([idle])
    assert SimAccount.objects.get(login=idle).balance == D("2575")


def test_the_bulk_read_through_the_statement_equals_the_orm_path(trader, idle):
    logins = [trader, idle, 424242]
    through_sql = {login: bulk._Held() for login in logins}
    through_orm = {login: bulk._Held() for login in logins}
    assert bulk._refresh_postgres(logins, through_sql) == bulk._refresh_orm(logins, through_orm) == {424242}
    for login in (trader, idle):
        assert through_sql[login].account == through_orm[login].account
    assert len(through_sql[trader].account.holdings) == 2
