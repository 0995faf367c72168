"""How accounts reaches MetaTrader 5: a login that checks credentials, and the sync queue.

Fills the `accounts.ports.MT5Access` port (installed by ``Mt5BridgeConfig.ready``), so the accounts app,
which sits below the bridge, connects and syncs accounts without importing it.
"""

from __future__ import annotations

from accounts.figures import figures_from_mt5
from accounts.models import TradingAccount
from accounts.ports import AccountLogin, CredentialsRefused, GatewayDown
from config.errors import ServiceError

from . import gateway as gw
from .tasks import sync_enqueue


class GatewayAccountAccess:
    def login(self, *, login: int, password: str, server: str, gateway_kind: str) -> AccountLogin:
        gateway = gw.get_gateway(gateway_kind, server=server)
        try:
            info = gateway.login(gw.Credentials(login=login, password=password, server=server))
        except gw.AuthenticationFailed:
            raise CredentialsRefused(
                f"The MT5 server {server!r} refused login {login} with that password. "
                "Check the login, password and server."
            ) from None
        except gw.GatewayUnavailable as exc:
            raise GatewayDown(f"The MT5 server {server!r} could not be reached: {exc}. Nothing was stored.") from None
        except gw.GatewayError as exc:
            raise ServiceError(f"The MT5 server {server!r} answered with an error: {exc}", code="mt5_error") from None
        return AccountLogin(
            name=info.name,
            company=info.company,
            currency=info.currency,
            leverage=info.leverage,
            is_hedging=info.margin_mode == gw.MarginMode.RETAIL_HEDGING,
            figures=figures_from_mt5(info),
            trade_allowed=info.trade_allowed,
        )

    def sync_request(self, account: TradingAccount, *, trigger: str) -> None:
        sync_enqueue(account, trigger=trigger)
