"""MT5 gateway over a broker's Manager REST bridge that speaks the MetaQuotes MT5 Web API wire format."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .types import (
    AccountInfo,
    AuthenticationFailed,
    BrokerGroup,
    BrokerUser,
    Credentials,
    Deal,
    DealType,
    GatewayError,
    GatewayUnavailable,
    MarginMode,
    NotFound,
    OrderFilling,
    OrderRequest,
    OrderResult,
    OrderType,
    PendingOrder,
    Position,
    PositionType,
    Retcode,
    SymbolInfo,
    Tick,
    TradeAction,
)
from .webapi import (
    COMMENT_MAX,
    DEALER_ACTIONS,
    NOT_BALANCE_TYPES,
    PAGE_SIZE,
    RET_AUTH_ACCOUNT_DISABLED,
    RET_AUTH_ACCOUNT_INVALID,
    RET_AUTH_ACCOUNT_UNKNOWN,
    RET_ERR_NOTFOUND,
    RET_ERR_PARAMS,
    RET_OK,
    RET_OK_NONE,
    RET_USR_INVALID_PASSWORD,
    TA_DEALER_POS_EXECUTE,
    TRADE_RETCODES,
    VOLUME_EXT_UNIT,
    VOLUME_UNIT,
    as_list,
    as_plain_list,
    broker_user_of,
    chunks,
    deal_of,
    epoch,
    final_event,
    number_text,
    order_result_of,
    parse_retcode,
    pending_order_of,
    position_of,
    symbol_of,
    to_decimal,
    to_int,
    to_str,
    to_time,
    trade_mode_of,
)
from .webapi_client import WebAPIClient

logger = logging.getLogger(__name__)


class ManagerGateway(WebAPIClient):
    """``MT5Gateway`` over the MT5 Web API (manager rights), one keep-alive HTTP session.

    Every call is serialised on one connection because the access server ties the login and
    the dealer-request subscriptions to the session. Idempotent calls are retried with
    exponential backoff and jitter; money and trade requests (``balance_operation``,
    ``order_send``, ``close_all_positions``) are only repeated when the bridge cannot have
    executed them (connection refused, "12 Frequent requests", session lost before the command
    ran). Any other failure after sending raises ``GatewayUnavailable`` saying the outcome is
    unknown: the caller checks ``deals_by_comment`` / ``positions`` before trying again.
    """

    kind = "manager"

    def __init__(
        self,
        *,
        result_wait: float = 5.0,
        poll_interval: float = 0.05,
        batch_size: int = 100,
        comment_lookback: timedelta = timedelta(days=366),
        group_cache_ttl: float = 300.0,
        server: str = "",
        **connection: Any,
    ) -> None:
        """``connection``: the access server and how to talk to it (``WebAPIClient``'s arguments)."""
        super().__init__(**connection)
        self.result_wait = float(result_wait)
        self.poll_interval = float(poll_interval)
        self.batch_size = max(1, int(batch_size))
        self.comment_lookback = comment_lookback
        self.group_cache_ttl = float(group_cache_ttl)
        self.server = server
        self._groups: dict[str, tuple[float, dict[str, Any]]] = {}
        self._digits: dict[str, int] = {}
        self._trader_servers: dict[int, str] = {}

    # --- configuration lookups (cached) ---

    def _group(self, name: str) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._groups.get(name)
        if cached and cached[0] > now:
            return cached[1]
        try:
            record = as_list(self._answer("GET", "/api/group/get", {"group": name}))
        except NotFound:
            record = []
        group = record[0] if record else {}
        self._groups[name] = (now + self.group_cache_ttl, group)
        return group

    def _symbol_digits(self, symbol: str) -> int:
        if symbol not in self._digits:
            records = as_list(self._answer("GET", "/api/symbol/get", {"symbol": symbol}))
            if not records:
                raise NotFound(f"MT5: unknown symbol {symbol}")
            self._digits[symbol] = to_int(records[0].get("Digits"))
        return self._digits[symbol]

    # --- record -> value mapping ---

    def _account_info(self, user: dict[str, Any], account: dict[str, Any] | None, group: dict[str, Any]) -> AccountInfo:
        login = to_int(user.get("Login"))
        balance = to_decimal(user.get("Balance"))
        credit = to_decimal(user.get("Credit"))
        if account:
            balance = to_decimal(account.get("Balance", balance))
            credit = to_decimal(account.get("Credit", credit))
            floating = to_decimal(account.get("Floating", account.get("Profit")))
            equity = to_decimal(account.get("Equity"))
            margin = to_decimal(account.get("Margin"))
            margin_free = to_decimal(account.get("MarginFree"))
            margin_level: Decimal | None = to_decimal(account.get("MarginLevel"))
        else:
            # /api/user/account/get only knows accounts active since the server started;
            # an idle account has no positions, so its equity is its balance plus credit.
            floating = Decimal("0")
            equity = balance + credit
            margin = Decimal("0")
            margin_free = equity
            margin_level = None
        if margin == 0:
            margin_level = None
        group_name = to_str(user.get("Group"))
        try:
            margin_mode = MarginMode(to_int(group.get("MarginMode", MarginMode.RETAIL_HEDGING)))
        except ValueError:
            margin_mode = MarginMode.RETAIL_HEDGING
        name = to_str(user.get("Name")) or " ".join(
            part for part in (to_str(user.get("FirstName")), to_str(user.get("LastName"))) if part
        )
        return AccountInfo(
            login=login,
            server=self._trader_servers.get(login, self.server),
            name=name,
            company=to_str(group.get("Company")),
            currency=to_str(group.get("Currency")),
            leverage=to_int(user.get("Leverage")),
            balance=balance,
            credit=credit,
            equity=equity,
            margin=margin,
            margin_free=margin_free,
            margin_level=margin_level,
            profit=floating,
            margin_mode=margin_mode,
            trade_mode=trade_mode_of(group_name),
            margin_so_call=to_decimal(group.get("MarginCall", "100")),
            margin_so_so=to_decimal(group.get("MarginStopOut", "50")),
        )

    # --- trader side ---

    def login(self, credentials: Credentials) -> AccountInfo:
        """Check a trader's main password with manager rights, then read the account.

        The password travels only in the JSON body of ``POST /api/user/check_password`` (the
        documented POST form), never in a URL, so no access log or httpx log line carries it.
        A wrong password, an unknown or disabled login all raise ``AuthenticationFailed`` so a
        login form cannot be used to find out which logins exist.
        """
        data = self._call(
            "POST",
            "/api/user/check_password",
            body={"Login": str(credentials.login), "Type": "main", "Password": credentials.password},
            accept={
                RET_USR_INVALID_PASSWORD,
                RET_ERR_NOTFOUND,
                RET_AUTH_ACCOUNT_INVALID,
                RET_AUTH_ACCOUNT_DISABLED,
                RET_AUTH_ACCOUNT_UNKNOWN,
                RET_ERR_PARAMS,
            },
        )
        code, _ = parse_retcode(data.get("retcode"))
        if code not in (RET_OK, RET_OK_NONE):
            raise AuthenticationFailed(f"MT5 refused the password for {credentials}")
        if credentials.server:
            self._trader_servers[credentials.login] = credentials.server
        return self.account_info(credentials.login)

    def account_info(self, login: int) -> AccountInfo:
        users = as_list(self._answer("GET", "/api/user/get", {"login": login}))
        if not users:
            raise NotFound(f"MT5: unknown login {login}")
        try:
            accounts = as_list(self._answer("GET", "/api/user/account/get", {"login": login}))
        except NotFound:
            accounts = []
        user = users[0]
        return self._account_info(user, accounts[0] if accounts else None, self._group(to_str(user.get("Group"))))

    def positions(self, login: int) -> list[Position]:
        return [position_of(r) for r in self._records("/api/position/get_batch", {"login": login})]

    def orders(self, login: int) -> list[PendingOrder]:
        return [pending_order_of(r) for r in self._records("/api/order/get_batch", {"login": login})]

    def _deal_records(self, login: int, date_from: datetime, date_to: datetime) -> list[dict[str, Any]]:
        params = {"login": login, "from": epoch(date_from), "to": epoch(date_to)}
        try:
            total = to_int((self._answer("GET", "/api/deal/get_total", params) or {}).get("Total"))
        except NotFound:
            return []
        records: list[dict[str, Any]] = []
        while len(records) < total:
            page = self._records("/api/deal/get_page", {**params, "offset": len(records), "total": PAGE_SIZE})
            if not page:
                break
            records.extend(page)
        return records

    def deals(self, login: int, date_from: datetime, date_to: datetime) -> list[Deal]:
        return [deal_of(r) for r in self._deal_records(login, date_from, date_to)]

    def symbols(self, login: int | None = None) -> list[SymbolInfo]:
        """Every symbol configured on the server (the manager view ignores ``login``'s group filter)."""
        total = to_int((self._answer("GET", "/api/symbol/total") or {}).get("Total"))
        records: list[dict[str, Any]] = []
        while len(records) < total:
            page = as_list(self._answer("GET", "/api/symbol/next", {"index": len(records), "count": self.batch_size}))
            if not page:
                break
            records.extend(page)
        result = [symbol_of(r) for r in records]
        self._digits.update({s.name: s.digits for s in result})
        return result

    def tick(self, symbol: str) -> Tick:
        try:
            ticks = as_list(self._answer("GET", "/api/tick/last", {"symbol": symbol, "trans_id": 0}))
        except NotFound:
            ticks = []
        for record in ticks:
            if to_str(record.get("Symbol")) == symbol:
                if record.get("Digits") not in (None, ""):
                    self._digits[symbol] = to_int(record.get("Digits"))
                return Tick(
                    symbol=symbol,
                    time=to_time(record.get("Datetime"), record.get("DatetimeMsc")),
                    bid=to_decimal(record.get("Bid")),
                    ask=to_decimal(record.get("Ask")),
                    last=to_decimal(record.get("Last")),
                )
        raise NotFound(f"MT5: no quotes for {symbol}")

    def order_send(self, login: int, request: OrderRequest) -> OrderResult:
        """A dealer request on behalf of ``login`` (``/api/dealer/send_request``), then its result.

        The request is never repeated after it may have reached the server; when the result
        does not arrive within ``result_wait`` seconds the returned retcode is TIMEOUT and the
        comment says the outcome is unknown.
        """
        action = DEALER_ACTIONS.get(TradeAction(request.action))
        if action is None:
            return OrderResult(retcode=Retcode.INVALID, comment=f"unsupported trade action {request.action}")
        body: dict[str, Any] = {
            "Action": str(action),
            "Login": str(login),
            "Type": str(int(request.type)),
            "TypeFill": str(int(OrderFilling.FOK)),
            "TypeTime": str(request.type_time),
            "ExpertID": str(request.magic),
            "Comment": request.comment[:COMMENT_MAX],
            "PriceSL": number_text(request.sl),
            "PriceTP": number_text(request.tp),
            "PriceDeviation": str(request.deviation),
        }
        if request.symbol:
            price = request.price
            if price == 0 and request.action == TradeAction.DEAL:
                quote = self.tick(request.symbol)
                price = quote.ask if request.type == OrderType.BUY else quote.bid
            body.update(
                Symbol=request.symbol,
                Digits=str(self._symbol_digits(request.symbol)),
                PriceOrder=number_text(price),
                PriceTrigger=number_text(request.stoplimit),
            )
        if request.volume:
            body["Volume"] = str(int(request.volume * VOLUME_UNIT))
            body["VolumeExt"] = str(int(request.volume * VOLUME_EXT_UNIT))
        for key, value in (("Position", request.position), ("PositionBy", request.position_by)):
            if value:
                body[key] = str(value)
        if request.order:
            body["Order"] = str(request.order)
        if request.expiration is not None:
            body["TimeExpiration"] = str(epoch(request.expiration))
        sent = self._dealer_send(body)
        if isinstance(sent, OrderResult):
            return sent
        return self._await_results([sent])[sent]

    def _dealer_send(self, body: dict[str, Any]) -> int | OrderResult:
        """Queue one dealer request: its id, or the OrderResult of a refusal at the door."""
        data = self._call(
            "POST",
            "/api/dealer/send_request",
            body=body,
            idempotent=False,
            accept=TRADE_RETCODES,
        )
        code, text = parse_retcode(data.get("retcode"))
        if code == RET_ERR_PARAMS:
            return OrderResult(retcode=Retcode.INVALID, comment=f"{code} {text}".strip())
        if code not in (RET_OK, RET_OK_NONE):
            return OrderResult(retcode=code, comment=text)
        request_id = to_int((data.get("answer") or {}).get("ID"))
        if not request_id:
            raise GatewayError("MT5 bridge accepted a dealer request without giving its id")
        return request_id

    def _await_results(self, request_ids: Sequence[int]) -> dict[int, OrderResult]:
        """Poll ``/api/dealer/get_request_result`` until each request is final or time is up."""
        results: dict[int, OrderResult] = {}
        pending = [rid for rid in request_ids]
        deadline = time.monotonic() + self.result_wait
        delay = self.poll_interval
        problem = f"no result within {self.result_wait:g}s"
        while pending:
            try:
                data = self._call("GET", "/api/dealer/get_request_result", {"id": ",".join(map(str, pending))})
            except GatewayError as exc:
                # The subscription lives in the session; once that is gone nobody can tell us.
                problem = str(exc)
                break
            for rid in list(pending):
                final = final_event(data.get(str(rid)))
                if final is not None:
                    results[rid] = order_result_of(final, rid)
                    pending.remove(rid)
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
        for rid in pending:
            results[rid] = OrderResult(
                retcode=Retcode.TIMEOUT,
                comment=f"{problem}; the outcome is unknown, check positions before repeating",
                request_id=rid,
            )
        return results

    # --- broker side ---

    def users(self, group_mask: str = "*") -> list[BrokerUser]:
        logins = sorted(
            {to_int(x) for x in as_plain_list(self._answer("GET", "/api/user/logins", {"group": group_mask}))}
        )
        users: list[BrokerUser] = []
        for chunk in chunks(logins, self.batch_size):
            records = self._records("/api/user/get_batch", {"login": ",".join(map(str, chunk))})
            users.extend(broker_user_of(r) for r in records)
        return sorted(users, key=lambda u: u.login)

    def user(self, login: int) -> BrokerUser:
        records = as_list(self._answer("GET", "/api/user/get", {"login": login}))
        if not records:
            raise NotFound(f"MT5: unknown login {login}")
        return broker_user_of(records[0])

    def groups(self) -> list[BrokerGroup]:
        total = to_int((self._answer("GET", "/api/group/total") or {}).get("Total"))
        records: list[dict[str, Any]] = []
        while len(records) < total:
            page = as_list(self._answer("GET", "/api/group/next", {"index": len(records), "count": self.batch_size}))
            if not page:
                break
            records.extend(page)
        now = time.monotonic()
        for record in records:
            self._groups[to_str(record.get("Group"))] = (now + self.group_cache_ttl, record)
        return [
            BrokerGroup(
                name=to_str(r.get("Group")),
                currency=to_str(r.get("Currency")) or "USD",
                company=to_str(r.get("Company")),
                margin_call=to_decimal(r.get("MarginCall", "100")),
                stop_out=to_decimal(r.get("MarginStopOut", "50")),
            )
            for r in records
        ]

    def accounts_info(self, logins: Sequence[int]) -> dict[int, AccountInfo]:
        """Many accounts with one ``user/get_batch`` + ``user/account/get_batch`` pair per chunk.

        Logins the server does not know are left out of the result.
        """
        wanted = list(dict.fromkeys(int(x) for x in logins))
        result: dict[int, AccountInfo] = {}
        for chunk in chunks(wanted, self.batch_size):
            joined = ",".join(map(str, chunk))
            users = self._records("/api/user/get_batch", {"login": joined})
            accounts = {
                to_int(a.get("Login")): a for a in self._records("/api/user/account/get_batch", {"login": joined})
            }
            for user in users:
                login = to_int(user.get("Login"))
                group = self._group(to_str(user.get("Group")))
                result[login] = self._account_info(user, accounts.get(login), group)
        return result

    def balance_operation(
        self, login: int, amount: Decimal, deal_type: DealType, comment: str, *, check_margin: bool = True
    ) -> int:
        """Post a balance/credit/bonus/... deal (``/api/trade/balance``) and return its ticket.

        ``check_margin`` is sent as ``check_margin=1|0``: off, the server takes the amount even
        when the free margin does not cover it (a correction is never margin-checked).

        Not idempotent, so never repeated blindly: when the reply is lost after the request may
        have reached the server this raises ``GatewayUnavailable`` whose message says the outcome
        is unknown. The caller then looks the deal up with ``deals_by_comment`` (give every
        operation a unique comment) before deciding to post again.
        """
        deal_type = DealType(deal_type)
        if deal_type in NOT_BALANCE_TYPES:
            raise GatewayError(f"{deal_type.name} is a trade deal, not a balance operation")
        amount = Decimal(amount)
        if not amount.is_finite() or amount == 0:
            raise GatewayError("a balance operation needs a non-zero amount")
        data = self._call(
            "GET",
            "/api/trade/balance",
            {
                "login": login,
                "type": int(deal_type),
                "balance": number_text(amount),
                "comment": comment[:COMMENT_MAX],
                "check_margin": int(bool(check_margin)),
            },
            idempotent=False,
        )
        ticket = to_int((data.get("answer") or {}).get("Ticket"))
        if not ticket:
            raise GatewayError("MT5 posted the balance operation but returned no deal ticket")
        logger.info("MT5 %s %s on %s: deal %s", deal_type.name, number_text(amount), login, ticket)
        return ticket

    def deals_by_comment(self, login: int, comment: str) -> list[Deal]:
        """Deals of ``login`` whose comment is ``comment`` (cut to 31 characters, as MT5 stores it)."""
        wanted = comment[:COMMENT_MAX]
        now = datetime.now(tz=UTC)
        # A day ahead: trade servers stamp deals in their own zone, often hours ahead of UTC.
        records = self._deal_records(login, now - self.comment_lookback, now + timedelta(days=1))
        return [deal_of(r) for r in records if to_str(r.get("Comment")) == wanted]

    def set_leverage(self, login: int, leverage: int) -> None:
        """Read-modify-write: ``/api/user/update`` replaces the whole record with what it is sent."""
        if int(leverage) < 1:
            raise GatewayError("leverage must be at least 1")
        records = as_list(self._answer("GET", "/api/user/get", {"login": login}))
        if not records:
            raise NotFound(f"MT5: unknown login {login}")
        record = dict(records[0])
        record["Leverage"] = str(int(leverage))
        self._call("POST", "/api/user/update", {"login": login}, record)

    def close_all_positions(self, login: int) -> list[OrderResult]:
        """Close every open position of ``login`` at market, one dealer request each.

        Requests that fail to go out are reported as CONNECTION results rather than raised, so
        the caller always learns what happened to each position that was attempted.
        """
        records = self._records("/api/position/get_batch", {"login": login})
        quotes: dict[str, Tick | None] = {}
        sent: list[int | OrderResult] = []
        for record in records:
            symbol = to_str(record.get("Symbol"))
            if symbol not in quotes:
                try:
                    quotes[symbol] = self.tick(symbol)
                except NotFound:
                    quotes[symbol] = None
            quote = quotes[symbol]
            is_buy = to_int(record.get("Action")) == PositionType.BUY
            if quote is not None:
                price = quote.bid if is_buy else quote.ask
            else:
                price = to_decimal(record.get("PriceCurrent"))
            body = {
                "Action": str(TA_DEALER_POS_EXECUTE),
                "Login": str(login),
                "Symbol": symbol,
                "Type": str(int(OrderType.SELL if is_buy else OrderType.BUY)),
                "TypeFill": str(int(OrderFilling.FOK)),
                "Position": to_str(record.get("Position")),
                "PriceOrder": number_text(price),
                "Digits": to_str(record.get("Digits")) or str(self._digits.get(symbol, 5)),
                "Comment": "close all",
            }
            # Send the raw server volume back untouched: converting through lots could round.
            for key in ("Volume", "VolumeExt"):
                if to_int(record.get(key)):
                    body[key] = to_str(record.get(key))
            try:
                sent.append(self._dealer_send(body))
            except GatewayUnavailable as exc:
                sent.append(OrderResult(retcode=Retcode.CONNECTION, comment=str(exc)))
        finals = self._await_results([s for s in sent if isinstance(s, int)])
        return [finals[s] if isinstance(s, int) else s for s in sent]
