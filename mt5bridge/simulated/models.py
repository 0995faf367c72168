"""Tables of the simulated MT5 server: servers, groups, accounts, positions, pending orders and deals."""

from __future__ import annotations

from django.db import models

from mt5bridge.gateway.types import MarginMode, OrderState

__all__ = ["SimServer", "SimGroup", "SimAccount", "SimPosition", "SimOrder", "SimDeal"]

MONEY = {"max_digits": 20, "decimal_places": 2}
PRICE = {"max_digits": 24, "decimal_places": 10}
VOLUME = {"max_digits": 14, "decimal_places": 4}
COMMENT_LENGTH = 31  # MT5 keeps 31 characters (32 with the terminating NUL)


class SimServer(models.Model):
    """One simulated trade server; its row also holds the ticket sequence (orders, positions, deals)."""

    name = models.CharField(max_length=64, unique=True)
    company = models.CharField(max_length=128, blank=True)
    next_ticket = models.BigIntegerField(default=1)

    class Meta:
        db_table = "mt5bridge_simserver"  # the tables kept their names when the app was split out
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SimGroup(models.Model):
    """A group of accounts on a server, with its margin-call and stop-out levels (percent)."""

    server = models.ForeignKey(SimServer, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=64)
    company = models.CharField(max_length=128, blank=True)
    currency = models.CharField(max_length=8, default="USD")
    margin_call = models.DecimalField(max_digits=8, decimal_places=2, default=100)
    stop_out = models.DecimalField(max_digits=8, decimal_places=2, default=50)

    class Meta:
        db_table = "mt5bridge_simgroup"  # the tables kept their names when the app was split out
        ordering = ["server_id", "name"]
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="sim_group_unique_per_server")]

    def __str__(self) -> str:
        return self.name


class SimAccount(models.Model):
    """A trading account on a simulated server (the MT5 user record and its money)."""

    NETTING = int(MarginMode.RETAIL_NETTING)
    HEDGING = int(MarginMode.RETAIL_HEDGING)

    login = models.BigIntegerField(unique=True)
    password = models.CharField(max_length=128)
    server = models.CharField(max_length=64)
    group = models.ForeignKey(SimGroup, on_delete=models.PROTECT, related_name="accounts")
    name = models.CharField(max_length=128, blank=True)
    email = models.CharField(max_length=128, blank=True)
    country = models.CharField(max_length=64, blank=True)
    lead_source = models.CharField(max_length=64, blank=True)
    lead_campaign = models.CharField(max_length=64, blank=True)
    agent = models.BigIntegerField(default=0)
    comment = models.CharField(max_length=64, blank=True)
    currency = models.CharField(max_length=8, default="USD")
    leverage = models.PositiveIntegerField(default=100)
    margin_mode = models.PositiveSmallIntegerField(
        default=HEDGING, choices=[(NETTING, "netting"), (HEDGING, "hedging")]
    )
    trade_mode = models.PositiveSmallIntegerField(default=0, help_text="ACCOUNT_TRADE_MODE: 0 demo, 1 contest, 2 real")
    balance = models.DecimalField(**MONEY, default=0)
    credit = models.DecimalField(**MONEY, default=0)
    registration = models.DateTimeField()
    # Triggers (pending orders, SL/TP) were evaluated up to this instant.
    checked_at = models.DateTimeField()
    # Bumped by every change to the account row, its positions or its orders (database triggers,
    # see migration 0002, so direct ORM updates count too); readers holding a copy compare it.
    version = models.BigIntegerField(default=0)
    history_seeded = models.BooleanField(default=False)
    # Pending orders still placed, so readers can skip asking for them when there are none.
    orders_open = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "mt5bridge_simaccount"  # the tables kept their names when the app was split out
        ordering = ["login"]

    def __str__(self) -> str:
        return f"{self.login}@{self.server}"

    @property
    def hedging(self) -> bool:
        return self.margin_mode == self.HEDGING


class SimPosition(models.Model):
    """An open position. Closed positions are gone; their story is in the deals."""

    account = models.ForeignKey(
        SimAccount, on_delete=models.CASCADE, to_field="login", db_column="login", related_name="positions"
    )
    ticket = models.BigIntegerField()
    identifier = models.BigIntegerField()
    symbol = models.CharField(max_length=32)
    type = models.PositiveSmallIntegerField()  # POSITION_TYPE: 0 buy, 1 sell
    volume = models.DecimalField(**VOLUME)
    price_open = models.DecimalField(**PRICE)
    sl = models.DecimalField(**PRICE, default=0)
    tp = models.DecimalField(**PRICE, default=0)
    magic = models.BigIntegerField(default=0)
    comment = models.CharField(max_length=COMMENT_LENGTH, blank=True)
    reason = models.PositiveSmallIntegerField(default=0)
    time = models.DateTimeField()
    time_update = models.DateTimeField()
    # Swap charged up to ``swap_since`` (folded in when the volume changes); later rollovers are computed.
    swap_accrued = models.DecimalField(**MONEY, default=0)
    swap_since = models.DateTimeField()

    class Meta:
        db_table = "mt5bridge_simposition"  # the tables kept their names when the app was split out
        ordering = ["time", "ticket"]
        indexes = [models.Index(fields=["account", "ticket"], name="sim_position_account_ticket")]

    def __str__(self) -> str:
        return f"#{self.ticket} {self.symbol} {self.volume}"


class SimOrder(models.Model):
    """A pending order; it stays after it fills, is cancelled or expires, with its final state."""

    PLACED = int(OrderState.PLACED)
    CANCELED = int(OrderState.CANCELED)
    FILLED = int(OrderState.FILLED)
    REJECTED = int(OrderState.REJECTED)
    EXPIRED = int(OrderState.EXPIRED)

    account = models.ForeignKey(
        SimAccount, on_delete=models.CASCADE, to_field="login", db_column="login", related_name="orders"
    )
    ticket = models.BigIntegerField()
    symbol = models.CharField(max_length=32)
    type = models.PositiveSmallIntegerField()  # ORDER_TYPE
    state = models.PositiveSmallIntegerField(default=PLACED)
    volume_initial = models.DecimalField(**VOLUME)
    volume_current = models.DecimalField(**VOLUME)
    price_open = models.DecimalField(**PRICE)
    price_stoplimit = models.DecimalField(**PRICE, default=0)
    sl = models.DecimalField(**PRICE, default=0)
    tp = models.DecimalField(**PRICE, default=0)
    magic = models.BigIntegerField(default=0)
    comment = models.CharField(max_length=COMMENT_LENGTH, blank=True)
    type_time = models.PositiveSmallIntegerField(default=0)
    time_setup = models.DateTimeField()
    time_update = models.DateTimeField()
    time_expiration = models.DateTimeField(null=True, blank=True)
    time_done = models.DateTimeField(null=True, blank=True)
    position_id = models.BigIntegerField(default=0)

    class Meta:
        db_table = "mt5bridge_simorder"  # the tables kept their names when the app was split out
        ordering = ["time_setup", "ticket"]
        indexes = [models.Index(fields=["account", "state"], name="sim_order_account_state")]

    def __str__(self) -> str:
        return f"#{self.ticket} {self.symbol}"


class SimDeal(models.Model):
    """One deal: a fill (in/out/inout) or a balance, credit, bonus, charge or correction operation."""

    account = models.ForeignKey(
        SimAccount, on_delete=models.CASCADE, to_field="login", db_column="login", related_name="deals"
    )
    ticket = models.BigIntegerField()
    order = models.BigIntegerField(default=0)
    time = models.DateTimeField()
    type = models.PositiveSmallIntegerField()  # DEAL_TYPE
    entry = models.PositiveSmallIntegerField(default=0)  # DEAL_ENTRY
    magic = models.BigIntegerField(default=0)
    position_id = models.BigIntegerField(default=0)
    reason = models.PositiveSmallIntegerField(default=0)  # DEAL_REASON (client enum)
    volume = models.DecimalField(**VOLUME, default=0)
    price = models.DecimalField(**PRICE, default=0)
    commission = models.DecimalField(**MONEY, default=0)
    swap = models.DecimalField(**MONEY, default=0)
    profit = models.DecimalField(**MONEY, default=0)
    fee = models.DecimalField(**MONEY, default=0)
    symbol = models.CharField(max_length=32, blank=True)
    comment = models.CharField(max_length=COMMENT_LENGTH, blank=True)
    external_id = models.CharField(max_length=32, blank=True)

    class Meta:
        db_table = "mt5bridge_simdeal"  # the tables kept their names when the app was split out
        ordering = ["time", "ticket"]
        indexes = [
            models.Index(fields=["account", "time"], name="sim_deal_account_time"),
            models.Index(fields=["account", "comment"], name="sim_deal_account_comment"),
            models.Index(fields=["account", "position_id"], name="sim_deal_account_position"),
        ]

    def __str__(self) -> str:
        return f"deal #{self.ticket}"
